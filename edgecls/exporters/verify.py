"""Check an exported artifact against the PyTorch model it came from, on real images.

Both sides get the same reference pixels (preprocess.reference), so only the conversion is measured; each
side turns pixels into its own input tensor from its own spec (float NCHW for PyTorch, e.g. uint8 NHWC with
normalization in the graph for ONNX).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import ExportError
from ..runtime import preprocess as _pre

# Tolerances per precision and what they mean: edgecls/selfcheck.py, one table by which export verification here and
# the on-device self-check judge (re-exported: tests import them from here)
from ..runtime.selfcheck import CONFIDENT, MIN_TOP1, REL_TOLERANCE  # noqa: F401
from ..runtime.spec import ModelSpec


@dataclass(frozen=True)
class VerifyReport:
    images: int
    max_abs_diff: float
    rel_diff: float
    top1_agreement: float
    top5_overlap: float
    tolerance: float | None
    confident_images: int = 0  # images where PyTorch's top-1 probability >= CONFIDENT
    confident_top1_agreement: float = 1.0
    max_prob_diff: float = 0.0  # max |softmax diff| over images and classes (temperature 1)

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"{self.images} images: max|dlogit|={self.max_abs_diff:.2e} (rel {self.rel_diff:.2e}), "
            f"top-1 agree {self.top1_agreement:.0%} ({self.confident_top1_agreement:.0%} of {self.confident_images} confident), "
            f"top-5 overlap {self.top5_overlap:.0%}, max|dp|={self.max_prob_diff:.3f}"
        )


def torch_logits(model, spec: ModelSpec, pixels: list[np.ndarray]) -> np.ndarray:
    import torch

    batch = np.concatenate([_pre.to_input(px, spec, precise=True) for px in pixels])
    with torch.inference_mode():
        return model.eval()(torch.from_numpy(batch)).float().numpy()


def reference_pixels(images: dict[str, np.ndarray], spec: ModelSpec) -> list[np.ndarray]:
    return [_pre.reference_pixels(img, "RGB", spec) for img in images.values()]


def compare(ref: np.ndarray, got: np.ndarray, precision: str) -> VerifyReport:
    diff = float(np.abs(ref - got).max())
    rel = diff / max(float(np.abs(ref).max()), 1e-12)
    top1 = float((ref.argmax(1) == got.argmax(1)).mean())
    k = min(5, ref.shape[1])
    r5, g5 = np.argsort(-ref, 1)[:, :k], np.argsort(-got, 1)[:, :k]
    overlap = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(r5, g5)]))
    p_ref, p_got = _softmax(ref), _softmax(got)
    sure = p_ref.max(1) >= CONFIDENT
    agree = ref.argmax(1) == got.argmax(1)
    return VerifyReport(
        len(ref), diff, rel, top1, overlap, REL_TOLERANCE.get(precision), int(sure.sum()),
        float(agree[sure].mean()) if sure.any() else 1.0, float(np.abs(p_ref - p_got).max()),
    )


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def check(report: VerifyReport, precision: str, name: str) -> None:
    """Raise ExportError when `report` is outside the documented tolerances of `precision` (unknown: no check)."""
    if precision not in REL_TOLERANCE:
        return
    why = []
    if report.rel_diff > REL_TOLERANCE[precision]:
        why.append(f"rel logit diff {report.rel_diff:.2e} > {REL_TOLERANCE[precision]:.0e}")
    if report.top1_agreement < MIN_TOP1[precision]:
        why.append(f"top-1 agreement {report.top1_agreement:.0%} < {MIN_TOP1[precision]:.0%}")
    if report.confident_top1_agreement < 1.0:
        why.append(f"top-1 changed on a photo PyTorch is >= {CONFIDENT:.0%} sure of")
    if why:
        raise ExportError(
            f"{name} disagrees with PyTorch ({precision}): {'; '.join(why)}. {report}. The artifact was not published"
            + (". For INT8, calibrate on ~100+ images like the deployment data (calibration=...)" if "int8" in precision else "")
        )


def verify_artifact(path: Path, artifact_spec: ModelSpec, model, model_spec: ModelSpec, images: dict[str, np.ndarray]) -> VerifyReport:
    """Run the artifact through its real backend and compare with PyTorch; raise ExportError on disagreement."""
    from ..runtime.predictor import Predictor

    pixels = reference_pixels(images, model_spec)
    ref = torch_logits(model, model_spec, pixels)
    pred = Predictor(path, spec=artifact_spec)  # on its runtime's default device: a TensorRT engine runs on the GPU only
    got = pred.infer(np.concatenate([_pre.to_input(px, artifact_spec) for px in pixels]))
    precision = artifact_spec.artifact.get("precision", "fp32")
    report = compare(ref, got, precision)
    check(report, precision, path.name)
    return report

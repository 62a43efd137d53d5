"""Check an exported artifact against the PyTorch model it came from, on real images.

Both sides get the same reference pixels (preprocess.reference), so only the conversion is measured; each
side turns pixels into its own input tensor from its own spec (float NCHW for PyTorch, e.g. uint8 NHWC with
normalization in the graph for ONNX).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .. import preprocess as _pre
from ..errors import ExportError
from ..spec import ModelSpec

# max |logit diff| / max |logit| tolerated per precision; INT8 is judged on top-1 agreement only
REL_TOLERANCE = {"fp32": 1e-3, "fp16": 3e-2}


@dataclass(frozen=True)
class VerifyReport:
    images: int
    max_abs_diff: float
    rel_diff: float
    top1_agreement: float
    top5_overlap: float
    tolerance: float | None

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"{self.images} images: max|dlogit|={self.max_abs_diff:.2e} (rel {self.rel_diff:.2e}), "
            f"top-1 agree {self.top1_agreement:.0%}, top-5 overlap {self.top5_overlap:.0%}"
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
    return VerifyReport(len(ref), diff, rel, top1, overlap, REL_TOLERANCE.get(precision))


def verify_artifact(path: Path, artifact_spec: ModelSpec, model, model_spec: ModelSpec, images: dict[str, np.ndarray]) -> VerifyReport:
    """Run the artifact through its real backend and compare with PyTorch; raise ExportError on disagreement."""
    from ..predictor import Predictor

    pixels = reference_pixels(images, model_spec)
    ref = torch_logits(model, model_spec, pixels)
    pred = Predictor(path, spec=artifact_spec)
    got = pred.infer(np.concatenate([_pre.to_input(px, artifact_spec) for px in pixels]))
    precision = artifact_spec.artifact.get("precision", "fp32")
    report = compare(ref, got, precision)
    if report.tolerance is not None and report.rel_diff > report.tolerance:
        raise ExportError(
            f"{path.name} disagrees with PyTorch: {report}; tolerance for {precision} is rel {report.tolerance:.0e}. "
            "The artifact was not published"
        )
    if report.top1_agreement < 1.0 and precision in REL_TOLERANCE:
        raise ExportError(f"{path.name} changes top-1 on real photos vs PyTorch: {report}. The artifact was not published")
    return report

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

# Tolerances per precision, measured on the 11 bundled photos (pretrained EfficientNet-Lite0 and the Fashion-MNIST
# MobileNetV3-Large, TFLite via litert-torch 0.10 / ai-edge-quantizer 0.10), with headroom but no more:
#   rel_diff = max |logit diff| / max |PyTorch logit|. Float precisions must match closely and keep every top-1.
#   INT8 moves logits by design (measured rel: dynamic 0.05-0.08, pt2e 0.09-0.16, all-int8 0.25-0.37), and
#   photos PyTorch itself is unsure of (p < 0.3) may swap top-1 with a near tie. So INT8 must keep the top-1 of
#   every photo PyTorch is confident about (p >= CONFIDENT), most top-1s overall (MIN_TOP1), and stay under a rel
#   bound that catches broken ranges (litert-torch's own PT2E ranges on ReLU6 nets measured 0.52 with 36% top-1).
REL_TOLERANCE = {"fp32": 1e-3, "fp16": 3e-2, "dynamic_int8": 0.15, "int8": 0.3, "int8_all": 0.5}
MIN_TOP1 = {"fp32": 1.0, "fp16": 1.0, "dynamic_int8": 0.8, "int8": 0.8, "int8_all": 0.8}
CONFIDENT = 0.5  # softmax probability of PyTorch's top-1 above which INT8 must agree


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
    from ..predictor import Predictor

    pixels = reference_pixels(images, model_spec)
    ref = torch_logits(model, model_spec, pixels)
    device = "cuda" if artifact_spec.artifact.get("format") == "tensorrt" else "cpu"  # engines run on the GPU only
    pred = Predictor(path, spec=artifact_spec, device=device)
    got = pred.infer(np.concatenate([_pre.to_input(px, artifact_spec) for px in pixels]))
    precision = artifact_spec.artifact.get("precision", "fp32")
    report = compare(ref, got, precision)
    check(report, precision, path.name)
    return report

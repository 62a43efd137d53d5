"""On-device self-check: an artifact carries a few reference inputs and what the float model answered for them, and
the device runs them on its own runtime before trusting it.

Why: the same file can compute something else on another machine. A full-range INT8 model on an x86 CPU without
VNNI saturates in ONNX Runtime's and OpenVINO's U8S8 kernels; a runtime may silently run in lower precision; a TensorRT
engine meets another driver. Export-time verification ran on the build machine; this runs where the model will serve.

The record (SELFCHECK_KEY) is a compressed .npz, lossless: `pixels` (N, H, W, C) uint8, the reference crops in the
model's channel order, before normalization (the artifact's input is made from them by the spec, as the Predictor
would); `logits` (N, classes) of the float model (PyTorch) at build time; `build_logits` what the artifact itself gave
on the build machine, when it was run there; `meta` (JSON: precision, image names, edgecls version). It stays out of
the spec (which must stay small for `edgecls info`): under its own metadata key where the format has a slot (ONNX
metadata_props, OpenVINO rt_info, TFLite metadata, edgecls .pt) and as `<artifact>.check.npz` beside files without
one (TensorRT plan files). The pass/fail rules and tolerances per precision are the ones export verification uses
(exporters/verify.py imports them from here): the check judges the device against the float model, as export did.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import preprocess as _pre
from .spec import ModelSpec

if TYPE_CHECKING:  # the backends import this module for SELFCHECK_KEY
    from .backends import Session

SELFCHECK_KEY = "edgecls.selfcheck"
COMPANION_SUFFIX = ".check.npz"
N_INPUTS = 3  # the most confident of the bundled photos: enough to catch a broken runtime, ~0.3 MB for a 224 model

# Tolerances per precision, measured on the 11 bundled photos (pretrained EfficientNet-Lite0 and the Fashion-MNIST
# MobileNetV3-Large, TFLite via litert-torch 0.10 / ai-edge-quantizer 0.10), with headroom but no more:
#   rel_diff = max |logit diff| / max |float logit|. Float precisions must match closely and keep every top-1.
#   INT8 moves logits by design (measured rel: dynamic 0.05-0.08, pt2e 0.09-0.16, all-int8 0.25-0.37), and
#   photos the float model itself is unsure of (p < 0.3) may swap top-1 with a near tie. So INT8 must keep the top-1
#   of every photo the float model is confident about (p >= CONFIDENT), most top-1s overall (MIN_TOP1), and stay under
#   a rel bound that catches broken ranges (litert-torch's own PT2E ranges on ReLU6 nets measured 0.52 with 36% top-1).
REL_TOLERANCE = {"fp32": 1e-3, "fp16": 3e-2, "dynamic_int8": 0.15, "int8": 0.3, "int8_all": 0.5}
MIN_TOP1 = {"fp32": 1.0, "fp16": 1.0, "dynamic_int8": 0.8, "int8": 0.8, "int8_all": 0.8}
CONFIDENT = 0.5  # softmax probability of the float model's top-1 above which a lower precision must agree
MIN_TOP1_INPUTS = 5  # with fewer inputs one near-tie swap is >= 20 points: the top-1 share rule then waits for more

# A quantized graph also has an exact meaning: its Q/DQ nodes evaluated as written (what TensorRT's int8 kernels, with
# int32 accumulation, compute). How far a runtime may stray from it: measured on pretrained Lite0 INT8 (ORT QDQ, 11
# photos, rel per image): a CPU without VNNI 0.14-0.60 with full-range weights, 0.011-0.044 with 7-bit weights.
GRAPH_TOLERANCE = {"int8": 0.08, "int8_all": 0.08, "dynamic_int8": 0.08}


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def judge(ref: np.ndarray, got: np.ndarray, precision: str) -> tuple[dict, list[str]]:
    """Figures of `got` against the float reference `ref` (N, classes) and the rules it breaks for `precision`."""
    diff = float(np.abs(ref - got).max())
    rel = diff / max(float(np.abs(ref).max()), 1e-12)
    agree = ref.argmax(1) == got.argmax(1)
    sure = softmax(ref).max(1) >= CONFIDENT
    k = min(5, ref.shape[1])
    r5, g5 = np.argsort(-ref, 1)[:, :k], np.argsort(-got, 1)[:, :k]
    figures = {"n": int(len(ref)), "max_abs_diff": diff, "rel_diff": rel, "top1_agreement": float(agree.mean()),
               "top5_overlap": float(np.mean([len(set(a) & set(b)) / k for a, b in zip(r5, g5)])),
               "confident": int(sure.sum()), "confident_top1_agreement": float(agree[sure].mean()) if sure.any() else 1.0,
               "tolerance": REL_TOLERANCE.get(precision)}
    why = []
    if precision in REL_TOLERANCE:
        if rel > REL_TOLERANCE[precision]:
            why.append(f"rel logit diff {rel:.2e} > {REL_TOLERANCE[precision]:.0e}")
        if agree.mean() < MIN_TOP1[precision] and (MIN_TOP1[precision] == 1.0 or len(ref) >= MIN_TOP1_INPUTS):
            why.append(f"top-1 agreement {agree.mean():.0%} < {MIN_TOP1[precision]:.0%}")
        if sure.any() and not agree[sure].all():
            why.append(f"top-1 changed on an input the float model is >= {CONFIDENT:.0%} sure of")
    return figures, why


# --- the record ---------------------------------------------------------------------------------------------------
def judge_graph(graph: np.ndarray, got: np.ndarray, precision: str) -> tuple[float, list[str]]:
    """Worst per-input rel diff of `got` from the graph's exact meaning, and the rule it breaks."""
    rel = float((np.abs(got - graph).max(1) / np.maximum(np.abs(graph).max(1), 1e-12)).max())
    tol = GRAPH_TOLERANCE.get(precision)
    if tol is None or rel <= tol:
        return rel, []
    return rel, [f"this runtime does not compute the quantized graph as written (rel {rel:.2f} > {tol}): on x86 without "
                 "VNNI, full-range int8 saturates in OpenVINO's U8S8 kernels; rebuild it for this CPU (--target-cpu "
                 "x86-avx2: overflow fix on)"]


def pack(pixels: np.ndarray, logits: np.ndarray, precision: str, names: list[str],
         build_logits: np.ndarray | None = None, graph_logits: np.ndarray | None = None) -> bytes:
    meta = {"precision": precision, "names": list(names), "version": 1}
    from ..version import package_version

    meta["edgecls_version"] = package_version()
    arrays = {"pixels": np.ascontiguousarray(pixels, np.uint8), "logits": np.asarray(logits, np.float32),
              "meta": np.frombuffer(json.dumps(meta).encode(), np.uint8)}
    if build_logits is not None:
        arrays["build_logits"] = np.asarray(build_logits, np.float32)
    if graph_logits is not None:
        arrays["graph_logits"] = np.asarray(graph_logits, np.float32)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def unpack(blob: bytes) -> dict:
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        out = {k: z[k] for k in z.files}
    out["meta"] = json.loads(out["meta"].tobytes().decode())
    return out


def to_text(blob: bytes) -> str:
    """For string metadata slots (ONNX metadata_props, OpenVINO rt_info)."""
    return base64.b64encode(blob).decode("ascii")


def from_text(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"))


def with_precision(blob: bytes, precision: str, graph_logits: np.ndarray | None = None) -> bytes:
    """The same inputs and float reference for a derived artifact (e.g. INT8 of this FP32 file); build outputs dropped,
    `graph_logits` (the derived graph's exact answers) added."""
    r = unpack(blob)
    return pack(r["pixels"], r["logits"], precision, r["meta"].get("names", []), graph_logits=graph_logits)


def companion_path(artifact: str | Path) -> Path:
    p = Path(artifact)
    return p.with_name(p.name + COMPANION_SUFFIX)


def find(artifact: str | Path, session: Session) -> tuple[bytes | None, str]:
    """(record, where it came from): the format's own slot (the session read it), else the companion file."""
    blob = session.selfcheck_blob
    if blob:
        return blob, "embedded"
    side = companion_path(artifact)
    if side.is_file():
        return side.read_bytes(), side.name
    return None, "none"


# --- running it ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SelfCheckResult:
    status: str  # "pass" | "fail" | "no-data"
    precision: str = ""
    source: str = ""
    figures: dict = field(default_factory=dict)  # against the float model: max/rel diff, top-1/top-5, confident
    build_max_abs_diff: float | None = None  # against the artifact's own outputs on the build machine
    graph_rel_diff: float | None = None  # against the quantized graph's exact answers (Q/DQ evaluated as written)
    reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # float-reference rules an INT8 with its graph's answers breaks: its quantization, not this device

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def as_dict(self) -> dict:
        return asdict(self) | {"reasons": list(self.reasons), "notes": list(self.notes)}

    def __str__(self) -> str:
        if self.status == "no-data":
            return "self-check: no reference data in this artifact (exported before edgecls had it?)"
        f = self.figures
        text = (f"self-check {self.status.upper()} ({self.precision}, {f['n']} reference inputs, {self.source}): "
                f"max|dlogit| {f['max_abs_diff']:.3g} (rel {f['rel_diff']:.2e}, tolerance {f['tolerance']}), "
                f"top-1 {f['top1_agreement']:.0%}, top-5 overlap {f['top5_overlap']:.0%}")
        if self.graph_rel_diff is not None:
            text += f"; vs the quantized graph as written: rel {self.graph_rel_diff:.3f} (tolerance {GRAPH_TOLERANCE.get(self.precision)})"
        if self.build_max_abs_diff is not None:
            text += f"; vs the build machine's run: max|dlogit| {self.build_max_abs_diff:.3g}"
        text += "" if self.passed else " -- " + "; ".join(self.reasons)
        return text + (f" (quantization, not this device: {'; '.join(self.notes)})" if self.notes else "")


def inputs_from(pixels: np.ndarray, spec: ModelSpec) -> np.ndarray:
    return np.concatenate([_pre.to_input(px, spec, precise=True) for px in pixels])


def run(infer, spec: ModelSpec, blob: bytes | None, source: str = "") -> SelfCheckResult:
    """Run the record's inputs through `infer` (batch -> logits; the Predictor's) and judge them."""
    if blob is None:
        return SelfCheckResult("no-data", spec.artifact.get("precision", "fp32"), source)
    r = unpack(blob)
    precision = spec.artifact.get("precision") or r["meta"].get("precision", "fp32")
    got = np.asarray(infer(inputs_from(r["pixels"], spec)), np.float32)
    figures, why = judge(r["logits"], got, precision)
    graph, notes = None, []
    if "graph_logits" in r:
        # the quantized graph's exact answers say what this artifact should compute on any device; how far that is from
        # the float model is a property of the quantization, judged by the accuracy budget at build time, so it is noted
        notes, (graph, why) = why, judge_graph(r["graph_logits"], got, precision)
    build = float(np.abs(r["build_logits"] - got).max()) if "build_logits" in r else None
    return SelfCheckResult("fail" if why else "pass", precision, source, figures, build, graph, tuple(why), tuple(notes))

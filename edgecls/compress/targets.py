"""The INT8 targets, as a table: runtime name -> how to build its FP32 and INT8 artifacts, how to evaluate them here.

One `max_drop` budget covers every runtime a user ships because every runtime is one row of this table: `edgecls
compress` (`quantize: backends: [...]`) and `edgecls deploy --targets ...` both read it. Its rows are keyed by the
runtime table's names (edgecls.runtime.runtimes), whose `int8` flag says which runtimes have one; a target's suffix,
device and accepted spellings are that table's. Adding a target (say ExecuTorch `.pte`) is setting the flag and adding
one `Int8Target` here: its FP32 export, its INT8 build from the float model or the FP32 artifact plus calibration
inputs, and what it needs to build.

Calibration inputs are given in the FP32 artifact's own input format (for every target here: uint8 NHWC crops of
training images, normalization in the graph), so the same images calibrate every runtime.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import UnknownRuntimeError, UnknownTargetError
from ..runtime.runtimes import RUNTIMES, Runtime, resolve
from ..runtime.spec import ModelSpec


@dataclass(frozen=True)
class Int8Job:
    """Everything an INT8 build may use. dst: where the INT8 artifact goes (published whole, verified)."""

    model: Any  # the float torch model
    spec: ModelSpec  # its spec
    float_path: Path  # this target's FP32 artifact
    float_spec: ModelSpec
    calibration: np.ndarray  # (N, ...) inputs in the FP32 artifact's input format
    dst: Path
    keep_float: tuple[str, ...] = ()  # module names to leave in float (targets with keep_float=True)
    options: dict = field(default_factory=dict)  # calibration_method, per_channel, overflow_fix, target_cpu
    verify_images: dict | None = None  # name -> RGB image: what exports are checked against PyTorch on


@dataclass(frozen=True)
class Int8Target:
    name: str  # the runtime table's name of its runtime (what users write: --targets onnxruntime, or a spelling of it)
    needs: tuple[tuple[str, str], ...]  # (python module, edgecls extra) to build AND run it
    export_float: Callable[[Any, ModelSpec, Path, dict | None], ModelSpec]  # (model, spec, dst, verify_images)
    build_int8: Callable[[Int8Job], ModelSpec]
    keep_float: bool  # honours keep_float: the fallback ladder can leave layers in float
    qat: bool  # compress's QAT fallback applies (NNCF fake quantization -> this runtime)
    note: str = ""  # shown in reports: what INT8 scheme this is
    # the other all-INT8 forms the ladder tries before any layer goes back to float: (what it is, Int8Job.options)
    forms: Callable[[Int8Job], list[tuple[str, dict]]] = lambda job: []

    @property
    def runtime(self) -> Runtime:
        return RUNTIMES[self.name]

    @property
    def aliases(self) -> tuple[str, ...]:
        """The other spellings users may write for it (the runtime table's: its format, its aliases)."""
        return self.runtime.spellings[1:]

    @property
    def suffix(self) -> str:
        return self.runtime.suffix

    @property
    def device(self) -> str:
        """Where its artifacts run (the Predictor's device=)."""
        return self.runtime.device

    def unavailable(self) -> str | None:
        """Why this target cannot be built or measured on this machine (None: it can)."""
        for module, extra in self.needs:
            if importlib.util.find_spec(module.split(".")[0]) is None:
                return f"'{module}' is not installed: pip install 'edgecls[{extra}]'"
        if self.device == "cuda":
            from ..errors import require

            torch = require("torch", "torch")
            if not torch.cuda.is_available():
                return "no NVIDIA GPU here (TensorRT builds and runs engines only on one); run deploy on the GPU machine"
        return None


# --- the builds -------------------------------------------------------------------------------------------------
def _export(model, spec, dst, verify_images, verify: bool = True, **opts) -> ModelSpec:
    from ..exporters import export

    return export(model, spec, dst, images=verify_images, verify=verify, **opts).spec


def _float_graph(model, spec, dst, verify_images=None):  # ONNX and OpenVINO: dynamic batch, evaluation runs batches
    return _export(model, spec, dst, verify_images, dynamic_batch=True)


class _quiet_litert:
    """litert-torch prints a progress line per conversion phase (a dozen per export): keep deploy's output readable."""

    def __enter__(self):
        import litert_torch

        self.cfg, self.was = litert_torch.config, litert_torch.config.show_progress
        self.cfg.show_progress = False

    def __exit__(self, *exc):
        self.cfg.show_progress = self.was


def _float_tflite(model, spec, dst, verify_images=None):
    with _quiet_litert():
        return _export(model, spec, dst, verify_images)


def _ptq(fmt: str) -> Callable[[Int8Job], ModelSpec]:
    def build(job: Int8Job) -> ModelSpec:
        from .ptq import quantize_file

        o = job.options
        extra = {k: o[k] for k in ("weights", "fast_bias_correction", "quantizer", "bias_correction") if k in o}
        src, fspec = job.float_path, job.float_spec
        if o.get("quantizer") == "onnxruntime" and fmt == "openvino":  # the IR from ONNX Runtime's Q/DQ of the float ONNX
            src, fspec = _float_onnx(job)
        return quantize_file(fmt, src, job.dst, fspec, job.calibration, keep_float=job.keep_float,
                             method=o.get("calibration_method", "minmax"), per_channel=o.get("per_channel", True),
                             overflow_fix=o.get("overflow_fix", "auto"), target_cpu=o.get("target_cpu"),
                             strict_keep_float=False, **extra)  # the ladder's generic names ("se") need not exist

    return build


def _float_onnx(job: Int8Job) -> tuple[Path, ModelSpec]:
    """The float ONNX of the job's model (same input as its FP32 IR), exported once beside the attempts."""
    from ..runtime.artifacts import read_sidecar

    path = job.dst.parent / f"{job.float_path.stem}.float-for-qdq.onnx"
    if path.is_file() and path.stat().st_mtime >= job.float_path.stat().st_mtime:
        return path, read_sidecar(path)
    return path, _float_graph(job.model, job.spec, path, job.verify_images)


def _openvino_forms(job: Int8Job) -> list[tuple[str, dict]]:
    """OpenVINO's other all-INT8 form: the IR converted from ONNX Runtime's bias-corrected Q/DQ graph, with the weight
    form the target CPU class gets there (ptq.openvino_from_qdq); it needs the float PyTorch model."""
    if job.model is None or job.options.get("quantizer") == "onnxruntime":
        return []
    return [("from ONNX Runtime's bias-corrected Q/DQ graph", {"quantizer": "onnxruntime"})]


def _ort_forms(job: Int8Job) -> list[tuple[str, dict]]:
    """ONNX Runtime's other all-INT8 forms, in the order the ladder tries them when the first misses the budget: the
    same weights with histogram (percentile) calibration of the activations; where U8S8 saturates (x86 without VNNI,
    where the first has 7-bit weights on the fast U8S8 kernels), 8-bit weights, which ONNX Runtime runs on its slower
    U8U8 kernels there. (8-bit weights on the depthwise convolutions only, ORT_WEIGHTS "7-bit-gemm", measured worse
    than 7-bit everywhere on pretrained Lite0 and slower: not tried.)"""
    from ..runtime.cpuinfo import resolve_target_cpu, target_saturates
    from .ptq import ORT_AUTO

    if job.options.get("overflow_fix", "auto") != "auto" or "weights" in job.options:
        return []  # the user fixed the form
    saturates = target_saturates(resolve_target_cpu(job.options.get("target_cpu")))
    first = ORT_AUTO[saturates]
    forms = []
    if job.options.get("calibration_method", "minmax") == "minmax":
        forms.append((f"{first} weights, percentile calibration", {"weights": first, "calibration_method": "percentile"}))
    if saturates:  # 8-bit weights run on ONNX Runtime's U8U8 kernels there: more accurate, slower
        forms.append(("8-bit weights (U8U8 kernels on this CPU class)", {"weights": "8-bit"}))
    return forms


def _tflite_int8(job: Int8Job) -> ModelSpec:
    """litert-torch PT2E full-integer INT8 (the most accurate TFLite INT8, see exporters/tflite.py).

    Not checked against PyTorch on a dozen photos here: every INT8 build of this table is judged on the whole
    validation set against its runtime's FP32 artifact (budget.ladder), which catches a broken conversion and does
    not fail a sound one because an unsure model swaps near-ties on a few photos (measured: a 22%-accurate
    Fashion-MNIST model kept 73% of top-1s on the bundled photos, under export's 80% floor)."""
    with _quiet_litert():
        return _export(job.model, job.spec, job.dst, job.verify_images, verify=False, precision="int8",
                       calibration=job.calibration, target_cpu=job.options.get("target_cpu"))


def _float_tensorrt(model, spec, dst, verify_images=None):
    return _export(model, spec, dst, verify_images, precision="fp32")


def _tensorrt_int8(job: Int8Job) -> ModelSpec:
    # minimal on purpose: the TensorRT exporter (symmetric Q/DQ ONNX, ModelOpt) is being reworked; this row is
    # where deploy/compress meet it
    return _export(job.model, job.spec, job.dst, job.verify_images, precision="int8", calibration=job.calibration)


def _extra(name: str) -> str:
    return RUNTIMES[name].extra


TARGETS: dict[str, Int8Target] = {t.name: t for t in (
    Int8Target("onnxruntime", (("onnxruntime", _extra("onnxruntime")),), _float_graph, _ptq("onnx"),
               keep_float=True, qat=True, forms=_ort_forms,
               note="ONNX Runtime quantize_static: QDQ, int8 per-channel weights (7-bit where U8S8 saturates), uint8 "
                    "activations, bias correction"),
    Int8Target("openvino", (("openvino", _extra("openvino")), ("nncf", "compress")), _float_graph, _ptq("openvino"),
               keep_float=True, qat=True, forms=_openvino_forms,
               note="NNCF post-training quantization (mixed preset; overflow fix where U8S8 saturates), or the IR of "
                    "ONNX Runtime's bias-corrected Q/DQ graph"),
    Int8Target("litert", (("litert_torch", "tflite-export"), ("ai_edge_litert", _extra("litert"))),
               _float_tflite, _tflite_int8, keep_float=False, qat=False,
               note="litert-torch PT2E full-integer INT8 (float islands around SE/hard-swish allowed)"),
    Int8Target("tensorrt", (("tensorrt", _extra("tensorrt")),), _float_tensorrt, _tensorrt_int8,
               keep_float=False, qat=False, note="TensorRT INT8 engine"),
)}


def target(name: str) -> Int8Target:
    """The target any spelling of a runtime names (a CLI flag's or config file's); an unknown name, or a runtime
    without an INT8 target, is an error listing the known ones."""
    known = ", ".join(f"{t.name} ({', '.join(t.aliases)})" if t.aliases else t.name for t in TARGETS.values())
    try:
        found = resolve(name)
    except UnknownRuntimeError:
        raise UnknownTargetError(f"unknown INT8 target {name!r}; known targets: {known}") from None
    if found.name not in TARGETS:
        raise UnknownTargetError(f"{name!r} ({found.name}) has no INT8 target in compress/deploy; known targets: {known}")
    return TARGETS[found.name]


def evaluate(path: Path, inputs: np.ndarray, *, device: str = "cpu", threads: int | None = None, batch: int = 64) -> np.ndarray:
    """Logits of an artifact on preprocessed inputs (in its own input format), through the Predictor and its runtime."""
    from ..runtime.predictor import Predictor

    with Predictor(path, threads=threads, device=device) as pred:
        step = pred.max_batch or batch
        return np.concatenate([pred.infer(inputs[i : i + step]) for i in range(0, len(inputs), step)])


__all__ = ["Int8Job", "Int8Target", "TARGETS", "UnknownTargetError", "evaluate", "target"]

"""export(): one entry point over the conversion functions, driven by a table of formats and their options.

Every artifact is built in a staging folder beside its destination, verified against PyTorch on real photos,
and only then moved into place with its `<artifact>.json` sidecar (the main file last), so a crash or a failed check
never leaves a half-written or unverified artifact at the final path. The spec is embedded where the format has a
metadata slot; where it has none (a TensorRT engine) the sidecar records the file's sha256, checked at load.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import EdgeclsError, ExportError
from ..models.pt import embed_pt_spec, save_pt
from ..runtime.artifacts import file_sha256, publish, staging
from ..runtime.runtimes import RUNTIMES, Runtime, for_suffix
from ..runtime.spec import ModelSpec
from .executorch import embed_executorch_spec, torch_to_executorch
from .onnx import DEFAULT_OPSET, embed_onnx_file, torch_to_onnx
from .openvino import embed_openvino_file, onnx_to_openvino
from .selfcheck import embed as embed_selfcheck
from .selfcheck import record as selfcheck_record
from .tensorrt import embed_tensorrt_spec, onnx_to_tensorrt
from .tflite import embed_tflite_spec, torch_to_tflite
from .verify import VerifyReport, verify_artifact


@dataclass(frozen=True)
class Format:
    runtime: Runtime  # the runtime table's row of the runtime that runs it: its format name and suffixes are this one's
    options: dict[str, Any]  # accepted options and their defaults
    build: Callable[..., ModelSpec]  # (model, spec, staged_path, **options) -> artifact spec
    embed: Callable[[Path, ModelSpec], None]  # rewrite the spec stored inside the file
    has_metadata_slot: bool = True  # False: the spec lives only in the sidecar, which then records the file's sha256

    @property
    def name(self) -> str:
        return self.runtime.format

    @property
    def suffixes(self) -> tuple[str, ...]:
        return self.runtime.suffixes

    @property
    def suffix(self) -> str:
        """The suffix export names files with."""
        return self.runtime.suffix


def _build_pt(model, spec, path, **_):
    save_pt(model, spec, path)
    return spec.replace(artifact={"format": "pt", "precision": "fp32"})


def _build_openvino(model, spec, path, *, opset, dynamic_batch, fuse_preprocess, fp16_weights):
    onnx_path = Path(path).with_suffix(".src.onnx")
    onnx_spec = torch_to_onnx(model, spec, onnx_path, opset=opset, dynamic_batch=dynamic_batch, fuse_preprocess=fuse_preprocess)
    try:
        return onnx_to_openvino(onnx_path, onnx_spec, path, fp16_weights=fp16_weights)
    finally:
        onnx_path.unlink(missing_ok=True)


def _build_tensorrt(model, spec, path, *, opset, dynamic_batch, fuse_preprocess, **trt_options):
    from ..errors import require
    from .tensorrt import gpu_facts

    require("tensorrt", RUNTIMES["tensorrt"].extra)  # fail before the ONNX export when the runtime or GPU is missing
    gpu_facts()
    onnx_path = Path(path).with_suffix(".src.onnx")
    onnx_spec = torch_to_onnx(model, spec, onnx_path, opset=opset, dynamic_batch=dynamic_batch, fuse_preprocess=fuse_preprocess)
    try:
        return onnx_to_tensorrt(onnx_path, onnx_spec, path, **trt_options)
    finally:
        onnx_path.unlink(missing_ok=True)


_TRT = {"precision": "fp32", "int8_source": "qdq", "calibration": None, "calibration_cache": None, "batch": None, "workspace_mib": 1024,
        "timing_cache": None, "dla_core": None}
_GRAPH = {"opset": DEFAULT_OPSET, "dynamic_batch": False, "fuse_preprocess": True}
FORMATS: dict[str, Format] = {f.name: f for f in (
    Format(RUNTIMES["torch"], {}, _build_pt, embed_pt_spec),
    Format(RUNTIMES["onnxruntime"], dict(_GRAPH), torch_to_onnx, embed_onnx_file),
    Format(RUNTIMES["openvino"], {**_GRAPH, "fp16_weights": False}, _build_openvino, embed_openvino_file),
    Format(RUNTIMES["litert"], {"precision": "fp32", "calibration": None, "target_cpu": None}, torch_to_tflite, embed_tflite_spec),
    # the plan file (.engine/.trt/.plan) stays native (trtexec/C++ load it): its spec lives only in the sidecar
    Format(RUNTIMES["tensorrt"], {**_GRAPH, **_TRT}, _build_tensorrt, embed_tensorrt_spec, has_metadata_slot=False),
    Format(RUNTIMES["executorch"], {"precision": "fp32", "calibration": None, "keep_float": (), "target_cpu": None},
           torch_to_executorch,
           embed_executorch_spec),
)}


@dataclass(frozen=True)
class ExportResult:
    path: Path
    spec: ModelSpec
    report: VerifyReport | None

    def __str__(self) -> str:
        return f"{self.path} [{self.spec.artifact.get('format')}/{self.spec.artifact.get('precision')}] {self.report or 'not verified'}"


def format_for(path: str | Path, format: str | None) -> Format:
    if format is not None:
        if format not in FORMATS:
            raise ExportError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
        fmt = FORMATS[format]
        if Path(path).suffix.lower() not in fmt.suffixes:
            raise ExportError(f"{format} artifacts end in {' / '.join(fmt.suffixes)}; got {Path(path).name!r}: name the file "
                              f"{Path(path).stem}{fmt.suffix}, or leave format= out")
        return fmt
    found = for_suffix(path)
    if found is None:
        known = ", ".join(s for f in FORMATS.values() for s in f.suffixes)
        raise ExportError(f"cannot tell the format of {Path(path).name!r}; use a suffix of {known}")
    return FORMATS[found.format]


def _staged_predictor(staged: Path, art_spec: ModelSpec):
    from ..runtime.predictor import Predictor

    return Predictor(staged, spec=art_spec)  # on its runtime's default device: a TensorRT engine runs on the GPU only


def export(
    model,
    spec: ModelSpec,
    path: str | os.PathLike,
    *,
    format: str | None = None,
    verify: bool = True,
    images: dict[str, np.ndarray] | None = None,
    **options: Any,
) -> ExportResult:
    """Export `model` (with its spec) to `path`; the format comes from the suffix unless given.

    Options per format are in FORMATS; an option a format does not take is an error, never ignored.
    images: name -> RGB uint8 arrays to verify on (default: scikit-image's real photos).
    """
    final = Path(path)
    fmt = format_for(final, format)
    unknown = sorted(set(options) - set(fmt.options))
    if unknown:
        from ..configfile import did_you_mean

        hints = "".join(did_you_mean(k, fmt.options) for k in unknown)
        raise ExportError(f"{fmt.name} export does not take option(s) {unknown}{hints}; it takes {sorted(fmt.options) or 'none'}")
    opts = {**fmt.options, **options}
    target_cpu = opts.pop("target_cpu", None)
    if target_cpu is not None and "int8" not in str(opts.get("precision")):  # before a conversion, not after it
        raise ExportError(f"target_cpu={target_cpu!r} is for INT8 builds; a {opts.get('precision', 'fp32')} {fmt.name} "
                          "artifact runs the same on every CPU: leave target_cpu out")
    from ..data.samples import sample_images

    with staging(final) as staged:
        art_spec = fmt.build(model, spec, staged, **opts)
        if "target_cpu" in fmt.options:
            art_spec = with_target_cpu(art_spec, target_cpu)
        report = None
        if verify:
            report = verify_artifact(staged, art_spec, model, spec, images or sample_images())
            last = art_spec.lineage[-1]
            art_spec = art_spec.replace(lineage=art_spec.lineage[:-1] + (last.replace(metrics=report.as_dict()),))
            fmt.embed(staged, art_spec)
        # the on-device self-check's reference inputs and answers, published with the artifact (edgecls/selfcheck.py)
        record = selfcheck_record(model, spec, art_spec, images or sample_images(),
                                  artifact=_staged_predictor(staged, art_spec) if verify else None)
        embed_selfcheck(staged, fmt.name, record, art_spec.artifact.get("precision"))
        if not fmt.has_metadata_slot:
            art_spec = art_spec.replace(artifact={**art_spec.artifact, "sha256": file_sha256(staged)})
        publish(staged, final, art_spec)
    return ExportResult(final, art_spec, report)


def with_target_cpu(spec: ModelSpec, target_cpu: str | None) -> ModelSpec:
    """An INT8 artifact's spec with the CPU class it is built for (spec.target_cpu; None: this machine's). XNNPACK's
    int8 kernels (LiteRT, ExecuTorch) widen before they add, so no target needs another form: the class is recorded
    for the Predictor and the reports. Float precisions run the same everywhere: nothing is recorded (export() refuses
    a target_cpu for them)."""
    from ..runtime.cpuinfo import resolve_target_cpu

    if "int8" not in str(spec.artifact.get("precision")):
        return spec
    try:
        resolved = resolve_target_cpu(target_cpu)
    except EdgeclsError as exc:
        raise ExportError(str(exc)) from None
    return spec.replace(target_cpu=resolved)


def int8_executorch(model, spec: ModelSpec, calibration, path: str | os.PathLike, *, keep_float: tuple[str, ...] = (),
                    verify: bool = True, images: dict[str, np.ndarray] | None = None) -> ExportResult:
    """INT8 .pte from the float PyTorch `model`: PT2E (XNNPACKQuantizer) calibrated on `calibration` (RGB uint8 images
    or an (N, H, W, C) uint8 array of preprocessed inputs), verified against `model` with the INT8 tolerances
    (verify.py) and published atomically. keep_float: module names left in float (the accuracy-budget fallback)."""
    return export(model, spec, path, format="executorch", verify=verify, images=images, precision="int8",
                  calibration=calibration, keep_float=tuple(keep_float))


__all__ = ["FORMATS", "ExportResult", "export", "int8_executorch", "with_target_cpu", "onnx_to_openvino", "onnx_to_tensorrt", "torch_to_executorch",
           "torch_to_onnx", "torch_to_tflite"]

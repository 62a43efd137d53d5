"""`edgecls adopt MODEL [--spec-from ORIGINAL]`: take in a model another tool re-saved or transformed after edgecls
exported it (OpenVINO's save_model or NNCF, ONNX Runtime's quantize_static, onnxslim, ai_edge_quantizer, ...).

Such a file either still carries the spec of the graph it was made from (the tools copy metadata: the Predictor then
refuses it with ArtifactChangedError, runtime/graphs.py) or lost it. Adopting it: the spec (its own, or ORIGINAL's)
gets the precision the new graph really has and an "adopt" step in its lineage (which tool, what changed); the
self-check record (the float model's answers on reference inputs) goes with it, judged by the new precision's
tolerances; the new graph's fingerprint is recorded. The result is loaded as a user would load it and self-checked on
this machine before it replaces MODEL (built in a staging folder, published atomically with its sidecar): a model the
tool broke is reported, and nothing is written.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ExportError, ModelFileError, SelfCheckError, SpecError, require
from ..runtime import selfcheck as sc
from ..runtime.artifacts import missing_model_file, publish, read_sidecar, sidecar_path, staging
from ..runtime.runtimes import artifact_files, for_suffix
from ..runtime.spec import SPEC_KEY, ModelSpec
from . import FORMATS
from .selfcheck import embed as embed_record
from .selfcheck import qdq_graph_logits
from .selfcheck import read as read_record

FORMATS_ADOPTED = ("onnx", "openvino", "tflite")  # formats other tools rewrite; .pt, .pte and engines are edgecls's own


@dataclass(frozen=True)
class AdoptResult:
    path: Path
    spec: ModelSpec
    was: str  # the precision the spec said before
    tool: str  # what the file says made it
    spec_source: str  # where the spec came from: the file itself, its sidecar, or --spec-from
    check: sc.SelfCheckResult

    def __str__(self) -> str:
        now = self.spec.artifact.get("precision")
        change = f"{self.was} -> {now}" if self.was != now else now
        return (f"adopted {self.path} [{self.spec.artifact.get('format')}/{change}] made by {self.tool}; spec from "
                f"{self.spec_source}; {self.check}")


def adopt(path: str | Path, spec_from: str | Path | None = None) -> AdoptResult:
    """Re-embed the spec (MODEL's own or `spec_from`'s) for the graph MODEL has now, record its fingerprint and an
    "adopt" lineage step, self-check it here, and replace MODEL (and its sidecar) with the result."""
    path = Path(path)
    if not path.is_file():
        raise missing_model_file(path)
    found = for_suffix(path)
    fmt = found.format if found is not None else None
    if fmt not in FORMATS_ADOPTED:
        raise ExportError(f"edgecls adopt takes the files other tools rewrite: .onnx, .xml (OpenVINO) and .tflite; "
                          f"{path.name} is not one. Re-export it with edgecls instead")
    base, source = _base_spec(path, fmt, spec_from)
    record = read_record(path, fmt) or (_record_of(Path(spec_from)) if spec_from is not None else None)
    facts = inspect(path, fmt)
    was = base.artifact.get("precision", "fp32")
    art = {k: v for k, v in base.artifact.items() if k != "sha256"}
    spec = base.replace(artifact={**art, "format": fmt, "precision": facts["precision"], "tool": facts["tool"]})
    params = {"tool": facts["tool"], "precision": f"{was} -> {facts['precision']}", "spec_from": source, "format": fmt}
    if "overflow_fix" in facts:
        params["overflow_fix"] = facts["overflow_fix"]
    spec = spec.with_step("adopt", params)
    from ..runtime.predictor import Predictor

    with staging(path) as staged:
        for f in artifact_files(path):  # the .xml's .bin too
            shutil.copy2(f, staged.with_suffix(f.suffix))
        FORMATS[fmt].embed(staged, spec)  # the spec and the new graph's fingerprint
        if record is not None:
            embed_record(staged, fmt, _record_for(staged, fmt, record, spec), spec.artifact["precision"])
        try:
            with Predictor(staged) as pred:  # as a user loads it: embedded spec, fingerprint, spec against the model
                check = pred.run_self_check()
        except SpecError as exc:
            raise SpecError(f"the spec from {source} does not fit {path.name}: {exc}") from exc
        if check.status == "fail":
            raise SelfCheckError(f"{path.name} not adopted, nothing written: the model the tool made does not compute "
                                 f"what the spec's model did on this machine's {found.name}: {check}", check)
        publish(staged, path, spec)
    return AdoptResult(path, spec, was, facts["tool"], source, check)


def _base_spec(path: Path, fmt: str, spec_from) -> tuple[ModelSpec, str]:
    if spec_from is not None:
        src = Path(spec_from)
        if not src.is_file():
            raise missing_model_file(src)
        if src.suffix == ".json":
            return ModelSpec.from_json(src.read_bytes()), str(src)
        return _spec_of(src), str(src)
    spec = embedded_spec(path, fmt)
    if spec is not None:
        return spec, f"{path.name} (carried through the tool)"
    side = read_sidecar(path)
    if side is not None:
        return side, sidecar_path(path).name
    raise SpecError(f"{path.name} carries no edgecls spec (the tool that wrote it dropped the metadata) and has no sidecar "
                    f"{sidecar_path(path).name}: name the edgecls file it was made from, `edgecls adopt {path.name} "
                    "--spec-from ORIGINAL` (an exported .onnx/.xml/.tflite/.pt or its .json sidecar)")


def _spec_of(src: Path) -> ModelSpec:
    """The spec an edgecls file carries (read from its metadata, without loading it), else its sidecar's."""
    found = for_suffix(src)
    spec = embedded_spec(src, found.format) if found is not None and found.format in FORMATS_ADOPTED else None
    if spec is None:
        spec = read_sidecar(src)
    if spec is None:
        from ..runtime.predictor import Predictor  # .pt and other formats: as the Predictor reads them

        with Predictor(src) as pred:
            spec = pred.spec
    return spec


def _record_of(src: Path) -> bytes | None:
    found = for_suffix(src)
    if found is None:  # a .json sidecar: the record is beside the artifact it describes
        src, found = src.with_suffix(""), for_suffix(src.with_suffix(""))
    return read_record(src, found.format) if found is not None and src.is_file() else None


def _record_for(staged: Path, fmt: str, record: bytes, spec: ModelSpec) -> bytes:
    """The reference inputs and the float model's answers, for the new precision. A Q/DQ ONNX also gets its graph's
    exact answers (what a correct int8 runtime reproduces), as edgecls's own INT8 files have."""
    precision = spec.artifact["precision"]
    graph = qdq_graph_logits(staged, record, spec) if fmt == "onnx" and precision == "int8" else None
    return sc.with_precision(record, precision, graph)


def embedded_spec(path: Path, fmt: str) -> ModelSpec | None:
    """The spec in a file's own metadata slot, read without a runtime session (which would refuse a changed graph)."""
    text = None
    if fmt == "onnx":
        onnx = require("onnx", "torch")
        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        text = props.get(SPEC_KEY)
    elif fmt == "openvino":
        model = _ov_model(path)
        text = model.get_rt_info([SPEC_KEY]).astype(str) if model.has_rt_info([SPEC_KEY]) else None
    elif fmt == "tflite":
        from ..runtime.backends.litert import read_tflite_metadata

        raw = read_tflite_metadata(path.read_bytes()).get(SPEC_KEY)
        text = raw.decode() if raw is not None else None
    return ModelSpec.from_json(text) if text else None


def _ov_model(path: Path):
    ov = require("openvino", "openvino")
    try:
        return ov.Core().read_model(str(path))
    except Exception as exc:  # noqa: BLE001 - OpenVINO's own RuntimeError text
        raise ModelFileError(f"OpenVINO cannot read {path} ({str(exc).strip()[:300]})") from exc


# --- what the tool made ----------------------------------------------------------------------------------------------
ONNX_INT8_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger",
                 "QLinearAdd", "QLinearMul"}


def inspect(path: Path, fmt: str) -> dict:
    """{"precision": what the graph computes in (fp32, fp16, dynamic_int8, int8), "tool": what wrote it} and, for INT8
    ONNX and OpenVINO, "overflow_fix": "enable" when every int8 weight lies in the 7-bit range (OpenVINO's and ONNX
    Runtime's advice for x86 CPUs without VNNI, whose U8S8 kernels saturate on full-range weights)."""
    return {"onnx": _inspect_onnx, "openvino": _inspect_openvino, "tflite": _inspect_tflite}[fmt](path)


def _weight_range(arrays) -> dict:
    """{"overflow_fix": "enable"} when every int8 weight is in the 7-bit range, else {}: a full range seen in the stored
    weights does not prove the tool did not use another fix (NNCF's OverflowFix.ENABLE stores full-range int8 here)."""
    peak = max((int(np.abs(a.astype(np.int16)).max()) for a in arrays if a.size), default=None)
    return {"overflow_fix": "enable"} if peak is not None and peak <= 64 else {}


def _inspect_onnx(path: Path) -> dict:
    onnx = require("onnx", "torch")
    m = onnx.load(str(path), load_external_data=False)
    ops = {n.op_type for n in m.graph.node}
    if "DynamicQuantizeLinear" in ops:
        precision = "dynamic_int8"
    elif ops & ONNX_INT8_OPS:
        precision = "int8"
    elif any(t.data_type == onnx.TensorProto.FLOAT16 for t in m.graph.initializer):
        precision = "fp16"
    else:
        precision = "fp32"
    tool = " ".join(x for x in (m.producer_name, m.producer_version) if x) or "an unnamed ONNX producer"
    out = {"precision": precision, "tool": tool}
    if precision == "int8":
        from onnx import numpy_helper

        weights = {n.input[0] for n in m.graph.node if n.op_type == "DequantizeLinear"}  # not the zero points
        out |= _weight_range(numpy_helper.to_array(t) for t in m.graph.initializer
                             if t.data_type == onnx.TensorProto.INT8 and t.name in weights)
    return out


def _inspect_openvino(path: Path) -> dict:
    model = _ov_model(path)
    types = {op.get_type_name() for op in model.get_ordered_ops()}
    f16 = any(op.get_type_name() == "Constant" and op.get_output_element_type(0).get_type_name() == "f16"
              for op in model.get_ordered_ops())
    precision = "int8" if types & {"FakeQuantize", "FakeConvert"} else "fp16" if f16 else "fp32"
    version = model.get_rt_info(["Runtime_version"]).astype(str) if model.has_rt_info(["Runtime_version"]) else ""
    tool = ("NNCF + " if model.has_rt_info(["nncf"]) else "") + f"OpenVINO save_model {version}".strip()
    out = {"precision": precision, "tool": tool}
    if precision == "int8":
        out |= _weight_range(op.get_data() for op in model.get_ordered_ops() if _int8_weights(op))
    return out


def _int8_weights(op) -> bool:
    """An i8 Constant decompressed by a Convert: compressed weights (zero points are subtracted after the Convert)."""
    return (op.get_type_name() == "Constant" and op.get_output_element_type(0).get_type_name() == "i8"
            and any(t.get_node().get_type_name() == "Convert" for t in op.output(0).get_target_inputs()))


def _inspect_tflite(path: Path) -> dict:
    schema = require("ai_edge_litert.schema_py_generated", "tflite")
    data = path.read_bytes()
    model = schema.Model.GetRootAs(data, 0)
    g = model.Subgraphs(0)
    T = schema.TensorType
    int8 = (T.INT8, T.UINT8)
    inputs = set(g.InputsAsNumpy().tolist()) if g.InputsLength() else set()
    const_types, act_types = set(), set()  # of the weights; of what the ops compute (the raw uint8 input left out)
    for k in range(g.TensorsLength()):
        t = g.Tensors(k)
        buf = model.Buffers(t.Buffer())
        if buf is not None and (buf.DataLength() or buf.Offset() > 1):  # weights, in the flatbuffer or after it
            const_types.add(t.Type())
        elif k not in inputs:
            act_types.add(t.Type())
    if act_types & set(int8):
        precision = "int8"
    elif const_types & set(int8):
        precision = "dynamic_int8"
    elif T.FLOAT16 in const_types:
        precision = "fp16"
    else:
        precision = "fp32"
    desc = model.Description()
    tool = (desc.decode(errors="replace") if isinstance(desc, bytes) else desc or "").strip() or "a TFLite writer"
    return {"precision": precision, "tool": tool}


__all__ = ["AdoptResult", "FORMATS_ADOPTED", "adopt", "embedded_spec", "inspect"]

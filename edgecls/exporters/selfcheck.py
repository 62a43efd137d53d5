"""Export side of the on-device self-check (edgecls/selfcheck.py): pick the reference inputs, record what the float
model (and the artifact, on this machine) answer, and store the record in the artifact's own slot or beside it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import require
from ..runtime import selfcheck as sc
from ..runtime.spec import ModelSpec
from .verify import reference_pixels, torch_logits


def record(model, model_spec: ModelSpec, art_spec: ModelSpec, images: dict[str, np.ndarray], artifact=None) -> bytes:
    """The N images the float model is most confident about, its logits, and `artifact`'s (a staged Predictor) if given."""
    pixels = reference_pixels(images, model_spec)
    logits = torch_logits(model, model_spec, pixels)
    keep = np.argsort(-sc.softmax(logits).max(1), kind="stable")[: sc.N_INPUTS]
    names = [list(images)[i] for i in keep]
    px = np.stack([pixels[i] for i in keep])
    build = artifact.infer(sc.inputs_from(px, art_spec)) if artifact is not None else None
    return sc.pack(px, logits[keep], art_spec.artifact.get("precision", "fp32"), names, build)


def embed(path: str | Path, fmt: str, blob: bytes, precision: str | None = None) -> Path:
    """Store `blob` in the artifact's slot (onnx, openvino, tflite, pt) or as `<artifact>.check.npz`; returns where.
    precision: the artifact's (an OpenVINO IR with FP16 weights is saved back with FP16 weights)."""
    path = Path(path)
    if fmt == "onnx":
        onnx = require("onnx", "torch")
        m = onnx.load(str(path))
        _set_prop(m, sc.SELFCHECK_KEY, sc.to_text(blob))
        onnx.save(m, str(path))
    elif fmt == "openvino":
        ov = require("openvino", "openvino")
        model = ov.Core().read_model(str(path))
        model.set_rt_info(sc.to_text(blob), [sc.SELFCHECK_KEY])
        tmp = path.with_name("selfcheck." + path.name)
        ov.save_model(model, str(tmp), compress_to_fp16=precision == "fp16")
        del model
        tmp.with_suffix(".bin").replace(path.with_suffix(".bin"))
        tmp.replace(path)
    elif fmt == "tflite":
        fb = require("ai_edge_litert.tools.flatbuffer_utils", "tflite")
        schema = require("ai_edge_litert.schema_py_generated", "tflite")
        m = fb.read_model(str(path))
        m.metadata = [md for md in (m.metadata or []) if _name(md) != sc.SELFCHECK_KEY]
        buf = schema.BufferT()
        buf.data = list(blob)
        m.buffers.append(buf)
        md = schema.MetadataT()
        md.name, md.buffer = sc.SELFCHECK_KEY, len(m.buffers) - 1
        m.metadata.append(md)
        fb.write_model(m, str(path))
    elif fmt == "pt":
        torch = require("torch", "torch")
        from ..models.pt import read_pt
        from ..runtime.artifacts import atomic_write_with

        payload = read_pt(path)
        payload[sc.SELFCHECK_KEY] = torch.frombuffer(bytearray(blob), dtype=torch.uint8)
        atomic_write_with(path, lambda tmp: torch.save(payload, tmp))
    else:  # no metadata slot (TensorRT plan files stay native): a same-stem companion, published with the artifact
        sc.companion_path(path).write_bytes(blob)
        return sc.companion_path(path)
    return path


def read(path: str | Path, fmt: str) -> bytes | None:
    """The record stored with an artifact (its slot or its companion), without loading a runtime session."""
    path = Path(path)
    if fmt == "onnx":
        onnx = require("onnx", "torch")
        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        return sc.from_text(props[sc.SELFCHECK_KEY]) if sc.SELFCHECK_KEY in props else None
    if fmt == "openvino":
        ov = require("openvino", "openvino")
        model = ov.Core().read_model(str(path))
        return sc.from_text(model.get_rt_info([sc.SELFCHECK_KEY]).astype(str)) if model.has_rt_info([sc.SELFCHECK_KEY]) else None
    if fmt == "tflite":
        from ..runtime.backends.litert import read_tflite_metadata

        return read_tflite_metadata(path.read_bytes()).get(sc.SELFCHECK_KEY)
    side = sc.companion_path(path)
    return side.read_bytes() if side.is_file() else None


def qdq_graph_logits(onnx_path: str | Path, blob: bytes, spec: ModelSpec) -> np.ndarray:
    """The Q/DQ ONNX's exact answers for the record's inputs: ONNX Runtime with graph optimizations off runs each
    QuantizeLinear/DequantizeLinear as written and the convolutions in float, so no int8 kernel (or its saturation on
    this CPU) is involved: what the graph means, which a correct int8 runtime reproduces to rounding."""
    ort = require("onnxruntime", "onnx")
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    x = sc.inputs_from(sc.unpack(blob)["pixels"], spec)
    return np.concatenate([sess.run(None, {name: x[i : i + 1]})[0] for i in range(len(x))]).astype(np.float32)


def openvino_graph_logits(xml_path: str | Path, blob: bytes, spec: ModelSpec) -> np.ndarray:
    """An INT8 IR's exact answers for the record's inputs: OpenVINO's CPU plugin with its low-precision transformations
    off (LP_TRANSFORMS_MODE) evaluates each FakeQuantize in float instead of fusing them into int8 kernels, so no int8
    kernel (or its saturation on this CPU) is involved: what the IR means, which int8 kernels that do not saturate
    reproduce to rounding."""
    ov = require("openvino", "openvino")
    compiled = ov.Core().compile_model(str(xml_path), "CPU", {"LP_TRANSFORMS_MODE": False, "INFERENCE_PRECISION_HINT": "f32"})
    x = sc.inputs_from(sc.unpack(blob)["pixels"], spec)
    return np.concatenate([compiled(x[i : i + 1])[0] for i in range(len(x))]).astype(np.float32)


def _set_prop(m, key: str, value: str) -> None:
    for p in m.metadata_props:
        if p.key == key:
            p.value = value
            return
    e = m.metadata_props.add()
    e.key, e.value = key, value


def _name(md) -> str:
    return md.name.decode() if isinstance(md.name, bytes) else md.name

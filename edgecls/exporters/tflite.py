"""PyTorch -> LiteRT (.tflite) with litert-torch (no TensorFlow). Input is uint8 NHWC with the normalization in the
graph (what XNNPACK and phone apps want). The spec travels in the flatbuffer's metadata (name 'edgecls.spec'),
plus the labels as plain text (name 'labels'), readable by any flatbuffer reader."""

from __future__ import annotations

import warnings
from pathlib import Path

from ..errors import ExportError, require
from ..spec import SPEC_KEY, ModelSpec
from .onnx import artifact_input, input_adapter

PRECISIONS = ("fp32", "fp16")


def torch_to_tflite(model, spec: ModelSpec, path: str | Path, *, precision: str = "fp32") -> ModelSpec:
    torch = require("torch", "torch")
    litert_torch = require("litert_torch", "tflite-export")
    if precision not in PRECISIONS:
        raise ExportError(f"tflite precision={precision!r}: choose one of {', '.join(PRECISIONS)} (INT8 comes with compression)")
    inp = artifact_input(spec, fuse_preprocess=True, dynamic_batch=False)
    net = input_adapter(model, spec)
    kwargs = {}
    if precision == "fp16":
        from litert_torch.generative.quantize import quant_recipes

        kwargs["quant_config"] = quant_recipes.full_fp16_recipe()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            converted = litert_torch.convert(net, (torch.zeros(inp.shape, dtype=torch.uint8),), **kwargs)
            converted.export(str(path))
    except Exception as exc:
        raise ExportError(f"litert-torch could not convert {spec.arch}: {type(exc).__name__}: {str(exc)[:400]}") from exc
    version = require("importlib.metadata", "tflite").version("litert-torch")
    out = spec.replace(input=inp, artifact={"format": "tflite", "precision": precision, "litert_torch": version})
    out = out.with_step("export", {"format": "tflite", "precision": precision})
    embed_tflite_spec(path, out)
    return out


def embed_tflite_spec(path: str | Path, spec: ModelSpec) -> None:
    fb = require("ai_edge_litert.tools.flatbuffer_utils", "tflite")
    schema = require("ai_edge_litert.schema_py_generated", "tflite")
    m = fb.read_model(str(path))
    entries = {SPEC_KEY: spec.to_json(indent=None).encode(), "labels": "\n".join(spec.labels).encode()}
    m.metadata = [md for md in (m.metadata or []) if (md.name.decode() if isinstance(md.name, bytes) else md.name) not in entries]
    for name, data in entries.items():
        buf = schema.BufferT()
        buf.data = list(data)
        m.buffers.append(buf)
        md = schema.MetadataT()
        md.name = name
        md.buffer = len(m.buffers) - 1
        m.metadata.append(md)
    fb.write_model(m, str(path))


def read_tflite_metadata(data: bytes) -> dict[str, bytes]:
    """name -> bytes of the flatbuffer's metadata entries (no interpreter needed)."""
    schema = require("ai_edge_litert.schema_py_generated", "tflite")
    model = schema.Model.GetRootAs(data, 0)
    out = {}
    for i in range(model.MetadataLength()):
        md = model.Metadata(i)
        buf = model.Buffers(md.Buffer())
        out[md.Name().decode()] = buf.DataAsNumpy().tobytes() if buf.DataLength() else b""
    return out

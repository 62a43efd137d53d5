"""ONNX -> OpenVINO IR (.xml + .bin), spec in rt_info."""

from __future__ import annotations

from pathlib import Path

from ..errors import ExportError, require
from ..runtime.artifacts import file_sha256
from ..runtime.backends.openvino import WEIGHTS_KEY
from ..runtime.graphs import GRAPH_KEY, openvino_graph_sha256
from ..runtime.spec import SPEC_KEY, ModelSpec


def save_ir(model, path: str | Path, *, compress_to_fp16: bool) -> None:
    """ov.save_model, with the fingerprint of the graph and the .bin's sha256 recorded in the .xml's rt_info (checked
    at load by the backend).

    The .xml and .bin are published by two renames; the checksum ties them, so a crash between the renames (or files
    mixed from two exports) is a clear error at load instead of old topology running new weights; the graph's
    fingerprint tells that from a model another tool re-saved (runtime/graphs.py). OpenVINO writes the .bin
    deterministically, so the second save, which adds both to the .xml, writes the same weights again. The fingerprint
    is taken from the saved model as read back, which is what the backend will see.
    """
    ov = require("openvino", "openvino")
    ov.save_model(model, str(path), compress_to_fp16=compress_to_fp16)
    weights = Path(path).with_suffix(".bin")
    digest = file_sha256(weights)
    graph = openvino_graph_sha256(ov.Core().read_model(str(path)))
    model.set_rt_info(digest, [WEIGHTS_KEY])
    model.set_rt_info(graph, [GRAPH_KEY])
    ov.save_model(model, str(path), compress_to_fp16=compress_to_fp16)
    if file_sha256(weights) != digest or openvino_graph_sha256(ov.Core().read_model(str(path))) != graph:
        raise ExportError(f"OpenVINO wrote a different model for the same one twice ({Path(path).name}); cannot tie the "
                          ".xml to its .bin. Report this with your OpenVINO version")


def onnx_to_openvino(onnx_path: str | Path, spec: ModelSpec, path: str | Path, *, fp16_weights: bool = False) -> ModelSpec:
    """Convert the ONNX file (with its fused preprocessing, if any) and save the IR at `path` (.xml)."""
    ov = require("openvino", "openvino")
    try:
        model = ov.convert_model(str(onnx_path))
    except Exception as exc:
        raise ExportError(f"OpenVINO could not convert {onnx_path}: {str(exc)[:400]}") from exc
    precision = "fp16" if fp16_weights else "fp32"
    out = spec.replace(artifact={"format": "openvino", "precision": precision, "openvino": ov.get_version()})
    out = out.with_step("export", {"format": "openvino", "fp16_weights": fp16_weights})
    model.set_rt_info(out.to_json(indent=None), [SPEC_KEY])
    save_ir(model, path, compress_to_fp16=fp16_weights)
    return out


def embed_openvino_file(path: str | Path, spec: ModelSpec) -> None:
    ov = require("openvino", "openvino")
    model = ov.Core().read_model(str(path))
    model.set_rt_info(spec.to_json(indent=None), [SPEC_KEY])
    compress = spec.artifact.get("precision") == "fp16"
    tmp = Path(path).with_name("embed." + Path(path).name)
    save_ir(model, tmp, compress_to_fp16=compress)
    del model
    tmp.with_suffix(".bin").replace(Path(path).with_suffix(".bin"))
    tmp.replace(path)

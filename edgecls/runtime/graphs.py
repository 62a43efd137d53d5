"""What identifies an artifact's graph, so that a file another tool changed after edgecls exported it is told apart
from the one whose spec it still carries.

OpenVINO's save_model, NNCF, ONNX Runtime's quantize_static, onnxslim and ai_edge_quantizer all copy a model's
metadata into what they write: edgecls's spec (precision, verification figures, self-check record) then describes a
graph that is no longer there. Export records a fingerprint of the graph it verified under GRAPH_KEY in the format's
own metadata slot; a backend that finds the key recomputes the fingerprint at load and, when they differ, raises
ArtifactChangedError naming `edgecls adopt`, which re-embeds the spec for the new graph. Re-saving without a change
(onnx.load + onnx.save, OpenVINO save_model with compress_to_fp16=False, a flatbuffer read/write) keeps the fingerprint.

Fingerprints cover what a tool changes and nothing our own metadata rewrites touch:
  ONNX      sha256 of the serialized GraphProto (nodes, weights, inputs, outputs), read out of the file's top-level
            protobuf fields without the onnx package (the device has only onnxruntime): ~20 ms for a 19 MB model.
  OpenVINO  sha256 of every op's type and output element types and shapes, in topological order; the weights are the
            .bin, whose own sha256 the .xml records too (WEIGHTS_KEY, backends/openvino.py).
  TFLite    sha256 of the operator codes, each operator's inputs and outputs, and every tensor's type, shape,
            quantization and weights of subgraph 0 (metadata buffers excluded).
"""

from __future__ import annotations

import hashlib
import mmap
from pathlib import Path

from ..errors import ArtifactChangedError

GRAPH_KEY = "edgecls.graph_sha256"
_ONNX_GRAPH_FIELD = 7  # ModelProto.graph


def _varint(data, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def onnx_graph_span(data) -> tuple[int, int] | None:
    """(start, end) of the GraphProto's bytes in a serialized ModelProto, by walking its top-level fields."""
    i, n = 0, len(data)
    while i < n:
        key, i = _varint(data, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, i = _varint(data, i)
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        elif wire == 2:
            length, i = _varint(data, i)
            if field == _ONNX_GRAPH_FIELD:
                return i, i + length
            i += length
        else:  # groups (3, 4) are not in ONNX's schema: not an ONNX model
            return None
    return None


def onnx_graph_sha256(path: str | Path) -> str | None:
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        view = memoryview(mm)
        try:
            span = onnx_graph_span(view)
            return None if span is None else hashlib.sha256(view[span[0] : span[1]]).hexdigest()
        except IndexError:  # truncated: the runtime's own load error says so
            return None
        finally:
            view.release()


def openvino_graph_sha256(model) -> str:
    h = hashlib.sha256()
    for op in model.get_ordered_ops():
        h.update(op.get_type_name().encode())
        for i in range(op.get_output_size()):
            h.update(f"|{op.get_output_element_type(i).get_type_name()}{op.get_output_partial_shape(i)}".encode())
        h.update(b";")
    return h.hexdigest()


def _raw(array) -> bytes:
    """A flatbuffer vector as bytes (its Python accessors return 0, not an empty array, for an absent vector)."""
    return array.tobytes() if hasattr(array, "tobytes") else b""


def tflite_graph_sha256(data: bytes, schema) -> str:
    """`schema`: ai_edge_litert.schema_py_generated (the caller has it loaded)."""
    model = schema.Model.GetRootAs(data, 0)
    h = hashlib.sha256()
    codes = []
    for i in range(model.OperatorCodesLength()):
        c = model.OperatorCodes(i)
        codes.append(max(c.BuiltinCode(), c.DeprecatedBuiltinCode()))
    g = model.Subgraphs(0)
    for j in range(g.OperatorsLength()):
        op = g.Operators(j)
        h.update(f"op{codes[op.OpcodeIndex()]}".encode())
        h.update(_raw(op.InputsAsNumpy()) + b"/" + _raw(op.OutputsAsNumpy()))
    for k in range(g.TensorsLength()):
        t = g.Tensors(k)
        h.update(f"t{t.Type()}".encode())
        h.update(_raw(t.ShapeAsNumpy()))
        q = t.Quantization()
        if q is not None:
            h.update(_raw(q.ScaleAsNumpy()) + b"/" + _raw(q.ZeroPointAsNumpy()))
        buf = model.Buffers(t.Buffer())
        if buf is not None and buf.DataLength():
            h.update(buf.DataAsNumpy())  # a view of the flatbuffer: hashed in place
        elif buf is not None and buf.Offset() > 1:  # weights stored after the flatbuffer (models over 2 GB)
            h.update(data[buf.Offset() : buf.Offset() + buf.Size()])
    return h.hexdigest()


def changed_error(path: str | Path, spec_kept: bool = True) -> ArtifactChangedError:
    """spec_kept: the tool copied the spec along (else it kept only smaller entries, as ai_edge_quantizer does)."""
    name = Path(path).name
    what = ("its graph is not the one its embedded spec was verified for, so the spec's precision, figures and "
            f"self-check no longer describe it. Adopt it: `edgecls adopt {name}`" if spec_kept else
            "its graph is not the one edgecls verified, and the tool did not keep the spec. Adopt it with the spec of "
            f"the file it was made from: `edgecls adopt {name} --spec-from ORIGINAL`")
    return ArtifactChangedError(
        f"{name} was changed after edgecls exported it (re-saved or transformed by another tool, e.g. OpenVINO "
        f"save_model with FP16 weights, NNCF, quantize_static, onnxslim, ai_edge_quantizer): {what} (re-embeds the "
        "spec for the new graph, records the step, runs the self-check), or re-export the model with edgecls"
    )


__all__ = ["GRAPH_KEY", "changed_error", "onnx_graph_sha256", "onnx_graph_span", "openvino_graph_sha256",
           "tflite_graph_sha256"]

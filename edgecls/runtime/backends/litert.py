"""LiteRT backend (.tflite) on ai_edge_litert's Interpreter (tflite_runtime as a fallback), XNNPACK on CPU.

Quantized inputs/outputs are (de)quantized with the file's own scale and zero-point. An Interpreter is not
thread-safe, so calls on one Predictor are serialized.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from ...errors import BackendUnavailableError, InputError, ModelFileError, require
from ..artifacts import missing_model_file
from ..graphs import GRAPH_KEY, changed_error, tflite_graph_sha256
from ..runtimes import RUNTIMES
from ..selfcheck import SELFCHECK_KEY
from ..spec import SPEC_KEY, ModelSpec
from . import Session

EXTRA = RUNTIMES["litert"].extra


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError as exc:
            raise BackendUnavailableError(f"no LiteRT runtime installed: pip install 'edgecls[{EXTRA}]'") from exc
    return Interpreter


class LiteRTSession(Session):
    def __init__(self, path, device: str = "cpu", threads: int | None = None):
        p = Path(path)
        if not p.is_file():
            raise missing_model_file(p)
        if device != "cpu":
            raise InputError(f"device={device!r} is not supported by the LiteRT backend here; use device='cpu'")
        data = p.read_bytes()
        if len(data) < 8 or data[4:8] != b"TFL3":
            raise ModelFileError(f"{p} is not a LiteRT/TFLite flatbuffer (no TFL3 identifier); the file is corrupt or of "
                                 "another kind: re-export it with `edgecls export -f tflite`")
        Interpreter = _interpreter_class()
        try:
            self._it = Interpreter(model_content=data, num_threads=threads or None)
            self._it.allocate_tensors()
        except Exception as exc:  # noqa: BLE001 - the runtime raises ValueError/RuntimeError with its own text
            raise ModelFileError(f"LiteRT cannot load {p} ({type(exc).__name__}: {str(exc)[:300]}); re-export it") from exc
        try:
            meta = read_tflite_metadata(data)
        except Exception:  # noqa: BLE001 - a foreign file with odd metadata: treat as having no spec
            meta = {}
        if GRAPH_KEY in meta and tflite_graph_sha256(data, require("ai_edge_litert.schema_py_generated", EXTRA)) != \
                meta[GRAPH_KEY].decode(errors="replace"):
            raise changed_error(p, spec_kept=bool(meta.get(SPEC_KEY)))
        # an entry a tool emptied (ai_edge_quantizer keeps the names, not the data) is no entry
        self.embedded_spec = ModelSpec.from_json(meta[SPEC_KEY]) if meta.get(SPEC_KEY) else None
        self.selfcheck_blob = meta.get(SELFCHECK_KEY) or None
        self._in, self._out = self._it.get_input_details()[0], self._it.get_output_details()[0]
        self.input_shape = tuple(int(d) for d in self._in["shape"])
        self.num_classes = int(self._out["shape"][-1])
        self.max_batch = self.input_shape[0]
        dtype = np.dtype(self._in["dtype"]).name
        scale = self._in.get("quantization", (0.0, 0))[0]
        # a quantized integer input also takes float batches: run() quantizes them with the file's scale/zero-point
        self.input_dtypes = (dtype, "float32") if dtype in ("int8", "uint8") and scale else (dtype,)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._it = None

    def run(self, batch: np.ndarray) -> np.ndarray:
        x = batch
        scale, zero = self._in.get("quantization", (0.0, 0))
        if self._in["dtype"] in (np.int8, np.uint8) and scale and batch.dtype.kind == "f":
            info = np.iinfo(self._in["dtype"])
            x = np.clip(np.round(batch / scale + zero), info.min, info.max).astype(self._in["dtype"])
        with self._lock:
            self._it.set_tensor(self._in["index"], x)
            self._it.invoke()
            y = self._it.get_tensor(self._out["index"])  # a copy
        oscale, ozero = self._out.get("quantization", (0.0, 0))
        if y.dtype.kind in "iu" and oscale:
            y = (y.astype(np.float32) - ozero) * oscale
        return y


def open(path, *, device: str, threads: int | None, spec: ModelSpec | None, cache_dir: str | None) -> LiteRTSession:  # noqa: A001
    return LiteRTSession(path, device, threads)


def read_tflite_metadata(data: bytes) -> dict[str, bytes]:
    """name -> bytes of the flatbuffer's metadata entries (no interpreter needed; export embeds the spec there)."""
    schema = require("ai_edge_litert.schema_py_generated", EXTRA)
    model = schema.Model.GetRootAs(data, 0)
    out = {}
    for i in range(model.MetadataLength()):
        md = model.Metadata(i)
        out[md.Name().decode()] = buffer_bytes(model, md.Buffer(), data)
    return out


def buffer_bytes(model, index: int, data: bytes) -> bytes:
    """A flatbuffer buffer's bytes, inside the flatbuffer or stored after it (offset/size: how ai_edge_quantizer and
    the converter write large buffers)."""
    buf = model.Buffers(index)
    if buf is None:
        return b""
    if buf.DataLength():
        return buf.DataAsNumpy().tobytes()
    return data[buf.Offset() : buf.Offset() + buf.Size()] if buf.Offset() > 1 else b""

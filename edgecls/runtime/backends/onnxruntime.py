"""ONNX Runtime backend (.onnx). The spec lives in the model's metadata_props under 'edgecls.spec'."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import BackendUnavailableError, InputError, ModelFileError, require
from ..artifacts import missing_model_file
from ..cpuinfo import int8_saturates
from ..graphs import GRAPH_KEY, changed_error, onnx_graph_sha256
from ..runtimes import RUNTIMES
from ..selfcheck import SELFCHECK_KEY, from_text
from ..spec import SPEC_KEY, ModelSpec
from . import Session

EXTRA = RUNTIMES["onnxruntime"].extra

_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(uint8)": "uint8", "tensor(int8)": "int8"}
_PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}


def _session(ort, path, device: str, threads: int | None, spinning: bool = False):
    p = Path(path)
    if not p.is_file():
        raise missing_model_file(p)
    if device not in _PROVIDERS:
        raise InputError(f"device={device!r} is not valid for onnxruntime; choose one of {', '.join(_PROVIDERS)}")
    provider = _PROVIDERS[device]
    available = ort.get_available_providers()
    if provider not in available:
        raise BackendUnavailableError(
            f"onnxruntime here has no {provider} (available: {', '.join(available)}); use device='cpu', or install "
            "ONNX Runtime's GPU build in place of the CPU one: pip uninstall onnxruntime && pip install 'edgecls[onnx-gpu]'"
        )
    so = ort.SessionOptions()
    so.log_severity_level = 3
    # ORT's worker threads busy-wait after each op and each run by default. Between two runs of an app that
    # does anything else (decode, preprocess, draw) they burn the cores that work needs: on 2 shared cores,
    # EfficientNet-Lite0 went from 18-21 ms to 10 ms model-only and 23 ms to 11 ms end-to-end with spinning off.
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "1" if spinning else "0")
    if threads:
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
    if device == "cpu" and int8_saturates():
        # x86 without VNNI: the U8S8 kernels add pairs of uint8 x int8 products in int16 and saturate (cpuinfo). This
        # turns on ORT's own remedy: int8 weights outside [-64, 63] run on U8U8 kernels (its Avx2WeightS8ToU8
        # transformer); 7-bit weights and float graphs are left as they are. So an INT8 file built for a VNNI or ARM
        # CPU computes its graph as written here too.
        so.add_session_config_entry("session.x64quantprecision", "1")
    try:
        return ort.InferenceSession(str(p), sess_options=so, providers=[provider])
    except Exception as exc:  # ORT raises its own Fail/InvalidProtobuf/... types
        raise ModelFileError(
            f"onnxruntime cannot load {p} ({type(exc).__name__}: {str(exc)[:300]}); the file is truncated, "
            "corrupt or not an ONNX model. Re-export it with `edgecls export`"
        ) from exc


class OrtSession(Session):
    def __init__(self, path, device: str = "cpu", threads: int | None = None, spinning: bool = False):
        ort = require("onnxruntime", EXTRA)
        self._sess = _session(ort, path, device, threads, spinning)
        meta = self._sess.get_modelmeta().custom_metadata_map
        if GRAPH_KEY in meta and onnx_graph_sha256(path) != meta[GRAPH_KEY]:
            raise changed_error(path, spec_kept=bool(meta.get(SPEC_KEY)))
        text = meta.get(SPEC_KEY)
        self.embedded_spec = ModelSpec.from_json(text) if text else None
        self.selfcheck_blob = from_text(meta[SELFCHECK_KEY]) if SELFCHECK_KEY in meta else None
        inp, out = self._sess.get_inputs()[0], self._sess.get_outputs()[0]
        self._in_name, self._out_name = inp.name, out.name
        self.input_shape = tuple(inp.shape)
        last = out.shape[-1] if out.shape else None
        self.num_classes = last if isinstance(last, int) else None
        first = self.input_shape[0] if self.input_shape else None
        self.max_batch = first if isinstance(first, int) else None
        self.providers = self._sess.get_providers()
        self.input_dtypes = (_ORT_TYPES.get(inp.type, inp.type),)
        self.device = device

    def close(self) -> None:
        self._sess = None  # the InferenceSession owns the weights and the thread pools: dropping it frees them

    def run(self, batch: np.ndarray) -> np.ndarray:
        # ORT's InferenceSession.run is thread-safe: no lock needed
        return self._sess.run([self._out_name], {self._in_name: batch})[0]


def open(path, *, device: str, threads: int | None, spec: ModelSpec | None, cache_dir: str | None) -> OrtSession:  # noqa: A001
    return OrtSession(path, device, threads)

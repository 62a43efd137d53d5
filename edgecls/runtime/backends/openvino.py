"""OpenVINO backend (.xml + .bin IR). The spec lives in the IR's rt_info under 'edgecls.spec'."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from ...errors import InputError, ModelFileError, require
from ..artifacts import file_sha256, missing_model_file
from ..graphs import GRAPH_KEY, changed_error, openvino_graph_sha256
from ..runtimes import RUNTIMES
from ..selfcheck import SELFCHECK_KEY, from_text
from ..spec import SPEC_KEY, ModelSpec
from . import Session

EXTRA = RUNTIMES["openvino"].extra
WEIGHTS_KEY = "edgecls.weights_sha256"  # rt_info key: sha256 of the .bin the .xml was written with
_OV_TYPES = {"f32": "float32", "f16": "float16", "u8": "uint8", "i8": "int8"}
_DEVICES = {"cpu": "CPU", "gpu": "GPU", "npu": "NPU", "auto": "AUTO"}


def _read(path):
    ov = require("openvino", EXTRA)
    p = Path(path)
    if not p.is_file():
        raise missing_model_file(p)
    if not p.with_suffix(".bin").is_file():
        raise ModelFileError(f"{p} needs its weights file {p.with_suffix('.bin').name} beside it; copy both files")
    try:
        core = ov.Core()
        return core, core.read_model(str(p))
    except Exception as exc:  # OpenVINO raises RuntimeError with its own text
        raise ModelFileError(
            f"OpenVINO cannot read {p} ({str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__}); "
            "the .xml/.bin pair is truncated, corrupt or mismatched. Re-export it with `edgecls export`"
        ) from exc


def check_weights(model, path) -> None:
    """The .xml records the fingerprint of its graph and its .bin's checksum. A graph that differs was re-saved or
    transformed by another tool (OpenVINO's save_model with FP16 weights, NNCF): ArtifactChangedError, which names
    `edgecls adopt`. The same graph with another .bin is a pair from two exports (the .xml and .bin are published by
    two renames: a crash between them, or files copied from different builds): refused instead of run."""
    name = Path(path).name
    graph_known = model.has_rt_info([GRAPH_KEY])
    if graph_known and openvino_graph_sha256(model) != model.get_rt_info([GRAPH_KEY]).astype(str):
        raise changed_error(path, spec_kept=model.has_rt_info([SPEC_KEY]))
    if not model.has_rt_info([WEIGHTS_KEY]):
        return  # an IR not written by edgecls (or by edgecls < 0.2): nothing to check against
    bin_path = Path(path).with_suffix(".bin")
    if file_sha256(bin_path) != model.get_rt_info([WEIGHTS_KEY]).astype(str):
        why = ("its graph is the one exported, so the pair comes from two exports, e.g. one interrupted between its two "
               "renames" if graph_known else "the pair comes from two exports (e.g. one interrupted between its two "
               "renames), or a tool re-saved the model (OpenVINO save_model, NNCF)")
        raise ModelFileError(
            f"{bin_path.name} is not the weights file {name} was written with (checksum mismatch): {why}. Re-export the "
            f"model, or copy the .xml and .bin of one export together; if a tool re-saved this pair on purpose, adopt it: "
            f"`edgecls adopt {name}`"
        )


class OvSession(Session):
    def __init__(self, path, device: str = "cpu", threads: int | None = None, cache_dir: str | None = None, inference_precision: str = "f32"):
        core, model = _read(path)
        check_weights(model, path)
        self.embedded_spec = ModelSpec.from_json(model.get_rt_info([SPEC_KEY]).astype(str)) if model.has_rt_info([SPEC_KEY]) else None
        has = model.has_rt_info([SELFCHECK_KEY])
        self.selfcheck_blob = from_text(model.get_rt_info([SELFCHECK_KEY]).astype(str)) if has else None
        if device not in _DEVICES:
            raise InputError(f"device={device!r} is not valid for OpenVINO; choose one of {', '.join(_DEVICES)}")
        # f32: on CPUs with bf16/AMX OpenVINO otherwise computes in bf16 and silently moves logits ~3%;
        # what was verified at export is what runs
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": inference_precision}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        if cache_dir:  # the compiled blob is reused by the next process: compile 180 -> 85 ms for Lite0 on 2 cores
            core.set_property({"CACHE_DIR": str(cache_dir)})
        try:
            self._compiled = core.compile_model(model, _DEVICES[device], config)
        except Exception as exc:
            raise ModelFileError(f"OpenVINO cannot compile {path} for {_DEVICES[device]}: {str(exc)[:300]}") from exc
        ps = model.inputs[0].get_partial_shape()
        self.input_shape = tuple(d.get_length() if d.is_static else "?" for d in ps)
        out = model.outputs[0].get_partial_shape()
        last = out[len(out) - 1]  # OpenVINO before 2024.2 takes no negative index
        self.num_classes = last.get_length() if last.is_static else None
        self.max_batch = self.input_shape[0] if isinstance(self.input_shape[0], int) else None
        et = model.inputs[0].get_element_type().get_type_name()
        self.input_dtypes = (_OV_TYPES.get(et, et),)
        self.device = device
        self.loaded_from_cache = bool(self._compiled.get_property("LOADED_FROM_CACHE")) if cache_dir else False
        self._local = threading.local()  # an InferRequest is not thread-safe: one per calling thread

    def close(self) -> None:
        self._local = threading.local()  # this thread's request; other threads' go with the session object
        self._compiled = None

    def _request(self):
        return self._state()[0]

    def _state(self) -> list:
        """[infer request, numpy view of its input tensor, that view's shape] of the calling thread."""
        st = getattr(self._local, "st", None)
        if st is None:
            req = self._compiled.create_infer_request()
            view = req.get_input_tensor(0).data
            st = self._local.st = [req, view, view.shape]
        return st

    def run(self, batch: np.ndarray) -> np.ndarray:
        # The leanest public path (measured against the runtime's own per-request latency, which is what
        # benchmark_app reports): copy the batch into the request's own input tensor through a cached view
        # (wrapping the array as a new shared tensor makes the plugin re-bind memory and costs more),
        # start_async() + wait() (infer() also builds a dict of every output), then copy the one output out,
        # since its memory is reused by the next call.
        st = self._state()
        req = st[0]
        if batch.shape != st[2]:  # a dynamic-batch model, or a new batch size
            tensor = req.get_input_tensor(0)
            tensor.shape = batch.shape
            st[1] = tensor.data
            st[2] = st[1].shape
        st[1][...] = batch
        req.start_async()
        req.wait()
        return req.get_output_tensor(0).data.copy()


def open(path, *, device: str, threads: int | None, spec: ModelSpec | None, cache_dir: str | None) -> OvSession:  # noqa: A001
    return OvSession(path, device, threads, cache_dir=cache_dir)

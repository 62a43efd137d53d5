"""TensorRT backend (.engine / .trt / .plan): native plan files, spec in the `.json` sidecar (TensorRT version, GPU,
compute capability).

An engine only runs on the TensorRT version and GPU architecture it was built for; deserializing a foreign one
fails deep inside TensorRT or, worse, crashes. So the sidecar's record is checked first and a mismatch is a
ModelFileError that says to rebuild. No torch: buffers, the stream and CUDA graphs come from cuda-python
(backends/cuda_rt.py). Host staging buffers are pinned; copy-in, the engine and copy-out run on one stream; buffers
are made once per batch size and reused, and each batch size's copy-in/run/copy-out is captured once as a CUDA graph
and replayed (one launch instead of one per kernel: Lite0 is ~100 kernels), falling back to plain enqueue when an
engine cannot be captured.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from ...errors import InputError, ModelFileError, require
from ..artifacts import missing_model_file
from ..runtimes import RUNTIMES
from ..spec import ModelSpec
from . import Session

EXTRA = RUNTIMES["tensorrt"].extra


def cuda_index(device: str) -> int:
    if device in ("cuda", "gpu"):
        return 0
    if device.startswith("cuda:") and device[5:].isdigit():
        return int(device[5:])
    raise InputError(f"device={device!r} is not valid for TensorRT, which runs on the GPU; use device='cuda' or 'cuda:N'")


def check_built_here(trt_version: str, facts: dict, recorded: dict, path: Path) -> None:
    """Raise ModelFileError when the engine was built for another TensorRT version or GPU architecture."""
    here = {"tensorrt": trt_version, "compute_capability": facts["compute_capability"]}
    diff = [k for k in here if recorded.get(k) is not None and str(recorded[k]) != here[k]]
    if diff:
        raise ModelFileError(
            f"{path.name} was built for TensorRT {recorded.get('tensorrt')} on {recorded.get('gpu', '?')} (compute capability "
            f"{recorded.get('compute_capability')}); this machine has TensorRT {here['tensorrt']} on "
            f"{facts['gpu']} ({here['compute_capability']}). Engines only run where they were built: "
            "rebuild it here with `edgecls.export(model, spec, 'model.engine')` or trtexec from the ONNX"
        )


class EngineIO:
    """An engine's one input and one output, and binding a batch size to a context: TensorRT calls only, no memory,
    so the CPU tests run it against the fake tensorrt module."""

    def __init__(self, trt, engine, path: Path):
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelFileError(f"{path.name} has inputs {inputs} and outputs {outputs}; edgecls runs classifiers (one of each)")
        self.input, self.output = inputs[0], outputs[0]
        self.dtypes = {n: np.dtype(trt.nptype(engine.get_tensor_dtype(n))) for n in (self.input, self.output)}
        shape = tuple(engine.get_tensor_shape(self.input))
        self.shape = tuple("?" if d < 0 else int(d) for d in shape)
        last = engine.get_tensor_shape(self.output)[-1]
        self.num_classes = int(last) if last > 0 else None
        self.dynamic = shape[0] < 0
        if self.dynamic:
            lo, _, hi = engine.get_tensor_profile_shape(self.input, 0)
            self.batch_range = (int(lo[0]), int(hi[0]))
        else:
            self.batch_range = (shape[0], shape[0])

    def bind(self, context, n: int) -> tuple[int, ...]:
        """Set batch `n` on `context` (dynamic engines) and return the output shape it then has."""
        if self.dynamic:
            want = (n, *self.shape[1:])
            if not context.set_input_shape(self.input, want):  # False: outside the profile; the context keeps the old shape
                lo, hi = self.batch_range
                raise InputError(f"TensorRT refused input shape {want}: this engine's profile takes batches {lo}..{hi}")
        elif n != self.shape[0]:
            raise InputError(f"this engine runs batches of exactly {self.shape[0]}; got {n}")
        out = tuple(int(d) for d in context.get_tensor_shape(self.output))
        if any(d < 0 for d in out):
            raise ModelFileError(f"TensorRT left the output shape {out} unresolved after setting batch {n}")
        return out


class _Slot:
    """Buffers (and the CUDA graph, once captured) for one batch size."""

    def __init__(self, cuda, in_shape, out_shape, dtypes):
        din, dout = dtypes
        self.host_in, self.host_out = cuda.PinnedArray(in_shape, din), cuda.PinnedArray(out_shape, dout)
        self.dev_in, self.dev_out = cuda.DeviceBuffer(self.host_in.nbytes), cuda.DeviceBuffer(self.host_out.nbytes)
        self.graph = None


class TensorRTSession(Session):
    def __init__(self, path, device: str = "cuda", threads: int | None = None, spec: ModelSpec | None = None,
                 cuda_graph: bool = True):
        trt = require("tensorrt", EXTRA)
        from . import cuda_rt as cuda

        p = Path(path)
        if not p.is_file():
            raise missing_model_file(p)
        self._cuda, self._index = cuda, cuda_index(device)
        facts = cuda.device_facts(self._index)
        from ..artifacts import read_sidecar

        side = spec or read_sidecar(p)
        check_built_here(trt.__version__, facts, side.artifact if side else {}, p)
        cuda.set_device(self._index)
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
        self._engine = self._runtime.deserialize_cuda_engine(p.read_bytes())
        if self._engine is None:
            raise ModelFileError(
                f"TensorRT {trt.__version__} cannot load {p}: truncated, corrupt, or built by another TensorRT/GPU "
                "(no sidecar record to tell which). Rebuild it here"
            )
        self._context = self._engine.create_execution_context()
        self._io = EngineIO(trt, self._engine, p)
        self._stream = cuda.Stream()
        self.device = f"cuda:{self._index}"
        self.input_shape = self._io.shape
        self.num_classes = self._io.num_classes
        # embedded_spec and selfcheck_blob stay None: a plan file has no metadata slot (the sidecar and companion have them)
        # a dynamic engine takes any batch up to its profile's max: run() splits, so the Predictor need not
        self._limit = self._io.batch_range[1]
        self.max_batch = None if self._io.dynamic else self._io.shape[0]
        self.input_dtypes = (self._io.dtypes[self._io.input].name,)
        self.cuda_graph = bool(cuda_graph)
        self.graph_error: str | None = None  # why CUDA graphs were turned off, if they were
        self._slots: dict[int, _Slot] = {}
        self._bound: int | None = None
        self._lock = threading.Lock()  # one execution context: calls are serialized

    def _slot(self, n: int) -> _Slot:
        if n not in self._slots:
            out_shape = self._io.bind(self._context, n)
            self._bound = n
            slot = _Slot(self._cuda, (n, *self.input_shape[1:]), out_shape, (self._io.dtypes[self._io.input], self._io.dtypes[self._io.output]))
            self._slots[n] = slot
        return self._slots[n]

    def _enqueue(self, slot: _Slot) -> None:
        ctx, s = self._context, self._stream
        s.h2d(slot.dev_in, slot.host_in)
        if not (ctx.set_tensor_address(self._io.input, slot.dev_in.ptr) and ctx.set_tensor_address(self._io.output, slot.dev_out.ptr)):
            raise RuntimeError("TensorRT set_tensor_address failed (see the TensorRT log)")
        if not ctx.execute_async_v3(s.ptr):
            raise RuntimeError("TensorRT execute_async_v3 failed (see the TensorRT log)")
        s.d2h(slot.host_out, slot.dev_out)

    def _run_chunk(self, x: np.ndarray) -> np.ndarray:
        n = len(x)
        slot = self._slot(n)
        if self._bound != n:
            self._io.bind(self._context, n)
            self._bound = n
        slot.host_in.array[...] = x
        if slot.graph is not None:
            slot.graph.launch(self._stream)
        else:
            self._enqueue(slot)  # the first call of a shape also lets TensorRT finish its lazy setup before capture
            self._stream.synchronize()
            out = slot.host_out.array.astype(np.float32)
            if self.cuda_graph:
                self._capture(slot)
            return out
        self._stream.synchronize()
        return slot.host_out.array.astype(np.float32)  # a copy: the pinned buffer is reused by the next call

    def _capture(self, slot: _Slot) -> None:
        try:
            self._stream.begin_capture()
            try:
                self._enqueue(slot)
            finally:
                graph = self._stream.end_capture()
            slot.graph = graph
        except RuntimeError as exc:  # an engine TensorRT cannot capture (e.g. data-dependent shapes): plain enqueue
            self.cuda_graph, self.graph_error = False, str(exc)

    def run(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=self._io.dtypes[self._io.input])
        with self._lock:
            return np.concatenate([self._run_chunk(x[i : i + self._limit]) for i in range(0, len(x), self._limit)])

    def close(self) -> None:
        with self._lock:  # a run in flight finishes first: these are its buffers
            self._slots = {}  # each slot's graph and buffers free themselves as the last reference goes
            # TensorRT wants a context released before its engine, and the engine before its runtime
            self._context = None
            self._engine = None
            self._runtime = None
            self._stream = None


def open(path, *, device: str, threads: int | None, spec: ModelSpec | None, cache_dir: str | None) -> TensorRTSession:  # noqa: A001
    return TensorRTSession(path, device, threads, spec)

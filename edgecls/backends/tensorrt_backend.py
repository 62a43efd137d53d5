"""TensorRT backend (.engine): native plan files, spec in the `.json` sidecar (TensorRT version, GPU, compute capability).

An engine only runs on the TensorRT version and GPU architecture it was built for; deserializing a foreign one
fails deep inside TensorRT or, worse, crashes. So the sidecar's record is checked first and a mismatch is a
ModelFileError that says to rebuild. Device memory comes from torch (CUDA tensors), host staging buffers are
pinned, copies and the launch run on one CUDA stream, and buffers are made once per batch size and reused.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from ..errors import BackendUnavailableError, ModelFileError, require
from ..spec import ModelSpec

from . import TENSORRT_SUFFIXES

NAME, SUFFIXES, EXTRA = "tensorrt", TENSORRT_SUFFIXES, "tensorrt"


def _cuda_index(torch, device: str) -> int:
    if device in ("cuda", "gpu"):
        return torch.cuda.current_device()
    if device.startswith("cuda:") and device[5:].isdigit():
        return int(device[5:])
    raise ValueError(f"device={device!r} is not valid for TensorRT, which runs on the GPU; use device='cuda' or 'cuda:N'")


def check_built_here(trt, torch, recorded: dict, index: int, path: Path) -> None:
    """Raise ModelFileError when the engine was built for another TensorRT version or GPU architecture."""
    major, minor = torch.cuda.get_device_capability(index)
    here = {"tensorrt": trt.__version__, "compute_capability": f"{major}.{minor}"}
    diff = [k for k in here if recorded.get(k) is not None and str(recorded[k]) != here[k]]
    if diff:
        raise ModelFileError(
            f"{path.name} was built for TensorRT {recorded.get('tensorrt')} on {recorded.get('gpu', '?')} (compute capability "
            f"{recorded.get('compute_capability')}); this machine has TensorRT {here['tensorrt']} on "
            f"{torch.cuda.get_device_name(index)} ({here['compute_capability']}). Engines only run where they were built: "
            "rebuild it here with `edgecls.export(model, spec, 'model.engine')` or trtexec from the ONNX"
        )


class TensorRTSession:
    def __init__(self, path, device: str = "cuda", threads: int | None = None, spec: ModelSpec | None = None):
        torch = require("torch", "torch")
        trt = require("tensorrt", EXTRA)
        if not torch.cuda.is_available():
            raise BackendUnavailableError("TensorRT engines run only on an NVIDIA GPU, and torch sees no CUDA device here")
        p = Path(path)
        if not p.is_file():
            raise ModelFileError(f"model file not found: {p}")
        self._torch, self._index = torch, _cuda_index(torch, device)
        from ..artifacts import read_sidecar

        recorded = (spec or read_sidecar(p)).artifact if (spec or read_sidecar(p)) else {}
        check_built_here(trt, torch, recorded, self._index, p)
        with torch.cuda.device(self._index):
            self._runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
            self._engine = self._runtime.deserialize_cuda_engine(p.read_bytes())
            if self._engine is None:
                raise ModelFileError(
                    f"TensorRT {trt.__version__} cannot load {p}: truncated, corrupt, or built by another TensorRT/GPU "
                    "(no sidecar record to tell which). Rebuild it here"
                )
            self._context = self._engine.create_execution_context()
            self._stream = torch.cuda.Stream(self._index)
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        inputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelFileError(f"{p.name} has inputs {inputs} and outputs {outputs}; edgecls runs classifiers (one of each)")
        self._in, self._out = inputs[0], outputs[0]
        self._dtypes = {n: np.dtype(trt.nptype(self._engine.get_tensor_dtype(n))) for n in (self._in, self._out)}
        shape = tuple(self._engine.get_tensor_shape(self._in))
        self.input_shape = tuple("?" if d < 0 else int(d) for d in shape)
        out_last = self._engine.get_tensor_shape(self._out)[-1]
        self.num_classes = int(out_last) if out_last > 0 else None
        self.embedded_spec = None  # the plan file has no metadata slot; the Predictor reads the sidecar
        # a dynamic engine takes any batch up to its profile's max: run() splits, so the Predictor need not
        self._limit = int(self._engine.get_tensor_profile_shape(self._in, 0)[2][0]) if shape[0] < 0 else shape[0]
        self.max_batch = None if shape[0] < 0 else shape[0]
        self._buffers: dict[int, tuple] = {}
        self._lock = threading.Lock()  # one execution context: calls are serialized

    def _buffers_for(self, n: int):
        if n not in self._buffers:
            torch = self._torch
            from ..exporters.tensorrt import _torch_dtype

            in_shape = (n, *self.input_shape[1:])
            if self.max_batch is None:
                self._context.set_input_shape(self._in, in_shape)
            out_shape = tuple(self._context.get_tensor_shape(self._out))
            din, dout = _torch_dtype(torch, self._dtypes[self._in]), _torch_dtype(torch, self._dtypes[self._out])
            dev = f"cuda:{self._index}"
            self._buffers[n] = (
                torch.empty(in_shape, dtype=din, pin_memory=True), torch.empty(in_shape, dtype=din, device=dev),
                torch.empty(out_shape, dtype=dout, device=dev), torch.empty(out_shape, dtype=dout, pin_memory=True),
            )
        return self._buffers[n]

    def _run_chunk(self, x: np.ndarray) -> np.ndarray:
        torch = self._torch
        host_in, dev_in, dev_out, host_out = self._buffers_for(len(x))
        if self.max_batch is None:
            self._context.set_input_shape(self._in, tuple(dev_in.shape))
        host_in.numpy()[...] = x
        with torch.cuda.stream(self._stream):
            dev_in.copy_(host_in, non_blocking=True)
            self._context.set_tensor_address(self._in, dev_in.data_ptr())
            self._context.set_tensor_address(self._out, dev_out.data_ptr())
            if not self._context.execute_async_v3(self._stream.cuda_stream):
                raise RuntimeError("TensorRT execute_async_v3 failed (see the TensorRT log)")
            host_out.copy_(dev_out, non_blocking=True)
        self._stream.synchronize()
        return host_out.numpy().astype(np.float32)  # a copy: the pinned buffer is reused by the next call

    def run(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=self._dtypes[self._in])
        with self._lock:
            return np.concatenate([self._run_chunk(x[i : i + self._limit]) for i in range(0, len(x), self._limit)])


def open(path, device: str = "cuda", threads: int | None = None, spec: ModelSpec | None = None) -> TensorRTSession:  # noqa: A001
    return TensorRTSession(path, device, threads, spec)

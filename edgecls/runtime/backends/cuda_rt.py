"""The little of the CUDA runtime that TensorRT needs from Python, on NVIDIA's cuda-python (`cuda.bindings`).

No torch: a Jetson app gets device buffers, pinned host buffers, a stream and CUDA graphs from cuda-python
(`pip install 'edgecls[tensorrt]'`; JetPack 6's CUDA 12.6 wants cuda-python 12.x, CUDA 13 drivers 13.x: the calls
used here are the same in both). Every call's error code is checked; a failure raises with CUDA's own message.
"""

from __future__ import annotations

import ctypes

import numpy as np

from ...errors import BackendUnavailableError, InputError


def runtime():
    """cuda.bindings.runtime (cuda-python >= 12.6), or the older `cuda.cudart` layout."""
    try:
        from cuda.bindings import runtime as rt
    except ImportError:
        try:
            from cuda import cudart as rt  # cuda-python < 12.6
        except ImportError as exc:
            raise BackendUnavailableError(
                f"cuda-python is not installed ({exc}); TensorRT's buffers and streams come from it. "
                "Install it with: pip install 'edgecls[tensorrt]' (on JetPack 6: pip install 'cuda-python==12.6.*')"
            ) from exc
    return rt


def check(result, what: str):
    """cuda-python returns (err, *values): raise on an error, return the value(s)."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        rt = runtime()
        msg = rt.cudaGetErrorString(err)[1]
        raise RuntimeError(f"CUDA {what} failed: {err.name if hasattr(err, 'name') else int(err)}: "
                           f"{msg.decode() if isinstance(msg, bytes) else msg}")
    return values[0] if len(values) == 1 else tuple(values) if values else None


def device_count() -> tuple[int, str | None]:
    """(number of CUDA devices, why none) without raising: no driver / no GPU -> (0, CUDA's reason)."""
    rt = runtime()
    err, n = rt.cudaGetDeviceCount()
    if int(err) != 0:
        msg = rt.cudaGetErrorString(err)[1]
        return 0, msg.decode() if isinstance(msg, bytes) else str(msg)
    return int(n), None if n else "no CUDA device"


def device_facts(index: int = 0) -> dict:
    """{'gpu': name, 'compute_capability': 'major.minor'} of CUDA device `index`."""
    n, why = device_count()
    if n == 0:
        raise BackendUnavailableError(f"TensorRT needs an NVIDIA GPU and CUDA sees none here ({why})")
    if not 0 <= index < n:
        raise InputError(f"device cuda:{index} does not exist; this machine has {n} CUDA device(s)")
    prop = check(runtime().cudaGetDeviceProperties(index), "cudaGetDeviceProperties")
    name = prop.name.split(b"\0", 1)[0].decode() if isinstance(prop.name, bytes) else str(prop.name)
    return {"gpu": name, "compute_capability": f"{prop.major}.{prop.minor}"}


def set_device(index: int) -> None:
    check(runtime().cudaSetDevice(index), "cudaSetDevice")


class DeviceBuffer:
    def __init__(self, nbytes: int):
        self.nbytes = int(nbytes)
        self.ptr = int(check(runtime().cudaMalloc(max(self.nbytes, 1)), "cudaMalloc"))

    def free(self) -> None:
        if self.ptr:
            runtime().cudaFree(self.ptr)
            self.ptr = 0

    __del__ = free


class PinnedArray:
    """A numpy array over page-locked host memory (what async copies need to be truly async)."""

    def __init__(self, shape: tuple, dtype):
        self.dtype, self.shape = np.dtype(dtype), tuple(int(s) for s in shape)
        self.nbytes = int(np.prod(self.shape)) * self.dtype.itemsize
        self.ptr = int(check(runtime().cudaMallocHost(max(self.nbytes, 1)), "cudaMallocHost"))
        raw = (ctypes.c_byte * max(self.nbytes, 1)).from_address(self.ptr)
        self.array = np.frombuffer(raw, dtype=self.dtype, count=int(np.prod(self.shape))).reshape(self.shape)

    def free(self) -> None:
        if self.ptr:
            self.array = None
            runtime().cudaFreeHost(self.ptr)
            self.ptr = 0

    __del__ = free


class Stream:
    def __init__(self):
        rt = runtime()
        self.handle = check(rt.cudaStreamCreateWithFlags(rt.cudaStreamNonBlocking), "cudaStreamCreate")

    @property
    def ptr(self) -> int:
        return int(self.handle)

    def h2d(self, dst: DeviceBuffer, src: PinnedArray) -> None:
        rt = runtime()
        check(rt.cudaMemcpyAsync(dst.ptr, src.ptr, src.nbytes, rt.cudaMemcpyKind.cudaMemcpyHostToDevice, self.handle), "H2D copy")

    def d2h(self, dst: PinnedArray, src: DeviceBuffer) -> None:
        rt = runtime()
        check(rt.cudaMemcpyAsync(dst.ptr, src.ptr, dst.nbytes, rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, self.handle), "D2H copy")

    def synchronize(self) -> None:
        check(runtime().cudaStreamSynchronize(self.handle), "cudaStreamSynchronize")

    def begin_capture(self) -> None:
        rt = runtime()
        check(rt.cudaStreamBeginCapture(self.handle, rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal), "begin capture")

    def end_capture(self) -> "Graph":
        graph = check(runtime().cudaStreamEndCapture(self.handle), "end capture")
        return Graph(graph)

    def destroy(self) -> None:
        if getattr(self, "handle", None) is not None:
            runtime().cudaStreamDestroy(self.handle)
            self.handle = None

    __del__ = destroy


class Graph:
    """An instantiated CUDA graph: copy-in, the engine's kernels and copy-out replayed with one launch."""

    def __init__(self, graph):
        rt = runtime()
        self._graph = graph
        self._exec = check(rt.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")

    def launch(self, stream: Stream) -> None:
        check(runtime().cudaGraphLaunch(self._exec, stream.handle), "cudaGraphLaunch")

    def destroy(self) -> None:
        rt = runtime()
        if getattr(self, "_exec", None) is not None:
            rt.cudaGraphExecDestroy(self._exec)
            rt.cudaGraphDestroy(self._graph)
            self._exec = None

    __del__ = destroy


class Event:
    def __init__(self):
        self.handle = check(runtime().cudaEventCreate(), "cudaEventCreate")

    def record(self, stream: Stream) -> None:
        check(runtime().cudaEventRecord(self.handle, stream.handle), "cudaEventRecord")

    def elapsed_ms(self, start: "Event") -> float:
        check(runtime().cudaEventSynchronize(self.handle), "cudaEventSynchronize")
        return float(check(runtime().cudaEventElapsedTime(start.handle, self.handle), "cudaEventElapsedTime"))

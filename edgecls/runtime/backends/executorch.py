"""ExecuTorch backend (.pte) on ExecuTorch's runtime extension (what `executorch.runtime` wraps), XNNPACK on CPU.

The spec is read from the program's constant methods `edgecls_spec` / `labels` (exporters/executorch.py).

Threads: ExecuTorch runs XNNPACK (and its optimized kernels) on ONE process-wide thread pool, sized by default to
the CPU's performance cores. Each XNNPACK delegate keeps a pointer to that pool from load time, and the only Python
control, `_unsafe_reset_threadpool`, replaces the pool: unsafe while any loaded program still points at the old one.
So `threads=N` here sets the pool for the whole process, the way torch.set_num_threads does: every live ExecuTorch
session is unloaded first and reloaded onto the new pool (one load each, ~0.1-0.3 s for Lite0), under the lock below.
The last `threads` asked for wins for every .pte in the process; `threads=None` keeps the pool as it is.

Thread safety: one Predictor may be shared by many threads. Every ExecuTorch call in the process (run, load, pool
resize) holds one lock: a loaded method owns one set of planned buffers and must not run twice at once (ExecuTorch
asserts on it), and all XNNPACK delegates drive the one shared pool anyway, so running them side by side would not
be faster.

Native logs: ExecuTorch prints C++ log lines (its cpuinfo probe on first use, e.g. "[cpuinfo_utils.cpp:87] Failed to
open midr file ..." on x86 VMs, pool resizes, load errors) to stderr. While loading, stderr is captured at the file
descriptor and at sys.stderr, and restored right after: ExecuTorch's lines are dropped (a load error carries them in
its message), anything else written meanwhile is passed on. EDGECLS_EXECUTORCH_LOG=1 leaves stderr alone.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import tempfile
import threading
import warnings
import weakref
from pathlib import Path

import numpy as np

from ...errors import BackendUnavailableError, InputError, ModelFileError
from ..runtimes import RUNTIMES
from ..spec import ModelSpec
from . import Session

EXTRA = RUNTIMES["executorch"].extra
LOG_ENV = "EDGECLS_EXECUTORCH_LOG"
SPEC_METHOD, LABELS_METHOD = "edgecls_spec", "labels"  # constant methods carrying the spec (exporters/executorch.py)

_LOCK = threading.RLock()
_SESSIONS: weakref.WeakSet = weakref.WeakSet()
_EXT = None  # the runtime extension module, imported on first use
_NATIVE_LINE = re.compile(r"^\[[\w./+-]+:\d+\] ")  # ET_LOG's "[file.cpp:123] message"
# c10::ScalarType codes (what TensorInfo.dtype() returns) that have a numpy name
_SCALAR_TYPES = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16", 6: "float32", 7: "float64"}


@contextlib.contextmanager
def native_logs():
    """Capture stderr (fd 2 and sys.stderr) for a load; yields a list that receives ExecuTorch's own log lines.

    Other text written to stderr in the meantime (another thread's) is written back afterwards, not lost. With
    EDGECLS_EXECUTORCH_LOG set, nothing is captured.
    """
    lines: list[str] = []
    try:
        saved_fd = None if os.environ.get(LOG_ENV, "").strip() not in ("", "0") else os.dup(2)
    except OSError:  # no stderr at all (a daemon, pythonw): nothing to keep clean
        saved_fd = None
    if saved_fd is None:
        yield lines
        return
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    saved_py = sys.stderr
    buf = io.StringIO()
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        sys.stderr = buf
        try:
            yield lines
        finally:
            sys.stderr = saved_py
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
            tmp.seek(0)
            text = buf.getvalue() + tmp.read().decode("utf-8", errors="replace")
            other = []
            for line in text.splitlines(keepends=True):
                (lines if _NATIVE_LINE.match(line) else other).append(line)
            lines[:] = [ln.rstrip("\n") for ln in lines]
            if other:
                with contextlib.suppress(Exception):
                    saved_py.write("".join(other))
                    saved_py.flush()


def import_quietly(module: str):
    """Import an ExecuTorch module without its import-time noise, or raise BackendUnavailableError naming the extra.

    Importing it pulls in torchao, which registers an Enum with torch's pytree and gets one logged warning line
    ("<enum 'KernelPreference'> is an Enum subclass ..."), and the runtime warns "This API is experimental".
    """
    import importlib
    import logging

    pytree = logging.getLogger("torch.utils._pytree")
    level = pytree.level
    pytree.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailableError(
            f"ExecuTorch is not installed ({exc}). Install it with: pip install 'edgecls[{EXTRA}]'"
        ) from exc
    finally:
        pytree.setLevel(level)


def runtime():
    """ExecuTorch's runtime extension (`executorch.extension.pybindings._C`), the module that `executorch.runtime`
    and `portable_lib` wrap. Imported directly: both wrappers import ExecuTorch's exporter package (`executorch.exir`,
    for a warnings helper), which cost 15 s and 230 MB of peak RSS on every cold start here, against 0.01 s for the
    extension itself. It needs libtorch loaded first, hence the torch import (the extension takes torch tensors)."""
    global _EXT
    if _EXT is None:
        import_quietly("torch")
        _EXT = import_quietly("executorch.extension.pybindings._C")
    return _EXT


def thread_count() -> int:
    """Threads of ExecuTorch's process-wide pool (created with its default size on first use)."""
    ext = runtime()
    with _LOCK, native_logs():
        return int(ext._threadpool_get_thread_count())


def set_thread_count(threads: int) -> None:
    """Resize ExecuTorch's process-wide pool; every live ExecuTorch session is reloaded onto the new one."""
    if not isinstance(threads, int) or threads <= 0:
        raise InputError(f"threads={threads!r} must be a positive integer")
    ext = runtime()
    with _LOCK:
        with native_logs():
            if int(ext._threadpool_get_thread_count()) == threads:
                return
        live = list(_SESSIONS)
        for s in live:  # drop every delegate that points at the old pool before it is freed
            s._unload()
        with native_logs():
            ext._unsafe_reset_threadpool(int(threads))
        failed = []
        for s in live:
            try:
                s._load()
            except ModelFileError as exc:  # its file changed or vanished since: that session stays unusable
                failed.append(str(exc))
        if failed:
            raise ModelFileError(f"after resizing ExecuTorch's thread pool, {len(failed)} loaded model(s) could not be "
                                 f"reloaded: {failed[0]}")


def _check_header(p: Path) -> None:
    if not p.is_file():
        raise ModelFileError(f"model file not found: {p}")
    with p.open("rb") as fh:  # (this module defines open())
        head = fh.read(8)
    ident = head[4:8]
    # ExecuTorch's loader echoes a wrong identifier into a log line; bytes that are not UTF-8 there abort the whole
    # process (a pybind11 UnicodeDecodeError in a noexcept path). So foreign files stop here, in Python.
    if len(head) < 8 or ident[:2] != b"ET" or not ident[2:].isdigit():
        kind = "a LiteRT/TFLite model (TFL3); rename it to .tflite" if ident == b"TFL3" else (
            "empty" if not head else f"not an ExecuTorch program (no 'ETnn' identifier at byte 4, found {ident!r})")
        raise ModelFileError(f"{p} is {kind}. The file is truncated, corrupt or of another kind; re-export it with "
                             "`edgecls export -f executorch`")


class ExecuTorchSession(Session):
    def __init__(self, path, device: str = "cpu", threads: int | None = None):
        if device != "cpu":
            raise InputError(f"device={device!r} is not supported by the ExecuTorch backend here (XNNPACK); use device='cpu'")
        self.path = Path(path)
        _check_header(self.path)
        self._program = self._method = None
        with _LOCK:
            if threads:
                set_thread_count(int(threads))
            self._load()
            self.embedded_spec = self._read_spec()
            _SESSIONS.add(self)
        meta = self._method.method_meta()
        self.input_shape = tuple(int(d) for d in meta.input_tensor_meta(0).sizes())
        dtype = _SCALAR_TYPES.get(int(meta.input_tensor_meta(0).dtype()))
        self.input_dtypes = (dtype,) if dtype else ()  # bfloat16 and the like: no numpy name, so nothing to check
        out = tuple(int(d) for d in meta.output_tensor_meta(0).sizes())
        self.num_classes = out[-1] if out else None
        self.max_batch = self.input_shape[0] if self.input_shape else None
        self._torch = sys.modules["torch"]  # loaded with the runtime extension (runtime())

    def close(self) -> None:
        with _LOCK:  # a pool resize reloads every live session; a closed one is not live any more
            _SESSIONS.discard(self)
            self._unload()

    def _load(self) -> None:
        ext = runtime()
        error = None
        with native_logs() as log:  # its lines arrive when the capture ends, hence the error is raised after it
            try:  # InternalConsistency: the flatbuffer verifier runs over the whole program before anything is used
                program = ext._load_program(str(self.path), program_verification=ext.Verification.InternalConsistency)
                method = program.load_method("forward")
            except Exception as exc:  # noqa: BLE001 - the runtime raises RuntimeError/KeyError with an error code
                error = exc
        if error is not None:
            why = "; ".join(ln.split("] ", 1)[-1] for ln in log[-3:]) or f"{type(error).__name__}: {str(error)[:200]}"
            raise ModelFileError(f"ExecuTorch cannot load {self.path} ({why}); the file is truncated, corrupt or "
                                 "needs kernels this runtime lacks. Re-export it with `edgecls export -f executorch`") from error
        self._program, self._method = program, method

    def _unload(self) -> None:
        self._method = self._program = None

    def _read_spec(self) -> ModelSpec | None:
        names = {self._program.get_method_name(i) for i in range(self._program.num_methods())}
        if SPEC_METHOD not in names:
            return None  # a .pte from elsewhere: the sidecar JSON or spec= gives the spec
        try:
            text = self._program.load_method(SPEC_METHOD)([])
        except (RuntimeError, UnicodeDecodeError) as exc:
            raise ModelFileError(f"{self.path}: its embedded spec cannot be read ({type(exc).__name__}: {str(exc)[:200]}); "
                                 "the file is corrupt. Re-export it with `edgecls export -f executorch`") from exc
        return ModelSpec.from_json(text[0]) if text and text[0] else None

    def run(self, batch: np.ndarray) -> np.ndarray:
        x = self._torch.from_numpy(np.ascontiguousarray(batch))
        with _LOCK:
            if self._method is None:
                raise ModelFileError(f"{self.path} could not be reloaded after a thread pool resize; create the Predictor again")
            y = self._method([x])[0]  # a copy: the output is cloned out of the method's planned buffer
        return y.numpy()


def open(path, *, device: str, threads: int | None, spec: ModelSpec | None, cache_dir: str | None) -> ExecuTorchSession:  # noqa: A001
    return ExecuTorchSession(path, device, threads)

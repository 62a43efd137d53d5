"""One module per runtime, each behind the one interface declared here; which module opens a file is the runtime
table's to say (edgecls.runtime.runtimes: by suffix, or by an explicit backend name).

A backend module has `open()` as `Backend` declares it, and a `Session` subclass: everything the Predictor, the
self-check and edgecls-bench read of a loaded model is declared once, in `Session`, with defaults where a runtime may
have nothing to say. Adding a runtime means one module here and one row in the table.
"""

from __future__ import annotations

import abc
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ..runtimes import runtime_for

if TYPE_CHECKING:
    from ..spec import ModelSpec


class Session(abc.ABC):
    """A model loaded on one runtime. A backend sets each attribute without a default; the others it sets where
    its runtime says more than the default."""

    input_shape: tuple  # the artifact's input shape; a non-int entry is a dynamic dimension
    num_classes: int | None = None  # the output's last dimension; None: dynamic, the spec's count is taken
    max_batch: int | None = None  # the one batch size it runs (larger batches go as several calls); None: any
    input_dtypes: tuple[str, ...] = ()  # numpy dtype names run() takes; (): the runtime does not say, nothing to check
    device: str = "cpu"  # where it runs, as the runtime names it (TensorRT: "cuda:0")
    embedded_spec: ModelSpec | None = None  # the spec in the file's own metadata slot; None: the sidecar has it
    selfcheck_blob: bytes | None = None  # the self-check record in the file's own slot; None: the companion file has it

    @abc.abstractmethod
    def run(self, batch: np.ndarray) -> np.ndarray:
        """A preprocessed batch (max_batch rows when that is set) -> logits (N, classes); callable from many threads."""

    def close(self) -> None:  # noqa: B027 - a runtime whose objects need no release keeps this one
        """Release the runtime's memory, thread pools and file handles; run() is not called afterwards."""


class Backend(Protocol):
    """A backend module (runtimes.Runtime.module). The Predictor passes every argument: device from the table when
    the caller gave none; spec is the caller's (what a file without its own needs to load); cache_dir only where the
    table says the runtime has a compiled cache (compiled_cache), None for every other."""

    def open(self, path: Path, *, device: str, threads: int | None, spec: ModelSpec | None,
             cache_dir: str | None) -> Session: ...


def backend_for(path: str | Path, backend: str | None = None) -> Backend:
    """The module that opens `path`: the runtime called `backend`, else the one its suffix selects; imported now."""
    return importlib.import_module(runtime_for(path, backend).module)


__all__ = ["Backend", "Session", "backend_for"]

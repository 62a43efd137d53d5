"""One module per runtime, behind one small protocol; found by file suffix, an explicit name wins.

A backend module defines NAME, SUFFIXES, EXTRA and `open(path, device, threads, spec=None) -> Session` (plus
`cache_dir=` where the runtime has a compiled-model cache: `takes_cache_dir()`);
a Session has `run(batch) -> logits`, the spec embedded in the file's own metadata slot (or None), and the
input shape / class count it really has, so the Predictor can check the spec against the model.
Adding a runtime means adding one module and one line to BACKENDS.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Protocol

import numpy as np

from ..errors import ModelFileError

# name -> (module, suffixes); modules import their runtime lazily so a missing one only matters when used
BACKENDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "torch": ("edgecls.backends.torch_backend", (".pt",)),
    "onnxruntime": ("edgecls.backends.onnxruntime_backend", (".onnx",)),
    "openvino": ("edgecls.backends.openvino_backend", (".xml",)),
    "litert": ("edgecls.backends.litert_backend", (".tflite",)),
    "tensorrt": ("edgecls.backends.tensorrt_backend", (".engine",)),
    "executorch": ("edgecls.backends.executorch_backend", (".pte",)),
}


class Session(Protocol):
    embedded_spec: object  # ModelSpec | None
    input_shape: tuple  # the artifact's input shape; a non-int entry is a dynamic dimension
    num_classes: int | None
    max_batch: int | None  # None: any batch in one call

    def run(self, batch: np.ndarray) -> np.ndarray: ...


def takes_cache_dir(module: ModuleType) -> bool:
    import inspect

    return "cache_dir" in inspect.signature(module.open).parameters


def backend_for(path: str | Path, backend: str | None = None) -> ModuleType:
    if backend is not None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        return importlib.import_module(BACKENDS[backend][0])
    suffix = Path(path).suffix.lower()
    for name, (module, suffixes) in BACKENDS.items():
        if suffix in suffixes:
            return importlib.import_module(module)
    known = ", ".join(f"{s} ({n})" for n, (_, ss) in BACKENDS.items() for s in ss)
    raise ModelFileError(
        f"cannot tell the runtime for {Path(path).name!r} from its suffix {suffix or '(none)'}; known: {known}. "
        "Rename the file or pass backend=..."
    )

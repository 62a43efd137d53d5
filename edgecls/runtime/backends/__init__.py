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

from ...errors import ModelFileError

# A TensorRT plan file goes by three names in the wild: .engine (trtexec's examples, Ultralytics, DeepStream), .trt
# and .plan (Triton's model repository). All three are the same native file; the first is what export writes.
TENSORRT_SUFFIXES = (".engine", ".trt", ".plan")

# name -> (module, suffixes); modules import their runtime lazily so a missing one only matters when used.
# This is the one suffix table: the Predictor, export (exporters.format_for) and edgecls-bench's folder scan read it.
BACKENDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "torch": ("edgecls.models.torch_backend", (".pt",)),
    "onnxruntime": ("edgecls.runtime.backends.onnxruntime", (".onnx",)),
    "openvino": ("edgecls.runtime.backends.openvino", (".xml",)),
    "litert": ("edgecls.runtime.backends.litert", (".tflite",)),
    "tensorrt": ("edgecls.runtime.backends.tensorrt", TENSORRT_SUFFIXES),
    "executorch": ("edgecls.runtime.backends.executorch", (".pte",)),
}


def artifact_suffixes() -> tuple[str, ...]:
    """Every suffix a backend opens, in table order (edgecls-bench scans folders for these)."""
    return tuple(s for _, suffixes in BACKENDS.values() for s in suffixes)


def artifact_files(path: Path) -> list[Path]:
    """The files one artifact is made of (an OpenVINO .xml and its .bin), for sizes and copies."""
    files = [Path(path)]
    if files[0].suffix == ".xml" and files[0].with_suffix(".bin").is_file():
        files.append(files[0].with_suffix(".bin"))
    return files


def backend_name_for(path: str | Path) -> str | None:
    """The backend a file's suffix selects, or None; imports nothing."""
    suffix = Path(path).suffix.lower()
    return next((name for name, (_, suffixes) in BACKENDS.items() if suffix in suffixes), None)


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
    name = backend_name_for(path)
    if name is not None:
        return importlib.import_module(BACKENDS[name][0])
    suffix = Path(path).suffix.lower()
    known = ", ".join(f"{s} ({n})" for n, (_, ss) in BACKENDS.items() for s in ss)
    raise ModelFileError(
        f"cannot tell the runtime for {Path(path).name!r} from its suffix {suffix or '(none)'}; known: {known}. "
        "Rename the file or pass backend=..."
    )

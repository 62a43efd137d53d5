"""The one runtime table: one row per runtime, what every layer must agree on about it.

The Predictor picks a backend from it, export names its formats after it (exporters.FORMATS), compress/deploy key
their INT8 targets by its names (compress.targets.TARGETS), and edgecls-bench scans folders for its suffixes. What
only one layer needs (export options, INT8 builds, a runtime's own settings) stays in that layer. Plain data: this
module imports nothing but the error types, so every layer, the device runtime included, can read it.

Names: `name` is the runtime's (Predictor(backend=...), bench rows, INT8 targets); `format` is the export format's,
which is also what artifacts record in spec.artifact["format"] (so neither can be renamed). What users type in CLI
flags and config files may be any spelling (name, format or alias): `resolve()` turns it into the row there, at the
edge; everything inside uses row names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelFileError, UnknownRuntimeError


@dataclass(frozen=True)
class Runtime:
    name: str  # the runtime's own name: Predictor(backend=...), bench rows, compress/deploy targets
    module: str  # the backend module (its open(): backends.Backend); imported only when one of its files is opened
    format: str  # the export format that writes its files (exporters.FORMATS, spec.artifact["format"])
    suffixes: tuple[str, ...]  # every suffix its files go by; export writes the first
    extra: str  # pip install 'edgecls[<extra>]' installs the runtime
    device: str = "cpu"  # the Predictor's device when none is given
    companions: tuple[str, ...] = ()  # files that travel with the main one under its stem (OpenVINO's .bin weights)
    compiled_cache: bool = False  # compiles on load and can keep the result in a cache_dir for the next process
    int8: bool = False  # compress/deploy build and judge INT8 artifacts for it (compress.targets.TARGETS)
    aliases: tuple[str, ...] = ()  # further spellings users may write in CLI flags and config files

    @property
    def suffix(self) -> str:
        """The suffix export names its files with."""
        return self.suffixes[0]

    @property
    def spellings(self) -> tuple[str, ...]:
        """Every name `resolve()` accepts for this runtime: its name, its format's, its aliases."""
        return tuple(dict.fromkeys((self.name, self.format, *self.aliases)))


RUNTIMES: dict[str, Runtime] = {r.name: r for r in (
    # the .pt backend rebuilds timm architectures, so it lives with the model zoo
    Runtime("torch", "edgecls.models.torch_backend", "pt", (".pt",), "torch"),
    Runtime("onnxruntime", "edgecls.runtime.backends.onnxruntime", "onnx", (".onnx",), "onnx", int8=True,
            aliases=("ort",)),
    Runtime("openvino", "edgecls.runtime.backends.openvino", "openvino", (".xml",), "openvino", companions=(".bin",),
            compiled_cache=True, int8=True, aliases=("ov",)),
    Runtime("litert", "edgecls.runtime.backends.litert", "tflite", (".tflite",), "tflite", int8=True),
    # a plan file goes by three names in the wild: .engine (trtexec's examples, Ultralytics, DeepStream), .trt and
    # .plan (Triton's model repository); all three are the same native file
    Runtime("tensorrt", "edgecls.runtime.backends.tensorrt", "tensorrt", (".engine", ".trt", ".plan"), "tensorrt",
            device="cuda", int8=True, aliases=("trt",)),
    Runtime("executorch", "edgecls.runtime.backends.executorch", "executorch", (".pte",), "executorch", aliases=("pte",)),
)}


def choices() -> str:
    """The runtimes and their other spellings, for error messages and help texts."""
    return ", ".join(f"{r.name} ({', '.join(r.spellings[1:])})" if r.spellings[1:] else r.name for r in RUNTIMES.values())


def resolve(name: str) -> Runtime:
    """The row any spelling (name, format, alias) names; for what users type in CLI flags and config files."""
    for r in RUNTIMES.values():
        if name in r.spellings:
            return r
    raise UnknownRuntimeError(f"unknown runtime {name!r}; choose one of: {choices()}")


def runtime(name: str) -> Runtime:
    """The row called `name` exactly (Predictor(backend=...) takes runtime names, not formats or aliases)."""
    if name in RUNTIMES:
        return RUNTIMES[name]
    hint = next((f" ({name!r} is {'the format' if name == r.format else 'an alias'} of runtime {r.name!r}: pass "
                 f"backend={r.name!r})" for r in RUNTIMES.values() if name in r.spellings), "")
    raise UnknownRuntimeError(f"unknown backend {name!r}{hint}; choose one of {', '.join(RUNTIMES)}")


def for_suffix(path: str | Path) -> Runtime | None:
    """The row whose files end like `path` (case-insensitive), or None."""
    suffix = Path(path).suffix.lower()
    return next((r for r in RUNTIMES.values() if suffix in r.suffixes), None)


def runtime_for(path: str | Path, backend: str | None = None) -> Runtime:
    """The row that opens `path`: the runtime called `backend`, else the one its suffix selects."""
    if backend is not None:
        return runtime(backend)
    found = for_suffix(path)
    if found is None:
        suffix = Path(path).suffix.lower()
        known = ", ".join(f"{s} ({r.name})" for r in RUNTIMES.values() for s in r.suffixes)
        raise ModelFileError(f"cannot tell the runtime for {Path(path).name!r} from its suffix {suffix or '(none)'}; "
                             f"known: {known}. Rename the file or pass backend=...")
    return found


def artifact_suffixes() -> tuple[str, ...]:
    """Every suffix a runtime opens, in table order (edgecls-bench scans folders for these)."""
    return tuple(s for r in RUNTIMES.values() for s in r.suffixes)


def artifact_files(path: str | Path) -> list[Path]:
    """The files one artifact is made of (an OpenVINO .xml and its .bin), for sizes, copies and moves."""
    main = Path(path)
    found = for_suffix(main)
    return [main] + [main.with_suffix(c) for c in (found.companions if found else ()) if main.with_suffix(c).is_file()]


__all__ = ["RUNTIMES", "Runtime", "artifact_files", "artifact_suffixes", "choices", "for_suffix", "resolve",
           "runtime", "runtime_for"]

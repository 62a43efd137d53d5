"""ModelSpec: the one typed, versioned record that travels from training to the Predictor.

It says what the model is (arch, labels), what tensor the artifact takes (InputSpec), how a picture becomes that
tensor (Preprocess), how logits become scores (temperature), and what was done to it (lineage). It is stored in
each format's own metadata slot and always as a `<artifact>.json` sidecar.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
from dataclasses import dataclass, field
from typing import Any

from .errors import SpecError

SCHEMA_VERSION = 1
SPEC_KEY = "edgecls.spec"  # key under which formats with a metadata slot store the spec JSON

INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "area")
RESIZE_MODES = ("center_crop", "stretch")
LAYOUTS = ("NCHW", "NHWC")
DTYPES = ("float32", "float16", "uint8", "int8")
COLORS = ("RGB", "BGR")


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SpecError(f"{name}={value!r} is not valid; choose one of {', '.join(choices)}")


@dataclass(frozen=True)
class Preprocess:
    """How an RGB uint8 picture becomes the model's input, as data (one reference implementation in preprocess.py).

    center_crop: scale so the shorter side is size/crop_pct, then take the central size crop (timm/torchvision eval).
    stretch: resize the whole picture to size, ignoring aspect ratio.
    mean/std apply to pixel/255, per channel, in the model's channel order (`color`).
    """

    resize_mode: str = "center_crop"
    crop_pct: float = 0.875
    interpolation: str = "bilinear"
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    color: str = "RGB"

    def __post_init__(self) -> None:
        _choice("preprocess.resize_mode", self.resize_mode, RESIZE_MODES)
        _choice("preprocess.interpolation", self.interpolation, INTERPOLATIONS)
        _choice("preprocess.color", self.color, COLORS)
        if not (0.0 < float(self.crop_pct) <= 1.0):
            raise SpecError(f"preprocess.crop_pct={self.crop_pct} must be in (0, 1]")
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))
        if len(self.mean) != len(self.std) or not self.mean:
            raise SpecError(f"preprocess.mean {self.mean} and std {self.std} need the same, non-zero length")
        if any(not math.isfinite(s) or s <= 0 for s in self.std) or any(not math.isfinite(m) for m in self.mean):
            raise SpecError(f"preprocess.std must be finite and > 0 and mean finite, got mean={self.mean} std={self.std}")


@dataclass(frozen=True)
class InputSpec:
    """The artifact's input tensor. normalized_in_graph: the graph itself scales/normalizes raw uint8 pixels."""

    height: int = 224
    width: int = 224
    channels: int = 3
    layout: str = "NCHW"
    dtype: str = "float32"
    normalized_in_graph: bool = False
    batch: int | None = 1  # None: dynamic batch

    def __post_init__(self) -> None:
        for name in ("height", "width", "channels"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise SpecError(f"input.{name}={v!r} must be a positive integer")
        if self.channels not in (1, 3):
            raise SpecError(f"input.channels={self.channels} is not supported; use 1 (grayscale) or 3 (color)")
        _choice("input.layout", self.layout, LAYOUTS)
        _choice("input.dtype", self.dtype, DTYPES)
        if self.batch is not None and (not isinstance(self.batch, int) or self.batch <= 0):
            raise SpecError(f"input.batch={self.batch!r} must be a positive integer or null (dynamic)")
        if self.normalized_in_graph and self.dtype != "uint8":
            raise SpecError("input.normalized_in_graph=true needs input.dtype='uint8' (raw pixels go in)")

    @property
    def shape(self) -> tuple[int, ...]:
        b = self.batch or 1
        if self.layout == "NCHW":
            return (b, self.channels, self.height, self.width)
        return (b, self.height, self.width, self.channels)


@dataclass(frozen=True)
class LineageStep:
    """One thing done to the model: train, export, quantize, prune, distill..."""

    step: str
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    time: str = ""
    edgecls_version: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.step, str) or not self.step:
            raise SpecError("lineage step needs a non-empty 'step' name")
        if not self.time:
            object.__setattr__(self, "time", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
        if not self.edgecls_version:
            from . import __version__

            object.__setattr__(self, "edgecls_version", __version__)


@dataclass(frozen=True)
class ModelSpec:
    arch: str
    labels: tuple[str, ...]
    input: InputSpec = field(default_factory=InputSpec)
    preprocess: Preprocess = field(default_factory=Preprocess)
    temperature: float = 1.0
    metrics: dict[str, float] = field(default_factory=dict)
    lineage: tuple[LineageStep, ...] = ()
    artifact: dict[str, Any] = field(default_factory=dict)  # format-specific facts: format, precision, opset...
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if not isinstance(self.arch, str) or not self.arch:
            raise SpecError("spec.arch must be a non-empty string")
        labels = tuple(self.labels)
        if not labels or not all(isinstance(x, str) and x for x in labels):
            raise SpecError("spec.labels must be a non-empty list of non-empty strings")
        if len(set(labels)) != len(labels):
            dup = sorted({x for x in labels if labels.count(x) > 1})[:5]
            raise SpecError(f"spec.labels has duplicates, e.g. {dup}; each class needs a distinct name")
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "lineage", tuple(self.lineage))
        if len(self.preprocess.mean) != self.input.channels:
            raise SpecError(
                f"preprocess.mean has {len(self.preprocess.mean)} values but input.channels={self.input.channels}"
            )
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
            raise SpecError(f"spec.temperature={t!r} must be a finite number > 0")
        if self.schema_version != SCHEMA_VERSION:
            raise SpecError(
                f"spec schema_version {self.schema_version} is not supported by this edgecls "
                f"(it reads version {SCHEMA_VERSION}); upgrade edgecls or re-export the model"
            )

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def replace(self, **changes: Any) -> ModelSpec:
        return dataclasses.replace(self, **changes)

    def with_step(self, step: str, params: dict | None = None, metrics: dict | None = None, **changes) -> ModelSpec:
        entry = LineageStep(step=step, params=dict(params or {}), metrics=dict(metrics or {}))
        return self.replace(lineage=self.lineage + (entry,), **changes)

    # --- JSON -----------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        try:
            return json.dumps(self.to_dict(), indent=indent, sort_keys=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise SpecError(f"spec cannot be written as JSON: {exc}; metrics/params must be plain numbers/strings") from exc

    @classmethod
    def from_dict(cls, data: Any) -> ModelSpec:
        if not isinstance(data, dict):
            raise SpecError(f"a spec must be a JSON object, got {type(data).__name__}")
        version = data.get("schema_version", None)
        if version is None:
            raise SpecError("spec has no 'schema_version'; it was not written by edgecls")
        if isinstance(version, int) and version > SCHEMA_VERSION:
            raise SpecError(f"spec schema_version {version} is newer than this edgecls supports ({SCHEMA_VERSION}); upgrade edgecls")
        kw = _fields(cls, data, "spec")
        kw["input"] = _make(InputSpec, kw["input"], "input") if "input" in kw else InputSpec()
        kw["preprocess"] = _make(Preprocess, kw["preprocess"], "preprocess") if "preprocess" in kw else Preprocess()
        if "labels" in kw and not isinstance(kw["labels"], (list, tuple)):
            raise SpecError("spec.labels must be a list of strings")
        lineage = kw.get("lineage", [])
        if not isinstance(lineage, (list, tuple)):
            raise SpecError("spec.lineage must be a list")
        kw["lineage"] = tuple(_make(LineageStep, s, f"lineage[{i}]") for i, s in enumerate(lineage))
        for name in ("metrics", "artifact"):
            if name in kw and not isinstance(kw[name], dict):
                raise SpecError(f"spec.{name} must be an object")
        try:
            spec = cls(**kw)
        except TypeError as exc:  # a required field missing
            raise SpecError(f"spec is incomplete: {exc}") from exc
        spec.to_json(indent=None)  # a spec read in must write out again: no inf/NaN in metrics, params or artifact
        return spec

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelSpec:
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SpecError(f"spec is not valid JSON: {exc}") from exc
        return cls.from_dict(data)


_SEQ_FIELDS = {"mean", "std"}


def _make(cls: type, data: Any, where: str):
    try:
        return cls(**_fields(cls, data, where))
    except TypeError as exc:  # a required field missing
        raise SpecError(f"{where} is incomplete: {exc}") from exc


def _fields(cls: type, data: Any, where: str) -> dict[str, Any]:
    """Check keys against the dataclass; unknown keys are an error, not silently dropped."""
    if not isinstance(data, dict):
        raise SpecError(f"{where} must be a JSON object, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise SpecError(f"{where} has unknown field(s) {unknown}; known fields: {sorted(names)}")
    out = dict(data)
    for key in _SEQ_FIELDS & set(out):
        if not isinstance(out[key], (list, tuple)) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in out[key]
        ):
            raise SpecError(f"{where}.{key} must be a list of numbers, got {out[key]!r}")
    for key in ("height", "width", "channels", "crop_pct", "temperature"):
        if key in out and (isinstance(out[key], bool) or not isinstance(out[key], (int, float))):
            raise SpecError(f"{where}.{key} must be a number, got {out[key]!r}")
    for key in ("arch", "step", "resize_mode", "interpolation", "color", "layout", "dtype"):
        if key in out and not isinstance(out[key], str):
            raise SpecError(f"{where}.{key} must be a string, got {out[key]!r}")
    if "normalized_in_graph" in out and not isinstance(out["normalized_in_graph"], bool):
        raise SpecError(f"{where}.normalized_in_graph must be true or false")
    for key in ("params", "metrics") if cls is LineageStep else ():
        if key in out and not isinstance(out[key], dict):
            raise SpecError(f"{where}.{key} must be an object")
    return out

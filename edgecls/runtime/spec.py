"""ModelSpec: the one typed, versioned record that travels from training to the Predictor.

It says what the model is (arch, labels), what tensor the artifact takes (InputSpec), how a picture becomes that
tensor (Preprocess), how logits become scores (temperature), and what was done to it (lineage). It is stored in
each format's own metadata slot and always as a `<artifact>.json` sidecar.

The schema is declared once, as msgspec Structs: the field types and bounds below are what reading a spec enforces,
what constructing one checks, and what `json_schema()` publishes (edgecls/runtime/spec.schema.json, kept up to date by
tools/spec_schema.py and a test). Rules that tie fields together are the `_check` methods. msgspec, not pydantic:
the spec is part of the device core, and msgspec is one small C extension without dependencies (0.7 MB against
pydantic's ~9 MB in four packages) that imports about 10x faster, which a camera app pays at every start.

Adding an optional field is one line with a default, e.g. `open_set_threshold: float | None = None`. Fields added
after schema version 1 are written only when they differ from their default, so a spec that does not use them still
loads in older edgecls versions; old spec JSON loads unchanged because a missing field takes its default.
"""

from __future__ import annotations

import contextvars
import datetime as _dt
import json
import re
from typing import Annotated, Any, Literal, get_args

import msgspec
from msgspec import Meta

from ..errors import SpecError
from ..version import package_version

SCHEMA_VERSION = 1
SPEC_KEY = "edgecls.spec"  # key under which formats with a metadata slot store the spec JSON

# Bounds: far beyond any real classifier, tight enough that a hostile or corrupt file cannot make edgecls allocate
# without limit, recurse without end, or print control characters into a terminal.
MAX_SPEC_BYTES = 16 * 2**20
MAX_LABELS = 100_000  # ImageNet-21k has 21,841 classes
MAX_LABEL_CHARS = 512
MAX_SIDE = 8192  # input height/width in pixels
MAX_BATCH = 65_536
MAX_LINEAGE = 1000
MAX_KEYS = 1000  # entries in one params/metrics/artifact object
MAX_DEPTH = 16  # nesting of objects/lists inside params/metrics/artifact

Interpolation = Literal["nearest", "bilinear", "bicubic", "area"]
ResizeMode = Literal["center_crop", "stretch"]
Layout = Literal["NCHW", "NHWC"]
# int8 input is refused: raw pixels are uint8, so an int8 tensor would need quantization parameters the spec does not
# carry. uint8 means raw pixels with the normalization inside the graph (normalized_in_graph=true).
Dtype = Literal["float32", "float16", "uint8"]
Color = Literal["RGB", "BGR"]
INTERPOLATIONS, RESIZE_MODES, LAYOUTS, DTYPES, COLORS = (get_args(t) for t in (Interpolation, ResizeMode, Layout, Dtype, Color))

Side = Annotated[int, Meta(ge=1, le=MAX_SIDE)]
Label = Annotated[str, Meta(min_length=1, max_length=MAX_LABEL_CHARS, pattern=r"^[^\x00-\x1f\x7f]+$")]
Name = Annotated[str, Meta(min_length=1, max_length=256)]
Mean = Annotated[float, Meta(ge=-1000.0, le=1000.0)]  # bounded, so also finite
Std = Annotated[float, Meta(gt=0.0, le=1000.0)]
JsonObject = Annotated[dict[str, Any], Meta(max_length=MAX_KEYS)]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# The fields of schema version 1, always written. Fields added later are written only when not at their default.
_V1_FIELDS = {
    "Preprocess": frozenset({"resize_mode", "crop_pct", "interpolation", "mean", "std", "color"}),
    "InputSpec": frozenset({"height", "width", "channels", "layout", "dtype", "normalized_in_graph", "batch"}),
    "LineageStep": frozenset({"step", "params", "metrics", "time", "edgecls_version"}),
    "OpenSet": frozenset({"score", "threshold", "coverage", "n"}),
    "Histogram": frozenset({"edges", "probs", "mean"}),
    "Reference": frozenset({"n", "class_prior", "unknown_rate", "histograms"}),
    "ModelSpec": frozenset({"arch", "labels", "input", "preprocess", "temperature", "metrics", "lineage", "artifact",
                            "schema_version"}),
}
_trusted = contextvars.ContextVar("edgecls_spec_trusted", default=False)  # inside msgspec's own validation
_WHERE = {"ModelSpec": "spec", "InputSpec": "input", "Preprocess": "preprocess", "LineageStep": "lineage step",
          "OpenSet": "open_set", "Histogram": "histogram", "Reference": "reference"}
_FIX = "fix that field (in the sidecar JSON, or where the spec is built) or re-export the model with this edgecls"


def _json_value(o: Any) -> Any:
    """enc_hook: numpy scalars (np.float64 from metrics code) become plain numbers; anything else is not JSON."""
    item = getattr(o, "item", None)
    if item is not None and getattr(o, "shape", None) == ():
        return item()
    raise TypeError(f"{type(o).__name__!r} values are not JSON; params/metrics/artifact take numbers, strings, "
                    "booleans, null, lists and objects")


def _base(cls: type) -> str:
    """The spec record a class is (or derives from): 'ModelSpec', 'InputSpec', ..."""
    return next(c.__name__ for c in cls.__mro__ if c.__name__ in _V1_FIELDS)


def _explain(exc: Exception, root: str) -> SpecError:
    """A msgspec error -> SpecError naming the field (spec.input.height), the rule, and what to do."""
    msg = str(exc)
    m = re.search(r" - at `\$(.*)`$", msg)
    path = root + (m.group(1) if m else "")
    if isinstance(exc.__cause__, SpecError):  # one of our cross-field rules: its message already says what to do
        return SpecError(str(exc.__cause__) if path == root else f"{path}: {exc.__cause__}")
    what = msg[: m.start()] if m else msg
    if what.startswith("Expected `str` matching regex"):  # the one pattern: labels without control characters
        return SpecError(f"{path} holds a control character (newline, tab, escape...); labels are written one per line "
                         "and printed in terminals: remove it from the class name")
    what = re.sub(r"^Object missing required field (`\w+`)", r"is incomplete: the required field \1 is missing", what)
    what = re.sub(r"^Object contains unknown field (`\w+`)", r"has the unknown field \1 (misspelt, or written by a newer edgecls)", what)
    field = re.findall(r"\.([A-Za-z_]\w*)", path)
    hint = _CHOICES.get(field[-1]) if field else None
    if hint and not hint.startswith("it takes"):
        hint = "choose one of " + hint
    return SpecError(f"{path}: {what}{'; ' + hint if hint else ''}. To fix: {_FIX}")


def _depth_ok(value: Any) -> bool:
    stack = [(value, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (dict, list, tuple)):
            if d >= MAX_DEPTH:
                return False
            stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return True


class _Record(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Base of the spec records: validated on construction, on replace() and when read."""

    def __post_init__(self) -> None:
        if not _trusted.get():  # built in code: check types and bounds the way reading JSON does, then normalize
            checked = _convert(_builtins(self), type(self))
            for name in self.__struct_fields__:
                msgspec.structs.force_setattr(self, name, getattr(checked, name))
            return  # checked's own __post_init__ ran the cross-field checks
        for name in self.__struct_fields__:
            v = getattr(self, name)
            if isinstance(v, dict) and not _depth_ok(v):
                raise SpecError(f"{_WHERE[_base(type(self))]}.{name} is nested deeper than {MAX_DEPTH} levels; "
                                "keep params/metrics/artifact flat (numbers, strings, short lists)")
        self._check()

    def _check(self) -> None:
        """Rules between fields; raise SpecError."""

    def replace(self, **changes: Any):
        """A copy with some fields changed, validated like a new record."""
        return msgspec.structs.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = _builtins(self)
        _drop_new_defaults(type(self), self, d)
        return d


def _builtins(record: _Record) -> dict[str, Any]:
    try:
        return msgspec.to_builtins(record, str_keys=True, enc_hook=_json_value)
    except (TypeError, RecursionError) as exc:
        raise SpecError(f"{_WHERE[_base(type(record))]} holds a value that is not JSON ({exc}); "
                        "metrics/params must be plain numbers/strings") from exc


def _convert(data: Any, cls: type):
    token = _trusted.set(True)
    try:
        return msgspec.convert(data, cls, strict=True)
    except msgspec.ValidationError as exc:
        raise _explain(exc, _WHERE[_base(cls)]) from None
    except RecursionError:
        raise SpecError(f"{_WHERE[_base(cls)]} is nested too deeply to read; it is corrupt or hostile. "
                        "Re-export the model") from None
    finally:
        _trusted.reset(token)


def _drop_new_defaults(cls: type, record: _Record, d: dict[str, Any]) -> None:
    """Fields added after schema version 1 are written only when set, so older edgecls still reads the spec."""
    v1 = _V1_FIELDS[_base(cls)]
    for f in msgspec.structs.fields(cls):
        value = getattr(record, f.name)
        if f.name not in v1:
            default = f.default if f.default is not msgspec.NODEFAULT else (
                f.default_factory() if f.default_factory is not msgspec.NODEFAULT else msgspec.NODEFAULT)
            if value == default:
                d.pop(f.encode_name, None)
        if isinstance(value, _Record):
            _drop_new_defaults(type(value), value, d[f.encode_name])
        elif isinstance(value, tuple) and value and isinstance(value[0], _Record):
            for item, sub in zip(value, d[f.encode_name]):
                _drop_new_defaults(type(item), item, sub)


class Preprocess(_Record):
    """How an RGB uint8 picture becomes the model's input, as data (one reference implementation in preprocess.py).

    center_crop: scale so the shorter side is size/crop_pct, then take the central size crop (timm/torchvision eval).
    stretch: resize the whole picture to size, ignoring aspect ratio.
    mean/std apply to pixel/255, per channel, in the model's channel order (`color`).
    """

    resize_mode: ResizeMode = "center_crop"
    crop_pct: Annotated[float, Meta(gt=0.0, le=1.0)] = 0.875
    interpolation: Interpolation = "bilinear"
    mean: Annotated[tuple[Mean, ...], Meta(min_length=1, max_length=3)] = (0.485, 0.456, 0.406)
    std: Annotated[tuple[Std, ...], Meta(min_length=1, max_length=3)] = (0.229, 0.224, 0.225)
    color: Color = "RGB"

    def _check(self) -> None:
        if len(self.mean) != len(self.std):
            raise SpecError(f"preprocess.mean {self.mean} and std {self.std} need the same length (one value per channel)")


class InputSpec(_Record):
    """The artifact's input tensor. normalized_in_graph: the graph itself scales/normalizes raw uint8 pixels."""

    height: Side = 224
    width: Side = 224
    channels: Literal[1, 3] = 3  # 1: grayscale, 3: color
    layout: Layout = "NCHW"
    dtype: Dtype = "float32"
    normalized_in_graph: bool = False
    batch: Annotated[int, Meta(ge=1, le=MAX_BATCH)] | None = 1  # None: dynamic batch

    def _check(self) -> None:
        if self.normalized_in_graph != (self.dtype == "uint8"):
            raise SpecError(
                "input.normalized_in_graph=true needs input.dtype='uint8' (raw pixels go in): set input.dtype='uint8', or "
                "normalized_in_graph=false for a graph that takes normalized float input" if self.normalized_in_graph
                else "input.dtype='uint8' needs normalized_in_graph=true: edgecls feeds uint8 only as raw pixels into a "
                     "graph that normalizes them itself; use float32/float16 for a graph that takes normalized input"
            )

    @property
    def shape(self) -> tuple[int, ...]:
        b = self.batch or 1
        if self.layout == "NCHW":
            return (b, self.channels, self.height, self.width)
        return (b, self.height, self.width, self.channels)


class LineageStep(_Record):
    """One thing done to the model: train, export, quantize, prune, distill..."""

    step: Name
    params: JsonObject = {}
    metrics: JsonObject = {}
    time: Annotated[str, Meta(max_length=64)] = ""
    edgecls_version: Annotated[str, Meta(max_length=64)] = ""

    def _check(self) -> None:
        if not self.time:
            msgspec.structs.force_setattr(self, "time", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
        if not self.edgecls_version:
            msgspec.structs.force_setattr(self, "edgecls_version", package_version())


ScoreName = Literal["msp", "max_logit", "energy"]
SCORE_NAMES = get_args(ScoreName)
MAX_BINS = 64
Finite = Annotated[float, Meta(ge=-1e6, le=1e6)]
Fraction = Annotated[float, Meta(ge=0.0, le=1.0)]
# the cheap input statistics drift monitoring keeps (edgecls.runtime.drift computes them); the score histogram is "confidence"
INPUT_STATS = ("brightness", "contrast", "sharpness", "noise", "red_balance", "blue_balance")
StatName = Literal["confidence", "brightness", "contrast", "sharpness", "noise", "red_balance", "blue_balance"]


class OpenSet(_Record):
    """Open-set rejection: an image whose `score` (higher = more like the training classes) is below `threshold` is
    answered "unknown". Fitted on validation images of the known classes so that `coverage` of them are kept.

    score: msp = max softmax(logits / spec.temperature); max_logit; energy = T * logsumexp(logits / T).
    """

    score: ScoreName
    threshold: Finite
    coverage: Annotated[float, Meta(gt=0.0, lt=1.0)] = 0.95
    n: Annotated[int, Meta(ge=0)] = 0  # validation images it was fitted on (0: set by hand)

    def _check(self) -> None:
        if self.score == "msp" and not 0.0 <= self.threshold <= 1.0:
            raise SpecError(f"open_set.threshold={self.threshold} is out of range for score 'msp' (a probability): "
                            "it must lie in [0, 1]; refit it (edgecls fit-reference) or fix the sidecar JSON")


class Histogram(_Record):
    """A reference distribution: `probs[i]` of the values fall in bin i of the bins cut at `edges` (len(probs) =
    len(edges) + 1; the first and last bins are open-ended). `mean` is the mean of the values."""

    edges: Annotated[tuple[Finite, ...], Meta(max_length=MAX_BINS - 1)]
    probs: Annotated[tuple[Fraction, ...], Meta(min_length=1, max_length=MAX_BINS)]
    mean: Finite = 0.0

    def _check(self) -> None:
        if len(self.probs) != len(self.edges) + 1:
            raise SpecError(f"histogram: {len(self.edges)} edges need {len(self.edges) + 1} probabilities, got "
                            f"{len(self.probs)}; refit the reference (edgecls fit-reference)")
        if any(b <= a for a, b in zip(self.edges, self.edges[1:])):
            raise SpecError("histogram edges must increase strictly; refit the reference (edgecls fit-reference)")
        if abs(sum(self.probs) - 1.0) > 1e-3:
            raise SpecError(f"histogram probabilities sum to {sum(self.probs):.4f}, not 1; refit the reference")


class Reference(_Record):
    """What the model saw at fit time, for drift monitoring: the class prior of its answers (known answers only),
    the rate of "unknown" answers, and a histogram per statistic (confidence and the cheap input statistics)."""

    n: Annotated[int, Meta(ge=1)]
    class_prior: Annotated[tuple[Fraction, ...], Meta(min_length=1, max_length=MAX_LABELS)]
    unknown_rate: Fraction = 0.0
    histograms: Annotated[dict[StatName, Histogram], Meta(max_length=16)] = {}

    def _check(self) -> None:
        if abs(sum(self.class_prior) - 1.0) > 1e-3:
            raise SpecError(f"reference.class_prior sums to {sum(self.class_prior):.4f}, not 1; refit the reference")


Task = Literal["multiclass", "multilabel"]
TASKS = get_args(Task)
# the CPU class an INT8 artifact was built for (edgecls.runtime.cpuinfo.TARGET_CPUS; --target-cpu)
TargetCpu = Literal["x86-vnni", "x86-avx2", "arm64"]
TARGET_CPU_NAMES = get_args(TargetCpu)


class ModelSpec(_Record):
    """What the model is, what its artifact takes, how pictures become that input and logits become scores.

    task: multiclass (one label per image: softmax(logits / temperature)) or multilabel (any number of labels:
    sigmoid(logits) per label, label i present when its score >= thresholds[i], fitted on validation for max F1).
    """

    arch: Name
    labels: Annotated[tuple[Label, ...], Meta(min_length=1, max_length=MAX_LABELS)]
    input: InputSpec = msgspec.field(default_factory=InputSpec)
    preprocess: Preprocess = msgspec.field(default_factory=Preprocess)
    temperature: Annotated[float, Meta(gt=0.0, le=1e4)] = 1.0
    metrics: JsonObject = {}
    lineage: Annotated[tuple[LineageStep, ...], Meta(max_length=MAX_LINEAGE)] = ()
    artifact: JsonObject = {}  # format-specific facts: format, precision, opset...
    schema_version: Annotated[int, Meta(ge=1, le=SCHEMA_VERSION)] = SCHEMA_VERSION
    open_set: OpenSet | None = None  # the rejection threshold fitted for THIS artifact (INT8 gets its own)
    reference: Reference | None = None  # drift monitoring's reference statistics, fitted with open_set
    task: Task = "multiclass"
    # multilabel: one sigmoid-score threshold per label (None: 0.5 each); fitted per artifact, as INT8 moves scores
    thresholds: Annotated[tuple[Fraction, ...], Meta(min_length=1, max_length=MAX_LABELS)] | None = None
    # INT8: the CPU class it was built for (its overflow handling follows it); the Predictor compares it with its CPU
    target_cpu: TargetCpu | None = None

    def _check(self) -> None:
        bad = next((x for x in self.labels if _CONTROL.search(x)), None)
        if bad is not None:  # the schema's pattern says the same, but a regex `$` lets a final newline through
            raise SpecError(f"spec.labels: {bad!r} holds a control character (newline, tab, escape...); labels are "
                            "written one per line and printed in terminals: remove it from the class name")
        if len(set(self.labels)) != len(self.labels):
            seen: set[str] = set()
            dup = sorted({x for x in self.labels if x in seen or seen.add(x)})[:5]
            raise SpecError(f"spec.labels has duplicates, e.g. {dup}; each class needs a distinct name")
        if self.reference is not None and len(self.reference.class_prior) != self.num_classes:
            raise SpecError(f"reference.class_prior has {len(self.reference.class_prior)} values for {self.num_classes} "
                            "labels; the reference belongs to another model: refit it (edgecls fit-reference)")
        if self.thresholds is not None and self.task != "multilabel":
            raise SpecError("spec.thresholds are per-label decision thresholds of a multi-label model, and this spec's "
                            f"task is {self.task!r}: remove thresholds, or set task='multilabel'")
        if self.thresholds is not None and len(self.thresholds) != self.num_classes:
            raise SpecError(f"spec.thresholds has {len(self.thresholds)} values for {self.num_classes} labels; give one "
                            "threshold in [0, 1] per label, in label order (or refit them on validation images)")
        if self.task == "multilabel" and self.open_set is not None:
            raise SpecError("open_set rejection scores softmax outputs of a single-label model; a multi-label model "
                            "answers 'none of the labels' by itself (every score under its threshold): remove open_set")
        if len(self.preprocess.mean) != self.input.channels:
            raise SpecError(
                f"preprocess.mean has {len(self.preprocess.mean)} values but input.channels={self.input.channels}; "
                "give one mean/std per input channel"
            )

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def multilabel(self) -> bool:
        return self.task == "multilabel"

    @property
    def label_thresholds(self) -> tuple[float, ...]:
        """The multi-label decision threshold of each label (0.5 where none was fitted)."""
        return self.thresholds if self.thresholds is not None else (0.5,) * self.num_classes

    def with_step(self, step: str, params: dict | None = None, metrics: dict | None = None, **changes) -> ModelSpec:
        entry = LineageStep(step=step, params=dict(params or {}), metrics=dict(metrics or {}))
        return self.replace(lineage=self.lineage + (entry,), **changes)

    # --- JSON -----------------------------------------------------------------------------------------------
    def to_json(self, indent: int | None = 2) -> str:
        try:
            return json.dumps(self.to_dict(), indent=indent, sort_keys=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise SpecError(f"spec cannot be written as JSON: {exc}; metrics/params must be plain numbers/strings") from exc

    @classmethod
    def from_dict(cls, data: Any) -> ModelSpec:
        if not isinstance(data, dict):
            raise SpecError(f"a spec must be a JSON object, got {type(data).__name__}; the file holds something else: "
                            "export the model with edgecls, which writes its spec")
        version = data.get("schema_version", None)
        if version is None:
            raise SpecError("spec has no 'schema_version'; it was not written by edgecls. Export the model with edgecls")
        if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
            raise SpecError(f"spec schema_version {version} is newer than this edgecls supports ({SCHEMA_VERSION}); upgrade edgecls")
        spec = _convert(data, cls)
        spec.to_json(indent=None)  # a spec read in must write out again: no inf/NaN in metrics, params or artifact
        return spec

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelSpec:
        if len(text) > MAX_SPEC_BYTES:
            raise SpecError(f"spec JSON is {len(text):,} bytes, over the {MAX_SPEC_BYTES:,} limit; the file is corrupt "
                            "or not an edgecls spec")
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SpecError(f"spec is not valid JSON: {exc}; the file is truncated or corrupt, re-export the model") from exc
        except RecursionError:
            raise SpecError("spec JSON is nested too deeply to read; it is corrupt or hostile. Re-export the model") from None
        return cls.from_dict(data)


_CHOICES = {  # field name -> the values it takes, named in errors
    "resize_mode": ", ".join(RESIZE_MODES), "interpolation": ", ".join(INTERPOLATIONS), "color": ", ".join(COLORS),
    "layout": ", ".join(LAYOUTS), "dtype": ", ".join(DTYPES) + " (uint8: raw pixels, normalized in the graph)",
    "channels": "1 (grayscale), 3 (color)", "score": ", ".join(SCORE_NAMES), "task": ", ".join(TASKS),
    "thresholds": "it takes one probability threshold in [0, 1] per label (label order), e.g. [0.5, 0.42, ...]",
    "target_cpu": ", ".join(TARGET_CPU_NAMES),
}


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a spec (as published in edgecls/runtime/spec.schema.json)."""
    schema = msgspec.json.schema(ModelSpec)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"edgecls ModelSpec, schema_version {SCHEMA_VERSION}"
    return schema

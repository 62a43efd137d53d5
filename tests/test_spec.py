import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgecls import InputSpec, ModelSpec, Preprocess, SpecError
from edgecls.spec import SCHEMA_VERSION


def make_spec(**kw):
    base = dict(arch="mobilenetv3_small_100", labels=("cat", "dog"), preprocess=Preprocess(mean=(0.5,) * 3, std=(0.25,) * 3))
    base.update(kw)
    return ModelSpec(**base)


def test_json_round_trip_is_exact():
    s = make_spec(temperature=1.7, metrics={"top1": 0.93}).with_step("train", {"epochs": 3}, {"val_top1": 0.9})
    s2 = ModelSpec.from_json(s.to_json())
    assert s2 == s
    assert s2.lineage[0].params == {"epochs": 3}
    assert json.loads(s.to_json())["schema_version"] == SCHEMA_VERSION


def test_unknown_field_is_named():
    d = make_spec().to_dict()
    d["preprocess"]["mena"] = [0.5, 0.5, 0.5]
    with pytest.raises(SpecError, match="mena"):
        ModelSpec.from_dict(d)
    d = make_spec().to_dict()
    d["colour"] = "RGB"
    with pytest.raises(SpecError, match="colour"):
        ModelSpec.from_dict(d)


@pytest.mark.parametrize(
    "path,value,needle",
    [
        (("preprocess", "interpolation"), "lanczos9", "interpolation"),
        (("preprocess", "std"), [0.5, 0.0, 0.5], "std"),
        (("preprocess", "mean"), [0.5, 0.5], "same"),
        (("preprocess", "crop_pct"), 1.5, "crop_pct"),
        (("input", "layout"), "CHWN", "layout"),
        (("input", "height"), -3, "height"),
        (("input", "channels"), 4, "channels"),
        (("temperature",), 0, "temperature"),
        (("labels",), ["a", "a"], "duplicates"),
        (("labels",), [], "labels"),
        (("labels",), "ab", "labels"),
        (("schema_version",), SCHEMA_VERSION + 1, "newer"),
    ],
)
def test_invalid_values_are_clear_errors(path, value, needle):
    d = make_spec().to_dict()
    node = d
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    with pytest.raises(SpecError, match=needle):
        ModelSpec.from_dict(d)


def test_missing_schema_version_and_bad_json():
    d = make_spec().to_dict()
    del d["schema_version"]
    with pytest.raises(SpecError, match="schema_version"):
        ModelSpec.from_dict(d)
    with pytest.raises(SpecError, match="JSON"):
        ModelSpec.from_json("{not json")
    with pytest.raises(SpecError, match="incomplete"):
        ModelSpec.from_dict({"schema_version": SCHEMA_VERSION, "labels": ["a"]})


def test_normalized_in_graph_needs_uint8():
    with pytest.raises(SpecError, match="uint8"):
        InputSpec(normalized_in_graph=True, dtype="float32")
    assert InputSpec(layout="NHWC", dtype="uint8", normalized_in_graph=True, batch=None).shape == (1, 224, 224, 3)


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=int(__import__("os").environ.get("EDGECLS_FUZZ_EXAMPLES", 300)), deadline=None)
@given(st.dictionaries(st.sampled_from(list(make_spec().to_dict()) + ["junk"]), json_values, max_size=8))
def test_fuzzed_spec_dicts_raise_only_spec_error(d):
    try:
        ModelSpec.from_dict(d)
    except SpecError:
        pass


@settings(max_examples=int(__import__("os").environ.get("EDGECLS_FUZZ_EXAMPLES", 300)), deadline=None)
@given(st.data())
def test_fuzzed_field_values_raise_only_spec_error(data):
    d = make_spec().to_dict()
    section = data.draw(st.sampled_from(["input", "preprocess", None]))
    target = d[section] if section else d
    key = data.draw(st.sampled_from(sorted(target)))
    target[key] = data.draw(json_values)
    try:
        s = ModelSpec.from_dict(d)
    except SpecError:
        return
    assert ModelSpec.from_json(s.to_json()) == s

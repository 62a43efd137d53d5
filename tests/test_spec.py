import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgecls import InputSpec, ModelSpec, Preprocess, SpecError
from edgecls.runtime.spec import SCHEMA_VERSION


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


json_values = st.recursive(  # up to 200 leaves, nesting as deep as the draws go
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=200,
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


# --- the schema: declared once, published, compatible ----------------------------------------------------------
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def test_published_json_schema_is_up_to_date_and_describes_real_specs():
    """edgecls/runtime/spec.schema.json is generated from the declaration (tools/spec_schema.py); a spec edgecls writes
    validates against it, and what the reader refuses, the schema refuses too."""
    import subprocess
    import sys

    import jsonschema

    r = subprocess.run([sys.executable, str(REPO / "tools" / "spec_schema.py"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    schema = json.loads((REPO / "edgecls" / "runtime" / "spec.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    good = json.loads(make_spec(temperature=1.3).with_step("train", {"epochs": 2}).to_json())
    jsonschema.validate(good, schema)
    for path, value in ((("input", "dtype"), "int8"), (("labels",), []), (("preprocess", "crop_pct"), 1.5), (("colour",), "RGB")):
        bad = json.loads(json.dumps(good))
        node = bad
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
        with pytest.raises(SpecError):
            ModelSpec.from_dict(bad)


def test_spec_json_written_by_edgecls_0_1_0_still_loads_and_writes_back_the_same():
    old = (REPO / "tests" / "data" / "spec_v1_edgecls_0.1.0.json").read_text()
    spec = ModelSpec.from_json(old)
    assert spec.labels == ("T-shirt/top", "Trouser", "Pullover") and spec.input.normalized_in_graph
    assert spec.lineage[2].metrics["tolerance"] is None and spec.lineage[3].params["after"] == {"macs": 12345, "params": 678}
    assert spec.to_json() == old


def test_an_optional_field_is_one_line_and_old_readers_still_read_specs_that_leave_it_unset():
    class FutureSpec(ModelSpec):
        open_set_threshold: float | None = None  # what a later issue adds

    base = make_spec()
    unset = FutureSpec(**{f: getattr(base, f) for f in base.__struct_fields__})
    assert "open_set_threshold" not in unset.to_dict()  # written only when set...
    assert ModelSpec.from_json(unset.to_json()) == base  # ...so this (older) reader still reads it
    assert FutureSpec.from_json(base.to_json()).open_set_threshold is None  # and old JSON loads in the new one
    set_ = unset.replace(open_set_threshold=0.4)
    assert set_.to_dict()["open_set_threshold"] == 0.4 and FutureSpec.from_json(set_.to_json()) == set_
    with pytest.raises(SpecError, match="open_set_threshold"):
        ModelSpec.from_json(set_.to_json())  # an older reader refuses what it does not know, naming it


def test_construction_and_replace_are_validated_like_reading():
    with pytest.raises(SpecError, match=r"spec\.arch.*Expected `str`"):
        ModelSpec(arch=3, labels=("a",))
    with pytest.raises(SpecError, match=r"spec\.labels.*Expected `array`"):
        ModelSpec(arch="a", labels="ab")  # was silently ('a', 'b')
    s = make_spec()
    with pytest.raises(SpecError, match="temperature"):
        s.replace(temperature=float("nan"))
    with pytest.raises(SpecError, match=r"input\.height.*<= 8192"):
        s.replace(input=s.input.replace(height=100_000))
    p = Preprocess(mean=[0.5, 0.5, 0.5], std=[1, 1, 1])
    assert p.mean == (0.5, 0.5, 0.5) and p.std == (1.0, 1.0, 1.0) and isinstance(p.std[0], float)


def test_int8_and_unfused_uint8_inputs_are_refused():
    """edgecls feeds either raw uint8 pixels into a graph that normalizes them, or normalized floats: an int8 input
    (it would need quantization parameters the spec does not carry) or a non-fused uint8 one could not work."""
    with pytest.raises(SpecError, match="choose one of float32, float16, uint8"):
        InputSpec(dtype="int8")
    with pytest.raises(SpecError, match="needs normalized_in_graph=true"):
        InputSpec(layout="NHWC", dtype="uint8")

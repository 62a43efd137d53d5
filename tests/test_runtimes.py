"""The one runtime table and the declared backend interface: every layer agrees with the table, every spelling
resolves, and every backend module and session provides what `Backend` and `Session` declare (on real sessions of
the runtimes installed here; TensorRT's through tests/fake_tensorrt.py in test_tensorrt_cpu.py)."""

from __future__ import annotations

import importlib
import inspect
import warnings
from pathlib import Path

import numpy as np
import pytest

import edgecls
from edgecls.errors import EdgeclsError, ModelFileError, UnknownRuntimeError, UnknownTargetError
from edgecls.runtime import runtimes, selfcheck
from edgecls.runtime.backends import Backend, Session, backend_for
from edgecls.runtime.runtimes import RUNTIMES, artifact_files, artifact_suffixes, for_suffix, resolve

BACKENDS_DIR = Path(runtimes.__file__).parent / "backends"
LABELS = ("a", "b", "c")


# --- the table ---------------------------------------------------------------------------------------------------
def test_every_suffix_maps_to_exactly_one_runtime():
    owners: dict[str, list[str]] = {}
    for r in RUNTIMES.values():
        assert r.suffixes and r.suffix == r.suffixes[0]
        for s in r.suffixes + r.companions:
            assert s.startswith(".") and s == s.lower(), f"{r.name}: {s!r} must be a lower-case suffix"
            owners.setdefault(s, []).append(r.name)
    assert {s: n for s, n in owners.items() if len(n) > 1} == {}
    for s, (name,) in owners.items():
        if s in artifact_suffixes():
            assert for_suffix(f"m{s}").name == name and for_suffix(f"M{s.upper()}").name == name
    assert set(artifact_suffixes()) == {s for r in RUNTIMES.values() for s in r.suffixes}
    assert for_suffix("model.bin") is None  # a companion is not an artifact of its own
    with pytest.raises(ModelFileError, match=r"suffix \.h5.*\.onnx \(onnxruntime\)"):
        backend_for("model.h5")


def test_every_spelling_resolves_to_its_row_and_to_no_other():
    seen: dict[str, str] = {}
    for r in RUNTIMES.values():
        assert r.spellings[0] == r.name and r.format in r.spellings
        for s in r.spellings:
            assert seen.setdefault(s, r.name) == r.name, f"{s!r} names both {seen[s]} and {r.name}"
            assert resolve(s) is r
    for alias, name in {"onnx": "onnxruntime", "ort": "onnxruntime", "ov": "openvino", "tflite": "litert",
                        "trt": "tensorrt", "pte": "executorch", "pt": "torch"}.items():
        assert resolve(alias).name == name


def test_an_unknown_name_is_a_typed_error_listing_the_choices():
    with pytest.raises(UnknownRuntimeError) as info:
        resolve("coreml")
    assert isinstance(info.value, EdgeclsError) and isinstance(info.value, ValueError)  # `except ValueError` still works
    for r in RUNTIMES.values():
        for s in r.spellings:
            assert s in str(info.value)
    with pytest.raises(UnknownRuntimeError, match="unknown backend 'ov' \\('ov' is an alias of runtime 'openvino': pass backend='openvino'\\); choose"):
        runtimes.runtime("ov")


def test_capabilities_other_layers_act_on():
    """Pinned, so changing one is a decision; compiled_cache is checked against OpenVINO itself further down and the
    default device against every real session."""
    assert [r.name for r in RUNTIMES.values() if r.compiled_cache] == ["openvino"]
    assert {r.name: r.device for r in RUNTIMES.values() if r.device != "cpu"} == {"tensorrt": "cuda"}
    assert RUNTIMES["openvino"].companions == (".bin",)


def test_artifact_files_come_with_their_companions(tmp_path):
    for name in ("m.xml", "m.bin", "m.onnx", "m.bin.json"):
        (tmp_path / name).write_bytes(b"x")
    assert artifact_files(tmp_path / "m.xml") == [tmp_path / "m.xml", tmp_path / "m.bin"]
    assert artifact_files(tmp_path / "m.onnx") == [tmp_path / "m.onnx"]
    assert artifact_files(tmp_path / "lone.xml") == [tmp_path / "lone.xml"]  # no .bin beside it: nothing to add


def test_formats_are_keyed_by_the_tables_format_names_and_take_its_rows():
    from edgecls.exporters import FORMATS, format_for

    assert list(FORMATS) == [r.format for r in RUNTIMES.values()]
    for row in RUNTIMES.values():
        key, fmt = row.format, FORMATS[row.format]
        assert fmt.runtime is row and fmt.name == key and fmt.suffixes == row.suffixes and fmt.suffix == row.suffix
        for s in row.suffixes:
            assert format_for(f"m{s}", None) is fmt and format_for(f"m{s}", key) is fmt


def test_targets_are_keyed_by_runtime_names_and_agree_with_the_table():
    from edgecls.compress.targets import TARGETS, target

    assert list(TARGETS) == [r.name for r in RUNTIMES.values() if r.int8]
    for name, t in TARGETS.items():
        row = RUNTIMES[name]
        assert t.name == name and t.runtime is row and t.suffix == row.suffix and t.device == row.device
        assert t.aliases == row.spellings[1:]
        for s in row.spellings:
            assert target(s) is t
    with pytest.raises(UnknownTargetError, match="'pte' \\(executorch\\) has no INT8 target.*known targets: onnxruntime"):
        target("pte")
    with pytest.raises(UnknownTargetError, match="unknown INT8 target 'coreml'; known targets: onnxruntime \\(onnx, ort\\)"):
        target("coreml")


def test_cli_flags_resolve_spellings_at_the_edge(capsys):
    from edgecls.cli.main import build_parser

    ap = build_parser()
    assert ap.parse_args(["predict", "m.onnx", "x.jpg", "--backend", "ort"]).backend == "onnxruntime"
    assert ap.parse_args(["info", "m.xml", "--backend", "ov"]).backend == "openvino"
    with pytest.raises(SystemExit):
        ap.parse_args(["info", "m.xml", "--backend", "coreml"])
    assert "unknown runtime 'coreml'; choose one of: torch (pt)" in capsys.readouterr().err
    assert ap.parse_args(["export", "x", "-f", "tflite", "executorch"]).format == ["tflite", "executorch"]


# --- the backend interface ---------------------------------------------------------------------------------------
def _params(fn, skip: int) -> list[tuple]:
    """(name, kind, default, annotation) of each parameter after the first `skip`; the path's annotation aside."""
    params = list(inspect.signature(fn).parameters.values())[skip:]
    return [(p.name, p.kind, p.default, p.annotation if p.name != "path" else None) for p in params]


def test_every_backend_module_has_a_row_and_the_declared_open():
    modules = {f"edgecls.runtime.backends.{p.stem}" for p in BACKENDS_DIR.glob("*.py")} - {
        "edgecls.runtime.backends.__init__", "edgecls.runtime.backends.cuda_rt"}  # cuda_rt: TensorRT's CUDA helpers
    assert modules <= {r.module for r in RUNTIMES.values()}, "a backend module without a row in the runtime table"
    for r in RUNTIMES.values():
        module = importlib.import_module(r.module)  # imports no runtime: each is imported on first open
        assert _params(module.open, 0) == _params(Backend.open, 1), f"{r.module}.open{inspect.signature(module.open)}"
        classes = [c for c in vars(module).values() if inspect.isclass(c) and issubclass(c, Session) and c is not Session]
        assert len(classes) == 1 and not inspect.isabstract(classes[0]), f"{r.module}: one concrete Session subclass"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """A small random-weight classifier written by export to every runtime installed here (not verified: random
    weights, and verification is export's test, not this one's)."""
    model, spec = edgecls.create_model("mobilenetv3_small_050", labels=LABELS, input_size=64)
    d = tmp_path_factory.mktemp("tiny")
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for r in RUNTIMES.values():
            if r.name != "tensorrt":  # needs an NVIDIA GPU: test_tensorrt_cpu.py opens one through the fake
                out[r.name] = edgecls.export(model, spec, d / f"tiny{r.suffix}", verify=False).path
    return out


@pytest.mark.parametrize("name", [r.name for r in RUNTIMES.values() if r.name != "tensorrt"])
def test_every_session_provides_every_declared_attribute(tiny, name):
    pred = edgecls.Predictor(tiny[name])
    s = pred.session
    assert pred.runtime is RUNTIMES[name] and pred.backend_name == name and isinstance(s, Session)
    check_declared(s, pred.spec)
    assert pred.device == s.device == RUNTIMES[name].device
    logits = s.run(pred.preprocess(np.zeros((80, 90, 3), np.uint8), color="RGB"))
    assert np.asarray(logits).shape == (1, len(LABELS))
    # the record comes from the file's own slot when the session read one, else from the companion file export wrote
    assert selfcheck.find(tiny[name], s)[1] == ("embedded" if s.selfcheck_blob else selfcheck.companion_path(tiny[name]).name)
    pred.close()
    with pytest.raises(edgecls.InferenceError, match="closed"):
        pred.session


def check_declared(s: Session, spec) -> None:
    """Every attribute Session declares, with the type it declares, as this session reports it."""
    declared = set(Session.__annotations__)
    assert declared == {"input_shape", "num_classes", "max_batch", "input_dtypes", "device", "embedded_spec",
                        "selfcheck_blob"}, "Session changed: update this check"
    missing = [a for a in sorted(declared) if not hasattr(s, a)]
    assert not missing, f"{type(s).__name__} lacks {missing}"
    assert isinstance(s.input_shape, tuple) and len(s.input_shape) == 4
    assert s.num_classes in (None, spec.num_classes)
    assert s.max_batch is None or (isinstance(s.max_batch, int) and s.max_batch > 0)
    assert isinstance(s.input_dtypes, tuple) and spec.input.dtype in s.input_dtypes
    assert isinstance(s.device, str) and s.device
    assert s.embedded_spec is None or isinstance(s.embedded_spec, edgecls.ModelSpec)
    assert s.selfcheck_blob is None or isinstance(s.selfcheck_blob, bytes)
    assert type(s).run is not Session.run


def test_cache_dir_goes_only_to_a_runtime_with_a_compiled_cache(tiny, tmp_path):
    cached = edgecls.Predictor(tiny["openvino"], cache_dir=tmp_path / "ov")
    assert cached.session.loaded_from_cache is False and any((tmp_path / "ov").iterdir())
    for r in RUNTIMES.values():
        if r.name in tiny and not r.compiled_cache:
            with pytest.raises(edgecls.InputError, match=f"{r.name} loads .* without a compile step"):
                edgecls.Predictor(tiny[r.name], cache_dir=tmp_path / "x")

"""On-device self-check: every export carries reference inputs and the float model's answers; the device's runtime
must reproduce them within the precision's export tolerances. Shown catching a real failure on a real CPU."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest

import edgecls
from edgecls.runtime import selfcheck
from edgecls.runtime.cpuinfo import int8_saturates


@pytest.mark.parametrize("key", ["pt", "onnx", "onnx_dyn", "onnx_f32", "xml", "tflite"])
def test_every_export_checks_itself(key, artifacts):
    pred = edgecls.Predictor(artifacts[key])
    r = pred.run_self_check()
    assert r.status == "pass" and r.source == "embedded", str(r)
    assert r.figures["n"] == selfcheck.N_INPUTS and r.figures["rel_diff"] <= selfcheck.REL_TOLERANCE["fp32"]
    assert r.build_max_abs_diff is not None and r.build_max_abs_diff < 1e-3  # the build machine's own run, same CPU
    assert selfcheck.SELFCHECK_KEY not in pred.spec.to_json() and len(pred.spec.to_json()) < 30_000  # spec stays small
    assert edgecls.Predictor(artifacts[key], self_check=True).self_check_result.passed


def test_record_is_lossless_pixels_and_float_answers(artifacts, lite0, photos):
    from edgecls.exporters.verify import reference_pixels, torch_logits

    pred = edgecls.Predictor(artifacts["onnx"])
    rec = selfcheck.unpack(pred._session.selfcheck_blob)
    model, spec = lite0
    names = rec["meta"]["names"]
    px = reference_pixels({n: photos[n] for n in names}, spec)
    assert np.array_equal(rec["pixels"], np.stack(px))  # exact uint8 crops, not a lossy re-encoding
    assert np.allclose(rec["logits"], torch_logits(model, spec, px), atol=1e-5)
    assert rec["meta"]["precision"] == "fp32"


def test_a_wrong_runtime_fails_the_check_and_the_cli_says_so(artifacts, tmp_path, capsys):
    """A record whose answers the runtime does not reproduce (here: another model's logits) fails, and
    `edgecls check` exits 1 with the reason; Predictor(self_check=True) raises."""
    from edgecls.cli.main import main
    from edgecls.exporters.selfcheck import embed

    good = tmp_path / "good.onnx"
    shutil.copy(artifacts["onnx"], good)
    assert main(["check", str(good)]) == 0
    bad = tmp_path / "bad.onnx"
    shutil.copy(artifacts["onnx"], bad)
    rec = selfcheck.unpack(edgecls.Predictor(bad)._session.selfcheck_blob)
    embed(bad, "onnx", selfcheck.pack(rec["pixels"], rec["logits"][:, ::-1], "fp32", rec["meta"]["names"]))
    capsys.readouterr()
    assert main(["check", str(bad), "--json"]) == 1
    out = capsys.readouterr().out
    assert '"status": "fail"' in out and "top-1 agreement" in out
    with pytest.raises(edgecls.errors.SelfCheckError, match="self-check FAIL"):
        edgecls.Predictor(bad, self_check=True)


def test_no_record_is_reported_not_passed(artifacts, tmp_path):
    import onnx

    m = onnx.load(str(artifacts["onnx"]))
    keep = [p for p in m.metadata_props if p.key != selfcheck.SELFCHECK_KEY]
    del m.metadata_props[:]
    m.metadata_props.extend(keep)
    onnx.save(m, str(tmp_path / "old.onnx"))
    assert edgecls.Predictor(tmp_path / "old.onnx").run_self_check().status == "no-data"
    with pytest.raises(edgecls.errors.SelfCheckError, match="no reference data"):
        edgecls.Predictor(tmp_path / "old.onnx", self_check=True)


@pytest.fixture(scope="module")
def int8_pair(artifacts, tmp_path_factory):
    """ORT INT8 of the pretrained Lite0 with full-range weights and with the overflow fix (7-bit weights)."""
    from edgecls.compress.ptq import quantize_file
    from edgecls.data.samples import photo_crops
    from edgecls.runtime import preprocess as P

    src = artifacts["onnx"]
    spec = edgecls.Predictor(src).spec
    calib = np.concatenate([P.reference(c, "RGB", spec) for c in photo_crops(32, seed=0)])
    d = tmp_path_factory.mktemp("int8_selfcheck")
    out = {}
    for fix in ("disable", "enable"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_file("onnx", src, d / f"lite0_int8_{fix}.onnx", spec, calib, overflow_fix=fix)
        out[fix] = d / f"lite0_int8_{fix}.onnx"
    return out


@pytest.mark.slow
def test_self_check_catches_saturating_int8_on_a_cpu_without_vnni(int8_pair):
    """Full-range INT8 on an AVX2 CPU without VNNI: ONNX Runtime's default U8S8 kernels saturate, the runtime no longer
    computes the Q/DQ graph it was given, and the check says so. The Predictor turns on ONNX Runtime's U8U8 path for
    such weights on these CPUs, so through it both builds pass; 7-bit weights (overflow fix) pass either way. With
    VNNI everything passes: there is nothing to catch."""
    import onnxruntime as ort

    full = edgecls.Predictor(int8_pair["disable"])
    fixed = edgecls.Predictor(int8_pair["enable"]).run_self_check()
    assert fixed.passed and fixed.graph_rel_diff < selfcheck.GRAPH_TOLERANCE["int8"], str(fixed)
    remedied = full.run_self_check()
    assert remedied.passed and remedied.graph_rel_diff < selfcheck.GRAPH_TOLERANCE["int8"], str(remedied)
    raw = ort.InferenceSession(str(int8_pair["disable"]), providers=["CPUExecutionProvider"])  # ONNX Runtime's defaults
    blob, source = selfcheck.find(full.path, full._session)
    plain = selfcheck.run(lambda x: np.concatenate([raw.run(None, {"input": x[i : i + 1]})[0] for i in range(len(x))]),
                          full.spec, blob, source)
    if int8_saturates():
        assert plain.status == "fail", str(plain)
        assert plain.graph_rel_diff > 2 * selfcheck.GRAPH_TOLERANCE["int8"]
        assert any("VNNI" in why for why in plain.reasons)
    else:
        assert plain.passed, f"a VNNI CPU should run full-range int8 as written: {plain}"


def test_int8_inherits_the_float_reference(int8_pair):
    rec = selfcheck.unpack(edgecls.Predictor(int8_pair["enable"])._session.selfcheck_blob)
    assert rec["meta"]["precision"] == "int8" and "graph_logits" in rec and "build_logits" not in rec


def test_openvino_low_precision_hint_is_caught_or_not_applied(artifacts):
    """OpenVINO on a CPU with bf16/fp16 units computes in that precision when asked (and by default, on AMX/bf16 CPUs,
    unless edgecls pins f32): an FP32 artifact then moves ~1e-2 and fails its fp32 self-check. On a CPU without them
    OpenVINO silently keeps f32 (it reports the hint it really uses), so there is nothing to catch here."""
    from edgecls.runtime.backends.openvino import OvSession

    pred = edgecls.Predictor(artifacts["xml"])
    blob, source = selfcheck.find(pred.path, pred._session)
    for hint in ("bf16", "f16"):
        s = OvSession(artifacts["xml"], inference_precision=hint)
        used = str(s._compiled.get_property("INFERENCE_PRECISION_HINT"))
        r = selfcheck.run(lambda x: np.concatenate([s.run(x[i : i + 1]) for i in range(len(x))]), pred.spec, blob, source)
        if "32" in used:
            assert r.passed and r.figures["max_abs_diff"] == pytest.approx(pred.run_self_check().figures["max_abs_diff"])
        else:
            assert r.status == "fail" and "rel logit diff" in r.reasons[0], f"{hint} ran as {used}: {r}"


def test_int8_far_from_float_but_computing_its_graph_passes_with_a_note(int8_pair):
    """An INT8 that carries its graph's exact answers is judged on this device by them: the distance to the float
    model is its quantization's (judged by the accuracy budget at build time), so it is a note, not a failure. The
    demo's ORT INT8 (300 crops) is rel 0.304 from the float model while computing its graph to 0.03 and used to FAIL."""
    pred = edgecls.Predictor(int8_pair["enable"])
    rec = selfcheck.unpack(pred._session.selfcheck_blob)
    far = rec["logits"] + 0.5 * np.abs(rec["logits"]).max() * np.eye(rec["logits"].shape[1])[(rec["logits"].argmax(1) + 1) % rec["logits"].shape[1]]
    blob = selfcheck.pack(rec["pixels"], far, "int8", rec["meta"].get("names", []), graph_logits=rec["graph_logits"])
    res = selfcheck.run(pred.infer, pred.spec, blob, "test")
    assert res.passed and res.notes and "rel logit diff" in res.notes[0], str(res)
    assert "not this device" in str(res)
    # the same float distance without the graph's answers is still a failure (nothing else says what is right)
    bare = selfcheck.pack(rec["pixels"], far, "int8", rec["meta"].get("names", []))
    assert selfcheck.run(pred.infer, pred.spec, bare, "test").status == "fail"

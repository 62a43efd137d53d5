"""Open-set rejection on real images: pretrained Lite0 (ImageNet classes) knows the ants/bees photos and not upscaled
32x32 CIFAR-10 pictures. Threshold fitted per artifact, stored in its spec, applied on two runtimes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import edgecls
from edgecls.errors import InputError, SpecError
from edgecls.openset import auroc, evaluate_ood, fit_reference, fit_threshold, fpr_at_tpr, list_images
from edgecls.runtime.scores import ood_score, softmax
from edgecls.runtime.spec import OpenSet


def _copy_artifact(src: Path, dst_dir: Path) -> Path:
    """A private copy (fitting rewrites the artifact; the session fixture's files stay untouched)."""
    dst_dir.mkdir(parents=True, exist_ok=True)
    for f in src.parent.glob(src.stem + ".*"):
        if f.name == src.name or f.name == src.name + ".json" or (src.suffix == ".xml" and f.suffix == ".bin"):
            shutil.copy2(f, dst_dir / f.name)
    return dst_dir / src.name


@pytest.fixture(scope="module")
def fitted(artifacts, hymenoptera, tmp_path_factory):
    """ONNX copy of pretrained Lite0 with its threshold (msp, 95%) fitted on the hymenoptera validation photos."""
    onnx = _copy_artifact(Path(artifacts["onnx_dyn"]), tmp_path_factory.mktemp("openset_onnx"))
    spec = fit_reference(onnx, hymenoptera / "val")
    return onnx, spec


@pytest.mark.slow
def test_threshold_is_stored_and_rejects_unknown_images(fitted, hymenoptera, cifar10_small):
    onnx, spec = fitted
    known_files = list_images(hymenoptera / "val")
    o = spec.open_set
    assert o.score == "msp" and o.coverage == 0.95 and o.n == len(known_files) == 153
    # stored in the file itself and in the sidecar, and what a fresh Predictor reads
    side = edgecls.ModelSpec.from_json((onnx.parent / (onnx.name + ".json")).read_text())
    assert side.open_set == o
    pred = edgecls.Predictor(onnx, reject=True)
    assert pred.open_set == o and pred.spec.lineage[-1].step == "fit_reference"

    known = pred.predict([str(f) for f in known_files])
    kept = np.mean([p.known for p in known])
    assert kept >= 0.95  # the images it was fitted on: the coverage holds exactly
    unknown_files = [str(f) for f in list_images(cifar10_small[1])]
    plain = edgecls.Predictor(onnx).predict(unknown_files)
    rejected = pred.predict(unknown_files)
    share = np.mean([not p.known for p in rejected])
    assert share > 0.4, f"only {share:.0%} of the CIFAR-10 pictures were rejected"
    for p, q in zip(rejected, plain):
        assert p.closest.index == q.index and p.score == pytest.approx(q.score)  # the closest class is kept
        assert p.ood_score == pytest.approx(q.score)  # msp at the spec's temperature is the top probability
        if p.known:
            assert (p.index, p.label) == (q.index, q.label)
        else:
            assert (p.index, p.label) == (-1, "unknown") and p.ood_score < o.threshold
            assert "unknown" in repr(p) and q.label in repr(p)


@pytest.mark.slow
def test_each_artifact_gets_its_own_threshold_on_another_runtime(artifacts, fitted, hymenoptera, cifar10_small, tmp_path):
    """OpenVINO runs the same logits path: its own fit lands in its own spec, and it rejects the same images."""
    onnx, spec = fitted
    xml = _copy_artifact(Path(artifacts["xml"]), tmp_path)
    ov_spec = fit_reference(xml, hymenoptera / "val")
    assert edgecls.Predictor(xml).spec.open_set == ov_spec.open_set  # embedded in the IR's rt_info
    assert ov_spec.open_set.threshold == pytest.approx(spec.open_set.threshold, abs=2e-3)  # both FP32
    files = [str(f) for f in list_images(cifar10_small[1])]
    a = [p.known for p in edgecls.Predictor(onnx, reject=True).predict(files)]
    b = [p.known for p in edgecls.Predictor(xml, reject=True).predict(files)]
    assert np.mean(np.array(a) == np.array(b)) >= 0.95


@pytest.mark.slow
def test_evaluate_ood_reports_auroc_fpr_and_rejection(fitted, hymenoptera, cifar10_small):
    onnx, spec = fitted
    r = evaluate_ood(onnx, hymenoptera / "val", [cifar10_small[1]], n_boot=200)
    row = r["sets"][str(cifar10_small[1])]
    assert row["n"] == 60 and r["known"]["n"] == 153
    m = row["scores"]["msp"]
    assert 0.8 < m["auroc"] <= 1.0 and m["auroc_interval"][0] <= m["auroc"] <= m["auroc_interval"][1]
    assert 0.0 <= m["fpr_at_95tpr"] < 0.7
    assert r["known"]["rejected"]["value"] <= 0.05  # the fitting images again
    assert row["rejected"]["k"] == round(row["rejected"]["value"] * 60) and row["rejected"]["value"] > 0.4


def test_logit_scores_reject_through_postprocess(fitted, photos):
    onnx, _ = fitted
    base = edgecls.Predictor(onnx)
    logits = base.infer(np.concatenate([base.preprocess(img, color="RGB") for img in photos.values()]))
    energy = base.ood_scores(logits, "energy")
    thr = float(np.median(energy))
    pred = edgecls.Predictor(onnx, reject=OpenSet(score="energy", threshold=thr))
    preds = pred.postprocess(logits)
    assert [p.known for p in preds] == list(energy >= thr) and not all(p.known for p in preds)
    with pytest.raises(InputError, match="needs the logits"):
        pred.to_predictions(pred.scores(logits))  # energy cannot come from probabilities


def test_stream_rejects_with_smoothing_and_a_logit_score(fitted, photos):
    """stream(smoothing=...) smooths probabilities; rejection still judges each frame by its own energy score."""
    onnx, _ = fitted
    frames = list(photos.values())
    base = edgecls.Predictor(onnx)
    energy = base.ood_scores(np.concatenate([base.infer(base.preprocess(f, color="RGB")) for f in frames]), "energy")
    pred = edgecls.Predictor(onnx, reject=OpenSet(score="energy", threshold=float(np.median(energy))))
    got = [r.prediction for r in pred.stream(iter(frames), color="RGB", smoothing=0.5)]
    assert [p.known for p in got] == list(energy >= np.median(energy))
    assert [p.ood_score for p in got] == pytest.approx(list(energy), rel=1e-5)


def test_scores_match_their_definitions():
    from scipy.special import logsumexp

    rng = np.random.default_rng(0)
    z = rng.normal(0, 3, (50, 7))
    assert np.allclose(ood_score(z, "msp", 2.0), softmax(z, 2.0).max(1))
    assert np.allclose(ood_score(z, "max_logit"), z.max(1))
    assert np.allclose(ood_score(z, "energy", 2.0), 2.0 * logsumexp(z / 2.0, axis=1))
    assert np.allclose(ood_score(z * 0 + 1e4, "energy"), 1e4 + np.log(7))  # no overflow


def test_auroc_and_fpr_against_sklearn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 20, 300).astype(float), rng.integers(-5, 12, 200).astype(float)  # many ties
    assert auroc(a, b) == pytest.approx(roc_auc_score(np.r_[np.ones(300), np.zeros(200)], np.r_[a, b]))
    t = fit_threshold(a, 0.95)
    assert (a >= t).mean() >= 0.95 and (a > t).mean() < 0.95  # the largest threshold that keeps 95%
    assert fpr_at_tpr(a, b) == pytest.approx((b >= t).mean())


@pytest.mark.slow
def test_bad_inputs_are_typed_errors(fitted, hymenoptera, tmp_path, lite0):
    onnx, spec = fitted
    with pytest.raises(SpecError, match="out of range for score 'msp'"):
        OpenSet(score="msp", threshold=1.5)
    with pytest.raises(SpecError, match="choose one of msp, max_logit, energy"):
        OpenSet(score="entropy", threshold=0.5)
    with pytest.raises(InputError, match="unknown open-set score"):
        ood_score(np.zeros((1, 3)), "entropy")
    with pytest.raises(InputError, match="unknown open-set score"):
        fit_reference(onnx, hymenoptera / "val", score="entropy", write=False)
    with pytest.raises(InputError, match="strictly between 0 and 1"):
        fit_reference(onnx, hymenoptera / "val", coverage=1.0, write=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="holds no images"):
        evaluate_ood(onnx, hymenoptera / "val", [empty])
    with pytest.raises(InputError, match="is not a folder"):
        evaluate_ood(onnx, hymenoptera / "val", [tmp_path / "missing"])
    # a threshold out of range in a sidecar is refused at load, naming the field
    bare = edgecls.export(*lite0, tmp_path / "bare.pt").path
    with pytest.raises(SpecError, match="reject=True needs an open-set threshold"):
        edgecls.Predictor(bare, reject=True)
    side = bare.parent / (bare.name + ".json")
    d = json.loads(side.read_text())
    d["open_set"] = {"score": "msp", "threshold": 1.7, "coverage": 0.95, "n": 10}
    side.write_text(json.dumps(d))
    with pytest.raises(SpecError, match="open_set"):
        edgecls.ModelSpec.from_json(side.read_text())
    with pytest.raises(InputError, match="reject="):
        edgecls.Predictor(onnx, reject="yes")


@pytest.mark.slow
def test_cli_eval_and_errors(fitted, hymenoptera, cifar10_small, tmp_path, capsys):
    from edgecls.cli.main import main

    onnx, _ = fitted
    val = str(cifar10_small[1])  # the same folder on both sides: the plumbing, with a known answer (AUROC 0.5)
    assert main(["eval", str(onnx), "--data", val, "--ood", val, "--score", "msp", "--n-boot", "50", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert set(r["sets"][val]["scores"]) == {"msp"} and r["sets"][val]["scores"]["msp"]["auroc"] == 0.5
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["eval", str(onnx), "--data", str(hymenoptera / "val"), "--ood", str(empty)]) == 2
    assert capsys.readouterr().err.startswith("edgecls: error: OOD folder")

    own = _copy_artifact(onnx, tmp_path / "own")
    assert main(["fit-reference", str(own), "--data", val, "--coverage", "0.9", "--score", "max_logit"]) == 0
    assert "max_logit threshold" in capsys.readouterr().out
    o = edgecls.Predictor(own).spec.open_set
    assert (o.score, o.coverage, o.n) == ("max_logit", 0.9, 60)
    assert main(["fit-reference", str(own), "--data", val, "--coverage", "1.5"]) == 2
    assert "strictly between 0 and 1" in capsys.readouterr().err
    img = str(list_images(cifar10_small[1])[0])
    assert main(["predict", str(own), img, "--reject", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["known"] in (True, False) and (row["label"] == "unknown") == (not row["known"])


def test_fit_reference_reads_grayscale_photos_like_training(artifacts, hymenoptera, tmp_path):
    """A validation folder of real photos holds grayscale JPEGs (23 of 1,000 ImageNet photos): fit-reference reads
    them as training does (converted to RGB) instead of stopping at the first one."""
    from PIL import Image

    folder = tmp_path / "val" / "ants"
    folder.mkdir(parents=True)
    photos = sorted((hymenoptera / "val" / "ants").glob("*.jpg"))[:6]
    for k, src in enumerate(photos):
        im = Image.open(src)
        (im.convert("L") if k % 2 else im.convert("RGB")).save(folder / src.name)
    spec = fit_reference(Path(artifacts["onnx_dyn"]), tmp_path / "val", write=False)
    assert spec.open_set.n == 6 and spec.reference.n == 6

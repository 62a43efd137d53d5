"""Multi-label: manifests, metrics, training, the spec's thresholds through every CPU runtime, INT8 judged in mAP.

Data: 2x2 mosaics of the real CIFAR-10 fixture images (tools/make_mosaics.py), train and val cut from disjoint files.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

import edgecls
from edgecls.data.manifest import ManifestError, load_multilabel, read_manifest
from edgecls.errors import InputError, SpecError
from edgecls.evaluation.multilabel import average_precision, f1, fit_thresholds, map_budget, mean_ap
from edgecls.runtime.spec import ModelSpec, OpenSet
from tools.make_mosaics import build


@pytest.fixture(scope="module")
def mosaics(cifar10_small, tmp_path_factory) -> tuple[Path, Path]:
    """(train, val) mosaic folders with labels.csv: 200 and 60 mosaics of 64x64 px."""
    train_src, val_src = cifar10_small
    d = tmp_path_factory.mktemp("mosaics")
    build(train_src, d / "train", 200, seed=0)
    build(val_src, d / "val", 60, seed=1)
    return d / "train", d / "val"


# --- manifests ------------------------------------------------------------------------------------------------
def test_csv_and_json_manifests_give_the_same_multi_hot_labels(mosaics, tmp_path):
    train, _ = mosaics
    ds = load_multilabel(train)
    rows = [line.split(",") for line in (train / "labels.csv").read_text().splitlines()[1:]]
    assert ds.classes == ("airplane", "automobile", "cat", "ship")  # the sorted union of the labels written
    assert ds.labels.shape == (200, 4) and ds.labels.dtype == np.uint8
    for (file, labels), path, row in zip(rows, ds.images, ds.labels):  # each row's labels, independently re-read
        assert Path(path).name == file
        assert {ds.classes[i] for i in np.flatnonzero(row)} == set(labels.split(";"))
    # every image of the mosaic tool holds 1 to 4 of the classes, all four counts occur
    assert set(ds.labels.sum(1).tolist()) == {1, 2, 3, 4}
    (tmp_path / "j").mkdir()
    for file, _ in rows:
        shutil.copy(train / file, tmp_path / "j" / file)
    (tmp_path / "j" / "labels.json").write_text(json.dumps({f: labels.split(";") for f, labels in rows}))
    js = load_multilabel(tmp_path / "j")
    assert js.classes == ds.classes and np.array_equal(js.labels, ds.labels)
    given = ("ship", "cat", "automobile", "airplane", "truck")  # a given class list keeps its order and may add classes
    gs = load_multilabel(train, classes=given)
    assert gs.classes == given and np.array_equal(gs.labels[:, :4], ds.labels[:, ::-1]) and not gs.labels[:, 4].any()


def _folder(tmp_path: Path, image: Path, text: str, name: str = "labels.csv") -> Path:
    d = tmp_path / "data"
    d.mkdir(exist_ok=True)
    for f in ("a.png", "b.png"):
        shutil.copy(image, d / f)
    (d / name).write_text(text)
    return d


@pytest.mark.parametrize("text,name,kwargs,message", [
    ("file,labels\na.png,cat\nc.png,dog\n", "labels.csv", {}, "do not exist"),
    ("file,labels\na.png,cat\nb.png,\n", "labels.csv", {}, "b.png has no labels"),
    ("file,labels\na.png,cat\nb.png,dog\n", "labels.csv", {"classes": ("cat", "bird")}, "not in the class list"),
    ("file,labels\na.png,cat,dog\n", "labels.csv", {}, "3 fields, expected 2"),
    ("name,tags\na.png,cat\n", "labels.csv", {}, "header `file,labels`"),
    ("file,labels\na.png,cat;;dog\n", "labels.csv", {}, "empty label name"),
    ("file,labels\na.png,cat\na.png,dog\n", "labels.csv", {}, "listed more than once"),
    ("file,labels\na.png,cat;cat\n", "labels.csv", {}, "listed twice for the same file"),
    ('{"a.png": ["cat"], "a.png": ["dog"]}', "labels.json", {}, "listed twice"),
    ('{"a.png": "cat"}', "labels.json", {}, "maps to a list of labels"),
    ('["a.png"]', "labels.json", {}, "one JSON object"),
    ('{"a.png": ["cat"]', "labels.json", {}, "not valid JSON"),
    ("file,labels\na.png,cat\n", "labels.csv", {"classes": ("cat", "cat")}, "distinct class names"),
])
def test_bad_manifests_are_typed_errors_saying_what_is_wrong(cifar10_small, tmp_path, text, name, kwargs, message):
    image = next(iter(sorted(cifar10_small[0].rglob("*.jpg"))))
    d = _folder(tmp_path, image, text, name)
    with pytest.raises(ManifestError, match=message):
        load_multilabel(d, **kwargs)


def test_empty_label_sets_load_when_allowed_and_manifest_lookup_errors(cifar10_small, tmp_path):
    image = next(iter(sorted(cifar10_small[0].rglob("*.jpg"))))
    d = _folder(tmp_path, image, "file,labels\na.png,cat\nb.png,\n")
    ds = load_multilabel(d, allow_empty=True)
    assert ds.classes == ("cat",) and ds.labels.tolist() == [[1], [0]]
    (d / "labels.json").write_text("{}")
    with pytest.raises(ManifestError, match="both labels.csv and labels.json"):
        load_multilabel(d)
    with pytest.raises(ManifestError, match="has no manifest"):
        load_multilabel(tmp_path / "data" / "..")
    assert read_manifest(d / "labels.csv").labels == (("cat",), ())


# --- metrics --------------------------------------------------------------------------------------------------
def test_average_precision_is_sklearns_including_ties():
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(0)
    y = rng.random((400, 6)) < rng.uniform(0.05, 0.6, 6)
    s = np.round(rng.random((400, 6)) * 0.6 + y * rng.uniform(0.1, 0.5, 6), 2)  # rounded: many tied scores
    for k in range(6):
        assert average_precision(y[:, k], s[:, k]) == pytest.approx(average_precision_score(y[:, k], s[:, k]), abs=1e-12)
    assert mean_ap(y, s) == pytest.approx(average_precision_score(y, s, average="macro"), abs=1e-12)


def test_fitted_thresholds_reach_each_labels_best_f1():
    rng = np.random.default_rng(1)
    y = rng.random((300, 5)) < 0.3
    s = np.clip(rng.normal(0.3 + 0.35 * y, 0.2), 0, 1)
    t = fit_thresholds(y, s)
    assert ((t >= 0) & (t <= 1)).all()
    for k in range(5):  # brute force over every distinct score as the cut
        best = max(f1(y[:, [k]], (s[:, k] >= c)[:, None])[0] for c in np.unique(s[:, k]))
        assert f1(y[:, [k]], (s[:, k] >= t[k])[:, None])[0] == pytest.approx(best)


# --- the spec -------------------------------------------------------------------------------------------------
def test_spec_thresholds_are_bounded_one_per_label_and_only_multilabel():
    spec = ModelSpec(arch="efficientnet_lite0", labels=("a", "b", "c"))
    ml = spec.replace(task="multilabel", thresholds=(0.2, 0.5, 0.9))
    assert ModelSpec.from_json(ml.to_json()) == ml
    assert "thresholds" not in json.loads(spec.to_json())  # older edgecls still reads a single-label spec
    base = json.loads(ml.to_json())
    for bad, why in [([0.2, 1.5, 0.1], r"thresholds\[1\].*<= 1"), ([-0.1, 0.5, 0.1], r"thresholds\[0\].*>= 0"),
                     ([0.2, 0.5], "2 values for 3 labels"), ([0.2, "x", 0.1], r"thresholds\[1\]")]:
        with pytest.raises(SpecError, match=why):
            ModelSpec.from_dict({**base, "thresholds": bad})
    with pytest.raises(SpecError, match=r"thresholds\[1\]"):  # NaN is not in [0, 1]
        ModelSpec.from_json(ml.to_json().replace("0.5", "NaN"))
    with pytest.raises(SpecError, match="task is 'multiclass'"):
        ModelSpec.from_dict({**base, "task": "multiclass"})
    with pytest.raises(SpecError, match="multiclass, multilabel"):
        ModelSpec.from_dict({**base, "task": "multi-label"})
    with pytest.raises(SpecError, match="remove open_set"):
        ml.replace(open_set=OpenSet(score="msp", threshold=0.5))


def test_multilabel_config_refuses_what_does_not_apply(mosaics):
    from edgecls.train import TrainConfig

    for opts, why in [({"mixup": 0.2}, "mixup and cutmix"), ({"balance": "sampler"}, "balance"),
                      ({"head_init": "linear_probe"}, "softmax classifier"), ({"teacher": "t.pt"}, "distillation"),
                      ({"task": "multi"}, "use multiclass or multilabel")]:
        with pytest.raises(ValueError, match=why):
            TrainConfig(**{"task": "multilabel", "data": str(mosaics[0]), **opts})
    with pytest.raises(ValueError, match="multilabel settings"):
        TrainConfig(data=str(mosaics[0]), manifest="labels.csv")
    assert TrainConfig(task="multilabel", data="x", classes=["b", "a"]).class_list == ("b", "a")


# --- training, export, Predictor --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(mosaics, tmp_path_factory):
    from edgecls.train import TrainConfig, train

    train_dir, val_dir = mosaics
    cfg = TrainConfig(task="multilabel", data=str(train_dir), val_dir=str(val_dir), arch="efficientnet_lite0",
                      pretrained=True, input_size=96, freeze_stages=5, cache_features=True, epochs=4, batch_size=32,
                      lr=3e-3, warmup_epochs=0.5, ema=False, threads=2, out_dir=str(tmp_path_factory.mktemp("mltrain")))
    return train(cfg)


@pytest.mark.slow
def test_a_small_multilabel_run_learns_and_records_task_and_thresholds(trained, mosaics):
    spec = trained.spec
    assert spec.task == "multilabel" and spec.labels == ("airplane", "automobile", "cat", "ship")
    assert len(spec.thresholds) == 4 and all(0 <= t <= 1 for t in spec.thresholds)
    val = load_multilabel(mosaics[1])
    y = val.labels.astype(bool)
    chance = float(y.mean(0).mean())  # a constant score's AP is the label's prevalence
    pred = edgecls.Predictor(trained.best_path)
    scores = np.stack([[t.score for t in sorted(p.topk, key=lambda t: t.index)]
                       for p in pred.predict(list(val.images), topk=4)])
    m = mean_ap(y, scores)  # through the Predictor, recomputed here
    assert m == pytest.approx(trained.metrics["summary"]["val_map"], abs=1e-4)
    assert m > chance + 0.15, (m, chance)
    lo, hi = trained.metrics["summary"]["val_map_interval"]
    assert lo < m < hi and trained.metrics["val"]["n"] == 60
    # thresholds are the max-F1 ones of these validation scores
    assert np.allclose(spec.thresholds, fit_thresholds(y, scores), atol=1e-4)


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    d = tmp_path_factory.mktemp("mlexport")
    model, spec = trained.model, trained.spec
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {"pt": trained.best_path, **{fmt: edgecls.export(model, spec, d / f"ml.{fmt}").path
                                            for fmt in ("onnx", "xml", "tflite")}}


@pytest.mark.slow
def test_thresholds_travel_in_every_format_and_labels_agree_across_runtimes(exported, trained, mosaics):
    images = sorted(mosaics[1].glob("*.png"))[:24]
    want = trained.spec.thresholds
    results = {}
    for name, path in exported.items():
        if name != "pt":  # the embedded copy, not the sidecar: remove the sidecar
            Path(str(path) + ".json").unlink()
        with edgecls.Predictor(path) as pred:
            assert pred.spec.task == "multilabel" and pred.spec.thresholds == want, name
            results[name] = pred.predict(images, topk=4)
    ref = results["pt"]
    for name, preds in results.items():
        for r, p in zip(ref, preds):
            assert p.multilabel and p.label == p.topk[0].label and p.index == p.topk[0].index
            scores = {t.label: t.score for t in r.topk}
            assert {t.label for t in p.labels} == {t.label for t in r.labels} or any(
                abs(scores[lab] - want[i]) < 0.01 for i, lab in enumerate(trained.spec.labels)), (name, p, r)
            got = {t.label: t.score for t in p.topk}
            assert max(abs(got[k] - scores[k]) for k in scores) < 0.01, name
    # each label in Prediction.labels is at/above its threshold, each one left out below it
    for p in ref:
        on = {t.label for t in p.labels}
        for t in p.topk:
            assert (t.label in on) == (t.score >= want[t.index])
    assert any(len(p.labels) > 1 for p in ref) and "labels=[" in repr(ref[0])


def test_threshold_overrides_and_their_errors(exported, mosaics):
    image = sorted(mosaics[1].glob("*.png"))[0]
    with edgecls.Predictor(exported["onnx"]) as pred:
        assert len(pred.predict(image, thresholds=0.0).labels) == 4
        assert "airplane" in {t.label for t in pred.predict(image, thresholds={"airplane": 0.0}).labels}
        for bad, why in [(1.5, r"in \[0, 1\]"), ([0.5, 0.5], "2 value"), ({"dog": 0.5}, "does not have"),
                         (float("nan"), r"in \[0, 1\]")]:
            with pytest.raises(InputError, match=why):
                pred.predict(image, thresholds=bad)
        with pytest.raises(InputError, match="multi-label"):
            edgecls.Predictor(exported["onnx"], reject=True)
    with edgecls.Predictor(exported["onnx"], thresholds=1.0) as strict:
        assert all(t.score >= 1.0 for t in strict.predict(image).labels)


@pytest.mark.slow
def test_thresholds_are_refused_on_a_single_label_model(lite0, photos, tmp_path):
    pt = edgecls.export(*lite0, tmp_path / "lite0.pt").path
    with edgecls.Predictor(pt, color="RGB") as pred:
        with pytest.raises(InputError, match="multi-label models"):
            pred.predict(photos["chelsea"], thresholds=0.5)
        p = pred.predict(photos["chelsea"])
        assert p.labels == (p.topk[0],) and not p.multilabel
    with pytest.raises(InputError, match="multi-label models"):
        edgecls.Predictor(pt, thresholds=0.5)


# --- INT8 under an mAP budget ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_int8_budget_is_judged_in_map_and_thresholds_are_refit_per_artifact(trained, mosaics, tmp_path):
    from sklearn.metrics import average_precision_score

    from edgecls.compress import CompressConfig, run
    from edgecls.compress.data import predict_logits
    from edgecls.runtime.scores import sigmoid

    train_dir, val_dir = mosaics
    cfg = CompressConfig.from_dict({
        "model": str(trained.best_path), "data": str(train_dir), "val_dir": str(val_dir), "out_dir": str(tmp_path),
        "threads": 2, "steps": [{"quantize": {"backends": ["onnx", "openvino"], "max_drop": 10.0,
                                              "calibration": 100}}]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = run(cfg)
    val = load_multilabel(val_dir, classes=trained.spec.labels)
    y = val.labels.astype(bool)
    rows = report["steps"][0]["rows"]
    floats = {r["backend"]: r for r in rows if r["precision"] == "fp32"}
    finals = [r for r in rows if r["precision"] == "int8" and r["final"]]
    # LiteRT takes the same path (a row of the targets table); its two conversions cost ~1 min, so its multi-label
    # INT8 is measured by benchmarks/multilabel_mosaics.py instead of here
    assert {r["backend"] for r in finals} == {"onnx", "openvino"}
    for r in finals:
        s_int8 = sigmoid(predict_logits(r["artifact"], val))
        s_fp32 = sigmoid(predict_logits(floats[r["backend"]]["artifact"], val))
        m8, m32 = average_precision_score(y, s_int8), average_precision_score(y, s_fp32)
        assert r["val_map"] == pytest.approx(m8, abs=1e-9) and r["val_top1"] is None and "mcnemar_p" not in r
        assert r["drop_pts"] == pytest.approx((m32 - m8) * 100, abs=1e-3)
        lo, hi = r["drop_interval"]
        assert lo <= r["drop_pts"] <= hi and r["within_budget"] == (r["drop_pts"] <= 10.0)
        assert "mAP budget" in r["budget"]
        # the artifact carries thresholds fitted on its own scores, embedded and in the sidecar
        int8_spec = edgecls.Predictor(r["artifact"]).spec
        assert np.allclose(int8_spec.thresholds, fit_thresholds(y, s_int8))
        assert int8_spec.lineage[-1].step == "fit_thresholds" and int8_spec.artifact.get("precision") == "int8"
    # the decision itself: a model whose scores lose their ranking is over budget, significantly
    s = sigmoid(predict_logits(finals[0]["artifact"], val))
    noisy = np.clip(s + np.random.default_rng(0).normal(0, 0.4, s.shape), 0, 1)
    d = map_budget(y, s, noisy, 1.0, n_boot=300)
    assert not d.within and d.significant and d.drop_pts > 1.0


def test_cli_eval_and_predict_on_a_multilabel_model(exported, trained, mosaics, capsys):
    from edgecls.cli.main import main

    _, val_dir = mosaics
    assert main(["eval", str(exported["onnx"]), "--data", str(val_dir), "--json", "--n-boot", "200"]) == 0
    r = json.loads(capsys.readouterr().out)
    val = load_multilabel(val_dir, classes=trained.spec.labels)
    from edgecls.compress.data import predict_logits
    from edgecls.runtime.scores import sigmoid

    s = sigmoid(predict_logits(exported["onnx"], val))
    y = val.labels.astype(bool)
    assert r["n"] == 60 and r["backend"] == "onnxruntime"
    assert r["map"]["value"] == pytest.approx(mean_ap(y, s))
    assert r["micro_f1"]["value"] == pytest.approx(f1(y, s >= np.asarray(trained.spec.thresholds))[0])
    image = str(sorted(val_dir.glob("*.png"))[0])
    assert main(["predict", str(exported["onnx"]), image, "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert {x["label"] for x in row["labels"]} == {trained.spec.labels[i] for i in np.flatnonzero(
        s[0] >= np.asarray(trained.spec.thresholds))}
    assert main(["eval", str(exported["onnx"]), "--data", str(val_dir), "--ood", str(val_dir)]) == 2
    assert "multi-label models are evaluated by mAP" in capsys.readouterr().err


# --- edgecls deploy and edgecls-bench on multi-label data -------------------------------------------------------
@pytest.fixture(scope="module")
def ml_deployed(mosaics, tmp_path_factory):
    train_dir, val_dir = mosaics
    out = tmp_path_factory.mktemp("mldeploy")
    settings = dict(val_dir=str(val_dir), targets=["onnxruntime", "openvino"], max_drop=15.0, out=str(out),
                    train={"epochs": 3, "input_size": 96, "freeze_stages": 5, "cache_features": True, "lr": 3e-3},
                    calibration=16, verify_images=4, bench_runs=5, bench_warmup=1, bench_cold=False, threads=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small calibration sets warn, on purpose
        return edgecls.deploy(train_dir, **settings), out, settings


def _scores(path, images) -> np.ndarray:
    from edgecls.runtime.scores import sigmoid

    with edgecls.Predictor(path) as pred:
        return sigmoid(np.concatenate([pred.infer(pred.preprocess(im, color="RGB")) for im in images]))


@pytest.mark.slow
def test_deploy_trains_exports_and_judges_multilabel_data_in_map(ml_deployed, mosaics):
    """Catches: deploy refusing manifests or training single-label, artifacts scored by top-1, a stored mAP that is
    not the artifact's (recomputed here through the Predictor from the files), INT8 judged by McNemar instead of
    the paired mAP bootstrap, INT8 keeping the float model's thresholds, a report with the single-label sections."""
    from edgecls.runtime.artifacts import read_sidecar

    r, out, _ = ml_deployed
    val = load_multilabel(mosaics[1])
    y = val.labels.astype(bool)
    images = [val.pixels(i) for i in range(len(val))]
    rep = json.loads((out / "report.json").read_text())
    assert {"per_class", "int8", "artifacts"} <= set(rep["sections"]) and "calibration" not in rep["sections"]
    model = r.stages["train"].result
    assert model["task"] == "multilabel" and model["summary"]["val_map"] > y.mean() + 0.1  # chance: the prevalence
    fspec = read_sidecar(out / "model" / "model.pt")
    for target, suffix in (("onnxruntime", ".onnx"), ("openvino", ".xml")):
        f, q = (r.stages[f"{p}-{target}"].result for p in ("fp32", "int8"))
        assert "val_top1" not in f and "val_top1" not in q
        for res, prec in ((f, "fp32"), (q, "int8")):
            path = out / target / prec / f"{prec}{suffix}"
            mine = mean_ap(y, _scores(path, images))
            assert res["val_map"] == pytest.approx(mine, abs=0.01), (target, prec)
            lo, hi = res["val_interval"]
            assert lo <= res["val_map"] <= hi and res["n"] == len(val)
        chosen = next(a for a in q["attempts"] if a["final"])
        assert chosen["drop_pts"] == pytest.approx(100 * (f["val_map"] - q["val_map"]), abs=0.01)
        assert chosen["within_budget"] == (chosen["drop_pts"] <= 15.0) and len(chosen["drop_interval"]) == 2
        assert read_sidecar(out / target / "fp32" / f"fp32{suffix}").thresholds == fspec.thresholds
        qspec = read_sidecar(out / target / "int8" / f"int8{suffix}")
        assert qspec.task == "multilabel" and qspec.lineage[-1].step == "fit_thresholds"
        assert qspec.open_set is None and qspec.reference is None  # single-label only, said in the run's log
    pick = r.picks["overall"]
    assert "mAP" in pick["why"] and pick["acceptable"]
    assert "mAP" in rep["titles"]["int8"] and rep["sections"]["int8"]
    ids = [s.id for s in r.report_data]  # per_label and int8_map in per_class's and int8's places, once each
    assert list(rep["titles"]) == ids and len(set(ids)) == len(ids)
    assert next(s for s in r.report_data if s.id == "per_class").title == "Per label (validation)"


def test_deploy_resumes_multilabel_and_refuses_what_does_not_apply(ml_deployed, mosaics, tmp_path):
    from edgecls.data.manifest import ManifestError
    from edgecls.deployment import DeployError

    r, out, settings = ml_deployed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = edgecls.deploy(mosaics[0], **settings)
    assert all(st.reused for st in again.stages.values()), [k for k, st in again.stages.items() if not st.reused]
    assert again.picks["overall"]["path"] == r.picks["overall"]["path"]
    with pytest.raises(DeployError, match="single-label"):
        edgecls.deploy(mosaics[0], **{**settings, "out": str(tmp_path / "o1"), "ood": [str(mosaics[1])]})
    broken = tmp_path / "broken"
    shutil.copytree(mosaics[0], broken)
    with open(broken / "labels.csv", "a") as fh:
        fh.write("gone.png,cat\n")
    with pytest.raises(ManifestError, match="gone.png"):
        edgecls.deploy(broken, **{**settings, "out": str(tmp_path / "o2")})


def test_bench_measures_map_of_a_multilabel_artifact(ml_deployed, mosaics, tmp_path):
    """The mAP column: the bench's figure is the deploy's on the same images and runtime; the result validates
    against the bench schema; a single-label folder or Fashion-MNIST is an error row, not a crash."""
    from edgecls.bench.fingerprint import fingerprint
    from edgecls.bench.runner import BenchOptions, bench_artifact
    from edgecls.report import bench as bench_report

    r, out, _ = ml_deployed
    path = out / "openvino" / "int8" / "int8.xml"
    opts = BenchOptions(warmup=1, runs=3, threads=[0], batch_sizes=[1], cold_start=False, accuracy=str(mosaics[1]))
    rows = bench_artifact(path, opts)
    acc = rows[0]["accuracy"]
    assert acc["map"] == pytest.approx(r.stages["int8-openvino"].result["val_map"], abs=0.01) and acc["n"] == 60
    result = bench_report.make_result(rows, fingerprint([0]), opts.as_dict())
    bench_report.write_reports(result, tmp_path)
    f = bench_report.flat(bench_report.load_result(tmp_path / "bench.json")["results"][0])
    assert f["top1"] is None and f["map"] == acc["map"] and f["map_lo"] <= f["map"] <= f["map_hi"]
    assert bench_report.top1_text(f).startswith("mAP ")
    best, why = bench_report.pick_under_budget(result, 1e9)
    assert best is not None and "mAP" in why
    fm = bench_report.flat(bench_artifact(path, BenchOptions(warmup=1, runs=3, threads=[0], batch_sizes=[1],
                                                             cold_start=False, accuracy="fashion-mnist"))[0])
    assert fm["map"] is None and fm["top1"] is None

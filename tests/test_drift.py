"""Drift monitoring on real photos: the reference is fitted on the hymenoptera validation photos; the same photos,
shuffled, raise nothing; darkened, blurred or noisy photos and an ants-only stream raise an event naming the cause."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import edgecls
from edgecls.drift import DriftMonitor, input_stats, psi, read_log
from edgecls.errors import InputError, SpecError
from edgecls.openset import fit_reference, list_images


@pytest.fixture(scope="module")
def monitored(artifacts, hymenoptera, tmp_path_factory):
    d = tmp_path_factory.mktemp("drift")
    src = Path(artifacts["onnx_dyn"])
    for f in (src, src.parent / (src.name + ".json")):
        shutil.copy2(f, d / f.name)
    onnx = d / src.name
    fit_reference(onnx, hymenoptera / "val")
    files = list_images(hymenoptera / "val")
    rng = np.random.default_rng(0)
    frames = [np.asarray(Image.open(files[i]).convert("RGB")) for i in rng.permutation(len(files))]
    return onnx, files, frames


def _run(onnx, frames, tmp_path, window=len, **kw):
    events = []
    pred = edgecls.Predictor(onnx, reject=True)
    log = tmp_path / "drift.jsonl"
    mon = pred.start_monitor(window=window(frames) if callable(window) else window, on_drift=events.append, log=log, **kw)
    for i in range(0, len(frames), 32):
        pred.predict(frames[i : i + 32], color="RGB")
    return mon, events, log


def test_in_distribution_stream_raises_nothing(monitored, tmp_path):
    """The reference's own photos in another order and batching: fit-time and run-time statistics are one code path."""
    onnx, files, frames = monitored
    mon, events, log = _run(onnx, frames, tmp_path)
    assert events == [] and mon.frames == len(frames) == 153
    rec = read_log(log)
    assert len(rec) == 1 and rec[0]["events"] == []
    assert max(rec[0]["psi"].values()) < 0.02, rec[0]["psi"]
    assert rec[0]["now"]["brightness"] == pytest.approx(rec[0]["ref"]["brightness"], rel=1e-3)


@pytest.mark.parametrize("shift, statistic, sign", [
    ("dark", "brightness", "-"),
    ("blur", "sharpness", "-"),
    ("noise", "noise", "+"),
])
def test_image_shifts_raise_an_event_naming_the_cause(monitored, tmp_path, shift, statistic, sign):
    import cv2

    onnx, files, frames = monitored
    rng = np.random.default_rng(1)
    change = {
        "dark": lambda f: (f * 0.4).astype(np.uint8),
        "blur": lambda f: cv2.GaussianBlur(f, (0, 0), 4),
        "noise": lambda f: np.clip(f + rng.normal(0, 25, f.shape), 0, 255).astype(np.uint8),
    }[shift]
    mon, events, log = _run(onnx, [change(f) for f in frames[:100]], tmp_path)
    assert events, f"no drift event for {shift}: {mon.history[-1]['psi']}"
    names = [e.statistic for e in events]
    top = events[0]  # events come largest PSI first
    assert statistic in names[:2], names
    e = next(e for e in events if e.statistic == statistic)
    assert e.psi > 0.25 and f"{sign}" in e.message.split("%")[0] and e.frames == 100
    assert read_log(log)[0]["events"][0]["statistic"] == top.statistic


def test_class_prior_change_is_named_and_streams_feed_the_monitor(monitored, tmp_path):
    onnx, files, frames = monitored
    ants = [np.asarray(Image.open(f).convert("RGB")) for f in files if "/ants/" in str(f)]
    pred = edgecls.Predictor(onnx)
    events = []
    mon = pred.start_monitor(window=len(ants), on_drift=events.append)
    results = list(pred.stream(iter(ants), color="RGB"))
    assert len(results) == mon.frames == len(ants)
    prior = next(e for e in events if e.statistic == "class_prior")
    assert "'ant'" in prior.message or "'bee'" in prior.message, prior.message


def test_input_stats_measure_what_they_name(lite0, photos):
    """On a float NCHW input (the monitor undoes the normalization; the fused uint8 path is the ONNX tests')."""
    from edgecls.preprocess import fast

    _, spec = lite0
    pred_input = fast(photos["astronaut"], "RGB", spec)
    s = input_stats(np.concatenate([pred_input, pred_input]), spec)
    base = input_stats(pred_input, spec)
    dark = input_stats(fast((photos["astronaut"] * 0.5).astype(np.uint8), "RGB", spec), spec)
    assert dark["brightness"][0] == pytest.approx(base["brightness"][0] * 0.5, rel=0.03)
    assert dark["contrast"][0] == pytest.approx(base["contrast"][0] * 0.5, rel=0.05)
    assert len(s["brightness"]) == 2
    red = photos["astronaut"].copy()
    red[..., 0] = np.clip(red[..., 0] * 1.5, 0, 255)
    assert input_stats(fast(red, "RGB", spec), spec)["red_balance"][0] > base["red_balance"][0] + 0.2


def test_psi_and_bad_inputs(monitored, lite0, tmp_path, capsys):
    assert psi(np.array([10, 10]), np.array([0.5, 0.5])) == pytest.approx(0.0)
    assert psi(np.array([90, 10]), np.array([0.5, 0.5])) == pytest.approx(0.4 * np.log(0.9 / 0.5) + 0.4 * np.log(0.5 / 0.1), rel=0.05)
    _, spec = lite0
    with pytest.raises(SpecError, match="no drift reference"):
        DriftMonitor(spec)
    onnx, _, frames = monitored
    pred = edgecls.Predictor(onnx)
    with pytest.raises(ValueError, match="window"):
        pred.start_monitor(window=5)
    with pytest.raises(InputError, match="not found"):
        read_log(tmp_path / "none.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"frames": 1, "psi": {}}\n{"frames": 2, "ps')
    with pytest.raises(InputError, match="bad.jsonl:2"):
        read_log(bad)

    from edgecls.cli import main

    log = tmp_path / "dark.jsonl"
    mon = pred.start_monitor(window=40, log=log)
    pred.predict([(f * 0.3).astype(np.uint8) for f in frames[:80]], color="RGB")
    assert len(mon.history) == 2 and len(json.loads(log.read_text().splitlines()[1])["events"]) >= 1
    assert main(["monitor", str(log), "--fail-on-drift"]) == 1
    out = capsys.readouterr().out
    assert "2 windows, 80 frames" in out and "brightness" in out and "mean brightness -" in out
    assert main(["monitor", str(bad)]) == 2
    png = tmp_path / "history.png"
    assert main(["monitor", str(log), "--plot", str(png)]) == 0
    img = np.asarray(Image.open(png).convert("RGB"))
    band = (img[..., 0] > 240) & (np.abs(img[..., 1].astype(int) - 191) < 12) & (np.abs(img[..., 2].astype(int) - 191) < 12)
    assert img.shape[0] > 400 and band.sum() > 500  # the windows with events are marked (red at 25% over white)
    assert main(["monitor", str(log), "--plot", str(tmp_path / "history.txt")]) == 2

"""Drift monitoring on real photos: the reference is fitted on the hymenoptera validation photos; the same photos,
shuffled, and the training photos (fresh ones from the same population) raise nothing; darkened, blurred or noisy
photos and an ants-only or ants-heavy stream raise an event naming the cause."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import edgecls
from edgecls.errors import InputError, SpecError
from edgecls.openset import fit_reference, list_images
from edgecls.runtime.drift import DriftMonitor, chi2_isf, chi2_sf, histogram, input_stats, null_threshold, psi, read_log


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


@pytest.mark.slow
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
    from edgecls.runtime.preprocess import fast

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


@pytest.mark.slow
def test_psi_and_bad_inputs(monitored, lite0, tmp_path, capsys):
    assert psi(np.array([10, 10]), np.array([0.5, 0.5])) == pytest.approx(0.0)
    assert psi(np.array([90, 10]), np.array([0.5, 0.5])) == pytest.approx(0.4 * np.log(0.9 / 0.5) + 0.4 * np.log(0.5 / 0.1), rel=0.05)
    _, spec = lite0
    with pytest.raises(SpecError, match="no drift reference"):
        DriftMonitor(spec)
    onnx, _, frames = monitored
    pred = edgecls.Predictor(onnx)
    with pytest.raises(InputError, match="window"):
        pred.start_monitor(window=5)
    with pytest.raises(InputError, match="not found"):
        read_log(tmp_path / "none.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"frames": 1, "psi": {}}\n{"frames": 2, "ps')
    with pytest.raises(InputError, match="bad.jsonl:2"):
        read_log(bad)

    from edgecls.cli.main import main

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


@pytest.fixture(scope="module")
def fresh(monitored, hymenoptera):
    """Model inputs and logits of the hymenoptera training photos: the same population as the validation photos the
    reference was fitted on, but other pictures (a field that has not changed)."""
    onnx, _, _ = monitored
    pred = edgecls.Predictor(onnx, reject=True)
    files = list_images(hymenoptera / "train")
    x = np.concatenate([pred.preprocess(f) for f in files])
    return pred, x, pred.infer(x)


@pytest.mark.slow
def test_fresh_in_distribution_photos_raise_nothing_where_a_fixed_psi_threshold_cried_wolf(fresh):
    """153 reference photos spread over 20 class bins (ImageNet answers for ants and bees: 'bee', 'ant' and many rare
    ones): PSI of the class histogram is about 19 * (1/244 + 1/153) = 0.2 with nothing changed, so the old fixed 0.25
    fires on a fresh sample of the same photos. The thresholds from PSI's null distribution account for that."""
    pred, x, z = fresh
    mon = pred.start_monitor(window=len(x))
    assert mon.update(x, z) == [] and mon.events == []
    t = mon.thresholds
    assert t["class_prior"] > t["brightness"] > t["class_share"] > 0  # 19, 9 and 1 degrees of freedom
    rec = mon.history[0]
    assert rec["false_alarm_rate"] == 1e-4 and rec["psi_threshold"] is None
    assert all(rec["psi"][k] < t[k] for k in t) and set(rec["thresholds"]) == set(rec["psi"])
    old = pred.start_monitor(window=len(x), psi_threshold=0.25)  # the old rule, still there on request
    assert [e.statistic for e in old.update(x, z)] == ["class_prior"]
    assert "class_share" not in old.thresholds and old.history[0]["thresholds"]["class_prior"] == 0.25


def test_a_class_becoming_more_frequent_is_caught_and_named(fresh):
    """The same fresh photos, those the model answers 'ant' for drawn three times as often (43% of the answers -> 69%;
    the reference saw 38%): the per-class share test fires and names 'ant' first, as more frequent."""
    pred, x, z = fresh
    ant = pred.labels.index("ant")
    ants = np.flatnonzero(z.argmax(1) == ant)
    order = np.random.default_rng(0).permutation(np.r_[np.arange(len(x)), ants, ants])
    events = []
    mon = pred.start_monitor(window=len(order), on_drift=events.append)
    for i in range(0, len(order), 50):
        mon.update(x[order[i : i + 50]], z[order[i : i + 50]])
    assert mon.frames == len(order) and events
    share = next(e for e in events if e.statistic == "class_share")
    assert share.psi > share.threshold == round(mon.thresholds["class_share"], 4)
    assert share.message.startswith("'ant' 1.8x more frequent (69% vs 38%)"), share.message
    assert {e.statistic for e in events} <= {"class_share", "class_prior"}  # no picture changed


def test_chi_square_tails_match_published_tables():
    """Critical values from standard chi-square tables (e.g. NIST/SEMATECH e-Handbook, table 1.3.6.7.4)."""
    for p, dof, x in ((0.05, 1, 3.841), (0.01, 1, 6.635), (0.001, 1, 10.828), (0.05, 2, 5.991), (0.01, 5, 15.086),
                      (0.001, 9, 27.877), (0.05, 19, 30.144), (0.001, 20, 45.315)):
        assert chi2_isf(p, dof) == pytest.approx(x, abs=6e-4), (p, dof)
        assert chi2_sf(x, dof) == pytest.approx(p, rel=2e-3)
    assert null_threshold(10, 250, 900, 0.001) == pytest.approx((1 / 250 + 1 / 900) * 27.877, rel=1e-4)
    assert null_threshold(1, 250, 900, 0.001) == float("inf")  # one bin: nothing can move


def test_thresholds_hold_their_false_alarm_rate_on_real_statistics(fresh):
    """The null the thresholds assume, on real values: the brightness of the 244 photos is the population; a reference
    of 150 and windows of 100 are drawn from it, the reference's decile histogram fitted as build_reference does.
    The share of windows over the threshold for a 2% false-alarm rate is about 2% (it is 20% without the reference's
    own sampling error, 1/m, in the threshold)."""
    pred, x, _ = fresh
    values = input_stats(x, pred.spec)["brightness"]
    rng = np.random.default_rng(0)
    over, trials = 0, 4000
    for _ in range(trials):
        h = histogram(rng.choice(values, 150))
        w = rng.choice(values, 100)
        counts = np.bincount(np.searchsorted(h.edges, w, side="right"), minlength=len(h.probs))
        over += psi(counts, h.probs, 150) > null_threshold(len(h.probs), 100, 150, 0.02)
    assert 0.6 * 0.02 < over / trials < 1.5 * 0.02, over / trials


@pytest.mark.parametrize("options, match", [
    ({"false_alarm_rate": 0}, "false_alarm_rate=0 .* strictly between 0 and 1"),
    ({"false_alarm_rate": 1.0}, "false_alarm_rate"),
    ({"false_alarm_rate": float("nan")}, "false_alarm_rate"),
    ({"false_alarm_rate": "0.01"}, "false_alarm_rate"),
    ({"false_alarm_rate": True}, "false_alarm_rate"),
    ({"psi_threshold": 0}, "psi_threshold=0 must be a number > 0"),
    ({"psi_threshold": float("inf")}, "psi_threshold"),
    ({"psi_threshold": 0.25, "false_alarm_rate": 1e-3}, "not both"),
    ({"window": 19}, "at least 20 frames"),
    ({"window": 250.0}, "window"),
])
def test_bad_monitor_settings_are_refused_with_what_to_give(fresh, options, match):
    pred, _, _ = fresh
    with pytest.raises(InputError, match=match):
        pred.start_monitor(**options)


def test_logs_written_before_per_statistic_thresholds_still_print_and_plot(tmp_path, capsys):
    """A log of the fixed-threshold monitor (no 'thresholds', 'false_alarm_rate', or event 'threshold') next to one
    of today's records: `edgecls monitor` and --plot read both, each against its own threshold."""
    from edgecls.cli.main import main

    old = {"time": "2026-11-30T10:00:00+00:00", "frames": 0, "window": 250, "psi_threshold": 0.25,
           "psi": {"brightness": 0.4, "class_prior": 0.1}, "now": {"brightness": 60.0}, "ref": {"brightness": 120.0},
           "events": [{"statistic": "brightness", "psi": 0.4, "message": "mean brightness -50% (60 vs 120)",
                       "frames": 250, "window": 250}]}
    new = {"time": "2026-12-01T10:00:00+00:00", "frames": 250, "window": 250, "psi_threshold": None,
           "false_alarm_rate": 1e-4, "thresholds": {"brightness": 0.2011, "class_prior": 0.158, "class_share": 0.1173},
           "psi": {"brightness": 0.05, "class_prior": 0.17, "class_share": 0.15}, "now": {"brightness": 118.0},
           "ref": {"brightness": 120.0}, "events": [
               {"statistic": "class_share", "psi": 0.15, "message": "'cat' 2.0x more frequent (34% vs 17%)",
                "frames": 500, "window": 250, "threshold": 0.1173}]}
    log = tmp_path / "drift.jsonl"
    log.write_text(json.dumps(old) + "\n" + json.dumps(new) + "\n")
    assert main(["monitor", str(log)]) == 0
    out = capsys.readouterr().out
    assert "2 windows, 250 frames; thresholds for a false-alarm rate of 0.0001 per window" in out
    assert "frame 250: brightness PSI 0.40: mean brightness -50%" in out  # the old event, no threshold to show
    assert "frame 500: class_share PSI 0.15 > 0.12: 'cat' 2.0x more frequent" in out
    assert "class_prior" in out and "threshold 0.158" in out
    assert main(["monitor", str(log), "--plot", str(tmp_path / "h.png")]) == 0
    log.write_text(json.dumps(old) + "\n")
    assert main(["monitor", str(log)]) == 0
    assert "fixed PSI threshold 0.25" in capsys.readouterr().out

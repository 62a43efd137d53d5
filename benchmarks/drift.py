"""Drift monitoring on CIFAR-10: quiet on in-distribution streams, an event within 500 frames on real shifts.

    PYTHONPATH=. nice -n 19 .venv/bin/python benchmarks/openset_cifar.py     # first: trains, exports, fits
    PYTHONPATH=. nice -n 19 .venv/bin/python benchmarks/drift.py [--model .data/openset_cifar/cifar6.onnx]

The model and its reference come from benchmarks/openset_cifar.py: 6 known CIFAR-10 classes, the reference fitted
on the validation split (150 per class). Streams are built from the test split (disjoint from training and from
the reference) and run through the artifact (ONNX Runtime) in batches; the monitor uses default settings (window
250 frames, PSI threshold 0.25).

- in-distribution: `--id-frames` (default 10,000) frames drawn with replacement from the test split and shuffled.
  The model inputs and logits of each test image are computed once and fed again for repeats (the monitor sees
  exactly what it would for the same picture twice), so 10,000 frames cost 900 inferences.
- shifts, `--shift-frames` (default 500) frames each, drawn from the test split: darkened (x0.5), blurred (Gaussian
  sigma 1 px on the 32x32 picture), noisy (Gaussian sigma 20), JPEG quality 8; a different dataset (Fashion-MNIST,
  and the hymenoptera photos); class-prior changes ('cat' 5x as frequent as each other class; vehicles only).
Prints, per stream, the frame of the first event and what it names, then the monitor's CPU time per frame next to
the Predictor's preprocessing of the same frame (one run on this shared machine: a ratio, not an absolute figure).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def load(files):
    from PIL import Image

    return [np.asarray(Image.open(f).convert("RGB")) for f in files]


def run_inputs(pred, frames, batch=64):
    xs = [pred.preprocess(f, color="RGB") for f in frames]
    x = np.concatenate(xs)
    logits = np.concatenate([pred.infer(x[i : i + batch]) for i in range(0, len(x), batch)])
    return x, logits


def first_event(pred, x, logits, order, batch=50):
    """Feed frames in `order` to a fresh monitor; returns (frames at first event, events then, windows, monitor)."""
    mon = pred.start_monitor()
    for i in range(0, len(order), batch):
        idx = order[i : i + batch]
        ev = mon.update(x[idx], logits[idx])
        if ev:
            return mon.frames, ev, mon
    return None, [], mon


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(REPO / ".data" / "openset_cifar" / "cifar6.onnx"),
                    help="an artifact with a fitted reference (benchmarks/openset_cifar.py writes this one)")
    ap.add_argument("--data", default=str(REPO / ".data" / "openset_cifar" / "data"), help="its data folder")
    ap.add_argument("--test-dir", help="known-class test images (default: the newest test* folder under --data)")
    ap.add_argument("--id-frames", type=int, default=10_000, help="frames of the in-distribution stream")
    ap.add_argument("--shift-frames", type=int, default=500, help="frames of each shifted stream")
    a = ap.parse_args()

    import cv2

    import edgecls
    from edgecls.openset import list_images

    data = Path(a.data)
    test_dir = Path(a.test_dir) if a.test_dir else max((p for p in data.glob("test*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
    files = list_images(test_dir)
    classes = [f.relative_to(test_dir).parts[0] for f in files]
    pred = edgecls.Predictor(a.model)
    if pred.spec.reference is None:
        raise SystemExit(f"{a.model} has no drift reference: run benchmarks/openset_cifar.py first")
    rng = np.random.default_rng(0)
    frames = load(files)
    t = time.time()
    x, logits = run_inputs(pred, frames)
    print(f"{a.model}: reference n={pred.spec.reference.n}; test split {len(files)} images ({time.time() - t:.0f}s)")

    print(f"\n{'stream':26s} {'frames':>6s}  first event (frame: statistic, PSI, message)")
    order = rng.integers(0, len(files), a.id_frames)
    at, ev, mon = first_event(pred, x, logits, order)
    worst = max((max(r["psi"].items(), key=lambda kv: kv[1]) for r in mon.history), key=lambda kv: kv[1])
    print(f"{'in-distribution (test)':26s} {a.id_frames:6d}  " + (f"{at}: {ev[0].statistic} {ev[0].psi:.2f} {ev[0].message}"
          if ev else f"none in {len(mon.history)} windows (largest PSI {worst[1]:.3f}, {worst[0]})"))

    def shifted(name, change, picks=None):
        idx = picks if picks is not None else rng.integers(0, len(files), a.shift_frames)
        xs, lg = run_inputs(pred, [change(frames[i]) for i in idx])
        at, ev, mon = first_event(pred, xs, lg, np.arange(len(idx)))
        print(f"{name:26s} {len(idx):6d}  " + (f"{at}: " + "; ".join(f"{e.statistic} {e.psi:.2f} {e.message}" for e in ev[:2])
              if ev else f"none (largest PSI {max(mon.history[-1]['psi'].values()):.3f})"), flush=True)

    def jpeg(f, q=8):
        ok, buf = cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, q])
        return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)

    noise = np.random.default_rng(1)
    shifted("darkened x0.5", lambda f: (f * 0.5).astype(np.uint8))
    shifted("blurred sigma 1", lambda f: cv2.GaussianBlur(f, (0, 0), 1.0))
    shifted("noise sigma 20", lambda f: np.clip(f + noise.normal(0, 20, f.shape), 0, 255).astype(np.uint8))
    shifted("JPEG quality 8", jpeg)
    def prior_stream(name, weight):
        w = np.array([weight(c) for c in classes], float)
        picks = rng.choice(len(files), a.shift_frames, p=w / w.sum())
        at, ev, mon = first_event(pred, x, logits, picks)
        print(f"{name:26s} {a.shift_frames:6d}  " + (f"{at}: " + "; ".join(f"{e.statistic} {e.psi:.2f} {e.message}" for e in ev[:2])
              if ev else f"none (class_prior PSI {max(r['psi']['class_prior'] for r in mon.history):.3f})"), flush=True)

    # class prior, no image changed: 'cat' 5x as frequent as each other class (50% of the frames instead of 17%),
    # then a scene change: only airplanes and automobiles
    prior_stream("class prior: cat x5", lambda c: 5.0 if c == "cat" else 1.0)
    prior_stream("class prior: vehicles only", lambda c: 1.0 if c in ("airplane", "automobile") else 0.0)
    for name in ("fashion_mnist", "hymenoptera"):
        other = list_images(data / name)
        pick = rng.choice(len(other), min(a.shift_frames, len(other)), replace=False)
        of = load([other[i] for i in pick])
        xs, lg = run_inputs(pred, of)
        at, ev, mon = first_event(pred, xs, lg, np.arange(len(of)))
        print(f"{'other data: ' + name:26s} {len(of):6d}  " + (f"{at}: " + "; ".join(f"{e.statistic} {e.psi:.2f} {e.message}" for e in ev[:2])
              if ev else f"none (largest PSI {max(mon.history[-1]['psi'].values()):.3f})"), flush=True)

    # cost per frame: CPU time (this process) of Predictor.preprocess vs DriftMonitor.update over the same 1,000
    # frames (a CIFAR picture and a camera-sized photo), so other jobs on the machine do not count
    import cv2 as _cv2

    _cv2.setNumThreads(1)
    photo = load(list_images(data / "hymenoptera")[:1])[0]
    for name, frame in (("CIFAR 32x32 frame", frames[0]), (f"photo {photo.shape[1]}x{photo.shape[0]}", photo),
                        ("1080p frame", _cv2.resize(photo, (1920, 1080)))):
        mon = pred.start_monitor()
        c0 = time.process_time()
        xs = [pred.preprocess(frame, color="RGB") for _ in range(1000)]
        c1 = time.process_time()
        for xi in xs:
            mon.update(xi, logits[:1])
        c2 = time.process_time()
        print(f"CPU per frame ({name}, input {pred.spec.input.height} px): preprocessing {c1 - c0:.3f} ms, monitor "
              f"{c2 - c1:.3f} ms (1,000 frames, 4 windows): monitor = {(c2 - c1) / (c1 - c0):.2f}x preprocessing")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Soak: N predictions in one process per backend; RSS after warmup vs at the end (leaks show as growth).

    .venv/bin/python benchmarks/soak.py [--n 100000] [--backends onnx xml]
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import psutil

import edgecls
from edgecls.data.samples import sample_images


def rss_mb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--warmup", type=int, default=2_000)
    ap.add_argument("--backends", nargs="+", default=["onnx", "xml"])
    a = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="edgecls-soak-"))
    model, spec = edgecls.create_model("efficientnet_lite0", pretrained=True)
    photos = list(sample_images().values())
    frames = [cv2.resize(np.ascontiguousarray(p[..., ::-1]), (640, 480)) for p in photos]  # VGA BGR frames
    for b in a.backends:
        path = edgecls.export(model, spec, out / f"lite0.{b}").path
        pred = edgecls.Predictor(path, threads=2)
        expected = [pred.predict(f, color="BGR").index for f in frames]
        for i in range(a.warmup):
            pred.predict(frames[i % len(frames)], color="BGR")
        base, t0, wrong = rss_mb(), time.perf_counter(), 0
        samples = []
        for i in range(a.n):
            j = i % len(frames)
            wrong += pred.predict(frames[j], color="BGR").index != expected[j]
            if i % (a.n // 10) == 0:
                samples.append(round(rss_mb() - base, 2))
        end = rss_mb()
        dt = time.perf_counter() - t0
        print(f"{pred.backend_name}: {a.n} predictions in {dt:.0f}s ({a.n / dt:.0f}/s), RSS after warmup {base:.1f} MB, "
              f"at end {end:.1f} MB, growth {end - base:+.2f} MB (samples {samples}), results differing from first pass: {wrong}")


if __name__ == "__main__":
    main()

"""A 1080p video file processed end to end through Predictor.stream, frame-drop off and on; prints FPS.

The video is written here (MJPG, real photos), so the run needs no camera:
    .venv/bin/python benchmarks/stream_fps.py [--frames 300] [--backends onnx xml]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

import edgecls
from edgecls.data.samples import sample_images


def write_video(path: Path, n: int) -> None:
    photos = list(sample_images().values())
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (1920, 1080))
    for i in range(n):
        w.write(cv2.resize(np.ascontiguousarray(photos[(i // 30) % len(photos)][..., ::-1]), (1920, 1080)))
    w.release()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--backends", nargs="+", default=["onnx", "xml"])
    a = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="edgecls-stream-"))
    clip = out / "clip_1080p.avi"
    write_video(clip, a.frames)
    cap = cv2.VideoCapture(str(clip))
    t0, n = time.perf_counter(), 0
    while cap.read()[0]:
        n += 1
    decode_fps = n / (time.perf_counter() - t0)
    print(f"{clip.name}: {n} frames 1920x1080; decoding alone {decode_fps:.1f} FPS")
    model, spec = edgecls.create_model("efficientnet_lite0", pretrained=True)
    for b in a.backends:
        pred = edgecls.Predictor(edgecls.export(model, spec, out / f"lite0.{b}").path, threads=2)
        for drop in (False, True):
            t0 = time.perf_counter()
            results = list(pred.stream(str(clip), drop_frames=drop))
            dt = time.perf_counter() - t0
            lat = np.array([r.latency_ms for r in results])
            print(f"{pred.backend_name:12s} drop_frames={drop!s:5s}: {len(results)} processed, {results[-1].dropped} dropped, "
                  f"{len(results) / dt:.1f} results/s over {dt:.1f}s, frame latency p50 {np.median(lat):.1f} ms p99 {np.percentile(lat, 99):.1f} ms")


if __name__ == "__main__":
    main()

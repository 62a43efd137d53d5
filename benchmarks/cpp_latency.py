"""C++ camera app vs the Python Predictor vs OpenVINO's benchmark_app, on the same artifact and the same frames, in one
run with the three interleaved per round.

- C++: examples/cpp/camera_app (built here as README "In a C++ app" says) reads a 1080p MJPG clip and reports each
  frame's preprocess + infer + postprocess time (decoding excluded), one request at a time, `threads` threads.
- Python: Predictor.predict(frame, color="BGR") on the same frames, decoded beforehand (end-to-end: preprocess,
  infer, postprocess), same threads.
- Model-only: benchmark_app with the Predictor's settings (benchmarks/native_crosscheck.py's flags: LATENCY, one
  stream, one async request, f32) on the C++ app's own input tensor of the first frame.

Each round runs C++ / Python / benchmark_app; a round's ratios are p50 over p50 (the first frames of each side are
warm-up and dropped). Ratios from one round share the machine's state; the summary gives their median and range.
Run it under the shared lock on a quiet machine:

    flock /tmp/edgecls-cpu.lock nice -n 5 .venv/bin/python benchmarks/cpp_latency.py [--rounds 6] [--frames 60]
        [--threads 2] [--xml M.xml ...] [--no-int8]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import cv2
import numpy as np

import edgecls

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from native_crosscheck import BackgroundLoad, benchmark_app  # noqa: E402

from tools import cpp_build  # noqa: E402

WARMUP = 5


def write_clip(path: Path, n: int) -> Path:
    """A 1080p MJPG clip cycling through the bundled photos (what a camera or a recording delivers)."""
    from edgecls.data.samples import sample_images

    frames = [np.ascontiguousarray(rgb[..., ::-1]) for rgb in sample_images().values()]
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (1920, 1080))
    for i in range(n):
        w.write(cv2.resize(frames[i % len(frames)], (1920, 1080), interpolation=cv2.INTER_AREA))
    w.release()
    return path


def read_clip(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            return frames
        frames.append(f)


def cpp_round(app: Path, xml: Path, clip: Path, threads: int, dump: Path) -> dict[str, list[float]]:
    r = subprocess.run([str(app), str(xml), "--video", str(clip), "--threads", str(threads), "--json", "--dump-inputs", str(dump)],
                       capture_output=True, text=True, timeout=600, check=True)
    rows = [json.loads(line) for line in r.stdout.splitlines()][WARMUP:]
    return {k: [row[k] for row in rows] for k in ("latency_ms", "preprocess_ms", "infer_ms")}


def python_round(pred: edgecls.Predictor, frames: list[np.ndarray]) -> dict[str, list[float]]:
    total, prep = [], []
    for i, f in enumerate(frames):
        t0 = time.perf_counter()
        pred.predict(f, color="BGR")
        t1 = time.perf_counter()
        pred.preprocess(f, color="BGR")  # timed apart on the same frame, after the timed call
        t2 = time.perf_counter()
        if i >= WARMUP:
            total.append((t1 - t0) * 1e3)
            prep.append((t2 - t1) * 1e3)
    return {"latency_ms": total, "preprocess_ms": prep}


def measure(app: Path, name: str, xml: Path, clip: Path, frames: list[np.ndarray], threads: int, rounds: int, runs: int,
            out: Path) -> None:
    pred = edgecls.Predictor(xml, threads=threads)
    dump = out / f"dump_{name}"
    dump.mkdir()
    rows = []
    for i in range(rounds):
        with BackgroundLoad() as bg:
            c = cpp_round(app, xml, clip, threads, dump)
            p = python_round(pred, frames)
            native = benchmark_app(xml, threads, runs, dump / "0.npy")
        m = {k: float(np.median(v)) for k, v in c.items()}
        pm = {k: float(np.median(v)) for k, v in p.items()}
        rows.append((m, pm, native, bg.cores))
        print(f"{name} round {i + 1}: other processes {bg.cores:.2f} cores | C++ p50 {m['latency_ms']:.2f} ms (preprocess "
              f"{m['preprocess_ms']:.2f}, infer {m['infer_ms']:.2f}) | Python end-to-end p50 {pm['latency_ms']:.2f} ms "
              f"(preprocess {pm['preprocess_ms']:.2f}) | benchmark_app median {native:.2f} ms | C++/Python "
              f"{m['latency_ms'] / pm['latency_ms']:.3f}, C++ infer/benchmark_app {m['infer_ms'] / native:.3f}", flush=True)
    pred.close()

    def summary(values) -> str:
        v = np.asarray(values)
        return f"{np.median(v):.3f} (range {v.min():.3f}-{v.max():.3f})"

    n = len(frames) - WARMUP
    print(f"==> {name}, {rounds} rounds x {n} frames (1080p), {threads} threads:")
    print(f"    C++ per frame (preprocess + infer + postprocess) / Python Predictor end-to-end: "
          f"{summary([m['latency_ms'] / pm['latency_ms'] for m, pm, _, _ in rows])}")
    print(f"    C++ per frame / benchmark_app model-only: {summary([m['latency_ms'] / nat for m, _, nat, _ in rows])}")
    print(f"    C++ infer / benchmark_app model-only: {summary([m['infer_ms'] / nat for m, _, nat, _ in rows])}")
    print(f"    Python end-to-end / benchmark_app model-only: {summary([pm['latency_ms'] / nat for _, pm, nat, _ in rows])}")
    print(f"    C++ preprocess / Python preprocess: {summary([m['preprocess_ms'] / pm['preprocess_ms'] for m, pm, _, _ in rows])}")
    print(f"    medians over rounds, ms: C++ {np.median([m['latency_ms'] for m, *_ in rows]):.2f}, Python "
          f"{np.median([pm['latency_ms'] for _, pm, *_ in rows]):.2f}, benchmark_app {np.median([r[2] for r in rows]):.2f}; "
          f"other processes {np.median([r[3] for r in rows]):.2f} cores", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--frames", type=int, default=60, help="frames in the clip (the first 5 are warm-up)")
    ap.add_argument("--runs", type=int, default=100, help="benchmark_app iterations per round")
    ap.add_argument("--xml", type=Path, nargs="*", help="existing edgecls OpenVINO IRs (default: pretrained Lite0 FP32 and INT8)")
    ap.add_argument("--no-int8", action="store_true", help="measure the FP32 export only")
    a = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="edgecls-cpp-"))
    print(f"building examples/cpp in {out / 'build'} ...", flush=True)
    app = cpp_build.camera_app(out / "build")
    clip = write_clip(out / "clip_1080p.avi", a.frames)
    frames = read_clip(clip)
    models = {p.stem: p for p in a.xml or []}
    if not models:
        from edgecls.compress.ptq import quantize_file
        from edgecls.data.samples import photo_crops

        model, spec = edgecls.create_model("efficientnet_lite0", pretrained=True)
        models["lite0_fp32"] = edgecls.export(model, spec, out / "lite0_fp32.xml").path
        if not a.no_int8:
            with edgecls.Predictor(models["lite0_fp32"]) as p:
                calib = np.concatenate([p.preprocess(c, color="RGB") for c in photo_crops(300)])
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    quantize_file("openvino", models["lite0_fp32"], out / "lite0_int8.xml", p.spec, calib)
            models["lite0_int8"] = out / "lite0_int8.xml"
    for name, xml in models.items():
        measure(app, name, Path(xml), clip, frames, a.threads, a.rounds, a.runs, out)


if __name__ == "__main__":
    main()

"""The frame path, 1080p camera frame -> Lite0 prediction, next to its floors (issue 18). Every ratio from ONE run.

1. preprocessing (Predictor.preprocess of a 1920x1080 BGR frame, Lite0 spec) vs one plain copy of the crop-box
   pixels it must read (the memory floor) and vs the INT8 model-only p50 on OpenVINO and ONNX Runtime;
2. end-to-end (predict(frame)) / model-only (infer(x)) p50 for FP32 and INT8 on ONNX Runtime, OpenVINO and LiteRT;
3. Predictor.stream(drop_frames=False) over in-memory 1080p frames (no decoding) vs the model-only throughput;
4. results/s of 1, 2, 4 streams sharing one Predictor;
5. cold start (fresh process: load + first inference): OpenVINO with a filled compiled-model cache, ONNX Runtime,
   LiteRT.

Timings reuse edgecls-bench (time_interleaved: the calls of one ratio alternate in chunks of ten, so load that
comes and goes on a shared machine lands on both); the stream figures come from rounds of [model-only, 1, 2, 4
streams]. On a machine loaded by other processes, a pipeline with more threads also gets a larger share of the
CPU, so stream/model-only can read above 100% there: only an otherwise idle machine says whether the pipeline
overlaps. The artifacts are built once into --out and reused:

    nice -n 19 .venv/bin/python benchmarks/framepath.py [--runs 200] [--threads 2] [--out .data/framepath]

Measured 2026-11-30 on the project's 2-core EPYC while ~5 other agents loaded it (load average 10-14, models 10-20x
slower than idle, so only the preprocessing ratios mean much): preprocessing / crop-box copy, two runs each of the
old and the new fast path, alternated: wall 4.60-4.82x -> 3.78-4.50x, thread CPU time 3.62-3.77x -> 3.03-3.22x.
"""

from __future__ import annotations

import argparse
import itertools
import threading
import time
from pathlib import Path

import numpy as np

import edgecls
from edgecls.bench.cold import cold_start
from edgecls.bench.runner import camera_frame, time_interleaved

ROWS = (("onnxruntime", "fp32", "lite0.onnx"), ("onnxruntime", "int8", "lite0_int8.onnx"),
        ("openvino", "fp32", "lite0.xml"), ("openvino", "int8", "lite0_int8.xml"),
        ("litert", "fp32", "lite0.tflite"), ("litert", "int8", "lite0_int8.tflite"))


def build(out: Path) -> dict[tuple[str, str], Path]:
    """The six Lite0 artifacts, as `edgecls demo` makes them (INT8 calibrated on crops of the bundled photos)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {(b, p): out / f for b, p, f in ROWS}
    if all(p.is_file() for p in paths.values()):
        return paths
    from edgecls.compress.ptq import quantize_file
    from edgecls.data.samples import photo_crops

    model, spec = edgecls.create_model("efficientnet_lite0", pretrained=True)
    crops = photo_crops(100)
    for name in ("lite0.onnx", "lite0.xml", "lite0.tflite"):
        if not (out / name).is_file():
            print(f"exporting {name} ...", flush=True)
            edgecls.export(model, spec, out / name)
    for fmt, src, dst in (("onnx", "lite0.onnx", "lite0_int8.onnx"), ("openvino", "lite0.xml", "lite0_int8.xml")):
        if not (out / dst).is_file():
            print(f"quantizing {dst} ...", flush=True)
            with edgecls.Predictor(out / src) as p:
                calib = np.concatenate([p.preprocess(c, color="RGB") for c in crops])
                quantize_file(fmt, out / src, out / dst, p.spec, calib)
    if not (out / "lite0_int8.tflite").is_file():
        print("exporting lite0_int8.tflite ...", flush=True)
        edgecls.export(model, spec, out / "lite0_int8.tflite", precision="int8", calibration=crops)
    return paths


def p50(ms: list[float]) -> float:
    return float(np.median(ms))


def frames_1080p(n: int) -> list[np.ndarray]:
    """n distinct 1080p BGR frames (the bundled photos, shifted), so no frame sits in cache from the last one."""
    import cv2

    from edgecls.data.samples import sample_images

    photos = [cv2.resize(np.ascontiguousarray(p[..., ::-1]), (1920, 1080), interpolation=cv2.INTER_CUBIC)
              for p in sample_images().values()]
    return [np.roll(photos[i % len(photos)], 8 * i, axis=1) for i in range(n)]


def stream_rate(pred, frames: list[np.ndarray], n: int, streams: int = 1) -> float:
    """Results/s of `streams` Predictor.stream(drop_frames=False) loops, each over n in-memory frames, all together."""
    counts = [0] * streams

    def run(k: int) -> None:
        for _ in pred.stream(itertools.islice(itertools.cycle(frames), n), color="BGR", drop_frames=False):
            counts[k] += 1

    threads = [threading.Thread(target=run, args=(k,)) for k in range(streams)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - t0)


def write_clip(path: Path, frames: list[np.ndarray], n: int) -> Path:
    import cv2

    if not path.is_file():
        w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (1920, 1080))
        for i in range(n):
            w.write(frames[i % len(frames)])
        w.release()
    return path


def decode_rate(clip: Path) -> float:
    import cv2

    cap, n = cv2.VideoCapture(str(clip)), 0
    t0 = time.perf_counter()
    while cap.read()[0]:
        n += 1
    cap.release()
    return n / (time.perf_counter() - t0)


def cpu_interleaved(fns: dict, runs: int, clock=time.thread_time, chunk: int = 10) -> dict[str, float]:
    """CPU ms per call of each fn by `clock`, in alternating chunks: unlike wall time, a thread's CPU time does not
    grow while other processes hold the core, so on a loaded machine it still says how much work a call is."""
    cpu = dict.fromkeys(fns, 0.0)
    for _ in range(max(1, runs // chunk)):
        for k, fn in fns.items():
            t = clock()
            for _ in range(chunk):
                fn()
            cpu[k] += clock() - t
    return {k: v * 1e3 / (max(1, runs // chunk) * chunk) for k, v in cpu.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="runtime threads per Predictor (default 2)")
    ap.add_argument("--runs", type=int, default=200, help="timed calls per measurement (default 200)")
    ap.add_argument("--stream-frames", type=int, default=300, help="frames per stream (default 300)")
    ap.add_argument("--stream-backend", default="openvino", choices=("onnxruntime", "openvino", "litert"),
                    help="runtime of the INT8 artifact the stream figures use (default openvino)")
    ap.add_argument("--out", type=Path, default=Path(".data/framepath"), help="where the artifacts are built/reused")
    ap.add_argument("--skip", nargs="*", default=[], choices=("pre", "e2e", "stream", "cold"), help="sections to skip")
    a = ap.parse_args()
    paths = build(a.out)
    preds = {k: edgecls.Predictor(p, threads=a.threads, color="BGR") for k, p in paths.items()}
    frame = camera_frame(3)
    runs, warm = a.runs, 20
    print(f"edgecls {edgecls.__version__}, EfficientNet-Lite0, {a.threads} threads, 1920x1080 BGR frame, p50 of {runs} "
          "calls (one run on a shared machine: read the ratios)")

    if "pre" not in a.skip:
        from edgecls.runtime import preprocess as P

        spec = preds["openvino", "int8"].spec
        y0, x0, y1, x1 = P.source_box(1080, 1920, spec.preprocess, spec.input)
        box = frame[y0:y1, x0:x1]
        buf = np.empty_like(box)
        for backend in ("openvino", "onnxruntime"):
            pred = preds[backend, "int8"]
            x = pred.preprocess(frame)
            ms = time_interleaved({"pre": lambda: pred.preprocess(frame), "copy": lambda: np.copyto(buf, box),
                                   "model": lambda: pred.infer(x)}, warm, runs, None)
            pre, cp, mod = p50(ms["pre"]), p50(ms["copy"]), p50(ms["model"])
            print(f"preprocess [{backend} INT8 input {spec.input.dtype} {spec.input.layout}]: {pre:.3f} ms; copy of the "
                  f"{y1 - y0}x{x1 - x0} crop box ({box.nbytes / 1e6:.2f} MB) {cp:.3f} ms -> pre/copy {pre / cp:.2f}x "
                  f"(goal <= 2); INT8 model {mod:.3f} ms -> pre/model {pre / mod:.1%} (goal < 10%)")
        import cv2

        n_cv = cv2.getNumThreads()
        cv2.setNumThreads(1)  # one thread does all the work, so the calling thread's CPU time is the whole cost
        try:
            cpu = cpu_interleaved({"pre": lambda: pred.preprocess(frame), "copy": lambda: np.copyto(buf, box)}, runs)
        finally:
            cv2.setNumThreads(n_cv)
        print(f"preprocess CPU time, OpenCV on one thread: {cpu['pre']:.3f} ms vs copy {cpu['copy']:.3f} ms -> "
              f"{cpu['pre'] / cpu['copy']:.2f}x (thread CPU time: robust to other processes' load)")

    if "e2e" not in a.skip:
        for (backend, prec), pred in preds.items():
            x = pred.preprocess(frame)
            ms = time_interleaved({"model": lambda: pred.infer(x), "e2e": lambda: pred.predict(frame)}, warm, runs, None)
            mod, e2e = p50(ms["model"]), p50(ms["e2e"])
            goal = 1.10 if prec == "fp32" else 1.20
            cpu = cpu_interleaved({"model": lambda: pred.infer(x), "e2e": lambda: pred.predict(frame)}, runs // 2,
                                  clock=time.process_time)
            print(f"e2e/model {backend:11s} {prec}: model {mod:.3f} ms, end-to-end {e2e:.3f} ms -> {e2e / mod:.3f} "
                  f"(goal <= {goal:.2f}); process CPU time per call {cpu['model']:.2f} / {cpu['e2e']:.2f} ms -> "
                  f"{cpu['e2e'] / cpu['model']:.3f}")

    if "stream" not in a.skip:
        pred = preds[a.stream_backend, "int8"]
        frames = frames_1080p(8)
        x = pred.preprocess(frames[0])
        stream_rate(pred, frames, 30)  # warm the pipeline's first start
        n = a.stream_frames

        def model_rate() -> float:
            t0 = time.perf_counter()
            for _ in range(n):
                pred.infer(x)
            return n / (time.perf_counter() - t0)

        # rounds of [model-only, 1 stream, 2, 4 streams], each n results: a load change hits all within a round
        rounds = [[model_rate()] + [stream_rate(pred, frames, n // k, streams=k) for k in (1, 2, 4)] for _ in range(3)]
        r = np.array(rounds)
        rel = np.median(r[:, 1:] / r[:, :1], axis=0)
        print(f"stream drop_frames=False [{a.stream_backend} INT8, in-memory 1080p frames, {n} results x 3 rounds]: "
              f"{np.median(r[:, 1]):.0f} results/s vs model-only {np.median(r[:, 0]):.0f}/s -> {rel[0]:.1%} (goal >= 95%)")
        for k, v, q in zip((1, 2, 4), np.median(r[:, 1:], axis=0), rel):
            print(f"  {k} stream(s) on one Predictor: {v:.0f} results/s in all ({q:.0%} of model-only)")
        clip = write_clip(a.out / "clip_1080p.avi", frames, 90)
        decode = decode_rate(clip)
        t0 = time.perf_counter()
        n = sum(1 for _ in pred.stream(str(clip), drop_frames=False))  # n: also the model-only calls timed next
        rate, mr = n / (time.perf_counter() - t0), model_rate()
        print(f"  a 1080p MJPG file instead: decoding alone {decode:.0f} frames/s; stream drop_frames=False {rate:.0f} "
              f"results/s ({rate / mr:.0%} of model-only {mr:.0f}/s measured next; the reader thread decodes, so decoding bounds it)")

    if "cold" not in a.skip:
        import tempfile

        for key, cache in ((("openvino", "fp32"), True), (("openvino", "int8"), True), (("onnxruntime", "fp32"), False),
                           (("onnxruntime", "int8"), False), (("litert", "fp32"), False), (("litert", "int8"), False)):
            c = cold_start(paths[key], a.threads, tempfile.mkdtemp(prefix="edgecls-ovcache-") if cache else None)
            if "error" in c:
                print(f"cold start {key[0]} {key[1]}: {c['error']}")
                continue
            fill = f" (first start, filling the cache: {c['cache_fill_ms']:.0f} ms)" if cache else ""
            print(f"cold start {key[0]:11s} {key[1]}: load {c['load_ms']:.0f} ms + first inference "
                  f"{c['first_inference_ms']:.0f} ms = {c['load_plus_first_ms']:.0f} ms{' with a filled cache' if cache else ''}"
                  f"{fill}; import {c['import_ms']:.0f} ms")


if __name__ == "__main__":
    main()

"""Pretrained EfficientNet-Lite0: INT8 PTQ on ONNX Runtime and OpenVINO vs FP32, on this CPU, in one run.

    .venv/bin/python benchmarks/int8_lite0.py [--out bench_out/int8] [--runs 300] [--rounds 4] [--threads 2]
                                              [--overflow-fix auto|enable|first_layer_only|disable]

Prints, per backend: model-only p50 FP32 and INT8 (alternating rounds, same process), the speed-up, and top-1
agreement / top-5 overlap of INT8 vs FP32 on the 11 real photos. Calibration: 300 crops of the bundled photos
(no ImageNet offline; see edgecls/compress/calibration.py). The artifacts stay in --out for edgecls-bench.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np

from edgecls import Predictor
from edgecls.bench.runner import time_calls
from edgecls.compress.ptq import OVERFLOW_FIX, quantize_file, resolve_overflow_fix
from edgecls.data.samples import photo_crops, sample_images
from edgecls.exporters import export
from edgecls.models import create_model
from edgecls.runtime.cpuinfo import cpu_model_and_flags, int8_saturates


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench_out/int8")
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--overflow-fix", default="auto", choices=OVERFLOW_FIX, help="7-bit weights where U8S8 saturates")
    a = ap.parse_args()
    out = Path(a.out)
    model, spec = create_model("efficientnet_lite0", pretrained=True)
    photos = sample_images()
    rows = []
    for fmt, suffix in (("onnx", ".onnx"), ("openvino", ".xml")):
        f32 = export(model, spec, out / f"lite0_fp32{suffix}")
        with Predictor(f32.path, threads=a.threads) as p:
            calib = np.concatenate([p.preprocess(c, color="RGB") for c in photo_crops(300)])
        i8 = out / f"lite0_int8{suffix}"
        quantize_file(fmt, f32.path, i8, f32.spec, calib, overflow_fix=a.overflow_fix)
        with Predictor(f32.path, threads=a.threads) as pf, Predictor(i8, threads=a.threads) as pq:
            xs = {n: pf.preprocess(img, color="RGB") for n, img in photos.items()}
            lf = {n: pf.infer(x)[0] for n, x in xs.items()}
            lq = {n: pq.infer(x)[0] for n, x in xs.items()}
            agree = np.mean([lf[n].argmax() == lq[n].argmax() for n in xs])
            top5 = np.mean([len(set(np.argsort(-lf[n])[:5]) & set(np.argsort(-lq[n])[:5])) / 5 for n in xs])
            x = xs["coffee"]
            p50 = {"fp32": [], "int8": []}
            for _ in range(a.rounds):  # alternate, so both see the same machine state
                p50["fp32"].append(statistics.median(time_calls(lambda: pf.infer(x), 30, a.runs, None)))
                p50["int8"].append(statistics.median(time_calls(lambda: pq.infer(x), 30, a.runs, None)))
        f, q = statistics.median(p50["fp32"]), statistics.median(p50["int8"])
        rows.append((fmt, f, q, f / q, agree, top5, [round(u / v, 2) for u, v in zip(p50["fp32"], p50["int8"])]))
    print(f"\nCPU {cpu_model_and_flags()[0]}: U8S8 saturation risk {int8_saturates()}; overflow fix {a.overflow_fix} -> "
          f"{resolve_overflow_fix(a.overflow_fix)}")
    print(f"EfficientNet-Lite0 224px, batch 1, {a.threads} threads, model-only p50 (median of {a.rounds} alternating rounds x {a.runs} runs)")
    print(f"{'backend':10s} {'FP32 ms':>8s} {'INT8 ms':>8s} {'speed-up':>9s} {'top-1 agree':>12s} {'top-5 overlap':>14s}  per-round speed-ups")
    for fmt, f, q, r, agree, top5, rounds in rows:
        print(f"{fmt:10s} {f:8.2f} {q:8.2f} {r:8.2f}x {agree:12.0%} {top5:14.0%}  {rounds}")


if __name__ == "__main__":
    main()

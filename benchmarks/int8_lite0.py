"""Pretrained EfficientNet-Lite0 (ImageNet): how faithful each runtime's INT8 is to its own FP32 on real photos, and
how much faster, on this CPU, in one run; ONNX Runtime before and after issue 27.

    PYTHONPATH=. flock /tmp/edgecls-cpu.lock nice -n 5 .venv/bin/python benchmarks/int8_lite0.py \\
        [--out bench_out/int8_lite0] [--rounds 4] [--target-cpu this]

Images (no ImageNet set offline): 200 crops of the 11 bundled scikit-image photos (seed 1; calibration uses 300
other crops, seed 0) and every photo of ../shared/data/hymenoptera.tar (ants and bees: ImageNet classes too; the one
GIF that is not a photo is skipped), preprocessed as the Predictor does. Per runtime: top-1 agreement of INT8 with
its own FP32 (n and Wilson 95% interval) and top-5 overlap; ONNX Runtime's "before" is the pre-issue-27 build
(export with run-time 'SAME' padding, 7-bit weights: overflow_fix auto on a CPU without VNNI, no bias correction),
compared with the "after" on the same images by McNemar's exact test; OpenVINO also as the IR converted from ONNX
Runtime's Q/DQ graph (the ladder's second OpenVINO form). Latency: model-only p50, batch 1, default threads, every
artifact timed in alternating chunks of ten calls, --rounds rounds; FP32/INT8 per round and the median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def photos(pred, hymenoptera: Path) -> np.ndarray:
    from edgecls.data.samples import photo_crops
    from edgecls.errors import EdgeclsError

    xs = [pred.preprocess(c, color="RGB") for c in photo_crops(200, seed=1)]
    for f in sorted(hymenoptera.rglob("*")):
        if f.is_file():
            try:
                xs.append(pred.preprocess(str(f)))
            except EdgeclsError:  # imageNotFound.gif and the like: not a photo
                continue
    return np.concatenate(xs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="bench_out/int8_lite0")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--target-cpu", default="this")
    a = ap.parse_args()
    import edgecls.exporters.same_padding as same
    from edgecls import Predictor, create_model, export, stats
    from edgecls.compress.ptq import quantize_file
    from edgecls.data.samples import photo_crops
    from edgecls.runtime.cpuinfo import describe_text
    from edgecls.runtime.timing import time_interleaved
    from tools.shared_data import extract_hymenoptera

    print(f"load before: {os.getloadavg()}; {describe_text()}", flush=True)
    out = Path(a.out)
    hym = extract_hymenoptera(out / "hymenoptera") if not (out / "hymenoptera" / "hymenoptera").is_dir() else out / "hymenoptera" / "hymenoptera"
    model, spec = create_model("efficientnet_lite0", pretrained=True)
    crops = photo_crops(300, seed=0)
    paths: dict[str, Path] = {}
    warnings.simplefilter("ignore")
    for fmt, suffix in (("onnx", ".onnx"), ("openvino", ".xml")):
        f32 = export(model, spec, out / f"lite0_fp32{suffix}")
        with Predictor(f32.path) as p:
            calib = np.concatenate([p.preprocess(c, color="RGB") for c in crops])
        quantize_file(fmt, f32.path, out / f"lite0_int8{suffix}", f32.spec, calib, target_cpu=a.target_cpu)
        paths[f"{fmt} fp32"], paths[f"{fmt} int8"] = f32.path, out / f"lite0_int8{suffix}"
        if fmt == "onnx":
            qdq_src, qdq_spec, qdq_calib = f32.path, f32.spec, calib
    quantize_file("openvino", qdq_src, out / "lite0_int8_qdq.xml", qdq_spec, qdq_calib, target_cpu=a.target_cpu,
                  quantizer="onnxruntime")
    paths["openvino int8 (ORT Q/DQ)"] = out / "lite0_int8_qdq.xml"
    kept = same._modules
    same._modules = lambda m: []  # before issue 27: padding computed at run time in the graph, 7-bit weights
    try:
        old = export(model, spec, out / "lite0_before_fp32.onnx")
    finally:
        same._modules = kept
    with Predictor(old.path) as p:
        calib = np.concatenate([p.preprocess(c, color="RGB") for c in crops])
    quantize_file("onnx", old.path, out / "lite0_before_int8.onnx", old.spec, calib, overflow_fix="enable",
                  bias_correction=False)
    paths["onnx fp32 (before)"], paths["onnx int8 (before)"] = old.path, out / "lite0_before_int8.onnx"
    paths["litert fp32"] = export(model, spec, out / "lite0_fp32.tflite").path
    paths["litert int8"] = export(model, spec, out / "lite0_int8.tflite", precision="int8", calibration=crops,
                                  target_cpu=a.target_cpu).path
    preds = {k: Predictor(p) for k, p in paths.items()}
    x = photos(preds["onnx fp32"], hym)
    logits = {k: np.concatenate([p.infer(x[i : i + 1]) for i in range(len(x))]) for k, p in preds.items()}
    print(f"\n{len(x)} real photos/crops (200 crops of the bundled photos + {len(x) - 200} hymenoptera photos)")
    agree = {}
    for k in paths:
        if "int8" not in k:
            continue
        ref = logits[k.replace("int8", "fp32").replace(" (ORT Q/DQ)", "")]
        same_top1 = logits[k].argmax(1) == ref.argmax(1)
        agree[k] = same_top1
        t5 = np.mean([len(set(np.argsort(-r)[:5]) & set(np.argsort(-g)[:5])) / 5 for r, g in zip(ref, logits[k])])
        print(f"{k:20s} top-1 agreement with its FP32 {stats.accuracy(same_top1).pct()}, top-5 overlap {t5:.1%}")
    cmp = stats.paired(agree["onnx int8 (before)"], agree["onnx int8"])
    print(f"onnx after vs before (same images): agreement {cmp.summary()}")
    print(f"\nlatency, one run; load {os.getloadavg()}", flush=True)
    xs = {k: x[:1] for k in preds}
    lat: dict[str, list[float]] = {k: [] for k in preds}
    for _ in range(a.rounds):
        ms = time_interleaved({k: (lambda p, v: lambda: p.infer(v))(p, xs[k]) for k, p in preds.items()}, 20, 200, None)
        for k, v in ms.items():
            lat[k].append(statistics.median(v))
    for k in paths:
        if "int8" in k:
            f = k.replace("int8", "fp32").replace(" (ORT Q/DQ)", "")
            r = [u / v for u, v in zip(lat[f], lat[k])]
            print(f"{k:20s} FP32 p50 {statistics.median(lat[f]):6.2f} ms  INT8 {statistics.median(lat[k]):6.2f} ms  "
                  f"FP32/INT8 {statistics.median(r):.2f}x (rounds {', '.join(f'{v:.2f}' for v in r)})")
    print(f"load after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

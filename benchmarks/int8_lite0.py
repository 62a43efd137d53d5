"""Pretrained EfficientNet-Lite0 (ImageNet): how faithful each INT8 build is to its runtime's FP32 on real photos, and
how much faster, on this CPU, in one run: the form edgecls builds for this CPU class, the form it builds for another
class (arm64) run here, and ONNX Runtime's form before issue 27.

    PYTHONPATH=. flock /tmp/edgecls-cpu.lock nice -n 5 .venv/bin/python benchmarks/int8_lite0.py \\
        [--out bench_out/int8_lite0] [--rounds 4] [--target-cpu this]

Images (no ImageNet set offline): 200 crops of the 11 bundled scikit-image photos (seed 1; calibration uses 300
other crops, seed 0) and every photo of ../shared/data/hymenoptera.tar (ants and bees; the GIF that is not a photo is
skipped), preprocessed as the Predictor does. Per build: top-1 agreement with its runtime's FP32 (n, Wilson 95%
interval) and top-5 overlap; McNemar's exact test for ONNX Runtime after vs before on the same images. Builds:
- onnx / openvino / litert int8: what edgecls builds for --target-cpu (default: this machine's class)
- ... built for arm64: ONNX Runtime 8-bit weights (the Predictor runs them on U8U8 kernels on x86 without VNNI),
  OpenVINO full-range weights (saturating on x86 without VNNI)
- onnx int8, ORT's default kernels: the arm64 build in a plain ONNX Runtime session (U8S8, saturating without VNNI)
- openvino int8 (ORT Q/DQ): the IR converted from ONNX Runtime's Q/DQ graph (the ladder's second OpenVINO form)
- onnx int8 (before): the pre-issue-27 build: run-time 'SAME' padding in the export, 7-bit weights (overflow_fix
  auto on a CPU without VNNI), no bias correction
Latency: model-only p50, batch 1, default threads, every build timed in alternating chunks of ten calls, --rounds
rounds; FP32/INT8 per round and the median.
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


def plain_ort(path: Path):
    """ONNX Runtime as it comes (no U8U8 remedy): what a saturating CPU does with 8-bit weights."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return lambda x: s.run(None, {s.get_inputs()[0].name: x})[0]


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
    hym = out / "hymenoptera" / "hymenoptera"
    if not hym.is_dir():
        hym = extract_hymenoptera(out / "hymenoptera")
    model, spec = create_model("efficientnet_lite0", pretrained=True)
    crops = photo_crops(300, seed=0)
    warnings.simplefilter("ignore")
    builds: dict[str, tuple[Path, str]] = {}  # name -> (artifact, its FP32's name)
    for rt, suffix in (("onnx", ".onnx"), ("openvino", ".xml")):
        f32 = export(model, spec, out / f"lite0_fp32{suffix}")
        builds[f"{rt} fp32"] = (f32.path, f"{rt} fp32")
        with Predictor(f32.path) as p:
            calib = np.concatenate([p.preprocess(c, color="RGB") for c in crops])
        for target, tag in ((a.target_cpu, ""), ("arm64", " built for arm64")):
            dst = out / f"lite0_int8_{target}{suffix}"
            quantize_file(rt, f32.path, dst, f32.spec, calib, target_cpu=target)
            builds[f"{rt} int8{tag}"] = (dst, f"{rt} fp32")
        if rt == "onnx":
            dst = out / "lite0_int8_ortqdq.xml"
            quantize_file("openvino", f32.path, dst, f32.spec, calib, target_cpu=a.target_cpu, quantizer="onnxruntime")
            ov_qdq = dst
    builds["openvino int8 (ORT Q/DQ)"] = (ov_qdq, "openvino fp32")
    kept = same._modules
    same._modules = lambda m: []  # before issue 27: padding computed at run time in the graph
    try:
        old = export(model, spec, out / "lite0_before_fp32.onnx")
    finally:
        same._modules = kept
    with Predictor(old.path) as p:
        calib = np.concatenate([p.preprocess(c, color="RGB") for c in crops])
    quantize_file("onnx", old.path, out / "lite0_before_int8.onnx", old.spec, calib, overflow_fix="enable",
                  bias_correction=False)
    builds["onnx fp32 (before)"] = (old.path, "onnx fp32 (before)")
    builds["onnx int8 (before)"] = (out / "lite0_before_int8.onnx", "onnx fp32 (before)")
    builds["litert fp32"] = (export(model, spec, out / "lite0_fp32.tflite").path, "litert fp32")
    builds["litert int8"] = (export(model, spec, out / "lite0_int8.tflite", precision="int8", calibration=crops,
                                    target_cpu=a.target_cpu).path, "litert fp32")
    calls = {k: Predictor(p).infer for k, (p, _) in builds.items()}
    calls["onnx int8 built for arm64, ORT's default kernels"] = plain_ort(builds["onnx int8 built for arm64"][0])
    builds["onnx int8 built for arm64, ORT's default kernels"] = (builds["onnx int8 built for arm64"][0], "onnx fp32")
    x = photos(Predictor(builds["onnx fp32"][0]), hym)
    logits = {k: np.concatenate([fn(x[i : i + 1]) for i in range(len(x))]) for k, fn in calls.items()}
    print(f"\n{len(x)} real photos/crops (200 crops of the bundled photos + {len(x) - 200} hymenoptera photos); "
          f"INT8 for --target-cpu {a.target_cpu}")
    agree = {}
    for k, (_, ref_name) in builds.items():
        if "int8" not in k:
            continue
        ref = logits[ref_name]
        agree[k] = logits[k].argmax(1) == ref.argmax(1)
        t5 = np.mean([len(set(np.argsort(-r)[:5]) & set(np.argsort(-g)[:5])) / 5 for r, g in zip(ref, logits[k])])
        print(f"{k:50s} top-1 agreement with its FP32 {stats.accuracy(agree[k]).pct()}, top-5 overlap {t5:.1%}")
    print(f"onnx int8 after vs before (same images): agreement {stats.paired(agree['onnx int8 (before)'], agree['onnx int8']).summary()}")
    print(f"\nlatency, one run; load {os.getloadavg()}", flush=True)
    lat: dict[str, list[float]] = {k: [] for k in calls}
    x1 = x[:1]
    for _ in range(a.rounds):
        ms = time_interleaved({k: (lambda fn: lambda: fn(x1))(fn) for k, fn in calls.items()}, 20, 200, None)
        for k, v in ms.items():
            lat[k].append(statistics.median(v))
    for k, (_, ref_name) in builds.items():
        if "int8" in k:
            r = [u / v for u, v in zip(lat[ref_name], lat[k])]
            print(f"{k:50s} FP32 p50 {statistics.median(lat[ref_name]):6.2f} ms  INT8 {statistics.median(lat[k]):6.2f} ms"
                  f"  FP32/INT8 {statistics.median(r):.2f}x (rounds {', '.join(f'{v:.2f}' for v in r)})")
    print(f"load after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

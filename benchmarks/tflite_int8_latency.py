"""TFLite precisions side by side: is INT8 really faster here, and does it keep PyTorch's answers?

Exports pretrained EfficientNet-Lite0 and a MobileNetV3-Large (the Fashion-MNIST fine-tune at
runs/fashion_mnist_mnv3/best.pt if present, calibrated on Fashion-MNIST test images; else random init) at every
TFLite precision, runs each through edgecls.Predictor on LiteRT/XNNPACK with the same thread count, and prints
model-only p50 latency, the ratio to FP32 and top-1 agreement with PyTorch FP32 on the bundled photos.
INT8 is not automatically faster: on x86 XNNPACK the float islands PT2E leaves around hard-swish/SE split the
graph, and each split costs a (de)quantize round trip. Rows where INT8 is slower than FP32 are flagged.

    .venv/bin/python benchmarks/tflite_int8_latency.py [--threads 2] [--runs 200] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

import edgecls
from edgecls.bench.runner import time_calls
from edgecls.data.samples import sample_images
from edgecls.errors import ExportError
from edgecls.exporters.verify import compare, reference_pixels, torch_logits
from edgecls.runtime import preprocess as P

PRECISIONS = ("fp32", "fp16", "dynamic_int8", "int8", "int8_all")
MNV3_RUN = Path("runs/fashion_mnist_mnv3/best.pt")


def models(n_calib: int):
    """(name, model, spec, calibration or None for the bundled photos)."""
    model, spec = edgecls.create_model("efficientnet_lite0", pretrained=True)
    yield "efficientnet_lite0 (ImageNet)", model, spec, None
    if MNV3_RUN.is_file():
        from edgecls.data.datasets import load_fashion_mnist
        from edgecls.models.pt import load_pt

        model, spec = load_pt(MNV3_RUN)
        test = load_fashion_mnist("test")
        idx = np.random.default_rng(0).choice(len(test), n_calib, replace=False)
        yield "mobilenetv3_large_100 (Fashion-MNIST)", model, spec, test.images[idx]  # deployment-like calibration
    else:
        model, spec = edgecls.create_model("mobilenetv3_large_100")
        yield "mobilenetv3_large_100 (random init)", model, spec, None


def export_one(model, spec, path: Path, precision: str, calibration):
    opts = {"precision": precision}
    if precision in ("int8", "int8_all"):
        opts["calibration"] = calibration
    try:
        return edgecls.export(model, spec, path, **opts), "ok"
    except ExportError as exc:  # still measure it, but say loudly that it failed the agreement checks
        print(f"  VERIFY FAILED {path.name}: {str(exc)[:300]}")
        return edgecls.export(model, spec, path, verify=False, **opts), "FAILED"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--calibration-images", type=int, default=200)
    ap.add_argument("--out", default=None, help="folder for the artifacts and results.json (default: a temp folder)")
    a = ap.parse_args()
    out = Path(a.out or tempfile.mkdtemp(prefix="edgecls-tflite-int8-"))
    out.mkdir(parents=True, exist_ok=True)
    photos = sample_images()
    rows = []
    for name, model, spec, calib in models(a.calibration_images):
        pixels = reference_pixels(photos, spec)
        ref = torch_logits(model, spec, pixels)
        for prec in PRECISIONS:
            t0 = time.perf_counter()
            print(f"exporting {name} {prec} ...", flush=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the few-calibration-images warning when the photos are used
                res, status = export_one(model, spec, out / f"{spec.arch}_{prec}.tflite", prec, calib)
            export_s = time.perf_counter() - t0
            pred = edgecls.Predictor(res.path, threads=a.threads)
            batch = np.concatenate([P.to_input(px, pred.spec) for px in pixels])
            rep = compare(ref, pred.infer(batch), prec)
            x = batch[:1]
            ms = time_calls(lambda: pred.infer(x), warmup=20, runs=a.runs, duration_s=None)
            rows.append({
                "model": name, "precision": prec, "quantizer": res.spec.artifact.get("quantizer") or "-",
                "size_mb": res.path.stat().st_size / 2**20, "p50_ms": float(np.median(ms)), "export_s": export_s,
                "top1_agreement": rep.top1_agreement, "confident_top1": rep.confident_top1_agreement,
                "confident_images": rep.confident_images, "rel_diff": rep.rel_diff, "verify": status,
                "float_islands": res.spec.artifact.get("float_islands"),
            })
    print_table(rows, a.threads)
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    print(f"artifacts and results.json in {out}")


def print_table(rows: list[dict], threads: int) -> None:
    print(f"\nLiteRT (XNNPACK), batch 1, {threads} threads, model-only p50 (no preprocessing); top-1 vs PyTorch FP32 on "
          f"{len(sample_images())} bundled photos (confident = PyTorch p >= 0.5)")
    head = f"{'model':40} {'precision':13} {'quantizer':18} {'MB':>6} {'p50 ms':>8} {'x FP32':>7} {'top-1':>6} {'confident':>10} {'rel diff':>9} verify"
    print(head + "\n" + "-" * len(head))
    slower = []
    for r in rows:
        fp32 = next(x for x in rows if x["model"] == r["model"] and x["precision"] == "fp32")
        ratio = r["p50_ms"] / fp32["p50_ms"]
        flag = "  <-- SLOWER than FP32" if "int8" in r["precision"] and ratio > 1.0 else ""
        if flag:
            slower.append(f"{r['model']} {r['precision']}: {ratio:.2f}x FP32 latency ({r['p50_ms']:.2f} vs {fp32['p50_ms']:.2f} ms)")
        conf = f"{r['confident_top1']:.0%}/{r['confident_images']}"
        print(f"{r['model']:40} {r['precision']:13} {r['quantizer']:18} {r['size_mb']:6.1f} {r['p50_ms']:8.2f} {ratio:7.2f} "
              f"{r['top1_agreement']:6.0%} {conf:>10} {r['rel_diff']:9.2e} {r['verify']}{flag}")
    if slower:
        print("\nWARNING: INT8 is SLOWER than FP32 here (measure on the target device before choosing INT8):")
        for s in slower:
            print("  " + s)


if __name__ == "__main__":
    main()

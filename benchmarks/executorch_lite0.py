"""ExecuTorch (.pte, XNNPACK) against PyTorch, LiteRT and ONNX Runtime: agreement, latency, INT8 speed-up, overhead.

1. Pretrained EfficientNet-Lite0, FP32 and INT8 (PT2E / XNNPACKQuantizer, 300 calibration crops of the bundled photos):
   top-1 agreement with PyTorch FP32 and max |logit diff| on the 11 bundled photos, plus top-1 agreement on 200
   other crops (n, Wilson 95% interval).
2. ONE `edgecls-bench` run (a subprocess, --threads T) over Lite0 FP32/INT8 as .pte, .tflite (LiteRT) and .onnx
   (ONNX Runtime; INT8 = quantize_static QDQ with the overflow fix this CPU needs): model-only and end-to-end p50,
   each as a ratio to the .pte of the same precision, and INT8/FP32 per runtime.
3. Predictor overhead: Predictor.infer() p50 over a raw `Method.execute` loop on the same file, same pool, same input
   tensor, in interleaved rounds (the executorch wheel ships no benchmark runner binary): target <= 1.05.
4. MobileNetV3-Large (hard-swish, SE with hard-sigmoid) trained briefly on Fashion-MNIST here: FP32 vs INT8 .pte,
   top-1 agreement on Fashion-MNIST test images, accuracy of each, p50 speed-up, and which ops the quantizer left
   float (the float islands).

    nice -n 19 .venv/bin/python benchmarks/executorch_lite0.py [--threads 2] [--out DIR] [--rounds 16] [--runs 100]

Artifacts are built into --out (default a temp folder) and reused when already there.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

import edgecls
from edgecls.data.samples import photo_crops, sample_images
from edgecls.exporters import int8_executorch
from edgecls.exporters.verify import compare, reference_pixels, torch_logits
from edgecls.runtime import preprocess as P
from edgecls.stats import wilson


def built(path: Path, make) -> Path:
    if not path.is_file():
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "calibrating on N images": known, printed in the header instead
            res = make()
        print(f"  built {path.name} in {time.perf_counter() - t:.0f} s: {getattr(res, 'report', '')}", flush=True)
    return path


def lite0_artifacts(out: Path, model, spec, crops) -> dict[str, Path]:
    from edgecls.compress.ptq import quantize_file

    a = {
        "pte": built(out / "lite0.pte", lambda: edgecls.export(model, spec, out / "lite0.pte")),
        "pte_int8": built(out / "lite0_int8.pte", lambda: int8_executorch(model, spec, crops, out / "lite0_int8.pte")),
        "tflite": built(out / "lite0.tflite", lambda: edgecls.export(model, spec, out / "lite0.tflite")),
        "tflite_int8": built(out / "lite0_int8.tflite", lambda: edgecls.export(model, spec, out / "lite0_int8.tflite",
                                                                               precision="int8", calibration=crops)),
        "onnx": built(out / "lite0.onnx", lambda: edgecls.export(model, spec, out / "lite0.onnx")),
    }

    def ort_int8():
        with edgecls.Predictor(a["onnx"]) as p:
            calib = np.concatenate([p.preprocess(c, color="RGB") for c in crops])
        return quantize_file("onnx", a["onnx"], out / "lite0_int8.onnx", p.spec, calib)

    a["onnx_int8"] = built(out / "lite0_int8.onnx", ort_int8)
    return a


def agreement(model, spec, arts: dict[str, Path], threads: int) -> None:
    photos = sample_images()
    pixels = reference_pixels(photos, spec)
    ref = torch_logits(model, spec, pixels)
    crops = reference_pixels(dict(enumerate(photo_crops(200, seed=1))), spec)  # not the calibration crops (seed 0)
    ref_crops = torch_logits(model, spec, crops).argmax(1)
    print(f"\n1. Lite0 vs PyTorch FP32 on the same reference pixels: {len(photos)} bundled photos (max |dlogit|, top-1) and "
          f"{len(crops)} crops of them (top-1, 95% CI)")
    print(f"{'artifact':20} {'max|dlogit|':>11} {'rel':>8} {'top-1 photos':>13} {'top-1 crops':>12} {'95% CI':>15}")
    for key in ("pte", "pte_int8", "tflite_int8", "onnx_int8"):
        with edgecls.Predictor(arts[key], threads=threads) as pred:
            got = pred.infer(np.concatenate([P.to_input(px, pred.spec) for px in pixels]))
            rep = compare(ref, got, pred.spec.artifact.get("precision", "fp32"))
            # the same reference pixels on both sides: the conversion is measured, not OpenCV vs PIL resizing
            k = sum(int(pred.infer(P.to_input(c, pred.spec)).argmax() == r) for c, r in zip(crops, ref_crops))
        w = wilson(k, len(crops))
        lo, hi = w.lo, w.hi
        print(f"{arts[key].name:20} {rep.max_abs_diff:11.2e} {rep.rel_diff:8.2e} {rep.top1_agreement:13.0%} "
              f"{k / len(crops):12.1%} {f'[{lo:.1%}, {hi:.1%}]':>15}")


def bench_run(arts: dict[str, Path], out: Path, threads: int, runs: int) -> None:
    cmd = [sys.executable, "-m", "edgecls.cli.bench", *map(str, arts.values()), "--threads", str(threads), "--runs", str(runs),
           "-o", str(out / "bench")]
    print(f"\n2. one edgecls-bench run: {' '.join(cmd[3:])}", flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        print(r.stdout[-2000:], r.stderr[-2000:])
        raise SystemExit("edgecls-bench failed")
    res = json.loads((out / "bench" / "bench.json").read_text())
    rows = {Path(r["path"]).name: r for r in res["results"]}
    cpu = res["device"]["cpu"]
    print(f"   CPU {cpu.get('model')} {cpu.get('isa')}, {threads} threads, {runs} runs, load average after the run "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; ratio = this / .pte of the same precision")
    print(f"{'artifact':20} {'backend':12} {'p50 ms':>7} {'x .pte':>7} {'e2e p50':>8} {'x .pte':>7} {'INT8/FP32':>10} {'cold ms':>8} {'RSS MB':>7} {'MB':>5}")
    for key, path in arts.items():
        r = rows[path.name]
        base = rows[arts["pte_int8" if key.endswith("int8") else "pte"].name]
        fp = rows[arts[key.replace("_int8", "")].name]
        p50, e2e = r["model_ms"]["p50"], r["end_to_end_ms"]["p50"]
        cold = r.get("cold_start") or {}
        speed = f"{p50 / fp['model_ms']['p50']:.2f}" if key.endswith("int8") else "-"
        print(f"{path.name:20} {r['backend']:12} {p50:7.2f} {p50 / base['model_ms']['p50']:7.2f} {e2e:8.2f} "
              f"{e2e / base['end_to_end_ms']['p50']:7.2f} {speed:>10} {cold.get('load_plus_first_ms', float('nan')):8.0f} "
              f"{cold.get('peak_rss_mb') or float('nan'):7.0f} {r['size_mb']:5.1f}")


def overhead(path: Path, threads: int, rounds: int, runs: int) -> None:
    """Predictor.infer() vs ExecuTorch's Method.execute on the same file and input, interleaved rounds."""
    import torch
    from executorch.runtime import Runtime

    pred = edgecls.Predictor(path, threads=threads)
    x = pred.preprocess(sample_images(("coffee",))["coffee"], color="RGB")
    method = Runtime.get().load_program(path).load_method("forward")
    tx = torch.from_numpy(x)
    for _ in range(20):
        pred.infer(x)
        method.execute([tx])

    def block(fn) -> float:
        ms = []
        for _ in range(runs):
            t = time.perf_counter()
            fn()
            ms.append(time.perf_counter() - t)
        return float(np.median(ms)) * 1e3

    ratios, raw, ours = [], [], []
    for _ in range(rounds):
        a1 = block(lambda: method.execute([tx]))
        b = block(lambda: pred.infer(x))
        a2 = block(lambda: method.execute([tx]))
        raw.append((a1 + a2) / 2)
        ours.append(b)
        ratios.append(b / raw[-1])
    print(f"\n3. Predictor.infer p50 / raw Method.execute p50 on {path.name}, {threads} threads, {rounds} rounds of {runs} calls "
          f"(raw / Predictor / raw): median ratio {np.median(ratios):.3f} (rounds {min(ratios):.3f}-{max(ratios):.3f}); "
          f"raw p50 {np.median(raw):.2f} ms, Predictor p50 {np.median(ours):.2f} ms")


def mobilenetv3(out: Path, threads: int, runs: int, n_test: int) -> None:
    from edgecls.data.datasets import load_fashion_mnist
    from edgecls.models.pt import load_pt
    from edgecls.train import TrainConfig, train

    best = out / "mnv3" / "best.pt"
    if not best.is_file():
        t = time.perf_counter()
        cfg = TrainConfig(arch="mobilenetv3_large_100", input_size=64, epochs=2, limit_train=12000, limit_val=2000,
                          eval_test=False, warmup_epochs=0.2, threads=threads, out_dir=str(out / "mnv3"), seed=0)
        train(cfg)
        print(f"  trained MobileNetV3-Large on 12k Fashion-MNIST images, 2 epochs, in {time.perf_counter() - t:.0f} s", flush=True)
    model, spec = load_pt(best)
    test = load_fashion_mnist("test")
    rng = np.random.default_rng(0)
    calib = test.images[rng.choice(len(test), 300, replace=False)]  # deployment-like calibration (not the scored images)
    idx = rng.permutation(len(test))[:n_test]
    # verified on in-domain images (the bundled photos are far outside Fashion-MNIST's activation ranges)
    check = {f"test{i}": np.repeat(test.pixels(i)[..., None], 3, axis=2) for i in idx[:32]}
    fp = built(out / "mnv3.pte", lambda: edgecls.export(model, spec, out / "mnv3.pte", images=check))
    q = built(out / "mnv3_int8.pte", lambda: int8_executorch(model, spec, calib, out / "mnv3_int8.pte", images=check))
    pf, pq = edgecls.Predictor(fp, threads=threads), edgecls.Predictor(q, threads=threads)
    x = np.concatenate([pf.preprocess(test.pixels(i), color="RGB") for i in idx])
    lf = np.concatenate([pf.infer(x[i : i + 1]) for i in range(len(x))])
    lq = np.concatenate([pq.infer(x[i : i + 1]) for i in range(len(x))])
    y = test.labels[idx]
    agree = int((lf.argmax(1) == lq.argmax(1)).sum())
    w = wilson(agree, len(idx))
    lo, hi = w.lo, w.hi
    acc_f, acc_q = float((lf.argmax(1) == y).mean()), float((lq.argmax(1) == y).mean())
    # paired: images only one of the two gets right (McNemar's exact test on the discordant pairs)
    b = int(((lf.argmax(1) == y) & (lq.argmax(1) != y)).sum())
    c = int(((lf.argmax(1) != y) & (lq.argmax(1) == y)).sum())
    from scipy.stats import binomtest

    pval = binomtest(b, b + c).pvalue if b + c else 1.0
    t = {"fp32": [], "int8": []}
    x1 = x[:1]
    for _ in range(20):
        for p in (pf, pq):
            for _ in range(10):
                s = time.perf_counter()
                p.infer(x1)
                t["fp32" if p is pf else "int8"].append(time.perf_counter() - s)
    for _ in range(max(1, runs // 10)):
        for k, p in (("fp32", pf), ("int8", pq)):
            for _ in range(10):
                s = time.perf_counter()
                p.infer(x1)
                t[k].append(time.perf_counter() - s)
    p50 = {k: float(np.median(v[200:])) * 1e3 for k, v in t.items()}
    print(f"\n4. MobileNetV3-Large (Fashion-MNIST, {spec.input.height}x{spec.input.width} grey) FP32 vs INT8 .pte, {threads} threads")
    print(f"   float ops left in INT8: {pq.spec.artifact['float_ops']}")
    print(f"   top-1 agreement INT8 vs FP32: {agree}/{len(idx)} = {agree / len(idx):.1%} (95% CI [{lo:.1%}, {hi:.1%}])")
    print(f"   accuracy FP32 {acc_f:.2%}, INT8 {acc_q:.2%} on the same {len(idx)} test images; discordant {b} vs {c}, "
          f"McNemar exact p = {pval:.3f}")
    print(f"   model-only p50 FP32 {p50['fp32']:.3f} ms, INT8 {p50['int8']:.3f} ms: INT8 speed-up {p50['fp32'] / p50['int8']:.2f}x "
          f"(interleaved chunks of 10)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=100, help="calls per timing block / edgecls-bench --runs")
    ap.add_argument("--rounds", type=int, default=16, help="interleaved rounds for the overhead ratio")
    ap.add_argument("--test-images", type=int, default=1000, help="Fashion-MNIST test images for the MobileNetV3 agreement")
    ap.add_argument("--out", help="folder for the artifacts (reused when present); default: a temp folder")
    ap.add_argument("--skip", nargs="*", default=[], choices=["agreement", "bench", "overhead", "mnv3"])
    a = ap.parse_args()
    out = Path(a.out or tempfile.mkdtemp(prefix="edgecls-executorch-"))
    out.mkdir(parents=True, exist_ok=True)
    from importlib.metadata import version

    print(f"executorch {version('executorch')}, torch {version('torch')}, artifacts in {out}; calibration: 300 crops of the "
          "bundled photos (Lite0), 300 Fashion-MNIST test images (MobileNetV3)", flush=True)
    model, spec = edgecls.create_model("efficientnet_lite0", pretrained=True)
    arts = lite0_artifacts(out, model, spec, photo_crops(300))
    if "agreement" not in a.skip:
        agreement(model, spec, arts, a.threads)
    if "bench" not in a.skip:
        bench_run(arts, out, a.threads, a.runs * 2)
    if "overhead" not in a.skip:
        overhead(arts["pte"], a.threads, a.rounds, a.runs)
    if "mnv3" not in a.skip:
        mobilenetv3(out, a.threads, a.runs * 4, a.test_images)


if __name__ == "__main__":
    main()

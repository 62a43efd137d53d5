"""Float vs compressed Fashion-MNIST models on ONNX Runtime and OpenVINO: model-only p50 and ratios, in one run.

    .venv/bin/python benchmarks/compress_latency.py [--float runs/fashion_mnist_mnv3/best.pt]
        [--pruned runs/compress/prune_distill/step2_finetune.pt] [--int8 runs/compress/int8_mnv3/step2_quantize]

Exports the float and pruned .pt files to batch-1 ONNX and OpenVINO IR (verified), adds any INT8 artifacts found
under --int8, then times every artifact in alternating rounds (same process, same thread count) so the ratios
compare like with like on a noisy machine. MACs/params come from the lineage.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from edgecls import Predictor, export, load
from edgecls.bench.runner import time_calls
from edgecls.data.datasets import load_fashion_mnist


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--float", dest="float_pt", default="runs/fashion_mnist_mnv3/best.pt")
    ap.add_argument("--pruned", default="runs/compress/prune_distill/step2_finetune.pt")
    ap.add_argument("--int8", nargs="*", default=["runs/compress/int8_mnv3/step1_quantize", "runs/compress/int8_mnv3/step2_quantize"])
    ap.add_argument("--out", default="bench_out/compress")
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    out = Path(a.out)
    arts: dict[str, Path] = {}
    for name, pt in (("float", a.float_pt), ("pruned", a.pruned)):
        if not Path(pt).is_file():
            print(f"skip {name}: {pt} not found (run the compress recipe first)")
            continue
        model, spec = load(pt)
        for fmt, suffix in (("onnx", ".onnx"), ("openvino", ".xml")):
            arts[f"{name} {fmt}"] = export(model, spec, out / f"{name}{suffix}").path
    for d in a.int8:
        for p in sorted(Path(d).glob("int8_*.onnx")) + sorted(Path(d).glob("int8_*.xml")):
            arts[f"{Path(d).name}/{p.name}"] = p
    img = load_fashion_mnist("test").images[0][..., 0]
    preds = {k: Predictor(p, threads=a.threads) for k, p in arts.items()}
    xs = {k: p.preprocess(img, color="RGB") for k, p in preds.items()}
    p50 = {k: [] for k in preds}
    for _ in range(a.rounds):
        for k, p in preds.items():
            p50[k].append(statistics.median(time_calls(lambda: p.infer(xs[k]), 50, a.runs, None)))
    print(f"\nmodel-only p50, batch 1, {a.threads} threads, median of {a.rounds} alternating rounds x {a.runs} runs")
    print(f"{'artifact':48s} {'p50 ms':>7s} {'x float':>8s}  MACs      per-round ratios vs float")
    for k, v in p50.items():
        fmt = "onnx" if str(arts[k]).endswith(".onnx") else "openvino"
        ref = p50[f"float {fmt}"]
        spec = preds[k].spec
        macs = next((s.params["after"]["macs"] for s in spec.lineage if s.step == "prune"), None)
        ratios = [round(r / x, 2) for r, x in zip(ref, v)]
        print(f"{k:48s} {statistics.median(v):7.3f} {statistics.median(ref) / statistics.median(v):7.2f}x  "
              f"{(f'{macs / 1e6:.1f}M' if macs else 'full'):8s}  {ratios}")


if __name__ == "__main__":
    main()

"""Cross-check edgecls-bench's model-only timing against the runtimes' own tools, in the same run, same artifact.

- OpenVINO: benchmark_app -hint none -nstreams 1 -api sync -nthreads T -infer_precision f32 (edgecls runs f32 too)
- ONNX Runtime: onnxruntime_perf_test, when installed (pip wheels do not ship it)
- LiteRT: litert-benchmark --num_threads T (its CompiledModel API; edgecls runs the Interpreter with XNNPACK)
Runs alternate native / edgecls `--rounds` times; medians are compared round by round.

    .venv/bin/python benchmarks/native_crosscheck.py [--threads 2] [--runs 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gc
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import edgecls
from edgecls.bench.runner import camera_frame, time_calls


def benchmark_app(xml: Path, threads: int, runs: int) -> float:
    exe = shutil.which("benchmark_app") or str(Path(sys.executable).with_name("benchmark_app"))
    # -hint none + 1 stream + T threads: what the Predictor's LATENCY hint with INFERENCE_NUM_THREADS=T amounts to
    cmd = [exe, "-m", str(xml), "-d", "CPU", "-hint", "none", "-api", "sync", "-nthreads", str(threads),
           "-niter", str(runs), "-infer_precision", "f32", "-nstreams", "1"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600).stdout
    m = re.search(r"Median:\s+([\d.]+) ms", out)
    if not m:
        raise RuntimeError("benchmark_app output had no 'Median:' line:\n" + out[-2000:])
    return float(m.group(1))


def litert_benchmark(tfl: Path, threads: int, runs: int) -> float:
    import json

    exe = shutil.which("litert-benchmark") or str(Path(sys.executable).with_name("litert-benchmark"))
    res = tfl.with_suffix(".bench.json")
    subprocess.run([exe, "--model", str(tfl), "--num_runs", str(runs), "--warmup_runs", "20", "--num_threads", str(threads),
                    "--result_json", str(res)], capture_output=True, text=True, timeout=600, check=True)
    return float(json.loads(res.read_text())["latency"]["median_ms"])


def edgecls_p50(pred: edgecls.Predictor, runs: int) -> float:
    x = pred.preprocess(camera_frame(3), color="BGR")
    return float(np.median(time_calls(lambda: pred.infer(x), 20, runs, None)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tools", nargs="+", default=["openvino", "litert"], choices=["openvino", "litert"])
    a = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="edgecls-native-"))
    model, spec = edgecls.create_model("efficientnet_lite0", pretrained=True)
    pairs = {"openvino": ("OpenVINO benchmark_app", "lite0.xml", benchmark_app),
             "litert": ("LiteRT litert-benchmark", "lite0.tflite", litert_benchmark)}
    for key in a.tools:
        tool, name, native_fn = pairs[key]
        # export right before measuring: the TFLite converter loads JAX/XLA thread pools that must not sit
        # beside the OpenVINO measurement
        path = edgecls.export(model, spec, out / name).path
        gc.collect()
        pred = edgecls.Predictor(path, threads=a.threads)
        ratios = []
        for i in range(a.rounds):
            native = native_fn(path, a.threads, a.runs)
            ours = edgecls_p50(pred, a.runs)
            ratios.append(ours / native)
            print(f"{tool} round {i + 1}: native median {native:.3f} ms | edgecls model-only p50 {ours:.3f} ms | ratio {ours / native:.3f}")
        print(f"==> {tool}: edgecls/native p50 ratio, median over rounds {np.median(ratios):.3f} (target 0.95-1.05)")
    for tool in ("onnxruntime_perf_test",):
        print(f"{tool}: {'found at ' + shutil.which(tool) if shutil.which(tool) else 'not installed here; no comparison'}")


if __name__ == "__main__":
    main()

"""Fused uint8 input: cast-then-transpose (what edgecls exports, what TensorRT needs) vs the old transpose-then-cast.

Exports pretrained EfficientNet-Lite0 both ways, checks the two files give the same logits, then times model-only
p50 on ONNX Runtime and OpenVINO in interleaved rounds (one run, same stretch of time) and prints new/old ratios.
Also says where ORT's optimizer leaves the Transpose in each graph.

    PYTHONPATH=. nice -n 19 python benchmarks/fused_input_order.py [--rounds 8] [--calls 50] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def old_adapter(model, spec):
    import torch

    from edgecls.exporters.onnx import input_adapter

    new = input_adapter(model, spec)

    class TransposeThenCast(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = new

        def forward(self, x):
            x = x.permute(0, 3, 1, 2).float()
            return self.inner.model(x * self.inner.scale + self.inner.shift)

    return TransposeThenCast().eval()


def export_old(model, spec, path: Path) -> None:
    import torch

    net = old_adapter(model, spec)
    torch.onnx.export(net, (torch.zeros((1, 224, 224, 3), dtype=torch.uint8),), str(path), input_names=["input"],
                      output_names=["logits"], opset_version=17, dynamo=False, do_constant_folding=True)


def ort_session(path: Path, threads: int, optimized: Path | None = None):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if optimized:
        so.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def first_ops(path: Path, n: int = 6) -> str:
    import onnx

    return " -> ".join(node.op_type for node in onnx.load(str(path)).graph.node[:n])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--calls", type=int, default=50, help="calls per model per round")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    import openvino as ov

    import edgecls
    from edgecls.data.samples import sample_images

    model, spec = edgecls.create_model("efficientnet_lite0", pretrained=True)
    d = Path(tempfile.mkdtemp(prefix="fused_order_"))
    new, old = d / "cast_first.onnx", d / "transpose_first.onnx"
    edgecls.export(model, spec, new, verify=False)
    export_old(model, spec, old)
    x = edgecls.Predictor(new).preprocess(sample_images(("coffee",))["coffee"], color="RGB")
    sessions = {k: ort_session(p, a.threads, d / f"{k}.opt.onnx") for k, p in (("new", new), ("old", old))}
    outs = {k: s.run(None, {"input": x})[0] for k, s in sessions.items()}
    print(f"max |logit diff| new vs old on ORT: {np.abs(outs['new'] - outs['old']).max():.2e}")
    for k in ("new", "old"):
        print(f"ORT-optimized {k}: {first_ops(d / f'{k}.opt.onnx')}")

    core = ov.Core()
    cfg = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": a.threads, "INFERENCE_PRECISION_HINT": "f32"}
    compiled = {k: core.compile_model(str(p), "CPU", cfg) for k, p in (("new", new), ("old", old))}
    requests = {k: c.create_infer_request() for k, c in compiled.items()}
    calls = {
        ("ort", "new"): lambda: sessions["new"].run(None, {"input": x}),
        ("ort", "old"): lambda: sessions["old"].run(None, {"input": x}),
        ("openvino", "new"): lambda: requests["new"].infer({0: x}),
        ("openvino", "old"): lambda: requests["old"].infer({0: x}),
    }
    for fn in calls.values():
        for _ in range(10):
            fn()
    ms: dict = {k: [] for k in calls}
    for _ in range(a.rounds):
        for k, fn in calls.items():
            for _ in range(a.calls):
                t = time.perf_counter()
                fn()
                ms[k].append((time.perf_counter() - t) * 1e3)
    for rt in ("ort", "openvino"):
        pn, po = np.median(ms[(rt, "new")]), np.median(ms[(rt, "old")])
        print(f"{rt:9s} p50 cast-first {pn:.3f} ms, transpose-first {po:.3f} ms, new/old {pn / po:.3f} "
              f"(n={len(ms[(rt, 'new')])} each, {a.threads} threads)")


if __name__ == "__main__":
    main()

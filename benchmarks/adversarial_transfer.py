"""Do small adversarial perturbations crafted on the float PyTorch model transfer to its INT8 builds?

FGSM and PGD (10 steps, step eps/4, no random start) against pretrained EfficientNet-Lite0 (.pt, white box), in pixel
space on the model's own 224x224 crop (eps in grey levels out of 255, the result rounded to uint8 as a camera frame
is), then the same uint8 pictures given to the FP32 and INT8 artifacts of benchmarks/robustness_lite0.py (run that
first: it builds them). Target: the FP32 model's clean top-1 (no ImageNet labels offline), so the figure is the
agreement with it that survives the attack, with Wilson intervals, and INT8 vs FP32 ONNX paired (McNemar).

    nice -n 19 python benchmarks/adversarial_transfer.py [--limit 48] [--eps 1 2 4]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def attack(model, spec, px: np.ndarray, target: np.ndarray, eps: float, steps: int) -> np.ndarray:
    """uint8 (N, H, W, 3) crops -> adversarial uint8 crops within eps grey levels (L-inf); steps=1 is FGSM."""
    import torch

    mean = torch.tensor(spec.preprocess.mean).view(1, -1, 1, 1) * 255
    std = torch.tensor(spec.preprocess.std).view(1, -1, 1, 1) * 255
    x0 = torch.from_numpy(px).permute(0, 3, 1, 2).float()
    y = torch.from_numpy(target).long()
    x = x0.clone()
    alpha = eps if steps == 1 else eps / 4
    for _ in range(steps):
        x.requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(model((x - mean) / std), y)
        (g,) = torch.autograd.grad(loss, x)
        with torch.no_grad():
            x = torch.clamp(torch.min(torch.max(x + alpha * g.sign(), x0 - eps), x0 + eps), 0, 255)
    return np.ascontiguousarray(x.detach().round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy())


def main() -> int:
    import torch

    from edgecls import Predictor, stats
    from edgecls.artifacts import load_pt
    from edgecls.decode import read_rgb
    from edgecls.preprocess import fast_pixels, to_input

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default=str(ROOT / ".data" / "robustness_lite0"))
    ap.add_argument("--limit", type=int, default=48)
    ap.add_argument("--eps", type=float, nargs="+", default=[1, 2, 4])
    a = ap.parse_args()
    d = Path(a.dir)
    torch.set_num_threads(2)
    model, spec = load_pt(d / "lite0.pt")
    model.eval()
    files = sorted((d / "hymenoptera" / "hymenoptera" / "val").rglob("*.jpg"))
    files = [files[i] for i in sorted(np.random.default_rng(0).permutation(len(files))[: a.limit])]
    px = np.stack([fast_pixels(read_rgb(f), "RGB", spec) for f in files])
    with torch.inference_mode():
        target = model(torch.from_numpy(np.concatenate([to_input(p, spec) for p in px]))).argmax(1).numpy()
    arts = ["lite0.onnx", "lite0_int8.onnx", "lite0_int8.xml", "lite0_int8.tflite"]
    preds = {n: Predictor(d / n, threads=2) for n in arts if (d / n).exists()}
    conditions = {"clean": px}
    for eps in a.eps:
        conditions[f"FGSM eps={eps:g}"] = attack(model, spec, px, target, eps, 1)
        conditions[f"PGD-10 eps={eps:g}"] = attack(model, spec, px, target, eps, 10)
    print(f"n={len(px)} ants/bees photos; agreement % with the FP32 model's clean top-1 [Wilson 95%]; "
          "INT8 rows: paired vs FP32 ONNX (McNemar)")
    for cond, pics in conditions.items():
        with torch.inference_mode():
            ok_pt = model(torch.from_numpy(np.concatenate([to_input(p, spec) for p in pics]))).argmax(1).numpy() == target
        row = [f"{cond:16s} pt(white box) {stats.accuracy(ok_pt).pct()}"]
        ok = {}
        for n, p in preds.items():
            ok[n] = np.concatenate([p.infer(to_input(q, p.spec)) for q in pics]).argmax(1) == target
            cmp = f" vs FP32 {100 * stats.paired(ok['lite0.onnx'], ok[n]).difference:+.1f} p={stats.paired(ok['lite0.onnx'], ok[n]).p_value:.2g}" if n != "lite0.onnx" else ""
            row.append(f"{n} {100 * ok[n].mean():.1f}{cmp}")
        print(" | ".join(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

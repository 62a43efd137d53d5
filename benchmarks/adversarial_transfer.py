"""Do small adversarial perturbations crafted on the float PyTorch model transfer to its INT8 builds?

edgecls.robustness.evaluate_adversarial (the API behind `edgecls eval ... --adversarial`): FGSM and PGD (10 steps,
step eps/4, no random start) against pretrained EfficientNet-Lite0 (.pt, white box), in pixel space on the model's
own 224x224 crop (eps in grey levels out of 255, rounded to uint8 as a camera frame is), then the same uint8
pictures given to the FP32 and INT8 artifacts of benchmarks/robustness_lite0.py (run that first: it builds them).
Target: the FP32 model's clean top-1 (no ImageNet labels offline), so the figure is the agreement with it that
survives the attack, with Wilson intervals, and each build vs FP32 ONNX paired (McNemar).

    nice -n 19 python benchmarks/adversarial_transfer.py [--limit 48] [--eps 1 2 4]

The same from the command line: edgecls eval DIR/lite0.pt DIR/lite0.onnx DIR/lite0_int8.onnx ... --data VAL
--agreement --adversarial 1 2 4 --limit 48 -o OUT
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    import torch
    from rich.console import Console

    from edgecls.report import robustness as report
    from edgecls.robustness import evaluate_adversarial, load_image_set

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default=str(ROOT / ".data" / "robustness_lite0"))
    ap.add_argument("--limit", type=int, default=48)
    ap.add_argument("--eps", type=float, nargs="+", default=[1, 2, 4])
    ap.add_argument("--steps", type=int, default=10)
    a = ap.parse_args()
    d = Path(a.dir)
    torch.set_num_threads(2)
    arts = [d / n for n in ("lite0.onnx", "lite0_int8.onnx", "lite0_int8.xml", "lite0_int8.tflite", "lite0_pruned50.onnx")
            if (d / n).exists()]
    images = load_image_set(d / "hymenoptera" / "hymenoptera" / "val", [], limit=a.limit, agreement=True)
    con = Console(width=200)
    r = evaluate_adversarial(d / "lite0.pt", arts, images, eps=a.eps, steps=a.steps, threads=2, progress=con.log)
    report.render_adversarial(r, con)
    print(f"largest change per picture, grey levels: {r['linf']}; {r['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

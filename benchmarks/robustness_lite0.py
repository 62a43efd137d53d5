"""Does INT8 lose more under corruption than on clean images? Pretrained EfficientNet-Lite0, FP32 vs INT8 on ONNX
Runtime, OpenVINO and LiteRT, on the real ants/bees validation photos (hymenoptera val, 153 pictures).

No ImageNet labels offline, so "accuracy" is agreement with the FP32 ONNX model's top-1 on the clean picture: for
the FP32 builds it measures the corruption, for the INT8 builds how much more of the float model's decision
quantization gives up. The INT8 builds are the demo's (ONNX Runtime quantize_static, NNCF, PT2E for LiteRT, calibrated
on 300 crops of the bundled photos); one more ONNX INT8 build is calibrated on the same crops, half of them corrupted
(random corruption and severity), the cheap fix to try if INT8 loses more under corruption.

    nice -n 19 python benchmarks/robustness_lite0.py [--corruptions ...] [--severities 1,3,5] [--limit N] [-o DIR]
        [--models lite0.onnx lite0_pruned50.onnx ...]

The 50%-MAC pruned model (pruned by torch-pruning, recovered by distillation from the FP32 model on unlabelled photos)
is built by benchmarks/prune_lite0.py into the same folder; add it with --models.

Prints the tables and writes DIR/robustness.{json,md,png} (default .data/robustness_lite0/).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))


ALL = ["lite0.onnx", "lite0.xml", "lite0.tflite", "lite0_int8.onnx", "lite0_int8.xml", "lite0_int8.tflite",
       "lite0_int8_corruptcal.onnx", "lite0_pruned50.onnx"]


def build(out: Path, names: list[str]) -> list[Path]:
    """Build the artifacts named (cached in `out`); lite0_pruned50.onnx comes from benchmarks/prune_lite0.py."""
    import edgecls
    from edgecls import Predictor
    from edgecls.compress.ptq import quantize_file
    from edgecls.data.samples import photo_crops
    from edgecls.robustness import CORRUPTIONS, corrupt
    from edgecls.robustness.corruptions import image_seed

    if "lite0_pruned50.onnx" in names and not (out / "lite0_pruned50.onnx").exists():
        raise SystemExit(f"{out / 'lite0_pruned50.onnx'} is missing: run benchmarks/prune_lite0.py -o {out} first")
    need = [n for n in names if not (out / n).exists()]
    if not need and (out / "lite0.pt").exists():
        return [out / n for n in names]
    model, spec = edgecls.create_model("efficientnet_lite0", pretrained=True)
    if not (out / "lite0.pt").exists():  # not evaluated here: for edgecls explain and benchmarks/adversarial_transfer.py
        edgecls.export(model, spec, out / "lite0.pt")
    for n in ("lite0.onnx", "lite0.xml", "lite0.tflite"):
        if not (out / n).exists() and (n in need or (n == "lite0.onnx" and any("onnx" in m for m in need))
                                       or (n == "lite0.xml" and "lite0_int8.xml" in need)):
            edgecls.export(model, spec, out / n)
    if not any("int8" in n for n in need):
        return [out / n for n in names]
    crops = photo_crops(300)
    rng = np.random.default_rng(1)
    kinds = [n for n in CORRUPTIONS]
    mixed = [c if k % 2 == 0 else corrupt(c, kinds[rng.integers(len(kinds))], int(rng.integers(1, 6)),
                                          image_seed(1, "calib", 0, k)) for k, c in enumerate(crops)]
    for src, dst, images in (("lite0.onnx", "lite0_int8.onnx", crops), ("lite0.xml", "lite0_int8.xml", crops),
                             ("lite0.onnx", "lite0_int8_corruptcal.onnx", mixed)):
        if dst not in need:
            continue
        with Predictor(out / src) as p:
            calib = np.concatenate([p.preprocess(c, color="RGB") for c in images])
            quantize_file("openvino" if dst.endswith(".xml") else "onnx", out / src, out / dst, p.spec, calib)
    if "lite0_int8.tflite" in need:
        edgecls.export(model, spec, out / "lite0_int8.tflite", precision="int8", calibration=crops)
    return [out / n for n in names]


def main() -> int:
    import shared_data
    from rich.console import Console

    from edgecls.report import robustness as report
    from edgecls.robustness import evaluate_corruptions, load_image_set

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corruptions", nargs="+", default=["gaussian_noise", "motion_blur", "fog", "contrast", "jpeg_compression"])
    ap.add_argument("--severities", default="1,3,5")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", nargs="+", choices=ALL, metavar="NAME",
                    help=f"artifacts to compare, the first is the reference: {', '.join(ALL)} (default: all but the pruned "
                         "one, which benchmarks/prune_lite0.py builds)")
    ap.add_argument("-o", "--out", default=str(ROOT / ".data" / "robustness_lite0"))
    a = ap.parse_args()
    from edgecls.robustness import parse_severities

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    con = Console(width=170)
    models = build(out, a.models or ALL[:-1])
    data = out / "hymenoptera" / "hymenoptera"
    if not (data / "val").is_dir():
        data = shared_data.extract_hymenoptera(out / "hymenoptera")
    images = load_image_set(data / "val", [], limit=a.limit, agreement=True)
    result = evaluate_corruptions(models, images, corruptions=a.corruptions, severities=parse_severities(a.severities),
                                  threads=a.threads, progress=con.log)
    import json

    (out / "robustness.json").write_text(json.dumps(result, indent=2))
    (out / "robustness.md").write_text(report.to_markdown(result))
    report.plot(result, out / "robustness.png")
    report.render_table(result, con)
    for m in result["models"][1:]:
        vs = m["vs_reference"]
        print(f"{m['name']:28s} clean agreement {m['clean']['acc']:.3f}  mCA {m['mean_corruption_accuracy']['acc']:.3f}  "
              f"extra drop under corruption {100 * vs['extra_drop_under_corruption']['mean']:+.2f} pts "
              f"[{100 * vs['extra_drop_under_corruption']['ci95'][0]:+.2f}, {100 * vs['extra_drop_under_corruption']['ci95'][1]:+.2f}] "
              f"p={vs['extra_drop_under_corruption']['p']:.3g}")
    print(f"{result['seconds']} s; files in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

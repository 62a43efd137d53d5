"""Cost of turning a 1080p camera frame into the model input, next to the model's own latency.

Goal (issue 2): preprocessing under 10% of the INT8 model's latency. Prints one table; all numbers come from
this run (medians; the machine is noisy, so read the ratios). INT8 here is a plain ONNX Runtime quantize_static
of the same model, calibrated on the sample photos, only to have the INT8 denominator.

    .venv/bin/python benchmarks/preprocess_bench.py [--threads 2] [--runs 300]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np

import edgecls
from edgecls.bench.runner import time_calls
from edgecls.data.samples import sample_images
from edgecls.runtime import preprocess as P


def median_ms(fn, runs: int) -> float:
    return float(np.median(time_calls(fn, 20, runs, None)))


def quantize_int8(src: Path, dst: Path, spec) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"input": P.reference(img, "RGB", spec)} for img in sample_images().values()])

        def get_next(self):
            return next(self.it, None)

    pre = dst.with_suffix(".pre.onnx")
    quant_pre_process(str(src), str(pre))
    quantize_static(str(pre), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=300)
    a = ap.parse_args()

    from rich.console import Console
    from rich.table import Table

    out = Path(tempfile.mkdtemp(prefix="edgecls-prebench-"))
    model, spec = edgecls.create_model("efficientnet_lite0", pretrained=True)
    fused = edgecls.export(model, spec, out / "lite0.onnx").path
    plain = edgecls.export(model, spec, out / "lite0_f32in.onnx", fuse_preprocess=False).path
    xml = edgecls.export(model, spec, out / "lite0.xml").path
    int8 = out / "lite0_int8.onnx"
    quantize_int8(fused, int8, edgecls.Predictor(fused).spec)
    int8_pred = edgecls.Predictor(int8, spec=edgecls.Predictor(fused).spec, threads=a.threads)

    frame = cv2.resize(np.ascontiguousarray(sample_images()["chelsea"][..., ::-1]), (1920, 1080))  # BGR 1080p
    t_pil = median_ms(lambda: P.reference(frame, "BGR", spec), max(20, a.runs // 10))
    rows = []
    for name, pred in (
        ("ORT FP32, uint8 NHWC in (fused normalize)", edgecls.Predictor(fused, threads=a.threads)),
        ("ORT FP32, float NCHW in", edgecls.Predictor(plain, threads=a.threads)),
        ("OpenVINO FP32, uint8 NHWC in", edgecls.Predictor(xml, threads=a.threads)),
        ("ORT INT8 QDQ, uint8 NHWC in", int8_pred),
    ):
        x = pred.preprocess(frame, color="BGR")
        t_pre = median_ms(lambda: pred.preprocess(frame, color="BGR"), a.runs)
        t_model = median_ms(lambda: pred.infer(x), a.runs)
        t_e2e = median_ms(lambda: pred.predict(frame, color="BGR"), a.runs)
        rows.append((name, t_pre, t_model, t_e2e))

    t_int8 = rows[-1][2]
    table = Table(title=f"1080p BGR frame -> EfficientNet-Lite0, {a.threads} threads, median of {a.runs} (ms)")
    for col in ("artifact", "preprocess", "model", "end-to-end", "pre/model", "pre/INT8 model"):
        table.add_column(col)
    for name, t_pre, t_model, t_e2e in rows:
        table.add_row(name, f"{t_pre:.3f}", f"{t_model:.2f}", f"{t_e2e:.2f}", f"{t_pre / t_model:.1%}", f"{t_pre / t_int8:.1%}")
    table.add_row("reference (PIL antialiased), for scale", f"{t_pil:.3f}", "", "", "", f"{t_pil / t_int8:.1%}")
    Console().print(table)


if __name__ == "__main__":
    main()

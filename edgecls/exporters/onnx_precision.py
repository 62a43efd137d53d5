"""FP32 ONNX -> the typed ONNX that a strongly typed TensorRT network builds from (TensorRT 11 has no other way):

  onnx_to_fp16      NVIDIA ModelOpt AutoCast: mixed FP16, I/O types kept (uint8 pixels in, float32 logits out); nodes
                    whose values would overflow FP16 (checked on reference inputs) stay FP32.
  onnx_to_int8_qdq  NVIDIA ModelOpt ONNX PTQ: symmetric int8 Q/DQ (every zero-point 0, int8 activations, per-channel
                    weights), placed where TensorRT fuses them; the float parts left between them in FP16.

Both run on a CPU (ModelOpt calibrates through ONNX Runtime's CPU provider), so the typed ONNX is checked here before any
GPU sees it. ModelOpt requires torch, so it is its own extra (`pip install 'edgecls[modelopt]'`, or `[tensorrt-export]`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from pathlib import Path

import numpy as np

from ..errors import ExportError, require

EXTRA = "modelopt"


@contextlib.contextmanager
def _quiet():
    """ModelOpt logs every node at INFO and prints progress; keep warnings, drop the chatter."""
    log = logging.getLogger("modelopt")
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        log.setLevel(level)


def _input_name(src: Path) -> str:
    onnx = require("onnx", "torch")
    m = onnx.load(str(src), load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    names = [i.name for i in m.graph.input if i.name not in inits]
    if len(names) != 1:
        raise ExportError(f"{src.name} has inputs {names}; edgecls converts classifiers with one input")
    return names[0]


def onnx_to_fp16(src: str | Path, dst: str | Path, reference_inputs: np.ndarray) -> dict:
    """Write the mixed-FP16 version of `src` to `dst`; `reference_inputs` (N, *input) in the ONNX's input type are what
    AutoCast runs to find values FP16 cannot hold. Returns what it did (for the artifact record)."""
    onnx = require("onnx", "torch")
    autocast = require("modelopt.onnx.autocast", EXTRA)
    src, dst = Path(src), Path(dst)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "reference.npz"  # AutoCast's own random inputs fail on uint8 pixels (polygraphy's range)
        np.savez(data, **{_input_name(src): np.ascontiguousarray(reference_inputs)})
        try:
            with _quiet():
                m = autocast.convert_to_mixed_precision(str(src), low_precision_type="fp16", keep_io_types=True,
                                                        calibration_data=str(data), providers=["cpu"])
        except Exception as exc:  # noqa: BLE001 - ModelOpt raises plain Exceptions
            raise ExportError(f"ModelOpt AutoCast could not convert {src.name} to FP16: {type(exc).__name__}: {str(exc)[:300]}") from exc
    onnx.save(m, str(dst))
    return {"fp16_source": "modelopt_autocast"}


def onnx_to_int8_qdq(src: str | Path, dst: str | Path, samples: list[np.ndarray], method: str = "entropy") -> dict:
    """Write a symmetric int8 Q/DQ version of `src` to `dst`, calibrated on `samples` (batch-of-one inputs in the
    ONNX's input type). Returns what it did, with the Q/DQ summary (all zero-points 0 is checked, not assumed)."""
    quant = require("modelopt.onnx.quantization", EXTRA)
    src, dst = Path(src), Path(dst)
    if method not in ("entropy", "max"):
        raise ExportError(f"int8 calibration method {method!r}: choose 'entropy' or 'max'")
    data = np.concatenate(samples)
    try:
        with _quiet():
            quant.quantize(str(src), quantize_mode="int8", calibration_data={_input_name(src): data},
                           calibration_method=method, calibration_eps=["cpu"], output_path=str(dst),
                           high_precision_dtype="fp16", log_level="WARNING")
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"ModelOpt INT8 PTQ of {src.name} failed: {type(exc).__name__}: {str(exc)[:300]}") from exc
    summary = qdq_summary(dst)
    if summary["nonzero_zero_points"] or summary["activation_dtypes"] != ["int8"]:
        raise ExportError(f"{dst.name} is not symmetric int8 Q/DQ (TensorRT takes no other): {summary}")
    return {"int8_source": "qdq", "quantizer": "modelopt", "calibration": method, "calibration_images": len(samples), **summary}


def qdq_summary(path: str | Path) -> dict:
    """Q/DQ facts TensorRT cares about: how many QuantizeLinear nodes, the zero-point types, how many are non-zero."""
    onnx = require("onnx", "torch")
    from onnx import numpy_helper

    m = onnx.load(str(path))
    consts = {i.name: i for i in m.graph.initializer}
    consts.update({n.output[0]: n.attribute[0].t for n in m.graph.node if n.op_type == "Constant" and n.attribute
                   and n.attribute[0].name == "value"})
    q = [n for n in m.graph.node if n.op_type == "QuantizeLinear"]
    dtypes, nonzero = set(), 0
    for n in q:
        if len(n.input) > 2 and n.input[2] in consts:
            zp = numpy_helper.to_array(consts[n.input[2]])
            dtypes.add(zp.dtype.name)
            nonzero += int(np.any(zp != 0))
        else:
            dtypes.add("uint8")  # QuantizeLinear without a zero-point is uint8 by the ONNX spec
    return {"quantize_nodes": len(q), "activation_dtypes": sorted(dtypes), "nonzero_zero_points": nonzero}

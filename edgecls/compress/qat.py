"""Quantization-aware training with NNCF on the PyTorch model: nncf.quantize inserts fake quantizers (initialised
from calibration data), the edgecls trainer fine-tunes them with the weights, nncf.strip turns them into native
torch fake-quant ops, and the ONNX export then carries QuantizeLinear/DequantizeLinear pairs that ONNX Runtime,
OpenVINO and TensorRT all run as INT8.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np

from ..errors import require
from ..spec import ModelSpec


def fake_quantize(model, calib: np.ndarray, keep_float: tuple[str, ...] = (), overflow_fix: str = "auto"):
    """A copy of `model` with NNCF fake quantizers; keep_float: regexes of module paths left in float."""
    # NNCF compiles a C++ extension on first use and gives up after 60 s: on a 2-core board (or a busy CI machine)
    # the compile alone takes longer. Respect a value the user set; otherwise wait up to 10 minutes.
    os.environ.setdefault("NNCF_EXTENSION_LOAD_TIMEOUT", "600")
    torch = require("torch", "torch")
    nncf = require("nncf", "compress")
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    from .ptq import resolve_overflow_fix, scope_patterns

    scope = nncf.IgnoredScope(patterns=scope_patterns(keep_float), validate=False) if keep_float else None
    return nncf.quantize(copy.deepcopy(model).eval(), nncf.Dataset(list(calib), lambda x: torch.from_numpy(x[None])),
                         subset_size=len(calib), ignored_scope=scope,
                         advanced_parameters=AdvancedQuantizationParameters(overflow_fix=OverflowFix(resolve_overflow_fix(overflow_fix))))


def _state_io(qmodel):
    """The trainer's best-model I/O for a fake-quantized model: its own state dict (quantizer ranges included)."""
    import torch

    from ..artifacts import atomic_write_with
    from ..train.loop import ModelIO

    def save(model, spec, path: Path):
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        atomic_write_with(path, lambda tmp: torch.save({"qat_state": state, "spec": spec.to_json()}, tmp))

    def load(path: Path, spec):
        qmodel.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["qat_state"])
        return qmodel

    return ModelIO(save=save, load=load)


def qat(model, spec: ModelSpec, train_cfg, calib: np.ndarray, keep_float: tuple[str, ...] = (), teacher=None,
        overflow_fix: str = "auto"):
    """Fake-quantize, fine-tune with the edgecls trainer (train_cfg: a TrainConfig; teacher: distil from it),
    strip. Returns (model, spec)."""
    torch = require("torch", "torch")
    nncf = require("nncf", "compress")
    from ..train.loop import train
    from .ptq import resolve_overflow_fix

    qmodel = fake_quantize(model, calib, keep_float, overflow_fix)
    result = train(train_cfg, model=qmodel, spec=spec, teacher=teacher, io=_state_io(qmodel))
    i = spec.input
    example = torch.zeros(1, i.channels, i.height, i.width)
    stripped = nncf.strip(result.model.eval(), do_copy=True, strip_format=nncf.StripFormat.NATIVE, example_input=example)
    params = {"tool": "nncf.quantize + edgecls trainer + nncf.strip", "calibration_images": len(calib),
              "epochs": train_cfg.epochs, "lr": train_cfg.lr, "keep_float": list(keep_float), "distilled": teacher is not None,
              "overflow_fix": resolve_overflow_fix(overflow_fix)}
    out = result.spec.with_step("qat", params, {"val_top1_fake_quant": result.metrics["summary"].get("val_top1")})
    return stripped.eval(), out

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
from ..runtime.spec import ModelSpec


def fake_quantize(model, calib: np.ndarray, keep_float: tuple[str, ...] = (), overflow_fix: str = "auto",
                  target_cpu: str | None = None):
    """A copy of `model` with NNCF fake quantizers; keep_float: regexes of module paths left in float."""
    # NNCF compiles a C++ extension on first use and gives up after 60 s: on a 2-core board (or a busy CI machine)
    # the compile alone takes longer. Respect a value the user set; otherwise wait up to 10 minutes.
    os.environ.setdefault("NNCF_EXTENSION_LOAD_TIMEOUT", "600")
    torch = require("torch", "torch")
    nncf = require("nncf", "compress")
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix, QuantizationParameters

    from .ptq import resolve_overflow_fix, scope_patterns

    scope = nncf.IgnoredScope(patterns=scope_patterns(keep_float), validate=False) if keep_float else None
    return nncf.quantize(copy.deepcopy(model).eval(), nncf.Dataset(list(calib), lambda x: torch.from_numpy(x[None])),
                         subset_size=len(calib), ignored_scope=scope,
                         preset=nncf.QuantizationPreset.MIXED,
                         advanced_parameters=AdvancedQuantizationParameters(
                             overflow_fix=OverflowFix(resolve_overflow_fix(overflow_fix, target_cpu)),
                             activations_quantization_params=QuantizationParameters(per_channel=False)))


def _state_io(qmodel):
    """The trainer's best-model I/O for a fake-quantized model: its own state dict (quantizer ranges included)."""
    import torch

    from ..runtime.artifacts import atomic_write_with
    from ..train.loop import ModelIO

    def save(model, spec, path: Path):
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        atomic_write_with(path, lambda tmp: torch.save({"qat_state": state, "spec": spec.to_json()}, tmp))

    def load(path: Path, spec):
        qmodel.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["qat_state"])
        return qmodel

    return ModelIO(save=save, load=load)


def qat(model, spec: ModelSpec, train_cfg, calib: np.ndarray, keep_float: tuple[str, ...] = (), teacher=None,
        overflow_fix: str = "auto", datasets=None, target_cpu: str | None = None):
    """Fake-quantize, fine-tune with the edgecls trainer (train_cfg: a TrainConfig; teacher: distil from it),
    strip. Returns (Q/DQ model, spec, float model with the QAT-trained weights).

    target_cpu: the CPU class it is built for (cpuinfo.TARGET_CPUS; None: this machine's), which decides
    overflow_fix "auto".
    datasets: (train, val) for the trainer instead of train_cfg's data, e.g. training images under corruptions
    (edgecls.robustness.augment.corruption_augmented) so the quantized model learns the pictures the field sends.

    The Q/DQ model is what OpenVINO wants (it fuses each convolution with the activation after it). ONNX Runtime
    fuses an int8 convolution only when a QuantizeLinear follows the Conv itself, while NNCF quantizes after the
    activation (hard-swish, ReLU6): 37 of 53 convolutions of a MobileNetV3 stayed float. So the ONNX Runtime
    artifact is the QAT-trained float model quantized by ONNX Runtime's own PTQ (compress.steps does that)."""
    torch = require("torch", "torch")
    nncf = require("nncf", "compress")
    from ..runtime.cpuinfo import resolve_target_cpu
    from ..train.loop import train
    from .fold import fold_batchnorm
    from .ptq import resolve_overflow_fix

    # BatchNorm folded first: otherwise the Q/DQ export keeps Conv -> BatchNormalization, which ONNX Runtime runs
    # in float (6x slower than PTQ INT8 on Lite0); folded, QAT trains the very weights the device runs
    folded, n_folded = fold_batchnorm(model, torch.from_numpy(calib[:1]))
    qmodel = fake_quantize(folded, calib, keep_float, overflow_fix, target_cpu)
    result = train(train_cfg, model=qmodel, spec=spec, teacher=teacher, io=_state_io(qmodel), datasets=datasets)
    i = spec.input
    example = torch.zeros(1, i.channels, i.height, i.width)
    stripped = nncf.strip(result.model.eval(), do_copy=True, strip_format=nncf.StripFormat.NATIVE, example_input=example)
    params = {"tool": "nncf.quantize + edgecls trainer + nncf.strip", "calibration_images": len(calib),
              "epochs": train_cfg.epochs, "lr": train_cfg.lr, "keep_float": list(keep_float), "distilled": teacher is not None, "batchnorm_folded": n_folded,
              "overflow_fix": resolve_overflow_fix(overflow_fix, target_cpu)}
    corrupted = getattr(datasets[0], "names", None) if datasets else None
    if corrupted:
        params["augment_corruptions"] = {"names": list(corrupted), "p": datasets[0].p, "severities": list(datasets[0].severities)}
    out = result.spec.with_step("qat", params, {"val_top1_fake_quant": result.metrics["summary"].get("val_top1")},
                                target_cpu=resolve_target_cpu(target_cpu))
    trained = copy.deepcopy(folded)
    qstate, own = result.model.state_dict(), trained.state_dict()
    shared = {k: qstate[k] for k, v in own.items() if k in qstate and qstate[k].shape == v.shape}
    if len(shared) != len(own):  # NNCF renamed modules: say so rather than hand back untrained weights
        raise RuntimeError(f"QAT weights: {len(own) - len(shared)} of {len(own)} float tensors not found in the NNCF model")
    trained.load_state_dict(shared)
    return stripped.eval(), out, trained.eval()

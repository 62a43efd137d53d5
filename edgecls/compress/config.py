"""CompressConfig: the settings of `edgecls compress CONFIG.yaml`: the float model, the data, and the steps in order.

Each step's options and their defaults belong to the step (steps.py); the config only checks them against it, so a
typo in a step fails when the YAML is read, not after the float model has been evaluated."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..configfile import SettingsFile, did_you_mean, setting
from ..errors import CompressError, ConfigError
from .steps import STEPS


@dataclass
class CompressConfig(SettingsFile):
    _error = CompressError  # not annotated: a class attribute, not a dataclass field
    _what = "compress"
    model: str = setting("", "the float model to start from: an edgecls .pt", metavar="PT")
    data: str = setting("fashion-mnist", "'fashion-mnist', or an ImageFolder whose class names are the model's labels "
                                         "(multi-label: a folder holding its labels manifest)")
    data_root: str | None = setting(None, "folder of the Fashion-MNIST IDX files (default: Debian's dataset-fashion-mnist)")
    val_dir: str | None = setting(None, "validation ImageFolder; default: the trainer's stratified split of `data`")
    val_fraction: float = setting(0.1, "share held out for validation when there is no val_dir: the trainer's split (same "
                                       "seed), so budget decisions never see training images")
    seed: int = setting(0, "seed of the split, the calibration subsets and fine-tuning")
    out_dir: str = setting("runs/compress", "folder for compress.json and every step's model and artifacts")
    threads: int | None = setting(None, "PyTorch CPU threads (default: PyTorch's own)")
    val_limit: int | None = setting(None, "judge budgets on this many val images (default: all)")
    test_limit: int | None = setting(None, "report test top-1 on this many test images (default: all)")
    max_drop: float | None = setting(None, "INT8 budget: top-1 points below the float model on the val split, for every "
                                           "quantize step without its own max_drop")
    target_cpu: str | None = setting("this", "the CPU class the INT8 artifacts are built for: x86-vnni, x86-avx2 (x86 without VNNI, "
                                      "whose U8S8 kernels saturate), arm64, or this (the machine running compress); "
                                      "recorded in each artifact", metavar="CPU")
    steps: list[dict[str, Any]] = setting([], "the steps in order, each one of prune, finetune, quantize with its options, "
                                              "e.g. [{prune: {target_macs: 0.5}}, {quantize: {backends: [onnx]}}]")

    def __post_init__(self) -> None:
        if not self.model:
            raise CompressError("the compress config needs `model:` (the float edgecls .pt to start from)")
        if not isinstance(self.steps, list):
            raise CompressError(f"steps: {self.steps!r} must be a list of steps, e.g. `- prune: {{target_macs: 0.5}}`")
        for i, s in enumerate(self.steps):
            if not isinstance(s, dict) or len(s) != 1 or next(iter(s)) not in STEPS:
                hint = did_you_mean(next(iter(s)), STEPS) if isinstance(s, dict) and len(s) == 1 else ""
                raise CompressError(f"steps[{i}] = {s!r}{hint}: each step is one of {', '.join(STEPS)} with its options, "
                                    "e.g. `- prune: {target_macs: 0.5}`")
            name, opts = next(iter(s.items()))
            STEPS[name].options(opts)  # an unknown or misplaced option fails now, before any work
        if self.max_drop is not None:
            self.set_max_drop(self.max_drop, override=False)
        from ..runtime.cpuinfo import resolve_target_cpu

        try:
            self.target_cpu = resolve_target_cpu(self.target_cpu)
        except ConfigError as exc:
            raise CompressError(str(exc)) from None

    def set_max_drop(self, max_drop: float, *, override: bool = True) -> None:
        """The INT8 budget for the quantize steps: every one (override, what --max-drop does), or those without their own."""
        if not isinstance(max_drop, (int, float)) or isinstance(max_drop, bool):
            raise CompressError(f"max_drop={max_drop!r} must be a number of top-1 points (e.g. 0.5)")
        self.max_drop = float(max_drop)
        for step in self.steps:
            if "quantize" in step:
                opts = dict(step["quantize"] or {})
                if override or opts.get("max_drop") is None:
                    opts["max_drop"] = float(max_drop)
                step["quantize"] = opts


__all__ = ["CompressConfig"]

"""Structured pruning with torch-pruning: whole channels leave the graph, so every runtime gets a smaller, faster model.

torch-pruning's dependency graph keeps depthwise convs, SE blocks and residual adds consistent. We prune by L2
group magnitude, keep the classifier, round channel counts to multiples of 8 (what SIMD/tensor-core kernels want),
and stop at a MAC target or a ratio, in `steps` iterations (fine-tuning in between is the caller's choice).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import CompressError, require
from ..runtime.spec import ModelSpec


@dataclass(frozen=True)
class Size:
    macs: int
    params: int

    def as_dict(self) -> dict:
        return {"macs": self.macs, "params": self.params}


def example_input(spec: ModelSpec) -> torch.Tensor:
    i = spec.input
    return torch.randn(1, i.channels, i.height, i.width)


def measure(model: torch.nn.Module, spec: ModelSpec) -> Size:
    tp = require("torch_pruning", "compress")
    macs, params = tp.utils.count_ops_and_params(model.eval(), example_input(spec))
    return Size(int(macs), int(params))


def prune(model: torch.nn.Module, spec: ModelSpec, *, target_macs: float | None = None, ratio: float | None = None,
          steps: int = 5, round_to: int = 8, between=None) -> tuple[torch.nn.Module, ModelSpec]:
    """Remove channels of `model` (in place) until MACs <= target_macs x the original (default 0.5), or by `ratio`.

    between(model, step): called after each of the `steps` iterations (e.g. a short fine-tune).
    """
    tp = require("torch_pruning", "compress")
    if target_macs is not None and ratio is not None:
        raise CompressError("give one of target_macs (fraction of the original MACs) or ratio (of channels), not both")
    if target_macs is None and ratio is None:
        target_macs = 0.5
    goal = target_macs if target_macs is not None else ratio
    if not 0 < goal < 1:
        raise CompressError(f"pruning target {goal} must be in (0, 1)")
    model.eval()
    before = measure(model, spec)
    if ratio is None:
        ratio = _ratio_for_macs(model, spec, target_macs * before.macs, round_to)
    pruner = _pruner(tp, model, spec, ratio, steps, round_to)
    for step in range(steps):
        pruner.step()
        if between is not None:
            between(model, step)
    after = measure(model, spec)
    params = {"tool": "torch-pruning", "importance": "group L2 magnitude", "target_macs": target_macs,
              "channel_ratio": round(ratio, 4), "steps": steps, "round_to": round_to, "before": before.as_dict(),
              "after": after.as_dict(), "mac_fraction": after.macs / before.macs}
    return model, spec.with_step("prune", params)


def _pruner(tp, model, spec, ratio, steps, round_to):
    return tp.pruner.MetaPruner(model, example_input(spec), importance=tp.importance.GroupMagnitudeImportance(p=2),
                                pruning_ratio=ratio, iterative_steps=steps, ignored_layers=[model.get_classifier()],
                                round_to=round_to)


def _ratio_for_macs(model, spec, target: float, round_to: int) -> float:
    """The largest-MAC channel ratio that still meets the target, by bisection on copies (each trial ~0.5 s)."""
    import copy

    tp = require("torch_pruning", "compress")
    lo, hi = 0.0, 0.95
    for _ in range(10):
        mid = (lo + hi) / 2
        trial = copy.deepcopy(model)
        _pruner(tp, trial, spec, mid, 1, round_to).step()
        if measure(trial, spec).macs <= target:
            hi = mid
        else:
            lo = mid
    return hi

"""Rebuild a registry model whose channels were removed (structured pruning) from its state dict alone.

A pruned .pt keeps weights_only loading (no pickled modules): the state dict's tensor shapes say how many channels
each conv/BN/linear kept, and the registry's fresh model is resized to match before the weights load.
"""

from __future__ import annotations

import torch


def _set(model: torch.nn.Module, name: str, module: torch.nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


def fit_to_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """Resize Conv2d / BatchNorm2d / Linear modules of `model` in place to the shapes found in `state`."""
    for name, m in list(model.named_modules()):
        w = state.get(f"{name}.weight")
        if w is None or tuple(w.shape) == tuple(m.weight.shape):
            continue
        if isinstance(m, torch.nn.Conv2d):
            depthwise = m.groups > 1 and m.groups == m.in_channels == m.out_channels
            out_c = w.shape[0]
            groups = out_c if depthwise else m.groups
            # keywords only: timm's Conv2dSame (TF "SAME" padding) takes these but not padding_mode
            new = type(m)(w.shape[1] * groups, out_c, m.kernel_size, stride=m.stride, padding=m.padding,
                          dilation=m.dilation, groups=groups, bias=m.bias is not None)
        elif isinstance(m, torch.nn.BatchNorm2d):
            new = type(m)(w.shape[0], m.eps, m.momentum, m.affine, m.track_running_stats)
            if hasattr(m, "act"):  # timm's BatchNormAct2d carries its activation and dropout
                new.act, new.drop = m.act, m.drop
        elif isinstance(m, torch.nn.Linear):
            new = torch.nn.Linear(w.shape[1], w.shape[0], m.bias is not None)
        else:
            continue
        _set(model, name, new)
    return model

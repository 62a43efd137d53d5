"""TF-style 'SAME' padding as constants, for graph exports of a model whose input size is fixed.

timm's ports of TensorFlow models (the tf_efficientnet_lite family behind efficientnet_lite*) pad their stride-2
convolutions the TensorFlow way: `Conv2dSame` computes the padding from the input's shape on every call. Traced to
ONNX that is a Shape/Gather/Cast/Div/Ceil/Mul/Sub chain and a Pad per layer, and it does harm twice:
- ONNX Runtime's quantize_static treats the float arithmetic of the pad sizes as activations and quantizes it
  (QLinearMul on pad amounts), so the INT8 graph pads by the wrong amounts. Pretrained EfficientNet-Lite0 INT8 kept the
  FP32 top-1 on 62% of 300 photo crops with it, 89% with constant padding (the Q/DQ graph evaluated in float).
- The Pad ops and the Q/DQ pairs around them cost ~2 ms of a 14 ms INT8 Lite0 on 2 cores.

An exported artifact's height and width are fixed, so each layer's padding is a constant: the exported copy gets one
Conv node per such layer with its (asymmetric) pads attribute and no Pad at all. The PyTorch computation is the same
(F.pad then conv2d), so export verification compares like with like.
"""

from __future__ import annotations

import copy
import functools


def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow 'SAME' (before, after) padding of one spatial axis (timm's get_same_padding, split as pad_same)."""
    total = max((-(-size // stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _modules(model):
    try:
        from timm.layers.conv2d_same import Conv2dSame
    except ImportError:  # no timm model can be in here
        return []
    # exactly Conv2dSame (not a subclass someone changed), and not one wrapped by hooks (NNCF's fake quantizers on a
    # QAT model hang on the module itself: replacing it would drop them)
    return [(n, m) for n, m in model.named_modules() if type(m) is Conv2dSame and not (m._forward_hooks or m._forward_pre_hooks)]


def static_same_padding(model, height: int, width: int, channels: int = 3):
    """(model, n): a copy of `model` whose dynamic-'SAME' convolutions pad by constants computed for a
    (channels, height, width) input, and how many there were; the model itself when it has none."""
    import torch

    found = _modules(model)
    if not found:
        return model, 0
    model = copy.deepcopy(model).eval()
    found = _modules(model)
    sizes: dict[str, tuple[int, int]] = {}
    def seen(name):
        def hook(module, args):  # a pre-hook that returns something replaces the input: this one returns None
            sizes.setdefault(name, tuple(args[0].shape[-2:]))
        return hook

    hooks = [m.register_forward_pre_hook(seen(n)) for n, m in found]
    try:
        with torch.no_grad():
            model(torch.zeros(1, channels, height, width))
    finally:
        for h in hooks:
            h.remove()
    for name, m in found:
        if name not in sizes:  # not on the path an input takes: leave it as it is
            continue
        (ih, iw), (kh, kw) = sizes[name], m.weight.shape[-2:]
        top, bottom = _same_pads(ih, kh, m.stride[0], m.dilation[0])
        left, right = _same_pads(iw, kw, m.stride[1], m.dilation[1])
        new = static_pad_conv2d()(m.in_channels, m.out_channels, m.kernel_size, m.stride, 0, m.dilation, m.groups,
                              m.bias is not None, device=m.weight.device, dtype=m.weight.dtype)
        new.load_state_dict(m.state_dict())
        new.pads = (top, left, bottom, right)
        parent, _, leaf = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, leaf, new)
    return model, len(sizes)


@functools.lru_cache(maxsize=1)
def static_pad_conv2d():
    """The StaticPadConv2d class (made on first use: importing this module must not import torch)."""
    import torch
    import torch.nn.functional as F

    class _PaddedConv(torch.autograd.Function):
        """F.pad + conv2d in PyTorch; one ONNX Conv with asymmetric pads in the exported graph."""

        @staticmethod
        def forward(ctx, x, weight, bias, stride, dilation, groups, pads):
            top, left, bottom, right = pads
            return F.conv2d(F.pad(x, (left, right, top, bottom)), weight, bias, stride, 0, dilation, groups)

        @staticmethod
        def symbolic(g, x, weight, bias, stride, dilation, groups, pads):
            inputs = [x, weight]
            if bias is not None and not bias.node().mustBeNone():
                inputs.append(bias)
            return g.op("Conv", *inputs, kernel_shape_i=list(weight.type().sizes()[2:]), strides_i=list(stride),
                        dilations_i=list(dilation), group_i=int(groups), pads_i=list(pads))

    class StaticPadConv2d(torch.nn.Conv2d):
        """A Conv2d with fixed (top, left, bottom, right) zero padding applied before it (`pads`)."""

        pads: tuple[int, int, int, int] = (0, 0, 0, 0)

        def forward(self, x):
            return _PaddedConv.apply(x, self.weight, self.bias, tuple(self.stride), tuple(self.dilation), self.groups,
                                     tuple(self.pads))

    return StaticPadConv2d


__all__ = ["static_pad_conv2d", "static_same_padding"]

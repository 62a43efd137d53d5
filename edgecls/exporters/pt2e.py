"""Shared pieces of PyTorch's PT2E INT8 flow (torchao.quantization.pt2e), used by the TFLite and ExecuTorch exports.

Both quantizers (litert-torch's PT2EQuantizer, ExecuTorch's XNNPACKQuantizer) fuse conv+ReLU but not conv+ReLU6
(aten.hardtanh): the ReLU6 then shares the conv's observer, so the int8 range covers the unclamped conv output
(e.g. [-40, 30] for [0, 6] of real values). On pretrained EfficientNet-Lite0 that cost 64% of top-1 on the sample
photos (36% agreement with PyTorch, TFLite). Observing after the clamp instead (what TFLite's and XNNPACK's own
conv+clamp fusion expect: dq -> conv -> clamp -> q) gives 100%.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np


def clamp_aware(base: type) -> type:
    """A subclass of the PT2E quantizer class `base` that observes conv+ReLU6 after the clamp (see the module doc)."""
    import torch
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation, QuantizationSpec

    key = "quantization_annotation"
    convs = (torch.ops.aten.conv2d.default, torch.ops.aten.convolution.default)
    clamps = (torch.ops.aten.hardtanh.default, torch.ops.aten.hardtanh_.default)

    class ClampAware(base):
        counted = None  # which nodes float_ops looks at (e.g. the wrapped model's, not an input adapter's); None: all
        float_ops: dict[str, int] = {}  # after annotate(): compute ops left in float, by op name

        def annotate(self, model):
            model = super().annotate(model)
            self.float_ops = float_ops(model, self.counted)
            for n in model.graph.nodes:
                conv = n.args[0] if n.op == "call_function" and n.target in clamps else None
                if getattr(conv, "target", None) not in convs or len(conv.users) != 1 or key not in conv.meta:
                    continue
                qspec = conv.meta[key].output_qspec
                if isinstance(qspec, QuantizationSpec):
                    conv.meta[key].output_qspec = None
                    n.meta[key] = QuantizationAnnotation(input_qspec_map={}, output_qspec=qspec, _annotated=True)
            return model

    ClampAware.__name__ = ClampAware.__qualname__ = f"ClampAware{base.__name__}"
    return ClampAware


SHAPE_OPS = ("getitem", "_assert", "view", "reshape", "flatten", "permute", "squeeze", "unsqueeze", "dropout", "clone",
             "expand", "to.dtype", "_to_copy", "contiguous", "alias")


def float_ops(model, wanted=None) -> dict[str, int]:
    """op name -> count of the compute ops an annotated graph leaves unquantized (shape-only ops not counted):
    where a Q/DQ graph computes in float, between a dequantize and a quantize."""
    key = "quantization_annotation"
    out: dict[str, int] = {}
    for n in model.graph.nodes:
        if n.op != "call_function" or key in n.meta or (wanted is not None and not wanted(n)):
            continue
        name = str(getattr(n.target, "__name__", n.target)).split(".")[0].rstrip("_")
        if not any(s in str(n.target) for s in SHAPE_OPS):
            out[name] = out.get(name, 0) + 1
    return dict(sorted(out.items()))


def quantize_graph(torch, net, example: tuple, quantizer, samples: Iterable[np.ndarray], *, fold_quantize: bool):
    """torch.export `net`, insert the quantizer's observers, run the calibration samples, convert: the Q/DQ graph
    module. fold_quantize: store weights as int8 constants (ExecuTorch) or keep float weights + quantize nodes."""
    from torchao.quantization.pt2e import move_exported_model_to_eval, quantize_pt2e

    graph = quantize_pt2e.prepare_pt2e(torch.export.export(net, example).module(), quantizer)
    move_exported_model_to_eval(graph)
    with torch.no_grad():
        for x in samples:
            graph(torch.from_numpy(x))
    graph = quantize_pt2e.convert_pt2e(graph, fold_quantize=fold_quantize)
    move_exported_model_to_eval(graph)
    return graph


def module_path(node) -> str:
    """The deepest PyTorch module path a graph node came from ("model.blocks.1.0.se.conv_reduce"), "" when none."""
    stack = node.meta.get("nn_module_stack") or {}
    return max((str(v[0]) for v in stack.values()), key=len, default="")


def in_scopes(path: str, scopes: Iterable[str]) -> bool:
    """Whether module `path` lies inside one of `scopes` ("se", "conv_stem", "blocks.5"), matched as whole dotted
    path components: "se" matches "model.blocks.1.0.se.conv_reduce", not "model.base"."""
    parts = path.split(".")
    for scope in scopes:
        want = scope.split(".")
        if any(parts[i : i + len(want)] == want for i in range(len(parts) - len(want) + 1)):
            return True
    return False

"""PyTorch -> ONNX. Opset 17 by default: the newest that JetPack 5's TensorRT 8.5 and current OpenVINO/ORT read."""

from __future__ import annotations

import warnings
from pathlib import Path

from ..errors import ExportError, require
from ..runtime.graphs import GRAPH_KEY
from ..runtime.spec import SPEC_KEY, InputSpec, ModelSpec

DEFAULT_OPSET = 17
MIN_OPSET, MAX_OPSET = 13, 21


def input_adapter(model, spec: ModelSpec):
    """Wrap `model` so the graph takes raw uint8 NHWC pixels and does cast, layout and normalization itself.

    This is the spec's normalization, folded into the artifact: the host then only resizes (the fast path), and
    any other program feeding the artifact cannot get mean/std wrong.
    """
    import torch

    pre = spec.preprocess
    scale = torch.tensor([1.0 / (255.0 * s) for s in pre.std]).view(1, -1, 1, 1)
    shift = torch.tensor([-m / s for m, s in zip(pre.mean, pre.std)]).view(1, -1, 1, 1)
    if len(set(pre.mean)) == 1 and len(set(pre.std)) == 1:
        # one value for all channels (Lite0's 0.5/0.5, grey models): scalar constants. Per-channel ones end up
        # broadcast along a size-3 innermost axis once ORT moves the transpose, measured 2 ms of an 8 ms INT8 model
        scale, shift = scale.flatten()[0], shift.flatten()[0]

    class UInt8NHWC(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            self.register_buffer("scale", scale)
            self.register_buffer("shift", shift)

        def forward(self, x):
            # cast first, then transpose: TensorRT takes uint8 only into a Cast/Identity (its Shuffle, which a
            # Transpose becomes, has no uint8), so the raw input must be cast before anything else touches it
            x = x.float().permute(0, 3, 1, 2)
            return self.model(x * self.scale + self.shift)

    return UInt8NHWC().eval()


def artifact_input(spec: ModelSpec, fuse_preprocess: bool, dynamic_batch: bool) -> InputSpec:
    i = spec.input
    if fuse_preprocess:
        return InputSpec(i.height, i.width, i.channels, "NHWC", "uint8", True, None if dynamic_batch else 1)
    return InputSpec(i.height, i.width, i.channels, "NCHW", "float32", False, None if dynamic_batch else 1)


def torch_to_onnx(
    model,
    spec: ModelSpec,
    path: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = False,
    fuse_preprocess: bool = True,
) -> ModelSpec:
    """Write `model` as ONNX at `path` (not atomically: export() handles that) and return the artifact's spec."""
    torch = require("torch", "torch")
    onnx = require("onnx", "torch")
    if not (MIN_OPSET <= int(opset) <= MAX_OPSET):
        raise ExportError(f"opset={opset} is outside {MIN_OPSET}..{MAX_OPSET}: pass an opset in that range "
                          f"({DEFAULT_OPSET}, the default, is the newest TensorRT on JetPack 5 reads)")
    if spec.input.layout != "NCHW" or spec.input.dtype != "float32" or spec.input.normalized_in_graph:
        raise ExportError("torch_to_onnx takes a PyTorch model whose spec input is float32 NCHW (as create_model gives)")
    inp = artifact_input(spec, fuse_preprocess, dynamic_batch)
    from .same_padding import static_same_padding

    model, n_static = static_same_padding(model.eval(), spec.input.height, spec.input.width, spec.input.channels)
    net = input_adapter(model, spec) if fuse_preprocess else model.eval()
    dtype = torch.uint8 if inp.dtype == "uint8" else torch.float32
    example = torch.zeros(inp.shape, dtype=dtype) if dtype == torch.uint8 else torch.randn(inp.shape)
    axes = {"input": {0: "batch"}, "logits": {0: "batch"}} if dynamic_batch else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice; it is the one that emits opset 17
            torch.onnx.export(
                net, (example,), str(path), input_names=["input"], output_names=["logits"], opset_version=int(opset),
                dynamic_axes=axes, dynamo=False, do_constant_folding=True,
            )
    except Exception as exc:
        raise ExportError(f"torch.onnx.export failed for {spec.arch}: {type(exc).__name__}: {str(exc)[:400]}") from exc
    out = spec.replace(input=inp, artifact={"format": "onnx", "precision": "fp32", "opset": int(opset)})
    params = {"format": "onnx", "opset": int(opset), "dynamic_batch": dynamic_batch, "fuse_preprocess": fuse_preprocess}
    if n_static:
        params["static_same_padding"] = n_static  # TF-'SAME' layers exported with constant pads (same_padding.py)
    out = out.with_step("export", params)
    m = onnx.load(str(path))
    onnx.checker.check_model(m)
    embed_onnx_spec(m, out)
    onnx.save(m, str(path))
    return out


def embed_onnx_spec(m, spec: ModelSpec) -> None:
    """Spec JSON in metadata_props; labels also as a plain key so other tools can read them; the fingerprint of the
    graph the spec is written for (runtime/graphs.py: the serialized GraphProto, as the file will hold it)."""
    import hashlib
    import json

    graph = hashlib.sha256(m.graph.SerializeToString()).hexdigest()
    props = {p.key: p for p in m.metadata_props}
    for key, value in ((SPEC_KEY, spec.to_json(indent=None)), ("labels", json.dumps(list(spec.labels))), (GRAPH_KEY, graph)):
        if key in props:
            props[key].value = value
        else:
            e = m.metadata_props.add()
            e.key, e.value = key, value


def embed_onnx_file(path: str | Path, spec: ModelSpec) -> None:
    onnx = require("onnx", "torch")
    m = onnx.load(str(path))
    embed_onnx_spec(m, spec)
    onnx.save(m, str(path))

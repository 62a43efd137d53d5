"""PyTorch -> ExecuTorch (.pte), PyTorch's on-device runtime, with the XNNPACK CPU delegate.

torch.export -> (INT8: PT2E with ExecuTorch's XNNPACKQuantizer, calibrated) -> to_edge_transform_and_lower with the
XnnpackPartitioner -> .pte. Input is uint8 NHWC with the normalization in the graph, like the other artifacts: the
uint8 -> float cast runs as one portable ExecuTorch kernel (XNNPACK's partitioner takes no dtype conversions), the
rest in XNNPACK.

The spec travels inside the program as two constant methods, `edgecls_spec` (the JSON) and `labels` (one label per
line): ExecuTorch's own slot for configuration values (`constant_methods`), readable from C++/Java/Swift with
`Module::execute("labels")` without edgecls. Rewriting it after verification goes through ExecuTorch's own
(de)serializer of the same version; the delegate blobs and weights are carried over byte for byte.

Precisions (the spec's artifact dict names the scheme):
  fp32   float graph, every supported op in XNNPACK.
  int8   static INT8 by PT2E: per-channel symmetric int8 weights, per-tensor int8 activations (histogram
         observers) calibrated on `calibration`; conv+ReLU6 observed after the clamp (exporters/pt2e.py). Ops the
         quantizer has no INT8 pattern for (hard-swish, hard-sigmoid: MobileNetV3) stay float between Q/DQ pairs
         in XNNPACK: `float_ops` in the spec counts them by op. `keep_float` keeps whole modules in
         float (the accuracy-budget fallback).
"""

from __future__ import annotations

import warnings
from importlib.metadata import version as _version
from pathlib import Path

from ..errors import ExportError, require
from ..runtime.backends.executorch import LABELS_METHOD, SPEC_METHOD, import_quietly
from ..runtime.spec import ModelSpec
from .calibration import calibration_inputs
from .onnx import artifact_input, input_adapter

PRECISIONS = ("fp32", "int8")


def torch_to_executorch(model, spec: ModelSpec, path: str | Path, *, precision: str = "fp32", calibration=None,
                        keep_float: tuple[str, ...] = ()) -> ModelSpec:
    """Convert to `path` (not atomically: export() stages and publishes) and return the artifact's spec.

    calibration (int8 only): images or preprocessed inputs, see calibration.py. keep_float (int8 only): module names
    ("conv_stem", "se", "blocks.5", "classifier") whose ops stay float, matched as whole module path components.
    """
    if precision not in PRECISIONS:
        raise ExportError(f"executorch precision={precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision != "int8" and (calibration is not None or keep_float):
        raise ExportError(f"executorch precision={precision!r} takes no calibration or keep_float; only int8 is calibrated")
    torch = require("torch", "torch")
    import_quietly("executorch.exir")
    keep_float = tuple(keep_float)
    inp = artifact_input(spec, fuse_preprocess=True, dynamic_batch=False)
    net = input_adapter(model, spec)
    example = (torch.zeros(inp.shape, dtype=torch.uint8),)
    samples = calibration_inputs(calibration, spec, inp, what=f"executorch {precision}") if precision == "int8" else []
    art = {"format": "executorch", "precision": precision, "delegate": "xnnpack",
           "quantizer": "pt2e (XNNPACKQuantizer)" if precision == "int8" else None,
           "io_dtype": {"input": "uint8", "output": "float32"}, "executorch": _version("executorch")}
    params = {"format": "executorch", "precision": precision}
    if samples:
        art["calibration_images"] = params["calibration_images"] = len(samples)
    if keep_float:
        art["float_layers"] = len(keep_float)
        params["keep_float"] = list(keep_float)
    try:
        with warnings.catch_warnings(), _quiet_loggers():
            warnings.simplefilter("ignore")
            if precision == "int8":
                net, art["float_ops"] = _pt2e_int8(torch, net, example, samples, keep_float)
            program = _lower(torch, net, example)
            art["portable_ops"] = _portable_ops(program)  # what runs outside XNNPACK (the uint8 cast at least)
            data = bytes(program.buffer)
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"ExecuTorch could not convert {spec.arch} ({precision}): {type(exc).__name__}: {str(exc)[:400]}") from exc
    out = spec.replace(input=inp, artifact=art).with_step("export", params)
    Path(path).write_bytes(_with_metadata(data, out))
    return out


def _lower(torch, net, example):
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    placeholder = {SPEC_METHOD: "", LABELS_METHOD: ""}  # filled by embed_executorch_spec once the spec is final
    edge = to_edge_transform_and_lower(torch.export.export(net, example), partitioner=[XnnpackPartitioner()],
                                       constant_methods=placeholder)
    return edge.to_executorch()


def _pt2e_int8(torch, net, example, samples, keep_float):
    """-> (the Q/DQ graph module, {op name: count} of the model's compute ops left in float)."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer, get_symmetric_quantization_config

    from .pt2e import clamp_aware, in_scopes, module_path, quantize_graph

    quantizer = clamp_aware(XNNPACKQuantizer)().set_global(get_symmetric_quantization_config(is_per_channel=True))
    # Only the wrapped model is quantized: the input adapter's cast and normalization (outside the "model" scope)
    # stay float, as in ONNX Runtime's PTQ (ptq.py); their scalar constants also break XNNPACK's layout pass as int8.
    # The filter also sees each pattern's weight/bias nodes (get_attr, no module path): those follow their op.
    def in_model(n) -> bool:
        return in_scopes(module_path(n), ("model",))

    quantizer.set_filter_function(lambda n: n.op != "call_function" or (in_model(n) and not in_scopes(module_path(n), keep_float)))
    quantizer.counted = in_model  # float_ops: every float op of the model, kept float on request or unsupported
    graph = quantize_graph(torch, net, example, quantizer, samples, fold_quantize=True)
    return graph, quantizer.float_ops


def _portable_ops(program) -> list[str]:
    """Operator names the program runs with ExecuTorch's own kernels, outside every delegate."""
    plan = next(p for p in program.executorch_program.execution_plan if p.name == "forward")
    return sorted({op.name for op in plan.operators})


class _quiet_loggers:
    """The XNNPACK partitioner and torch.export log per-node notes at WARNING/INFO during a conversion, and the
    partitioner's module calls logging.basicConfig() on import (a stderr handler on the root logger, which would then
    print every library's warnings in the caller's process): levels and root handlers are put back afterwards."""

    names = ("executorch", "torch.export", "torch._export", "torch.utils._pytree", None)

    def __enter__(self):
        import logging

        self._root = list(logging.getLogger().handlers)
        self._saved = [(lg, lg.level) for lg in map(logging.getLogger, self.names)]
        for lg, _ in self._saved:
            lg.setLevel(logging.ERROR)
        return self

    def __exit__(self, *exc):
        import logging

        for lg, level in self._saved:
            lg.setLevel(level)
        root = logging.getLogger()
        for h in [h for h in root.handlers if h not in self._root]:
            root.removeHandler(h)


# --- the spec inside the program ------------------------------------------------------------------------------
def _with_metadata(data: bytes, spec: ModelSpec) -> bytes:
    """The .pte bytes with the constant methods SPEC_METHOD / LABELS_METHOD set to `spec`; everything else kept."""
    from executorch.exir._serialize._program import deserialize_pte_binary, serialize_pte_binary
    from executorch.exir.capture._config import ExecutorchBackendConfig

    values = {SPEC_METHOD: spec.to_json(indent=None), LABELS_METHOD: "\n".join(spec.labels)}
    pte = deserialize_pte_binary(data)
    found = set()
    for plan in pte.program.execution_plan:
        if plan.name in values:
            plan.values[0].val.string_val = values[plan.name]
            found.add(plan.name)
    if found != set(values):
        raise ExportError(f"this .pte has no {sorted(set(values) - found)} constant methods to carry the spec; "
                          "it was not written by edgecls. Use the sidecar JSON for its spec")
    cfg = ExecutorchBackendConfig()
    out = bytes(serialize_pte_binary(pte, extract_delegate_segments=True, segment_alignment=cfg.segment_alignment,
                                     constant_tensor_alignment=cfg.constant_tensor_alignment,
                                     delegate_alignment=cfg.delegate_alignment))
    _check_same_program(pte, deserialize_pte_binary(out))
    return out


def _check_same_program(want, got) -> None:
    """Guard the rewrite: the re-read program must equal the one we meant to write (plans, delegates, weights)."""
    if got.program != want.program or _named(got) != _named(want):
        raise ExportError("rewriting the spec inside the .pte changed the program itself; nothing was written. "
                          "Report this with the executorch version")


def _named(pte) -> dict:
    nd = pte.named_data
    if nd is None:
        return {}
    return {k: (bytes(nd.buffers[v.buffer_index]), v.alignment) for k, v in nd.pte_data.items()}


def embed_executorch_spec(path: str | Path, spec: ModelSpec) -> None:
    import_quietly("executorch.exir")
    p = Path(path)
    p.write_bytes(_with_metadata(p.read_bytes(), spec))

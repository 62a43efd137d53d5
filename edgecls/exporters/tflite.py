"""PyTorch -> LiteRT (.tflite) with litert-torch (no TensorFlow). Input is uint8 NHWC with the normalization in the
graph (what XNNPACK and phone apps want). The spec travels in the flatbuffer's metadata (name 'edgecls.spec'),
plus the labels as plain text (name 'labels'), readable by any flatbuffer reader.

Precisions (the spec's artifact dict names the scheme: precision, quantizer, io_dtype):
  fp32          float graph.
  fp16          fp16 weights, float compute (ai_edge_quantizer recipe through litert-torch).
  dynamic_int8  int8 weights, float activations quantized on the fly per op (no calibration).
  int8          full-integer by PyTorch PT2E (litert-torch's PT2EQuantizer, per-channel, calibrated): most
                accurate INT8, but leaves float islands (QUANTIZE/DEQUANTIZE) around hard-swish/SE, which can make
                XNNPACK slower than FP32 (MobileNetV3 measured 3-4x slower on x86).
  int8_all      every op int8 (ai_edge_quantizer static_wi8_ai8 on the FP32 file, calibrated), for int8-only
                accelerators (Edge TPU/NPU/DSP delegates).
No scheme offers uint8/int8 image input: the input stays raw uint8 pixels (a CAST then QUANTIZE inside); the
int8 schemes have an int8 logits output with a scale/zero-point, which the LiteRT backend dequantizes.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from importlib.metadata import version as _version
from pathlib import Path

from ..errors import ExportError, require
from ..runtime.backends.litert import read_tflite_metadata  # noqa: F401 - the reader lives on the device side
from ..runtime.graphs import GRAPH_KEY, tflite_graph_sha256
from ..runtime.spec import SPEC_KEY, ModelSpec
from .calibration import calibration_inputs
from .onnx import artifact_input, input_adapter

PRECISIONS = ("fp32", "fp16", "dynamic_int8", "int8", "int8_all")
QUANTIZER = {"fp32": None, "fp16": "ai_edge_quantizer", "dynamic_int8": "ai_edge_quantizer", "int8": "pt2e", "int8_all": "ai_edge_quantizer"}
CALIBRATED = ("int8", "int8_all")


def torch_to_tflite(model, spec: ModelSpec, path: str | Path, *, precision: str = "fp32", calibration=None) -> ModelSpec:
    """Convert to `path`. calibration (int8, int8_all only): images or preprocessed inputs, see calibration.py."""
    torch = require("torch", "torch")
    litert_torch = require("litert_torch", "tflite-export")
    if precision not in PRECISIONS:
        raise ExportError(f"tflite precision={precision!r}: choose one of {', '.join(PRECISIONS)}")
    if calibration is not None and precision not in CALIBRATED:
        raise ExportError(f"tflite precision={precision!r} takes no calibration; only {' and '.join(CALIBRATED)} are calibrated")
    inp = artifact_input(spec, fuse_preprocess=True, dynamic_batch=False)
    net = input_adapter(model, spec)
    example = (torch.zeros(inp.shape, dtype=torch.uint8),)
    samples = calibration_inputs(calibration, spec, inp, what=f"tflite {precision}") if precision in CALIBRATED else []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if precision == "int8":
                net, kwargs = _pt2e_int8(torch, net, example, samples)
            else:
                kwargs = _recipe(precision)
            litert_torch.convert(net, example, **kwargs).export(str(path))
    except Exception as exc:
        raise ExportError(f"litert-torch could not convert {spec.arch} ({precision}): {type(exc).__name__}: {str(exc)[:400]}") from exc
    if precision == "int8_all":
        _quantize_all_int8(path, samples)
    art = {"format": "tflite", "precision": precision, "quantizer": QUANTIZER[precision], "io_dtype": _io_dtypes(path),
           "litert_torch": _version("litert-torch")}
    if QUANTIZER[precision] == "ai_edge_quantizer":
        art["ai_edge_quantizer"] = _version("ai-edge-quantizer")
    params = {"format": "tflite", "precision": precision}
    if samples:
        art["calibration_images"] = params["calibration_images"] = len(samples)
    if precision == "int8":
        art["float_islands"] = _count_ops(path, "DEQUANTIZE")  # why it may run slower than FP32: see benchmarks/
    if precision == "dynamic_int8":
        # measured with benchmarks/tflite_int8_latency.py on x86 XNNPACK, 2 threads: 1.5x (MobileNetV3) to 3x
        # (EfficientNet-Lite0) SLOWER than FP32; the hybrid kernels are not XNNPACK's. It buys size, not speed.
        art["note"] = "dynamic-range INT8: ~4x smaller, but measured 1.5-3x slower than FP32 on x86 XNNPACK"
        warnings.warn(f"{Path(path).name}: {art['note']}; for speed use precision='int8' or 'int8_all'", UserWarning, stacklevel=3)
    out = spec.replace(input=inp, artifact=art).with_step("export", params)
    embed_tflite_spec(path, out)
    return out


def _recipe(precision: str) -> dict:
    if precision == "fp16":
        from litert_torch.generative.quantize import quant_recipes

        return {"quant_config": quant_recipes.full_fp16_recipe()}
    if precision == "dynamic_int8":  # channelwise int8 weights, dynamic-range activations
        from litert_torch.generative.quantize import quant_recipes

        return {"quant_config": quant_recipes.full_dynamic_recipe()}
    return {}  # fp32; int8_all is quantized after conversion, from the FP32 graph


def _pt2e_int8(torch, net, example, samples):
    """Export, insert observers (per-channel symmetric weights, histogram activations), calibrate, convert."""
    from litert_torch.quantize import pt2e_quantizer as pq
    from litert_torch.quantize.quant_config import QuantConfig

    from .pt2e import clamp_aware, quantize_graph

    quantizer = clamp_aware(pq.PT2EQuantizer)().set_global(pq.get_symmetric_quantization_config(is_per_channel=True))
    graph = quantize_graph(torch, net, example, quantizer, samples, fold_quantize=False)
    for m in graph.modules():  # .eval() is refused on exported graphs; the flag only silences litert-torch's warning
        m.training = False
    return graph, {"quant_config": QuantConfig(pt2e_quantizer=quantizer)}


def _quantize_all_int8(path, samples) -> None:
    """FP32 .tflite -> all-int8 in place: ai_edge_quantizer's static_wi8_ai8 recipe, calibrated on `samples`."""
    from ai_edge_quantizer import quantizer, recipe

    fp32 = Path(path).read_bytes()
    try:
        # its progress bars and size report go to stdout/stderr: keep export output readable
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            qt = quantizer.Quantizer(fp32, recipe.static_wi8_ai8())
            sig = _signature(fp32)
            calib = qt.calibrate({sig[0]: [{sig[1]: x} for x in samples]}, num_threads=1)
            data = qt.quantize(calib).quantized_model
    except Exception as exc:
        raise ExportError(f"ai_edge_quantizer static_wi8_ai8 failed: {type(exc).__name__}: {str(exc)[:400]}") from exc
    Path(path).write_bytes(bytes(data))


def _interpreter(data: bytes):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # without default delegates: the op list is the graph's own, not XNNPACK's partition of it
    it = Interpreter(model_content=data, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    return it


def _signature(data: bytes) -> tuple[str, str]:
    sigs = _interpreter(data).get_signature_list()
    name = next(iter(sigs))
    return name, sigs[name]["inputs"][0]


def _io_dtypes(path) -> dict[str, str]:
    it = _interpreter(Path(path).read_bytes())
    return {"input": it.get_input_details()[0]["dtype"].__name__, "output": it.get_output_details()[0]["dtype"].__name__}


def _count_ops(path, op: str) -> int:
    return sum(d["op_name"] == op for d in _interpreter(Path(path).read_bytes())._get_ops_details())


def embed_tflite_spec(path: str | Path, spec: ModelSpec) -> None:
    """The spec, the labels as plain text and the fingerprint of the graph (runtime/graphs.py; metadata buffers are
    not part of it, so these entries do not change it)."""
    fb = require("ai_edge_litert.tools.flatbuffer_utils", "tflite")
    schema = require("ai_edge_litert.schema_py_generated", "tflite")
    graph = tflite_graph_sha256(Path(path).read_bytes(), schema)
    m = fb.read_model(str(path))
    entries = {SPEC_KEY: spec.to_json(indent=None).encode(), "labels": "\n".join(spec.labels).encode(),
               GRAPH_KEY: graph.encode()}
    m.metadata = [md for md in (m.metadata or []) if (md.name.decode() if isinstance(md.name, bytes) else md.name) not in entries]
    for name, data in entries.items():
        buf = schema.BufferT()
        buf.data = list(data)
        m.buffers.append(buf)
        md = schema.MetadataT()
        md.name = name
        md.buffer = len(m.buffers) - 1
        m.metadata.append(md)
    fb.write_model(m, str(path))

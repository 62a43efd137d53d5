"""ONNX -> TensorRT engine (.engine) with the TensorRT Python builder API (10.x and 11.x).

The engine file stays native (trtexec and C++ runtimes load it as is); the spec lives only in the `.json` sidecar,
with the TensorRT version, GPU name and compute capability the engine was built for: an engine runs only on the
same TensorRT version and GPU architecture, and the backend checks both before loading.

Precision, and what each TensorRT generation offers (checked against NVIDIA's 10.x -> 11.x migration guide):
  fp32  always. TF32 is switched off so the engine matches what verification compares against.
  fp16  10.x: BuilderFlag.FP16. 11.x removed precision flags (networks are strongly typed): the ONNX must
        already be FP16 (ModelOpt AutoCast), or the build is refused with that instruction.
  int8  explicit Q/DQ ONNX (edgecls compress, NNCF, ModelOpt): taken as is on 10.x and 11.x.
        Plain FP32 ONNX + calibration images: 10.x only, by IInt8EntropyCalibrator2 (deprecated in 10.x) with a
        cache file; 11.x removed calibrators, so that case is an ExportError asking for a Q/DQ ONNX.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..backends.tensorrt_backend import torch_dtype
from ..errors import ExportError, require
from ..spec import ModelSpec
from .calibration import calibration_inputs

PRECISIONS = ("fp32", "fp16", "int8")
_QDQ = {"QuantizeLinear", "DequantizeLinear"}


def trt_major(trt) -> int:
    return int(trt.__version__.split(".")[0])


def gpu_facts(device: int = 0) -> dict:
    torch = require("torch", "torch")
    if not torch.cuda.is_available():
        raise ExportError("TensorRT builds engines only on an NVIDIA GPU, and torch sees no CUDA device here")
    major, minor = torch.cuda.get_device_capability(device)
    return {"gpu": torch.cuda.get_device_name(device), "compute_capability": f"{major}.{minor}"}


def onnx_to_tensorrt(
    onnx_path: str | Path,
    spec: ModelSpec,
    engine_path: str | Path,
    *,
    precision: str = "fp32",
    calibration=None,
    calibration_cache: str | Path | None = None,
    batch: tuple[int, int, int] | None = None,
    workspace_mib: int = 1024,
    timing_cache: str | Path | None = None,
    dla_core: int | None = None,
) -> ModelSpec:
    """Build an engine from `onnx_path` (whose artifact spec is `spec`) and write it to `engine_path`.

    batch: (min, opt, max) batch sizes of the optimization profile; needs an ONNX with a dynamic batch axis.
    calibration / calibration_cache: calibrator INT8 on TensorRT 10 (see calibration.py for what images go in).
    timing_cache: file read before and written after the build; rebuilds of similar nets then take seconds.
    dla_core: Jetson DLA core to run on (GPU fallback for layers DLA lacks); fp16 or int8 only.
    """
    trt = require("tensorrt", "tensorrt")
    onnx = require("onnx", "onnx")
    if precision not in PRECISIONS:
        raise ExportError(f"tensorrt precision={precision!r}: choose one of {', '.join(PRECISIONS)}")
    facts = gpu_facts()
    graph = onnx.load(str(onnx_path))
    qdq = any(n.op_type in _QDQ for n in graph.graph.node)
    fp16_graph = any(t.data_type == onnx.TensorProto.FLOAT16 for t in graph.graph.initializer)
    major = trt_major(trt)
    if qdq and precision != "int8":
        raise ExportError(f"{Path(onnx_path).name} has Q/DQ nodes (an INT8 model): use precision='int8'")
    if dla_core is not None and precision == "fp32":
        raise ExportError("DLA runs fp16 or int8 only: use precision='fp16' or 'int8' with dla_core")

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if major == 10 and (qdq or fp16_graph):  # take the graph's own types, as 11.x always does
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(graph.SerializeToString()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT's ONNX parser rejected {Path(onnx_path).name}: {errors[:600]}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mib) << 20)
    if hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)  # on by default: FP32 engines would drift ~1e-3 from PyTorch
    source = _set_precision(trt, major, config, precision, qdq, fp16_graph)
    inp = network.get_input(0)
    profile_batch = _profile(builder, config, inp, batch)
    calibrator = None
    if source == "calibrator":
        samples = calibration_inputs(calibration, spec, spec.input, what="tensorrt int8")
        calibrator = _calibrator(trt, samples, calibration_cache)
        config.int8_calibrator = calibrator
    elif calibration is not None:
        raise ExportError("calibration images are only used by calibrator INT8 (TensorRT 10, FP32 ONNX)")
    if dla_core is not None:
        if dla_core >= builder.num_DLA_cores:
            raise ExportError(f"dla_core={dla_core}: this device has {builder.num_DLA_cores} DLA core(s)")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = int(dla_core)
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    cache = _load_timing_cache(config, timing_cache)

    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise ExportError(f"TensorRT could not build an engine from {Path(onnx_path).name} (see the TensorRT log above)")
    Path(engine_path).write_bytes(bytes(plan))
    if timing_cache is not None:
        _atomic_bytes(Path(timing_cache), bytes(cache.serialize()))

    art = {"format": "tensorrt", "precision": precision, "tensorrt": trt.__version__, **facts}
    if precision == "int8":
        art["int8_source"] = source  # "qdq" (explicit) or "calibrator"
    if profile_batch:
        art["batch_profile"] = list(profile_batch)
    if dla_core is not None:
        art["dla_core"] = int(dla_core)
    out = spec.replace(artifact=art)
    return out.with_step("export", {"format": "tensorrt", "precision": precision, "int8_source": art.get("int8_source")})


def _set_precision(trt, major, config, precision, qdq, fp16_graph) -> str | None:
    if precision == "fp16" and not fp16_graph:
        if major >= 11:
            raise ExportError(
                "TensorRT 11 removed BuilderFlag.FP16 (networks are strongly typed): convert the ONNX to FP16 first, "
                "e.g. `python -m modelopt.onnx.autocast --onnx_path m.onnx`, and build that with precision='fp16'"
            )
        config.set_flag(trt.BuilderFlag.FP16)
    if precision != "int8":
        return None
    if qdq:  # strongly typed on both 10.x (flag set above) and 11.x: the Q/DQ nodes fix the types, no INT8 flag
        return "qdq"
    if major >= 11:
        raise ExportError(
            "TensorRT 11 removed calibrator INT8 (IInt8Calibrator, BuilderFlag.INT8): give an ONNX with explicit "
            "Q/DQ nodes instead (edgecls compress PTQ/QAT, NNCF or ModelOpt write one) and build it with precision='int8'"
        )
    config.set_flag(trt.BuilderFlag.INT8)
    config.set_flag(trt.BuilderFlag.FP16)  # layers TensorRT keeps out of INT8 may still use FP16
    return "calibrator"


def _profile(builder, config, inp, batch):
    dynamic = inp.shape[0] == -1
    if batch is None:
        if not dynamic:
            return None
        batch = (1, 1, 1)
    lo, opt, hi = (int(b) for b in batch)
    if not (1 <= lo <= opt <= hi):
        raise ExportError(f"batch={batch}: need 1 <= min <= opt <= max")
    if not dynamic:
        if (lo, opt, hi) != (inp.shape[0],) * 3:
            raise ExportError(f"the ONNX has a fixed batch of {inp.shape[0]}; export it with dynamic_batch=True to use batch={batch}")
        return None
    rest = tuple(inp.shape[1:])
    profile = builder.create_optimization_profile()
    profile.set_shape(inp.name, (lo, *rest), (opt, *rest), (hi, *rest))
    config.add_optimization_profile(profile)
    return lo, opt, hi


def _calibrator(trt, samples: list[np.ndarray], cache: str | Path | None):
    torch = require("torch", "torch")

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        """Feeds one preprocessed image per batch from a reused device buffer; caches the scales it finds."""

        def __init__(self):
            super().__init__()
            self._it = iter(samples)
            self._dev = torch.empty(samples[0].shape, dtype=torch_dtype(torch, samples[0].dtype), device="cuda")

        def get_batch_size(self):
            return 1

        def get_batch(self, names):
            x = next(self._it, None)
            if x is None:
                return None
            self._dev.copy_(torch.from_numpy(x))
            return [int(self._dev.data_ptr())]

        def read_calibration_cache(self):
            return Path(cache).read_bytes() if cache and Path(cache).is_file() else None

        def write_calibration_cache(self, data):
            if cache:
                _atomic_bytes(Path(cache), bytes(data))

    return EntropyCalibrator()


def _load_timing_cache(config, path):
    data = Path(path).read_bytes() if path and Path(path).is_file() else b""
    cache = config.create_timing_cache(data)
    config.set_timing_cache(cache, ignore_mismatch=True)  # a cache from another GPU/version is ignored, not an error
    return cache


def _atomic_bytes(path: Path, data: bytes) -> None:
    from ..artifacts import atomic_write_bytes

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)


def embed_tensorrt_spec(path: str | os.PathLike, spec: ModelSpec) -> None:
    """Nothing to embed: the engine stays a native plan file; export() writes the sidecar JSON."""

"""ONNX -> TensorRT engine (.engine/.trt/.plan) with the TensorRT Python builder API, 10.x (JetPack 6) and 11.x.

The engine file stays native (trtexec and C++ runtimes load it as is); the spec lives only in the `.json` sidecar,
with the TensorRT version, GPU name and compute capability the engine was built for: an engine runs only on the
same TensorRT version and GPU architecture, and the backend checks both before loading.

Precision, and what each TensorRT generation offers (NVIDIA's 10.x -> 11.x migration guide, ANCHORS.md 6.3):
  fp32  always. TF32 is switched off so the engine matches what verification compares against.
  fp16  11.x removed the precision flags (networks are strongly typed): the FP32 ONNX goes through ModelOpt AutoCast
        (mixed FP16, I/O types kept) and that typed graph is built. 10.x: BuilderFlag.FP16 on the FP32 graph (what
        JetPack 6's TensorRT 10.3 does best); an FP16 ONNX is built strongly typed on both.
  int8  int8_source="qdq" (default, both): a symmetric int8 Q/DQ ONNX (ModelOpt ONNX PTQ on the calibration images;
        an ONNX that already has Q/DQ is taken as is) built strongly typed. int8_source="calibrator": 10.x only,
        IInt8EntropyCalibrator2 on the FP32 graph with a cache file and a batch-1 calibration profile; 11.x removed
        calibrators, so there it is an ExportError.
DLA (Jetson AGX Orin): 10.x; on 11.x only from 11.4.1 (JetPack 7.2.2+), typed graphs only.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import ExportError, require
from ..runtime.spec import ModelSpec
from .calibration import calibration_inputs

PRECISIONS = ("fp32", "fp16", "int8")
INT8_SOURCES = ("qdq", "calibrator")
DEFAULT_BATCH_PROFILE = (1, 8, 32)  # (min, opt, max) of a dynamic-batch engine when none is given
_QDQ = {"QuantizeLinear", "DequantizeLinear"}


def trt_major(trt) -> int:
    return int(trt.__version__.split(".")[0])


def trt_version(trt) -> tuple[int, ...]:
    return tuple(int(p) for p in trt.__version__.split(".")[:3] if p.isdigit())


def gpu_facts(device: int = 0) -> dict:
    """The GPU an engine is built for (name, compute capability), from CUDA itself (cuda-python; no torch)."""
    from ..runtime.backends import cuda_rt

    return cuda_rt.device_facts(device)


def onnx_to_tensorrt(
    onnx_path: str | Path,
    spec: ModelSpec,
    engine_path: str | Path,
    *,
    precision: str = "fp32",
    int8_source: str = "qdq",
    calibration=None,
    calibration_cache: str | Path | None = None,
    batch: tuple[int, int, int] | None = None,
    workspace_mib: int = 1024,
    timing_cache: str | Path | None = None,
    dla_core: int | None = None,
) -> ModelSpec:
    """Build an engine from `onnx_path` (whose artifact spec is `spec`) and write it to `engine_path`.

    batch: (min, opt, max) batch sizes of the optimization profile of an ONNX with a dynamic batch axis (default
        DEFAULT_BATCH_PROFILE); a fixed-batch ONNX takes None or its own batch.
    calibration: images for INT8 (see calibration.py); calibration_cache: the 10.x calibrator's cache file.
    timing_cache: file read before and written after the build; rebuilds of similar nets then take seconds.
    dla_core: Jetson DLA core to run on (GPU fallback for layers DLA lacks); fp16 or int8 only.
    """
    trt = require("tensorrt", "tensorrt")
    onnx = require("onnx", "torch")
    if precision not in PRECISIONS:
        raise ExportError(f"tensorrt precision={precision!r}: choose one of {', '.join(PRECISIONS)}")
    if int8_source not in INT8_SOURCES:
        raise ExportError(f"tensorrt int8_source={int8_source!r}: choose one of {', '.join(INT8_SOURCES)}")
    major = trt_major(trt)
    facts = gpu_facts()
    src = Path(onnx_path)
    graph = onnx.load(str(src))
    qdq = any(n.op_type in _QDQ for n in graph.graph.node)
    fp16_graph = any(t.data_type == onnx.TensorProto.FLOAT16 for t in graph.graph.initializer)
    if qdq and precision != "int8":
        raise ExportError(f"{src.name} has Q/DQ nodes (an INT8 model): use precision='int8'")
    if calibration is not None and not (precision == "int8" and not qdq):
        raise ExportError("calibration images are only used to make INT8 from an FP32 ONNX (precision='int8')")
    _check_dla(trt, major, dla_core, precision)

    record: dict = {}
    with tempfile.TemporaryDirectory(prefix=".trt-", dir=Path(engine_path).parent) as tmp:
        typed = src
        if precision == "fp16" and not fp16_graph and major >= 11:
            from .onnx_precision import onnx_to_fp16

            typed = Path(tmp) / "fp16.onnx"
            samples = calibration_inputs(None, spec, spec.input, what="tensorrt fp16 (AutoCast range check)", warn=False)
            record.update(onnx_to_fp16(src, typed, np.concatenate(samples)))
        elif precision == "fp16":
            record["fp16_source"] = "onnx" if fp16_graph else "builder_flag"
        elif precision == "int8" and qdq:
            record["int8_source"] = "qdq_onnx"  # the caller's own Q/DQ graph, as is
        elif precision == "int8" and int8_source == "qdq":
            from .onnx_precision import onnx_to_int8_qdq

            typed = Path(tmp) / "int8_qdq.onnx"
            samples = calibration_inputs(calibration, spec, spec.input, what="tensorrt int8")
            record.update(onnx_to_int8_qdq(src, typed, samples))
        elif precision == "int8":
            if major >= 11:
                raise ExportError(
                    "TensorRT 11 removed calibrator INT8 (IInt8Calibrator, BuilderFlag.INT8): use int8_source='qdq' "
                    "(the default: ModelOpt makes a symmetric Q/DQ ONNX from your calibration images)"
                )
            record["int8_source"] = "calibrator"
        data = graph.SerializeToString() if typed == src else Path(typed).read_bytes()
        strongly_typed = major >= 11 or typed != src or qdq or fp16_graph
        plan, profile_batch = _build(trt, major, data, src.name, spec, precision, strongly_typed, record, calibration,
                                     calibration_cache, batch, workspace_mib, timing_cache, dla_core)
    Path(engine_path).write_bytes(plan)

    art = {"format": "tensorrt", "precision": precision, "tensorrt": trt.__version__, **facts,
           "strongly_typed": bool(strongly_typed), **record}
    if profile_batch:
        art["batch_profile"] = list(profile_batch)
    if dla_core is not None:
        art["dla_core"] = int(dla_core)
    out = spec.replace(artifact=art)
    return out.with_step("export", {"format": "tensorrt", "precision": precision,
                                    **{k: art[k] for k in ("int8_source", "fp16_source") if k in art}})


def _check_dla(trt, major: int, dla_core, precision: str) -> None:
    if dla_core is None:
        return
    if precision == "fp32":
        raise ExportError("DLA runs fp16 or int8 only: use precision='fp16' or 'int8' with dla_core")
    if major >= 11 and trt_version(trt) < (11, 4, 1):
        raise ExportError(
            f"TensorRT {trt.__version__} has no DLA (11.0-11.4.0 dropped it; 11.4.1 brings it back on Jetson AGX Orin "
            "with JetPack 7.2.2+). On JetPack 6 use its TensorRT 10.x; otherwise leave dla_core out"
        )


def _build(trt, major, data: bytes, name: str, spec, precision, strongly_typed, record, calibration, calibration_cache,
           batch, workspace_mib, timing_cache, dla_core):
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if strongly_typed else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(data):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT's ONNX parser rejected {name}: {errors[:600]}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mib) << 20)
    if hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)  # on by default: FP32 engines would drift ~1e-3 from PyTorch
    if not strongly_typed and precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)  # 10.x only: 11.x graphs are always typed (see onnx_to_tensorrt)
    inp = network.get_input(0)
    profile_batch = _profile(builder, config, inp, batch)
    if record.get("int8_source") == "calibrator":
        config.set_flag(trt.BuilderFlag.INT8)
        config.set_flag(trt.BuilderFlag.FP16)  # layers TensorRT keeps out of INT8 may still use FP16
        samples = calibration_inputs(calibration, spec, spec.input, what="tensorrt int8 (calibrator)")
        if profile_batch:  # calibrate batch-1 inputs at a batch-1 shape, not at the profile's opt batch
            config.set_calibration_profile(_fixed_profile(builder, inp, 1))
        config.int8_calibrator = _calibrator(trt, samples, calibration_cache)
    if dla_core is not None:
        if dla_core >= builder.num_DLA_cores:
            raise ExportError(f"dla_core={dla_core}: this device has {builder.num_DLA_cores} DLA core(s)")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = int(dla_core)
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    cache = _load_timing_cache(config, timing_cache)

    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise ExportError(f"TensorRT could not build an engine from {name} (see the TensorRT log above)")
    if timing_cache is not None:
        _atomic_bytes(Path(timing_cache), bytes(cache.serialize()))
    return bytes(plan), profile_batch


def _profile(builder, config, inp, batch):
    shape = tuple(inp.shape)
    dynamic = shape[0] == -1
    if batch is None:
        if not dynamic:
            return None
        batch = DEFAULT_BATCH_PROFILE
    try:
        lo, opt, hi = (int(b) for b in batch)
    except (TypeError, ValueError):
        raise ExportError(f"batch={batch!r}: give (min, opt, max) batch sizes, e.g. {DEFAULT_BATCH_PROFILE}") from None
    if not (1 <= lo <= opt <= hi):
        raise ExportError(f"batch={batch}: need 1 <= min <= opt <= max")
    if not dynamic:
        if (lo, opt, hi) != (shape[0],) * 3:
            raise ExportError(f"the ONNX has a fixed batch of {shape[0]}; export it with dynamic_batch=True to use batch={batch}")
        return None
    rest = shape[1:]
    profile = builder.create_optimization_profile()
    profile.set_shape(inp.name, (lo, *rest), (opt, *rest), (hi, *rest))
    config.add_optimization_profile(profile)
    return lo, opt, hi


def _fixed_profile(builder, inp, n: int):
    shape = (n, *tuple(inp.shape)[1:])
    profile = builder.create_optimization_profile()
    profile.set_shape(inp.name, shape, shape, shape)
    return profile


def _calibrator(trt, samples: list[np.ndarray], cache: str | Path | None):
    from ..runtime.backends import cuda_rt

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        """Feeds one preprocessed image per batch from a reused device buffer; caches the scales it finds."""

        def __init__(self):
            super().__init__()
            self._it = iter(samples)
            self.shape = samples[0].shape  # one image: the calibration profile is set to this batch
            self._host = self._dev = None

        def get_batch_size(self):
            return 1

        def get_batch(self, names):
            x = next(self._it, None)
            if x is None:
                return None
            if self._dev is None:  # made on first use: building the calibrator needs no GPU
                self._host = cuda_rt.PinnedArray(x.shape, x.dtype)
                self._dev = cuda_rt.DeviceBuffer(self._host.nbytes)
                self._stream = cuda_rt.Stream()
            self._host.array[...] = x
            self._stream.h2d(self._dev, self._host)
            self._stream.synchronize()
            return [self._dev.ptr]

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
    from ..runtime.artifacts import atomic_write_bytes

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)


def embed_tensorrt_spec(path: str | os.PathLike, spec: ModelSpec) -> None:
    """Nothing to embed: the engine stays a native plan file; export() writes the sidecar JSON."""

"""A fake `tensorrt` module built from the recorded API surface of a real wheel (tests/data/tensorrt_api/*.json,
written by tools/trt_api_surface.py from the real 10.3 and 11.4 bindings), for CPU tests of edgecls's TensorRT code.

What it checks, and only that: the API surface and the call protocol.
- Only names the real module has exist: `BuilderFlag.FP16` or `config.int8_calibrator = ...` on 11.x raise
  AttributeError exactly as the real 11.x module does; a property that is read-only there is read-only here.
- Every call is checked against the recorded pybind11 signatures (argument count and keyword names).
- A member that exists in the real module but that this fake does not emulate raises NotImplementedError, so a
  new call in edgecls fails loudly here instead of being silently accepted.
- The few behaviours emulated are TensorRT's documented rules that edgecls depends on: a network with a dynamic
  input needs an optimization profile; a strongly typed network refuses precision flags; INT8 calibration runs at
  the calibration profile's shape, or profile 0's opt shape when none is set; `set_input_shape` returns False for a
  shape outside the profile. It never builds or runs an engine: the "plan" it returns is a JSON record of the build
  request, which only this fake's Runtime reads back, to hand the backend the I/O tensors and profile it asked for.
"""

from __future__ import annotations

import enum
import json
import re
import types
from pathlib import Path

SURFACES = Path(__file__).resolve().parent / "data" / "tensorrt_api"
VERSIONS = ("10.3.0", "11.4.0.106")
PLAN_MAGIC = b"FAKE-TENSORRT-PLAN\n"  # not an engine: a record of what was asked for


def load_surface(version: str) -> dict:
    return json.loads((SURFACES / f"tensorrt-{version}.json").read_text())


# --- signatures -------------------------------------------------------------------------------------------------
def _split_params(text: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch in "[(<":
            depth += 1
        elif ch in "])>":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def _params(signature: str) -> list[tuple[str, bool]] | None:
    """[(name, has_default)] without self; None for `(*args, **kwargs)` (the overload header)."""
    m = re.match(r"[\w.]+\((.*)\)(?: -> .*)?$", signature)
    if not m or "*args" in m.group(1):
        return None
    params = [(p.split(":")[0].split("=")[0].strip(), "=" in p) for p in _split_params(m.group(1))]
    return [p for p in params if p[0] != "self"]


def _fits(params: list[tuple[str, bool]], args: tuple, kwargs: dict) -> bool:
    if len(args) > len(params):
        return False
    rest = params[len(args):]
    names = {n for n, _ in rest}
    if set(kwargs) - names:
        return False
    return all(d or n in kwargs for n, d in rest)


def check_call(where: str, signatures: list[str], args: tuple, kwargs: dict) -> None:
    parsed = [p for p in map(_params, signatures) if p is not None]
    if parsed and not any(_fits(p, args, kwargs) for p in parsed):
        raise TypeError(f"{where}(): incompatible function arguments (fake tensorrt). Invoked with {args} {kwargs}; "
                        f"supported: {signatures}")


# --- objects -----------------------------------------------------------------------------------------------------
class Dims(tuple):
    pass


def _own(cls) -> set:
    return {k for c in cls.__mro__ for k in c.__dict__.get("_fake_own", ())}


def _is_user(cls) -> bool:
    return any("_fake_own" in c.__dict__ for c in cls.__mro__)


class FakeObject:
    """Base of every fake class: attribute access limited to the recorded members of the real class."""

    _surface_name = "?"
    _members: dict = {}
    _trt = None  # the fake module

    def __init__(self, *args, **kwargs):
        check_call(f"{self._surface_name}.__init__", self._members.get("__init__", {}).get("signatures", []), args, kwargs)
        object.__setattr__(self, "_state", {})
        self._init(*args, **kwargs)

    def _init(self, *args, **kwargs):
        pass

    def __getattribute__(self, name):
        if name.startswith("_"):
            return object.__getattribute__(self, name)
        cls = type(self)
        members = cls._members
        if name in _own(cls) or (name not in members and _is_user(cls)):  # a user subclass's own methods/attributes
            return object.__getattribute__(self, name)
        if name not in members:
            raise AttributeError(f"'tensorrt.{cls._surface_name}' object has no attribute '{name}' "
                                 f"(TensorRT {cls._trt.__version__}, fake built from the real bindings)")
        kind = members[name]["kind"]
        if kind == "property":
            getter = _BEHAVIOUR.get((cls._surface_name, name))
            state = object.__getattribute__(self, "_state")
            if getter is not None:
                return getter(self)
            if name in state:
                return state[name]
            raise NotImplementedError(f"fake tensorrt: {cls._surface_name}.{name} is real API but not emulated")
        if kind in ("method", "static"):
            fn = _BEHAVIOUR.get((cls._surface_name, name))
            sigs = members[name].get("signatures", [])

            def call(*args, **kwargs):
                check_call(f"{cls._surface_name}.{name}", sigs, args, kwargs)
                if fn is None:
                    raise NotImplementedError(f"fake tensorrt: {cls._surface_name}.{name} is real API but not emulated")
                return fn(self, *args, **kwargs)

            return call
        return object.__getattribute__(self, name)

    def __setattr__(self, name, value):
        cls = type(self)
        m = cls._members.get(name)
        if m is None or name in _own(cls):
            if name.startswith("_") or _is_user(cls):
                return object.__setattr__(self, name, value)
            raise AttributeError(f"'tensorrt.{cls._surface_name}' object has no attribute '{name}' "
                                 f"(TensorRT {cls._trt.__version__}, fake built from the real bindings)")
        if m["kind"] != "property" or not m.get("settable"):
            raise AttributeError(f"can't set attribute '{name}' of tensorrt.{cls._surface_name} (read-only)")
        self._state[name] = value

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if "_surface_name" not in cls.__dict__:  # a user subclass (a calibrator): its own methods are its own
            cls._fake_own = {k for k in cls.__dict__ if not k.startswith("__")}


# --- behaviours: only what edgecls calls --------------------------------------------------------------------------
_BEHAVIOUR: dict = {}


def behaves(cls: str, name: str):
    def deco(fn):
        _BEHAVIOUR[(cls, name)] = fn
        return fn

    return deco


@behaves("Builder", "_init")
def _builder_init(self, logger):
    self._state.update(num_DLA_cores=self._trt._num_dla_cores, logger=logger)


@behaves("Builder", "num_DLA_cores")
def _num_dla(self):
    return self._state["num_DLA_cores"]


@behaves("Builder", "create_network")
def _create_network(self, flags=0):
    net = self._trt.INetworkDefinition.__new__(self._trt.INetworkDefinition)
    object.__setattr__(net, "_state", {"flags": int(flags), "inputs": [], "outputs": []})
    return net


@behaves("Builder", "create_builder_config")
def _create_config(self):
    cfg = self._trt.IBuilderConfig.__new__(self._trt.IBuilderConfig)
    object.__setattr__(cfg, "_state", {"flags": set(), "profiles": [], "pools": {}, "DLA_core": -1,
                                       "default_device_type": self._trt.DeviceType.GPU})
    if "int8_calibrator" in type(cfg)._members:
        cfg._state["int8_calibrator"] = None
    return cfg


@behaves("Builder", "create_optimization_profile")
def _create_profile(self):
    p = self._trt.IOptimizationProfile.__new__(self._trt.IOptimizationProfile)
    object.__setattr__(p, "_state", {"shapes": {}})
    return p


@behaves("IOptimizationProfile", "set_shape")
def _set_shape(self, input, min, opt, max):  # noqa: A002
    self._state["shapes"][input] = (tuple(min), tuple(opt), tuple(max))


@behaves("IBuilderConfig", "set_memory_pool_limit")
def _pool(self, pool, pool_size):
    self._state["pools"][pool] = int(pool_size)


@behaves("IBuilderConfig", "set_flag")
def _set_flag(self, flag):
    self._state["flags"].add(flag)


@behaves("IBuilderConfig", "clear_flag")
def _clear_flag(self, flag):
    self._state["flags"].discard(flag)


@behaves("IBuilderConfig", "get_flag")
def _get_flag(self, flag):
    return flag in self._state["flags"]


@behaves("IBuilderConfig", "add_optimization_profile")
def _add_profile(self, profile):
    self._state["profiles"].append(profile)
    return len(self._state["profiles"]) - 1


@behaves("IBuilderConfig", "set_calibration_profile")
def _set_calib_profile(self, profile):
    self._state["calibration_profile"] = profile
    return True


@behaves("IBuilderConfig", "create_timing_cache")
def _timing_cache(self, serialized_timing_cache):
    c = self._trt.ITimingCache.__new__(self._trt.ITimingCache)
    object.__setattr__(c, "_state", {"data": bytes(serialized_timing_cache)})
    return c


@behaves("IBuilderConfig", "set_timing_cache")
def _set_timing_cache(self, cache, ignore_mismatch):
    self._state["timing_cache"] = cache
    return True


@behaves("ITimingCache", "serialize")
def _serialize_cache(self):
    return self._trt._host_memory(b"fake timing cache")


@behaves("OnnxParser", "_init")
def _parser_init(self, network, logger):
    self._state.update(network=network, errors=[])


@behaves("OnnxParser", "parse")
def _parse(self, model, path=None):
    """Read the ONNX's inputs/outputs into the network (names, shapes, types): that is all the fake knows of it."""
    import onnx

    m = onnx.load_from_string(bytes(model))
    trt = self._trt
    types_ = {onnx.TensorProto.FLOAT: trt.float32, onnx.TensorProto.FLOAT16: trt.float16, onnx.TensorProto.UINT8: trt.uint8,
              onnx.TensorProto.INT8: trt.int8, onnx.TensorProto.INT32: trt.int32, onnx.TensorProto.INT64: trt.int64}
    net = self._state["network"]
    inits = {i.name for i in m.graph.initializer}
    for kind, values in (("inputs", [v for v in m.graph.input if v.name not in inits]), ("outputs", m.graph.output)):
        for v in values:
            dims = Dims(d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim)
            t = trt.ITensor.__new__(trt.ITensor)
            object.__setattr__(t, "_state", {"name": v.name, "shape": dims, "dtype": types_[v.type.tensor_type.elem_type]})
            net._state[kind].append(t)
    return True


@behaves("OnnxParser", "num_errors")
def _num_errors(self):
    return len(self._state["errors"])


@behaves("INetworkDefinition", "num_inputs")
def _num_inputs(self):
    return len(self._state["inputs"])


@behaves("INetworkDefinition", "get_input")
def _get_input(self, index):
    return self._state["inputs"][index]


@behaves("INetworkDefinition", "num_outputs")
def _num_outputs(self):
    return len(self._state["outputs"])


@behaves("INetworkDefinition", "get_output")
def _get_output(self, index):
    return self._state["outputs"][index]


@behaves("Builder", "build_serialized_network")
def _build(self, network, config, *extra):
    """TensorRT's documented build-time rules that edgecls must follow; returns a request record, not an engine."""
    trt, errors = self._trt, []
    strongly = bool(network._state["flags"] & (1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)))
    flags = config._state["flags"]
    typed_flags = {n for n in ("FP16", "INT8", "BF16", "FP8") if hasattr(trt.BuilderFlag, n) and getattr(trt.BuilderFlag, n) in flags}
    if strongly and typed_flags:
        errors.append(f"precision flags {sorted(typed_flags)} are not allowed on a strongly typed network")
    profiles = [p._state["shapes"] for p in config._state["profiles"]]
    record = {"strongly_typed": strongly, "flags": sorted(f.name for f in flags), "profiles": [], "io": []}
    for t in network._state["inputs"]:
        dynamic = any(d < 0 for d in t._state["shape"])
        if dynamic and not all(t._state["name"] in p for p in profiles) or dynamic and not profiles:
            errors.append(f"network has dynamic input {t._state['name']} but no optimization profile defines its shape")
        for p in profiles:
            if t._state["name"] in p:
                lo, opt, hi = p[t._state["name"]]
                if not (len(lo) == len(t._state["shape"]) and all(a <= b <= c for a, b, c in zip(lo, opt, hi))):
                    errors.append(f"profile for {t._state['name']}: need min <= opt <= max, got {lo} {opt} {hi}")
    calibrator = config._state.get("int8_calibrator")
    if calibrator is not None:
        if trt.BuilderFlag.INT8 not in flags:
            errors.append("int8_calibrator is set but BuilderFlag.INT8 is not")
        inp = network._state["inputs"][0]
        calib = config._state.get("calibration_profile")
        shapes = calib._state["shapes"] if calib is not None else (profiles[0] if profiles else None)
        shape = shapes[inp._state["name"]][1] if shapes else tuple(inp._state["shape"])
        record["calibration_shape"] = list(shape)
        record["calibrator_batch_size"] = int(calibrator.get_batch_size())
    if config._state.get("default_device_type") == trt.DeviceType.DLA:
        if not (0 <= config._state.get("DLA_core", -1) < self._state["num_DLA_cores"]):
            errors.append("DLA requested but the DLA core is not one of this device's")
    self._trt.last_build = record
    if errors:
        self._trt.build_errors = errors
        return None
    for t in network._state["inputs"]:
        prof = [list(map(list, p[t._state["name"]])) for p in profiles if t._state["name"] in p]
        record["io"].append({"name": t._state["name"], "mode": "INPUT", "shape": list(t._state["shape"]),
                             "dtype": t._state["dtype"].name, "profile": prof[0] if prof else None})
    for t in network._state["outputs"]:
        record["io"].append({"name": t._state["name"], "mode": "OUTPUT", "shape": list(t._state["shape"]),
                             "dtype": t._state["dtype"].name, "profile": None})
    return trt._host_memory(PLAN_MAGIC + json.dumps(record).encode())


@behaves("Runtime", "_init")
def _runtime_init(self, logger):
    pass


@behaves("Runtime", "deserialize_cuda_engine")
def _deserialize(self, serialized_engine):
    data = bytes(serialized_engine)
    if not data.startswith(PLAN_MAGIC):
        return None  # what the real runtime returns for bytes it cannot read
    eng = self._trt.ICudaEngine.__new__(self._trt.ICudaEngine)
    object.__setattr__(eng, "_state", {"record": json.loads(data[len(PLAN_MAGIC):])})
    return eng


def _io(engine, name):
    return next(t for t in engine._state["record"]["io"] if t["name"] == name)


@behaves("ICudaEngine", "num_io_tensors")
def _num_io(self):
    return len(self._state["record"]["io"])


@behaves("ICudaEngine", "get_tensor_name")
def _tensor_name(self, index):
    return self._state["record"]["io"][index]["name"]


@behaves("ICudaEngine", "get_tensor_mode")
def _tensor_mode(self, name):
    return self._trt.TensorIOMode[_io(self, name)["mode"]]


@behaves("ICudaEngine", "get_tensor_dtype")
def _tensor_dtype(self, name):
    return self._trt.DataType[_io(self, name)["dtype"]]


@behaves("ICudaEngine", "get_tensor_shape")
def _tensor_shape(self, name):
    return Dims(_io(self, name)["shape"])


@behaves("ICudaEngine", "get_tensor_profile_shape")
def _profile_shape(self, name, profile_index):
    prof = _io(self, name)["profile"]
    if prof is None or profile_index != 0:
        raise RuntimeError(f"no profile {profile_index} for {name}")
    return [Dims(s) for s in prof]


@behaves("ICudaEngine", "create_execution_context")
def _create_context(self, *args):
    ctx = self._trt.IExecutionContext.__new__(self._trt.IExecutionContext)
    object.__setattr__(ctx, "_state", {"engine": self, "shapes": {}})
    return ctx


@behaves("IExecutionContext", "set_input_shape")
def _set_input_shape(self, name, shape):
    """False (and nothing set) for a shape outside the engine's profile, as the real call does."""
    t = _io(self._state["engine"], name)
    shape = tuple(shape)
    if t["profile"] is None:
        ok = shape == tuple(t["shape"])
    else:
        lo, _, hi = t["profile"]
        ok = len(shape) == len(lo) and all(a <= s <= b for a, s, b in zip(lo, shape, hi))
    if ok:
        self._state["shapes"][name] = shape
    return ok


@behaves("IExecutionContext", "get_tensor_shape")
def _ctx_tensor_shape(self, name):
    eng = self._state["engine"]
    t = _io(eng, name)
    if t["mode"] == "INPUT":
        return Dims(self._state["shapes"].get(name, t["shape"]))
    batch = next(iter(self._state["shapes"].values()), (t["shape"][0],))[0]
    return Dims([batch if d < 0 else d for d in t["shape"]])


# --- the module ----------------------------------------------------------------------------------------------------
def make_fake_tensorrt(version: str, *, num_dla_cores: int = 0) -> types.ModuleType:
    """A `tensorrt` module with exactly the recorded surface of TensorRT `version`."""
    s = load_surface(version)
    import importlib.machinery

    mod = types.ModuleType("tensorrt", f"fake tensorrt {version} (tests/fake_tensorrt.py)")
    mod.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)  # importlib.util.find_spec("tensorrt") works (timm asks)
    mod.__version__ = s["version"]
    mod._num_dla_cores = num_dla_cores
    mod.last_build, mod.build_errors = None, []
    for name, members in s["enums"].items():
        setattr(mod, name, enum.IntEnum(name, members))
    for name, v in s["values"].items():
        if v["enum"] in s["enums"]:
            setattr(mod, name, getattr(mod, v["enum"])(v["value"]))
    for name, info in s["classes"].items():
        ns = {"_surface_name": name, "_members": info["members"], "_trt": mod}
        init = _BEHAVIOUR.get((name, "_init"))
        if init is not None:
            ns["_init"] = init
        for m, spec in info["members"].items():
            if spec["kind"] == "enum":
                ns[m] = enum.IntEnum(m, spec["members"])
        setattr(mod, name, type(name, (FakeObject,), ns))
    for name, info in s["classes"].items():  # class-level values need the enums above (Logger.WARNING)
        cls = getattr(mod, name)
        for m, spec in info["members"].items():
            if spec["kind"] == "enum_value":
                enum_cls = getattr(mod, spec["enum"], None) or getattr(getattr(mod, "ILogger"), spec["enum"])
                type.__setattr__(cls, m, enum_cls(spec["value"]))

    def host_memory(data: bytes):
        h = mod.IHostMemory.__new__(mod.IHostMemory)
        object.__setattr__(h, "_state", {"data": data})
        return h

    mod._host_memory = host_memory
    mod.IHostMemory.__bytes__ = lambda self: self._state["data"]
    mod.nptype = _nptype(mod)
    return mod


def _nptype(mod):
    def nptype(trt_type):
        import numpy as np

        mapping = {mod.float32: np.float32, mod.float16: np.float16, mod.int8: np.int8, mod.int32: np.int32,
                   mod.int64: np.int64, mod.bool: np.bool_, mod.uint8: np.uint8}
        if trt_type in mapping:
            return mapping[trt_type]
        raise TypeError("Could not resolve TensorRT datatype to an equivalent numpy datatype.")

    return nptype

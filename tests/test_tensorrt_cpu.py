"""TensorRT on a CPU machine: the build/run protocol against fakes of the real 10.3 and 11.4 Python APIs.

tests/fake_tensorrt.py builds a `tensorrt` module from the API surface recorded from NVIDIA's real bindings wheels
(tools/trt_api_surface.py): a name the real module lacks fails here as it would on the device (BuilderFlag.FP16 or
IBuilderConfig.int8_calibrator on 11.x). Engines are not built: the fake records what was asked for. Only the CUDA
device query is replaced (there is no GPU here); the ONNX side (ModelOpt AutoCast / Q/DQ PTQ) runs for real.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import edgecls
from edgecls.errors import BackendUnavailableError, ExportError, InputError
from edgecls.exporters import format_for
from edgecls.runtime.backends import backend_for, cuda_rt
from edgecls.runtime.runtimes import runtime_for

# ModelOpt binds `tensorrt` when it is imported (to parse graphs for custom layers when TensorRT is present): import it
# now, so it sees this machine as it is (no TensorRT), not the fake the tests install later
pytest.importorskip("modelopt.onnx.quantization")
pytest.importorskip("modelopt.onnx.autocast")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_tensorrt import VERSIONS, load_surface, make_fake_tensorrt  # noqa: E402

FACTS = {"gpu": "fake Orin", "compute_capability": "8.7"}


def test_one_suffix_table_for_every_tensorrt_name(tmp_path):
    for name in ("m.engine", "m.trt", "m.plan", "M.TRT"):
        assert runtime_for(name).name == "tensorrt" and backend_for(name).__name__ == "edgecls.runtime.backends.tensorrt"
        assert format_for(name, None).name == "tensorrt" and format_for(name, "tensorrt").name == "tensorrt"
    from edgecls.cli.bench import collect

    for name in ("a.engine", "b.trt", "c.plan", "d.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert sorted(p.name for p in collect([str(tmp_path)])) == ["a.engine", "b.trt", "c.plan"]


@pytest.fixture
def fake(monkeypatch, request):
    """fake(version, dla=0) installs the fake tensorrt and a fake CUDA device query; returns the module."""

    def install(version: str, dla: int = 0):
        trt = make_fake_tensorrt(version, num_dla_cores=dla)
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
        monkeypatch.setattr(cuda_rt, "device_facts", lambda index=0: dict(FACTS))
        return trt

    return install


@pytest.fixture(scope="module")
def small_onnx(tmp_path_factory):
    """A small real classifier (MobileNetV3-Small 0.5, random weights) as fused-input ONNX, fixed and dynamic batch."""
    from edgecls.exporters.onnx import torch_to_onnx

    model, spec = edgecls.create_model("mobilenetv3_small_050", pretrained=False)
    d = tmp_path_factory.mktemp("small_onnx")
    fixed = torch_to_onnx(model, spec, d / "small.onnx")
    dyn = torch_to_onnx(model, spec, d / "small_dyn.onnx", dynamic_batch=True)
    return {"fixed": (d / "small.onnx", fixed), "dynamic": (d / "small_dyn.onnx", dyn)}


def _build(small_onnx, kind, tmp_path, **kw):
    from edgecls.exporters.tensorrt import onnx_to_tensorrt

    src, spec = small_onnx[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "calibrating on 11 images"
        return onnx_to_tensorrt(src, spec, tmp_path / "m.engine", **kw)


def test_fake_is_the_recorded_surface(fake):
    t10, t11 = make_fake_tensorrt("10.3.0"), make_fake_tensorrt("11.4.0.106")
    assert all(hasattr(t10.BuilderFlag, f) for f in ("FP16", "INT8")) and hasattr(t10, "IInt8EntropyCalibrator2")
    for missing in ("FP16", "INT8", "BF16", "OBEY_PRECISION_CONSTRAINTS"):  # removed in 11 (migration guide)
        assert not hasattr(t11.BuilderFlag, missing)
    assert not hasattr(t11, "IInt8EntropyCalibrator2")
    config = t11.Builder(t11.Logger(t11.Logger.WARNING)).create_builder_config()
    with pytest.raises(AttributeError, match="int8_calibrator"):
        config.int8_calibrator = None
    with pytest.raises(TypeError, match="incompatible"):
        config.set_memory_pool_limit(t11.MemoryPoolType.WORKSPACE)  # a missing argument fails like pybind11's
    with pytest.raises(AttributeError, match="read-only"):
        t11.Builder(t11.Logger()).num_DLA_cores = 1
    assert load_surface("11.4.0.106")["source"].startswith("tensorrt_cu13_bindings-11.4.0.106")


def test_every_tensorrt_name_edgecls_uses_exists_in_both_generations():
    """Names written as trt.X / trt.X.Y in edgecls's TensorRT code: each must exist in both real modules, or be
    behind a version check (the 10.x-only names below are only reached when the major version is 10)."""
    import re

    ten_only = {"BuilderFlag.FP16", "BuilderFlag.INT8", "IInt8EntropyCalibrator2"}
    root = Path(edgecls.__file__).parent
    used = set()
    for f in ("exporters/tensorrt.py", "runtime/backends/tensorrt.py"):
        used |= set(re.findall(r"\btrt\.([A-Za-z_]\w*(?:\.[A-Z_][A-Z0-9_]*)?)", (root / f).read_text()))
    assert "NetworkDefinitionCreationFlag.STRONGLY_TYPED" in used
    for version in VERSIONS:
        s = load_surface(version)
        for name in sorted(used):
            top, _, member = name.partition(".")
            if version.startswith("11") and name in ten_only:
                continue
            assert top in s["module"] or top == "__version__", f"trt.{top} is not in TensorRT {version}"
            if member:
                scope = s["enums"].get(top) or s["classes"].get(top, {}).get("members", {})
                assert member in scope, f"trt.{name} is not in TensorRT {version}"


@pytest.mark.parametrize("version", VERSIONS)
def test_fp32_dynamic_batch_gets_a_real_profile(version, fake, small_onnx, tmp_path):
    """No batch given for a dynamic ONNX: the profile is (1, 8, 32), not (1, 1, 1) (which built a batch-1 engine)."""
    trt = fake(version)
    spec = _build(small_onnx, "dynamic", tmp_path)
    assert spec.artifact["batch_profile"] == [1, 8, 32]
    assert spec.artifact["strongly_typed"] is version.startswith("11")
    assert "TF32" not in trt.last_build["flags"]
    with pytest.raises(ExportError, match="min <= opt <= max"):
        _build(small_onnx, "dynamic", tmp_path, batch=(4, 2, 8))
    with pytest.raises(ExportError, match="fixed batch"):
        _build(small_onnx, "fixed", tmp_path, batch=(1, 8, 32))


def test_fp16_on_10_uses_the_builder_flag(fake, small_onnx, tmp_path):
    trt = fake("10.3.0")
    spec = _build(small_onnx, "fixed", tmp_path, precision="fp16")
    assert "FP16" in trt.last_build["flags"] and not trt.last_build["strongly_typed"]
    assert spec.artifact["fp16_source"] == "builder_flag"


def test_fp16_on_11_goes_through_autocast_and_builds_strongly_typed(fake, small_onnx, tmp_path):
    """11.x has no BuilderFlag.FP16 (the old code raised, or would have set it): ModelOpt AutoCast makes an FP16
    ONNX (I/O kept uint8 -> float32) and that is built strongly typed."""
    trt = fake("11.4.0.106")
    spec = _build(small_onnx, "fixed", tmp_path, precision="fp16")
    assert trt.last_build["strongly_typed"] and trt.last_build["flags"] == []
    assert spec.artifact["fp16_source"] == "modelopt_autocast" and spec.artifact["precision"] == "fp16"
    io = {t["mode"]: t["dtype"] for t in trt.last_build["io"]}
    assert io == {"INPUT": "UINT8", "OUTPUT": "FLOAT"}  # the app still feeds uint8 pixels, gets float logits


@pytest.mark.slow
@pytest.mark.parametrize("version", VERSIONS)
def test_int8_default_is_symmetric_qdq_built_strongly_typed(version, fake, small_onnx, tmp_path):
    trt = fake(version)
    spec = _build(small_onnx, "fixed", tmp_path, precision="int8")
    art = spec.artifact
    assert art["int8_source"] == "qdq" and art["quantizer"] == "modelopt"
    assert art["nonzero_zero_points"] == 0 and art["activation_dtypes"] == ["int8"] and art["quantize_nodes"] > 10
    assert trt.last_build["strongly_typed"] and "INT8" not in trt.last_build["flags"]


def test_calibrator_int8_on_10_calibrates_at_batch_one_with_a_batch_profile(fake, small_onnx, tmp_path):
    """The calibrator hands one image per batch; with a (1, 8, 32) profile and no calibration profile TensorRT
    calibrates at the opt batch (8) and reads 8 images' worth from a 1-image buffer. A batch-1 calibration profile
    makes the two agree."""
    trt = fake("10.3.0")
    spec = _build(small_onnx, "dynamic", tmp_path, precision="int8", int8_source="calibrator")
    assert spec.artifact["int8_source"] == "calibrator"
    rec = trt.last_build
    assert {"INT8", "FP16"} <= set(rec["flags"]) and not rec["strongly_typed"]
    assert rec["calibration_shape"][0] == rec["calibrator_batch_size"] == 1
    assert rec["calibration_shape"][1:] == list(small_onnx["dynamic"][1].input.shape[1:])


def test_calibrator_int8_on_11_is_a_clear_error(fake, small_onnx, tmp_path):
    fake("11.4.0.106")
    with pytest.raises(ExportError, match="removed calibrator INT8.*int8_source='qdq'"):
        _build(small_onnx, "fixed", tmp_path, precision="int8", int8_source="calibrator")


def test_dla_is_guarded(fake, small_onnx, tmp_path):
    fake("11.4.0.106", dla=1)
    with pytest.raises(ExportError, match="has no DLA.*11.4.1"):
        _build(small_onnx, "fixed", tmp_path, precision="fp16", dla_core=0)
    fake("10.3.0", dla=0)
    with pytest.raises(ExportError, match="0 DLA core"):
        _build(small_onnx, "fixed", tmp_path, precision="fp16", dla_core=0)
    with pytest.raises(ExportError, match="fp16 or int8"):
        _build(small_onnx, "fixed", tmp_path, dla_core=0)
    trt = fake("10.3.0", dla=2)
    spec = _build(small_onnx, "fixed", tmp_path, precision="fp16", dla_core=1)
    assert spec.artifact["dla_core"] == 1 and "GPU_FALLBACK" in trt.last_build["flags"]


@pytest.mark.parametrize("version", VERSIONS)
def test_set_input_shape_refusal_is_an_error_not_ignored(version, fake, small_onnx, tmp_path):
    """A batch outside the profile: set_input_shape returns False and keeps the old shape; the old backend ignored
    it and ran with stale buffers. EngineIO raises instead."""
    from edgecls.runtime.backends.tensorrt import EngineIO

    trt = fake(version)
    _build(small_onnx, "dynamic", tmp_path, batch=(1, 4, 16))
    engine = trt.Runtime(trt.Logger()).deserialize_cuda_engine((tmp_path / "m.engine").read_bytes())
    io = EngineIO(trt, engine, tmp_path / "m.engine")
    assert io.dynamic and io.batch_range == (1, 16) and io.num_classes == 1000
    ctx = engine.create_execution_context()
    assert io.bind(ctx, 5) == (5, 1000)
    with pytest.raises(InputError, match="batches 1..16"):
        io.bind(ctx, 17)


@pytest.mark.slow
def test_cli_dynamic_batch_engine_gets_the_default_profile(fake, tmp_path):
    from edgecls.cli.main import main
    from edgecls.runtime.artifacts import read_sidecar

    fake("11.4.0.106")
    assert main(["export", "mobilenetv3_small_050", "-f", "tensorrt", "--dynamic-batch", "--no-verify", "-o", str(tmp_path)]) == 0
    assert read_sidecar(tmp_path / "mobilenetv3_small_050.engine").artifact["batch_profile"] == [1, 8, 32]
    assert main(["export", "mobilenetv3_small_050", "-f", "tensorrt", "--dynamic-batch", "--batch-profile", "2", "4", "8",
                 "--no-verify", "-o", str(tmp_path), "--name", "b"]) == 0
    assert read_sidecar(tmp_path / "b.engine").artifact["batch_profile"] == [2, 4, 8]


def test_engine_on_a_machine_without_gpu_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_tensorrt("11.4.0.106"))
    (tmp_path / "m.trt").write_bytes(b"not run")
    n, why = cuda_rt.device_count()
    if n:
        pytest.skip("a CUDA device is present here")
    with pytest.raises(BackendUnavailableError, match="NVIDIA GPU|cuda-python"):
        edgecls.Predictor(tmp_path / "m.trt")


def test_onnxruntime_cuda_without_onnxruntime_gpu_names_the_extra(artifacts):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed here")
    with pytest.raises(BackendUnavailableError, match=r"edgecls\[onnx-gpu\]"):
        edgecls.Predictor(artifacts["onnx"], device="cuda")


def test_gpu_check_script_refuses_unknown_arguments():
    import subprocess

    root = Path(__file__).resolve().parent.parent
    r = subprocess.run(["bash", str(root / "tools" / "gpu_check.sh"), "--bogus"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "unknown argument --bogus" in r.stderr
    r = subprocess.run(["bash", str(root / "tools" / "gpu_check.sh"), "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "--cpu-dry-run" in r.stdout


@pytest.mark.slow
def test_lite0_typed_onnx_for_tensorrt_agree_with_pytorch_on_cpu(lite0, photos, tmp_path):
    """The ONNX files TensorRT 11 builds from, made and checked on this CPU with the pretrained model and real photos:
    AutoCast FP16 within the fp16 export tolerance, and the Q/DQ INT8 symmetric (every zero-point 0, int8
    activations) and within the int8 tolerance when its Q/DQ nodes are evaluated as written (ONNX Runtime with graph
    optimizations off: the arithmetic TensorRT's int8 kernels implement, free of this CPU's int8 kernels)."""
    import onnxruntime as ort

    from edgecls.exporters.calibration import calibration_inputs
    from edgecls.exporters.onnx import torch_to_onnx
    from edgecls.exporters.onnx_precision import onnx_to_fp16, onnx_to_int8_qdq
    from edgecls.exporters.verify import check, compare, reference_pixels, torch_logits
    from edgecls.runtime.preprocess import to_input

    model, spec = lite0
    art = torch_to_onnx(model, spec, tmp_path / "lite0.onnx")
    pixels = reference_pixels(photos, spec)
    ref = torch_logits(model, spec, pixels)
    x = np.concatenate([to_input(px, art, precise=True) for px in pixels])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        samples = calibration_inputs(photos, art, art.input, what="test")
    onnx_to_fp16(tmp_path / "lite0.onnx", tmp_path / "fp16.onnx", np.concatenate(samples))
    q = onnx_to_int8_qdq(tmp_path / "lite0.onnx", tmp_path / "int8.onnx", samples)
    assert q["nonzero_zero_points"] == 0 and q["activation_dtypes"] == ["int8"] and q["quantize_nodes"] >= 49  # every conv

    def run(path, exact):
        so = ort.SessionOptions()
        so.log_severity_level = 3
        if exact:
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        return np.concatenate([s.run(None, {"input": x[i : i + 1]})[0] for i in range(len(x))]).astype(np.float32)

    fp16 = compare(ref, run(tmp_path / "fp16.onnx", False), "fp16")
    check(fp16, "fp16", "fp16.onnx")
    int8 = compare(ref, run(tmp_path / "int8.onnx", True), "int8")
    check(int8, "int8", "int8.onnx")
    assert fp16.top1_agreement == 1.0 and int8.confident_top1_agreement == 1.0


@pytest.mark.parametrize("version", VERSIONS)
def test_a_tensorrt_session_provides_every_declared_attribute(version, fake, small_onnx, tmp_path, monkeypatch):
    """An engine of the fake opened by the Predictor, on the runtime table's default device (cuda): its session has every
    attribute Session declares, and close() releases it. No GPU here: besides the device query (the `fake` fixture),
    the one CUDA object the constructor makes, a stream, is stood in for; nothing is run."""
    from test_runtimes import check_declared

    from edgecls.runtime.backends import Session

    fake(version)
    spec = _build(small_onnx, "dynamic", tmp_path, batch=(1, 4, 16))
    monkeypatch.setattr(cuda_rt, "set_device", lambda index: None)
    monkeypatch.setattr(cuda_rt, "Stream", lambda: object())
    pred = edgecls.Predictor(tmp_path / "m.engine", spec=spec)
    s = pred.session
    assert isinstance(s, Session) and pred.backend_name == "tensorrt" and pred.device == s.device == "cuda:0"
    check_declared(s, pred.spec)
    assert s.input_shape == ("?", 224, 224, 3) and s.max_batch is None and s.input_dtypes == ("uint8",)
    assert s.embedded_spec is None and s.selfcheck_blob is None  # a plan file has no metadata slot
    pred.close()
    assert s._engine is None and s._context is None

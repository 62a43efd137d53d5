"""INT8 for a named CPU class (x86-vnni, x86-avx2, arm64): reading this CPU, --target-cpu through export, compress and
deploy, the spec field, ONNX Runtime's remedy for U8S8 saturation, and constant TF-'SAME' padding in graph exports."""

from __future__ import annotations

import platform
import warnings
from pathlib import Path

import numpy as np
import pytest

import edgecls
from edgecls.errors import CompressError, ConfigError, DeployError, ExportError
from edgecls.runtime import cpuinfo

DATA = Path(__file__).parent / "data"

# /proc/cpuinfo of two ARM boards as their kernels print it: a Raspberry Pi 4 (4x Cortex-A72, ARMv8.0, SoC line) and a
# Jetson AGX Orin's first cluster (Cortex-A78AE, ARMv8.2 with dot product)
PI4 = "".join(f"processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\n"
              "CPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n" for i in range(4)) + \
      "Hardware\t: BCM2835\nRevision\t: c03111\nModel\t\t: Raspberry Pi 4 Model B Rev 1.1\n"
ORIN = "".join(f"processor\t: {i}\nmodel name\t: ARMv8 Processor rev 1 (v8l)\nBogoMIPS\t: 62.50\nFeatures\t: fp asimd evtstrm "
               "aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp uscat ilrcpc flagm paca pacg\n"
               "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x1\nCPU part\t: 0xd42\nCPU revision\t: 1\n\n"
               for i in range(4))


def test_arm_cores_are_named_from_their_part_numbers():
    model, flags = cpuinfo.parse_cpuinfo(PI4)
    assert model == "4x Cortex-A72" and "asimd" in flags and "asimddp" not in flags
    model, flags = cpuinfo.parse_cpuinfo(ORIN)
    assert model == "4x Cortex-A78AE" and "asimddp" in flags  # not the kernel's generic "ARMv8 Processor" line
    model, _ = cpuinfo.parse_cpuinfo("processor : 0\nmodel name : AMD EPYC 7B13\nflags : fpu avx2 fma\n")
    assert model == "AMD EPYC 7B13"


def test_this_machine_is_read_not_assumed():
    text = Path("/proc/cpuinfo").read_text()
    flags = set()
    for line in text.splitlines():
        if line.split(":")[0].strip() in ("flags", "Features"):
            flags |= set(line.split(":", 1)[1].split())
    arch = platform.machine()
    want = "arm64" if arch == "aarch64" else ("x86-vnni" if flags & {"avx512_vnni", "avx_vnni", "amx_int8"} else "x86-avx2")
    assert cpuinfo.this_target_cpu() == want
    assert cpuinfo.resolve_target_cpu("this") == want and cpuinfo.resolve_target_cpu(None) == want
    d = cpuinfo.describe()
    assert d["arch"] == arch and d["target_cpu"] == want and d["int8_saturates"] == (want == "x86-avx2")
    assert d["emulated"] is None  # the kernel's own architecture is this program's: real hardware
    assert want in cpuinfo.describe_text(d)


def test_target_cpu_names_and_spellings():
    assert tuple(cpuinfo.TARGET_CPUS) == edgecls.runtime.spec.TARGET_CPU_NAMES  # one list: the spec's schema and the CLI's
    assert [cpuinfo.resolve_target_cpu(n) for n in ("ARM64", "aarch64", "x86_avx2", "avx2", "vnni")] == \
        ["arm64", "arm64", "x86-avx2", "x86-avx2", "x86-vnni"]
    assert cpuinfo.target_saturates("x86-avx2") and not cpuinfo.target_saturates("arm64")
    assert not cpuinfo.target_saturates("x86-vnni")
    with pytest.raises(ConfigError, match="target_cpu 'sparc': use one of x86-vnni, x86-avx2, arm64 or 'this'"):
        cpuinfo.resolve_target_cpu("sparc")


def test_configs_take_target_cpu_and_refuse_unknown_ones(tmp_path):
    from edgecls.compress import CompressConfig
    from edgecls.deployment.config import DeployConfig

    (tmp_path / "a").mkdir()
    assert DeployConfig(data=str(tmp_path), target_cpu="aarch64").target_cpu == "arm64"
    assert DeployConfig(data=str(tmp_path)).target_cpu == cpuinfo.this_target_cpu()  # default "this", resolved
    with pytest.raises(DeployError, match="target_cpu 'riscv'"):
        DeployConfig(data=str(tmp_path), target_cpu="riscv")
    assert CompressConfig(model="m.pt", target_cpu="x86-vnni").target_cpu == "x86-vnni"
    with pytest.raises(CompressError, match="target_cpu 'pi'"):
        CompressConfig(model="m.pt", target_cpu="pi")


def test_spec_records_the_target_and_refuses_another_value():
    spec = edgecls.ModelSpec(arch="a", labels=("x", "y"))
    assert "target_cpu" not in spec.to_dict()  # a field added after schema 1: written only when set
    s = spec.replace(target_cpu="arm64")
    assert edgecls.ModelSpec.from_json(s.to_json()).target_cpu == "arm64"
    with pytest.raises(edgecls.errors.SpecError, match="target_cpu.*x86-vnni, x86-avx2, arm64"):
        edgecls.ModelSpec.from_dict({**s.to_dict(), "target_cpu": "mips"})


def test_export_refuses_a_target_cpu_for_a_float_build_before_converting(lite0, tmp_path):
    model, spec = lite0
    with pytest.raises(ExportError, match="target_cpu='arm64' is for INT8 builds; a fp32 tflite"):
        edgecls.export(model, spec, tmp_path / "m.tflite", target_cpu="arm64")
    with pytest.raises(ExportError, match="does not take option"):  # ONNX has no INT8 export precision
        edgecls.export(model, spec, tmp_path / "m.onnx", target_cpu="arm64")
    assert not list(tmp_path.iterdir())


def test_onnxruntime_runs_full_range_int8_without_saturating_here(artifacts):
    """On an x86 CPU without VNNI the backend turns on ONNX Runtime's U8U8 path for weights outside [-64, 63]
    (session.x64quantprecision); elsewhere it leaves the session as ONNX Runtime makes it."""
    pred = edgecls.Predictor(artifacts["onnx"])
    opts = pred._session._sess.get_session_options()
    try:
        got = opts.get_session_config_entry("session.x64quantprecision")
    except RuntimeError:  # ONNX Runtime's answer for a key never set
        got = None
    assert got == ("1" if cpuinfo.int8_saturates() else None)


def test_lite0_exports_with_constant_same_padding(artifacts):
    """EfficientNet-Lite's TF-'SAME' stride-2 convolutions leave no shape arithmetic and no Pad in the ONNX graph
    (which ONNX Runtime's quantizer would quantize): one Conv node each, with its asymmetric pads."""
    import onnx

    g = onnx.load(str(artifacts["onnx"])).graph
    ops = [n.op_type for n in g.node]
    assert ops.count("Conv") == 49 and not {"Pad", "Shape", "Ceil", "Div", "Gather"} & set(ops), sorted(set(ops))
    pads = {n.name: list(next(a.ints for a in n.attribute if a.name == "pads")) for n in g.node if n.op_type == "Conv"}
    # 224 -> 112 with a 3x3 kernel, stride 2: TensorFlow pads 0 before and 1 after on each axis
    assert pads["/model/conv_stem/Conv"] == [0, 0, 1, 1]
    assert edgecls.Predictor(artifacts["onnx"]).spec.lineage[-1].params["static_same_padding"] == 5


@pytest.mark.slow
def test_int8_records_its_target_and_openvino_warns_where_it_saturates(artifacts, tmp_path):
    """quantize_file(target_cpu=...) records the class in the spec and picks the overflow handling it needs: an
    OpenVINO INT8 built for arm64 keeps full-range weights, and loading it on an x86 CPU without VNNI warns (its
    self-check fails there, against the IR's own answers); built for x86-avx2 it has the overflow fix and passes."""
    from edgecls.compress.ptq import quantize_file
    from edgecls.data.samples import photo_crops

    fp32 = edgecls.Predictor(artifacts["xml"])
    calib = np.concatenate([fp32.preprocess(c, color="RGB") for c in photo_crops(32)])
    checks = {}
    for target in ("arm64", "x86-avx2"):
        dst = tmp_path / f"{target}.xml"
        spec = quantize_file("openvino", artifacts["xml"], dst, fp32.spec, calib, target_cpu=target)
        assert spec.target_cpu == target and edgecls.Predictor(dst).spec.target_cpu == target
        assert spec.lineage[-1].params["overflow_fix"] == ("enable" if target == "x86-avx2" else "first_layer_only")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pred = edgecls.Predictor(dst)
        warned = [str(w.message) for w in caught if "saturate" in str(w.message)]
        assert bool(warned) == (target == "arm64" and bool(cpuinfo.int8_saturates())), warned
        checks[target] = pred.run_self_check()
    assert checks["x86-avx2"].passed, str(checks["x86-avx2"])
    assert checks["x86-avx2"].graph_rel_diff is not None  # judged against the IR evaluated as written
    if cpuinfo.int8_saturates():
        assert checks["arm64"].status == "fail" and "x86-avx2" in " ".join(checks["arm64"].reasons), str(checks["arm64"])


@pytest.mark.parametrize("stride,pads,groups", [(1, (1, 1, 1, 1), 1), (2, (0, 0, 1, 1), 4), (2, (1, 2, 0, 1), 1)])
def test_bias_correction_takes_the_exact_mean_shift(stride, pads, groups):
    """tap_means gives, per kernel tap, the mean input that tap reads (zero padding and stride included), so the
    shift it predicts for weight errors dW is exactly the mean of conv(x, dW) over images and positions."""
    import torch
    import torch.nn.functional as F

    from edgecls.compress.bias_correction import tap_means

    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 2.0, (5, 4, 9, 10))  # images, channels, H, W
    dw = rng.normal(0, 0.1, (8, 4 // groups, 3, 3))
    top, left, bottom, right = pads
    y = F.conv2d(F.pad(torch.tensor(x), (left, right, top, bottom)), torch.tensor(dw), stride=stride, groups=groups)
    want = y.mean(dim=(0, 2, 3)).numpy()
    taps = tap_means(x.mean(0), (3, 3), (stride, stride), pads, (1, 1))
    got = np.einsum("gckij,gkij->gc", dw.reshape(groups, 8 // groups, 4 // groups, 3, 3),
                    taps.reshape(groups, 4 // groups, 3, 3)).reshape(8)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.slow
def test_bias_correction_recovers_what_7_bit_weights_lose(artifacts, tmp_path):
    """Pretrained Lite0, ONNX Runtime INT8 with 7-bit weights (what x86 without VNNI gets): the Q/DQ graph evaluated as
    written keeps the FP32 top-1 on clearly more photo crops with bias correction than without (measured 88% vs 70%
    on 120 crops), by a paired test on the same crops."""
    import onnxruntime as ort

    from edgecls import stats
    from edgecls.compress.ptq import quantize_file
    from edgecls.data.samples import photo_crops

    fp32 = edgecls.Predictor(artifacts["onnx"])
    calib = np.concatenate([fp32.preprocess(c, color="RGB") for c in photo_crops(64, seed=0)])
    ev = np.concatenate([fp32.preprocess(c, color="RGB") for c in photo_crops(100, seed=1)])
    ref = np.concatenate([fp32.infer(ev[i : i + 1]) for i in range(len(ev))]).argmax(1)
    kept = {}
    for bc in (False, True):
        dst = tmp_path / f"bc_{bc}.onnx"
        spec = quantize_file("onnx", artifacts["onnx"], dst, fp32.spec, calib, weights="7-bit", bias_correction=bc)
        assert (spec.lineage[-1].params["bias_correction"] is not None) == bc
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sim = ort.InferenceSession(str(dst), so, providers=["CPUExecutionProvider"])
        kept[bc] = np.concatenate([sim.run(None, {"input": ev[i : i + 1]})[0] for i in range(len(ev))]).argmax(1) == ref
    cmp = stats.paired(kept[False], kept[True])
    assert cmp.other_only > cmp.ref_only and cmp.p_value < 0.05, cmp.summary()


@pytest.mark.slow
def test_onnxruntime_int8_for_another_cpu_class_runs_right_here_and_says_what_it_costs(artifacts, tmp_path):
    """ONNX Runtime INT8 built for arm64 (8-bit weights, bias-corrected) computes its graph as written on any CPU
    (this machine's, through the Predictor) and passes its self-check; on an x86 CPU without VNNI the Predictor says it
    runs on the slower U8U8 kernels and names the build for this CPU. Built for x86-avx2 it has 7-bit weights."""
    import onnx
    from onnx import numpy_helper

    from edgecls.compress.ptq import quantize_file
    from edgecls.data.samples import photo_crops

    fp32 = edgecls.Predictor(artifacts["onnx"])
    calib = np.concatenate([fp32.preprocess(c, color="RGB") for c in photo_crops(32)])
    for target, peak_want in (("arm64", 127), ("x86-avx2", 64)):
        dst = tmp_path / f"{target}.onnx"
        spec = quantize_file("onnx", artifacts["onnx"], dst, fp32.spec, calib, target_cpu=target)
        params = spec.lineage[-1].params
        assert spec.target_cpu == target and params["bias_correction"]["convolutions"] == 49
        w = [numpy_helper.to_array(t) for t in onnx.load(str(dst)).graph.initializer]
        assert max(int(np.abs(a.astype(np.int32)).max()) for a in w if a.dtype == np.int8 and a.ndim == 4) == peak_want
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pred = edgecls.Predictor(dst)
        said = [str(m.message) for m in caught if "U8U8" in str(m.message)]
        assert bool(said) == (target == "arm64" and bool(cpuinfo.int8_saturates())), said
        check = pred.run_self_check()
        assert check.passed and check.graph_rel_diff < 0.08, str(check)

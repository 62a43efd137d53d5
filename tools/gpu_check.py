"""Stages of tools/gpu_check.sh (each a subcommand writing JSON under --out; the shell script sets up the paths).

  env                     what this machine has: GPU, driver, CUDA, torch, TensorRT per generation, trtexec, ORT providers
  onnx                    pretrained Lite0 -> FP32 ONNX, FP16 ONNX (ModelOpt AutoCast), symmetric INT8 Q/DQ ONNX (ModelOpt
                          PTQ); Q/DQ facts and top-1/top-5 against PyTorch on the bundled photos, on ONNX Runtime (CPU)
  trt --gen 11|10         engines FP32/FP16/INT8 through edgecls.export (verified against PyTorch), self-check, and per
                          engine model-only p50 from edgecls-bench beside a native reference on the same engine
                          (trtexec if present, else a raw execute_async_v3 loop with pinned buffers) -> ratios
  ort-cuda                Predictor(.onnx, device="cuda") through onnxruntime-gpu: agreement and p50 vs CPU
  summary                 one table of everything above (summary.md + stdout)

--fake-trt VERSION runs `trt` against tests/fake_tensorrt.py (no GPU: the protocol only, nothing timed): the CPU
dry run of the script uses it so the stage's own code runs here too.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def save(out: Path, name: str, data: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(data, indent=2, default=str))
    print(f"[gpu_check] {name}: {json.dumps(data, default=str)[:1500]}", flush=True)


def stage_env(out: Path) -> None:
    info = {"python": sys.version.split()[0], "executable": sys.executable}
    for mod in ("torch", "onnx", "onnxruntime", "tensorrt", "modelopt", "cuda.bindings"):
        try:
            m = __import__(mod, fromlist=["_"])
            info[mod] = getattr(m, "__version__", "present")
        except Exception as exc:  # noqa: BLE001 - report, do not stop
            info[mod] = f"missing ({type(exc).__name__}: {str(exc)[:120]})"
    try:
        import onnxruntime as ort

        info["ort_providers"] = ort.get_available_providers()
    except ImportError:
        pass
    try:
        from edgecls.runtime.backends import cuda_rt

        n, why = cuda_rt.device_count()
        info["cuda_devices"] = n
        info["cuda_why"] = why
        if n:
            info["gpu"] = cuda_rt.device_facts(0)
    except Exception as exc:  # noqa: BLE001
        info["cuda"] = f"unavailable: {exc}"
    info["trtexec"] = shutil.which("trtexec")
    smi = shutil.which("nvidia-smi")
    if smi:
        info["nvidia_smi"] = subprocess.run([smi, "--query-gpu=name,driver_version,clocks.sm,clocks.max.sm",
                                             "--format=csv,noheader"], capture_output=True, text=True).stdout.strip()
    save(out, "env", info)


def lite0():
    import edgecls

    return edgecls.create_model("efficientnet_lite0", pretrained=True)


def stage_onnx(out: Path) -> None:
    import onnxruntime as ort

    from edgecls.data.samples import sample_images
    from edgecls.exporters.calibration import calibration_inputs
    from edgecls.exporters.onnx import torch_to_onnx
    from edgecls.exporters.onnx_precision import onnx_to_fp16, onnx_to_int8_qdq
    from edgecls.exporters.verify import compare, reference_pixels, torch_logits
    from edgecls.runtime.preprocess import to_input

    model, spec = lite0()
    d = out / "onnx"
    d.mkdir(parents=True, exist_ok=True)
    photos = sample_images()
    pixels = reference_pixels(photos, spec)
    ref = torch_logits(model, spec, pixels)
    res = {}
    t = time.perf_counter()
    art = torch_to_onnx(model, spec, d / "lite0.onnx")
    res["fp32_export_s"] = round(time.perf_counter() - t, 1)
    x = np.concatenate([to_input(px, art, precise=True) for px in pixels])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        samples = calibration_inputs(None, art, art.input, what="gpu_check")
    t = time.perf_counter()
    res["fp16"] = onnx_to_fp16(d / "lite0.onnx", d / "lite0_fp16.onnx", np.concatenate(samples))
    res["fp16_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    res["int8"] = onnx_to_int8_qdq(d / "lite0.onnx", d / "lite0_int8_qdq.onnx", samples)
    res["int8_s"] = round(time.perf_counter() - t, 1)
    for name, precision, exact in (("lite0.onnx", "fp32", False), ("lite0_fp16.onnx", "fp16", False),
                                   ("lite0_int8_qdq.onnx", "int8", True)):
        so = ort.SessionOptions()
        if exact:  # Q/DQ as written (the numerics TensorRT's int8 kernels implement), not ORT's CPU int8 kernels
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        so.log_severity_level = 3
        s = ort.InferenceSession(str(d / name), so, providers=["CPUExecutionProvider"])
        got = np.concatenate([s.run(None, {"input": x[i : i + 1]})[0] for i in range(len(x))]).astype(np.float32)
        res[f"{precision}_vs_pytorch"] = compare(ref, got, precision).as_dict()
    save(out, "onnx", res)


def _fake_trt(version: str) -> None:
    import modelopt.onnx.autocast  # noqa: F401 - ModelOpt binds `tensorrt` at import: let it see the real machine
    import modelopt.onnx.quantization  # noqa: F401

    sys.path.insert(0, str(ROOT / "tests"))
    from fake_tensorrt import make_fake_tensorrt

    from edgecls.runtime.backends import cuda_rt

    sys.modules["tensorrt"] = make_fake_tensorrt(version)
    cuda_rt.device_facts = lambda index=0: {"gpu": "fake (dry run)", "compute_capability": "0.0"}


def native_p50(engine: Path, runs: int) -> dict:
    """Host latency (H2D + engine + D2H, synchronized) of the engine without edgecls: trtexec when present, else a raw
    execute_async_v3 loop on pinned buffers (what trtexec's 'Latency' measures), both batch 1."""
    exe = shutil.which("trtexec")
    if exe:
        r = subprocess.run([exe, f"--loadEngine={engine}", f"--iterations={runs}", "--warmUp=500", "--duration=0",
                            "--avgRuns=1", "--useSpinWait"], capture_output=True, text=True, timeout=300)
        m = re.search(r"\] Latency: min = [\d.]+ ms, max = [\d.]+ ms, mean = [\d.]+ ms, median = ([\d.]+) ms", r.stdout)
        if m:
            return {"tool": "trtexec", "p50_ms": float(m.group(1))}
    import tensorrt as trt

    from edgecls.runtime.backends import cuda_rt
    from edgecls.runtime.backends.tensorrt import EngineIO

    engine_ = trt.Runtime(trt.Logger(trt.Logger.ERROR)).deserialize_cuda_engine(engine.read_bytes())
    ctx = engine_.create_execution_context()
    io = EngineIO(trt, engine_, engine)
    out_shape = io.bind(ctx, 1)
    hin = cuda_rt.PinnedArray((1, *io.shape[1:]), io.dtypes[io.input])
    hout = cuda_rt.PinnedArray(out_shape, io.dtypes[io.output])
    din, dout, s = cuda_rt.DeviceBuffer(hin.nbytes), cuda_rt.DeviceBuffer(hout.nbytes), cuda_rt.Stream()
    ctx.set_tensor_address(io.input, din.ptr)
    ctx.set_tensor_address(io.output, dout.ptr)
    ms = []
    for i in range(runs + 50):
        t = time.perf_counter()
        s.h2d(din, hin)
        ctx.execute_async_v3(s.ptr)
        s.d2h(hout, dout)
        s.synchronize()
        if i >= 50:
            ms.append((time.perf_counter() - t) * 1e3)
    return {"tool": "execute_async_v3 loop", "p50_ms": float(np.median(ms))}


def stage_trt(out: Path, gen: str, fake: str | None, runs: int) -> None:
    if fake:
        _fake_trt(fake)
    import edgecls
    from edgecls.data.samples import sample_images

    try:
        import tensorrt as trt
    except ImportError as exc:
        save(out, f"trt{gen}", {"skipped": f"tensorrt {gen}.x is not importable here: {exc}"})
        return
    if not trt.__version__.startswith(gen + "."):
        save(out, f"trt{gen}", {"skipped": f"asked for TensorRT {gen}.x, found {trt.__version__}"})
        return
    model, spec = lite0()
    d = out / f"trt{gen}"
    d.mkdir(parents=True, exist_ok=True)
    res = {"tensorrt": trt.__version__, "engines": {}}
    photos = sample_images()
    cases = [("fp32", {}), ("fp16", {}), ("int8", {"calibration": photos})]
    if gen == "10":
        cases.append(("int8", {"calibration": photos, "int8_source": "calibrator", "tag": "int8_calibrator"}))
    for precision, kw in cases:
        tag = kw.pop("tag", precision)
        path = d / f"lite0_{tag}.engine"
        t = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = edgecls.export(model, spec, path, precision=precision, timing_cache=d / "timing.cache",
                                   verify=not fake, **kw)
        except Exception as exc:  # noqa: BLE001 - one precision failing must not hide the others
            res["engines"][tag] = {"error": f"{type(exc).__name__}: {str(exc)[:600]}"}
            continue
        row = {"build_s": round(time.perf_counter() - t, 1), "artifact": r.spec.artifact,
               "verify": r.report.as_dict() if r.report else None}
        if not fake:
            pred = edgecls.Predictor(path, device="cuda")
            row["self_check"] = pred.run_self_check().as_dict()
            row["cuda_graph"] = getattr(pred._session, "cuda_graph", None)
            row["native"] = native_p50(path, runs)
        res["engines"][tag] = row
    if not fake:
        bench = d / "bench"
        subprocess.run([sys.executable, "-m", "edgecls.cli.bench", str(d), "--no-cold", "--runs", str(runs), "-o", str(bench)],
                       check=False, timeout=600)
        if (bench / "bench.json").is_file():
            for row in json.loads((bench / "bench.json").read_text())["results"]:
                tag = row["model"][len("lite0_") : -len(".engine")]
                e = res["engines"].get(tag, {})
                e["edgecls_p50_ms"] = row["model_ms"]["p50"]
                e["e2e_p50_ms"] = (row.get("end_to_end_ms") or {}).get("p50")
                if e.get("native"):
                    e["ratio_vs_native"] = e["edgecls_p50_ms"] / e["native"]["p50_ms"]
    else:
        res["dry_run"] = "fake tensorrt: builds recorded, nothing built or timed"
        res["native_command"] = f"trtexec --loadEngine={d}/lite0_fp32.engine --iterations={runs} --warmUp=500 --useSpinWait"
    save(out, f"trt{gen}", res)


def stage_ort_cuda(out: Path, runs: int) -> None:
    import onnxruntime as ort

    import edgecls

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        save(out, "ort_cuda", {"skipped": f"onnxruntime {ort.__version__} has no CUDA provider here ({ort.get_available_providers()})"})
        return
    src = out / "onnx" / "lite0.onnx"
    if not src.is_file():
        model, spec = lite0()
        src = edgecls.export(model, spec, out / "onnx" / "lite0_verified.onnx").path
    res = {}
    for device in ("cpu", "cuda"):
        pred = edgecls.Predictor(src, device=device, spec=edgecls.Predictor(src).spec)
        x = pred.preprocess(np.zeros((480, 640, 3), np.uint8), color="RGB")
        for _ in range(20):
            pred.infer(x)
        ms = []
        for _ in range(runs):
            t = time.perf_counter()
            pred.infer(x)
            ms.append((time.perf_counter() - t) * 1e3)
        res[device] = {"p50_ms": float(np.median(ms)), "self_check": pred.run_self_check().status}
    save(out, "ort_cuda", res)


def stage_summary(out: Path) -> None:
    lines = ["| stage | engine | build s | verify top-1 | top-5 | rel diff | self-check | edgecls p50 ms | native p50 ms | ratio |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for gen in ("11", "10"):
        f = out / f"trt{gen}.json"
        if not f.is_file():
            continue
        r = json.loads(f.read_text())
        if "skipped" in r:
            lines.append(f"| trt{gen} | skipped: {r['skipped'][:80]} |||||||||")
            continue
        for tag, e in r["engines"].items():
            if "error" in e:
                lines.append(f"| trt{gen} | {tag} | error: {e['error'][:100]} ||||||||")
                continue
            v = e.get("verify") or {}
            sc = (e.get("self_check") or {}).get("status", "-")
            fmt = lambda k, d=e: "-" if d.get(k) is None else f"{d[k]:.3f}"  # noqa: E731
            lines.append(f"| trt{gen} {r['tensorrt']} | {tag} | {e.get('build_s')} | {v.get('top1_agreement', '-')} | "
                         f"{v.get('top5_overlap', '-')} | {v.get('rel_diff', '-')} | {sc} | {fmt('edgecls_p50_ms')} | "
                         f"{(e.get('native') or {}).get('p50_ms', '-')} | {fmt('ratio_vs_native')} |")
        p = {t: e.get("edgecls_p50_ms") for t, e in r["engines"].items() if isinstance(e, dict)}
        if p.get("fp32") and p.get("fp16"):
            lines.append(f"| trt{gen} | speed-up FP16 vs FP32: {p['fp32'] / p['fp16']:.2f}x |||||||||")
        if p.get("fp16") and p.get("int8"):
            lines.append(f"| trt{gen} | speed-up INT8 vs FP16: {p['fp16'] / p['int8']:.2f}x |||||||||")
    text = "\n".join(lines)
    (out / "summary.md").write_text(text + "\n")
    print(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stage", choices=["env", "onnx", "trt", "ort-cuda", "summary"])
    ap.add_argument("--out", required=True, help="folder for the stage's JSON and files")
    ap.add_argument("--gen", choices=["10", "11"], help="TensorRT generation (stage trt)")
    ap.add_argument("--fake-trt", help="dry run: build against the fake tensorrt of this recorded version")
    ap.add_argument("--runs", type=int, default=300, help="timed runs per engine")
    a = ap.parse_args()
    out = Path(a.out)
    if a.stage == "env":
        stage_env(out)
    elif a.stage == "onnx":
        stage_onnx(out)
    elif a.stage == "trt":
        if not a.gen:
            ap.error("trt needs --gen 10 or 11")
        stage_trt(out, a.gen, a.fake_trt, a.runs)
    elif a.stage == "ort-cuda":
        stage_ort_cuda(out, a.runs)
    else:
        stage_summary(out)


if __name__ == "__main__":
    main()

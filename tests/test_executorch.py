"""ExecuTorch (.pte): the spec inside the program, bad files, the missing runtime, threads, concurrency, native logs.

Agreement with PyTorch per precision is in test_backends_agree.py (the shared backend x precision table).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

import edgecls
from edgecls.errors import BackendUnavailableError, ExportError
from edgecls.exporters import int8_executorch
from edgecls.runtime.artifacts import read_sidecar
from edgecls.runtime.backends import executorch as et

REPO = Path(__file__).resolve().parent.parent


def _python(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=600,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


def test_spec_and_labels_travel_inside_the_program(executorch_artifacts, tmp_path):
    src = executorch_artifacts["pte"]
    alone = tmp_path / "alone.pte"
    shutil.copy(src, alone)  # no sidecar: the spec must come from the program itself
    pred = edgecls.Predictor(alone)
    assert pred.spec == read_sidecar(src)  # the embedded spec is the final one, verification figures included
    step = pred.spec.lineage[-1]
    assert step.step == "export" and step.metrics["top1_agreement"] == 1.0 and step.metrics["images"] == 11
    assert pred.spec.input.layout == "NHWC" and pred.spec.input.dtype == "uint8" and pred.max_batch == 1
    # any ExecuTorch reader gets the labels from the `labels` constant method, without edgecls
    from executorch.runtime import Runtime

    labels = Runtime.get().load_program(alone).load_method("labels").execute([])[0]
    assert labels.split("\n") == list(pred.labels) and pred.labels[967] == "espresso"


def test_int8_quantizes_every_conv_and_the_classifier(executorch_artifacts):
    fp32 = edgecls.Predictor(executorch_artifacts["pte"]).spec.artifact
    art = edgecls.Predictor(executorch_artifacts["pte_int8"]).spec.artifact
    assert art["quantizer"] == "pt2e (XNNPACKQuantizer)" and art["calibration_images"] == 11 and art["delegate"] == "xnnpack"
    # the Lite0 ops the XNNPACK quantizer has no pattern for are only TF-"same" pads; a conv or the linear here means
    # the quantizer skipped them (it once did for every conv: its filter also sees the weight nodes)
    assert not {"conv2d", "linear", "add"} & set(art["float_ops"]), art["float_ops"]
    size = {k: Path(p).stat().st_size for k, p in executorch_artifacts.items()}
    assert size["pte_int8"] < 0.35 * size["pte"], size  # int8 weights in the file, not float ones
    assert "dim_order_ops::_to_dim_order_copy" in fp32["portable_ops"]  # the uint8 -> float cast, outside XNNPACK


def _bad_files(src: Path, tflite: Path, d: Path) -> dict[str, Path]:
    data = src.read_bytes()
    flipped = bytearray(data)
    for i in range(200, 2200, 97):  # inside the program flatbuffer (the first ~40 kB), not the weights
        flipped[i] ^= 0xFF
    files = {
        "truncated": data[: len(data) // 2],
        "header_only": data[:64],
        "empty": b"",
        "random": np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "flipped_flatbuffer": bytes(flipped),
        "tflite_renamed": tflite.read_bytes(),
    }
    out = {}
    for name, content in files.items():
        (d / f"{name}.pte").write_bytes(content)
        out[name] = d / f"{name}.pte"
    return out


def test_bad_pte_files_give_model_file_error(executorch_artifacts, artifacts, tmp_path):
    """In a child process: ExecuTorch aborts the whole process on some foreign bytes (its load-error log line is not
    UTF-8), so a regression must show up as a failed assertion here, not as a dead test run."""
    files = _bad_files(executorch_artifacts["pte"], artifacts["tflite"], tmp_path)
    r = _python(f"""
        import json, edgecls
        out = {{}}
        for name, path in {json.dumps({k: str(v) for k, v in files.items()})}.items():
            try:
                edgecls.Predictor(path)
                out[name] = "loaded"
            except Exception as exc:
                out[name] = type(exc).__name__ + ": " + str(exc)
        print(json.dumps(out))
    """)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(got) == set(files)
    for name, msg in got.items():
        assert msg.startswith("ModelFileError"), (name, msg)
    assert "TFLite" in got["tflite_renamed"] and "rename it to .tflite" in got["tflite_renamed"]
    assert "too small" in got["truncated"]  # ExecuTorch's own reason, captured from its log, in the message
    assert "[cpuinfo" not in r.stderr and "[program.cpp" not in r.stderr


def test_missing_runtime_names_the_extra(executorch_artifacts, lite0, tmp_path, monkeypatch):
    for mod in ("executorch.extension.pybindings._C", "executorch.exir"):
        monkeypatch.setitem(sys.modules, mod, None)  # what `import` sees when the package is not installed
    monkeypatch.setattr(et, "_EXT", None)
    with pytest.raises(BackendUnavailableError, match=r"pip install 'edgecls\[executorch\]'"):
        edgecls.Predictor(executorch_artifacts["pte"])
    model, spec = lite0
    with pytest.raises(BackendUnavailableError, match=r"edgecls\[executorch\]"):
        edgecls.export(model, spec, tmp_path / "m.pte")
    assert not [p for p in tmp_path.iterdir() if not p.name.startswith(".")]


def test_concurrent_predictions_match_serial(executorch_artifacts, photos):
    """8 threads share two Predictors (FP32 and INT8) and must get exactly the serial logits: one method's planned
    buffers are not re-entrant, so an unlocked run would mix outputs (or trip ExecuTorch's own assert)."""
    preds = [edgecls.Predictor(executorch_artifacts[k]) for k in ("pte", "pte_int8")]
    inputs = [preds[0].preprocess(img, color="RGB") for img in photos.values()]
    serial = [[p.infer(x) for x in inputs] for p in preds]
    errors, mismatches = [], []

    def work(t: int) -> None:
        try:
            for i in range(12):
                k, j = (t + i) % 2, (t * 5 + i) % len(inputs)
                if not np.array_equal(preds[k].infer(inputs[j]), serial[k][j]):
                    mismatches.append((t, k, j))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=300)
    assert not errors and not mismatches, (errors, mismatches[:5])
    assert not any(th.is_alive() for th in threads)


def test_threads_resize_the_process_pool_and_reload_live_models(executorch_artifacts, photos):
    """ExecuTorch's pool is process-wide and its delegates keep a pointer to it: a resize must reload the models already
    loaded (else they run on a freed pool) and they must still answer the same."""
    first = edgecls.Predictor(executorch_artifacts["pte_int8"], threads=1)
    assert et.thread_count() == 1
    x = first.preprocess(photos["coffee"], color="RGB")
    before, method = first.infer(x), first._session._method
    second = edgecls.Predictor(executorch_artifacts["pte"], threads=2)
    assert et.thread_count() == 2
    assert first._session._method is not None and first._session._method is not method  # reloaded onto the new pool
    np.testing.assert_array_equal(first.infer(x), before)
    assert second.predict(photos["coffee"], color="RGB").label == "espresso"
    with pytest.raises(edgecls.InputError, match="positive"):
        et.set_thread_count(0)


def test_native_logs_are_captured_and_other_stderr_passes(tmp_path):
    """fd-level + sys.stderr capture around a load: ExecuTorch's "[file.cpp:N]" lines are kept out of stderr, anything
    else written meanwhile still arrives, and fd 2 works again afterwards."""
    code = """
        import os, sys
        from edgecls.runtime.backends.executorch import native_logs
        with native_logs() as lines:
            os.write(2, b"[cpuinfo_utils.cpp:87] Failed to open midr file\\n")
            sys.stderr.write("[threadpool.cpp:66] Resetting threadpool to 1 threads.\\n")
            sys.stderr.write("a warning from another thread\\n")
            os.write(2, b"native text that is not a log line\\n")
        print(len(lines))
        os.write(2, b"after the capture\\n")
    """
    r = _python(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["2"]
    assert "cpuinfo_utils" not in r.stderr and "threadpool.cpp" not in r.stderr
    for kept in ("a warning from another thread", "native text that is not a log line", "after the capture"):
        assert kept in r.stderr
    shown = _python(code, env={et.LOG_ENV: "1"})  # asked for: nothing is captured
    assert "cpuinfo_utils.cpp:87" in shown.stderr and shown.stdout.split() == ["0"]


@pytest.mark.slow
def test_a_real_load_keeps_native_logs_out_of_stderr(executorch_artifacts):
    code = f"""
        import sys
        import edgecls
        from edgecls.runtime.backends import executorch as et
        n = et.thread_count()
        p = edgecls.Predictor({str(executorch_artifacts['pte_int8'])!r}, threads=n + 1)  # resizing logs a line
        print(p.predict(__import__("numpy").full((300, 400, 3), 120, "uint8"), color="RGB").label)
        print("exir imported:", "executorch.exir" in sys.modules)
    """
    quiet = _python(code)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert "threadpool.cpp" not in quiet.stderr and "cpuinfo_utils" not in quiet.stderr, quiet.stderr[-2000:]
    assert quiet.stderr.strip() == "", quiet.stderr[-2000:]  # nothing at all: no import-time warnings either
    # the runtime alone: ExecuTorch's exporter package (15 s, +230 MB per cold start here) is not loaded
    assert "exir imported: False" in quiet.stdout
    loud = _python(code, env={et.LOG_ENV: "1"})
    assert loud.returncode == 0 and "Resetting threadpool" in loud.stderr


@pytest.mark.slow
def test_keep_float_leaves_the_named_modules_float(tmp_path):
    """keep_float (the accuracy-budget fallback) on a small random MobileNetV3: its classifier and SE blocks stay
    float; the hard-swish activations are float anyway (XNNPACK's quantizer has no INT8 pattern for them)."""
    model, spec = edgecls.create_model("mobilenetv3_small_050", num_classes=4, input_size=64)
    calib = np.random.default_rng(0).integers(0, 256, (8, 64, 64, 3), dtype=np.uint8)
    with pytest.warns(UserWarning, match="calibrating on 8 images"):
        res = int8_executorch(model, spec, calib, tmp_path / "m.pte", keep_float=("classifier", "se"), verify=False)
    art = res.spec.artifact
    assert art["float_layers"] == 2 and res.spec.lineage[-1].params["keep_float"] == ["classifier", "se"]
    assert {"linear", "hardsigmoid", "hardswish"} <= set(art["float_ops"]), art["float_ops"]
    assert "conv2d" in art["float_ops"]  # the SE convolutions, kept float as asked
    logits = edgecls.Predictor(res.path).infer(calib[:1])
    assert logits.shape == (1, 4) and np.isfinite(logits).all()


def test_export_option_errors(lite0, tmp_path):
    model, spec = lite0
    with pytest.raises(ExportError, match="choose one of fp32, int8"):
        edgecls.export(model, spec, tmp_path / "m.pte", precision="fp16")
    with pytest.raises(ExportError, match="only int8 is calibrated"):
        edgecls.export(model, spec, tmp_path / "m.pte", calibration=[np.zeros((8, 8, 3), np.uint8)])
    with pytest.raises(ExportError, match="does not take"):
        edgecls.export(model, spec, tmp_path / "m.pte", opset=17)
    assert not [p for p in tmp_path.iterdir() if not p.name.startswith(".")]


@pytest.mark.slow
def test_cli_info_and_bench_rows(executorch_artifacts, tmp_path):
    r = subprocess.run([sys.executable, "-m", "edgecls", "info", executorch_artifacts["pte_int8"]], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "backend=executorch" in r.stdout and "pt2e (XNNPACKQuantizer)" in r.stdout
    from edgecls.bench.runner import BenchOptions, bench_artifact

    rows = bench_artifact(executorch_artifacts["pte"], BenchOptions(warmup=2, runs=5, threads=[1, 2]))
    assert [r["threads"] for r in rows] == [1, 2] and all(r["backend"] == "executorch" for r in rows)
    for row in rows:
        cold = row["cold_start"]
        assert "error" not in cold, cold
        assert cold["peak_rss_mb"] > 0 and cold["load_ms"] > 0 and row["end_to_end_ms"]["p50"] > 0


@pytest.mark.slow
def test_cli_export_refuses_a_precision_executorch_lacks(tmp_path):
    r = subprocess.run([sys.executable, "-m", "edgecls", "export", "efficientnet_lite0", "-f", "executorch", "--precision",
                        "fp16", "-o", tmp_path], capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and "choose one of fp32, int8" in r.stderr and "Traceback" not in r.stderr, r.stderr[-1000:]
    assert not list(tmp_path.glob("*.pte"))

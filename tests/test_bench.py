"""edgecls-bench: statistics by hand, the JSON schema on a real run, budget pick, comparison, reports."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest
from PIL import Image

from edgecls.bench.stats import latency_stats
from edgecls.report import bench as report


def test_latency_stats_by_hand():
    s = latency_stats([float(v) for v in range(1, 11)])
    # linear interpolation at rank q*(n-1): p50 -> 4.5 -> 5.5 ; p90 -> 8.1 -> 9.1 ; p99 -> 8.91 -> 9.91
    assert (s["min"], s["max"], s["n"]) == (1.0, 10.0, 10)
    assert s["p50"] == pytest.approx(5.5) and s["p90"] == pytest.approx(9.1) and s["p99"] == pytest.approx(9.91)
    assert s["mean"] == pytest.approx(5.5)
    assert s["std"] == pytest.approx((sum((v - 5.5) ** 2 for v in range(1, 11)) / 9) ** 0.5)
    with pytest.raises(ValueError):
        latency_stats([])


# (folder label, photo, crops): Lite0 is >= 93% sure of every crop (coffee: espresso, camera: tripod), so every
# backend gets them right; "goldfish" holds coffee crops on purpose, so they are wrong. Top-1 must be exactly 6/8.
FOLDER = (("espresso", "coffee", 3), ("tripod", "camera", 3), ("goldfish", "coffee", 2))
FOLDER_TOP1 = 6 / 8


def _photo_folder(root, photos):
    for label, name, n in FOLDER:
        (root / label).mkdir(parents=True)
        img = photos[name]
        h, w = img.shape[:2]
        for i in range(n):
            Image.fromarray(img[i * h // 20 : h - i * h // 20, i * w // 20 : w - i * w // 20]).save(root / label / f"{i}.jpg")
    return root


@pytest.fixture(scope="module")
def bench_run(artifacts, photos, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    data = _photo_folder(out / "data", photos)
    r = subprocess.run(
        [sys.executable, "-m", "edgecls.cli.bench", str(artifacts["onnx"]), str(artifacts["xml"]), "--runs", "12", "--warmup", "2",
         "--batch", "1", "2", "--threads", "1", "--accuracy", str(data), "--reference", str(artifacts["onnx"]), "-o", str(out / "rep"),
         "--budget-ms", "1000", "--cpus", str(min(os.sched_getaffinity(0)))],
        capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return out / "rep", r.stdout


def test_real_run_matches_schema_and_writes_every_format(bench_run):
    rep, stdout = bench_run
    result = json.loads((rep / "bench.json").read_text())
    report.validate(result)
    rows = result["results"]
    assert len(rows) == 4  # 2 models x 2 batch sizes x 1 thread count
    for r in rows:
        assert r["calls_per_batch"] == r["batch"]  # batch-1 exports: a batch of 2 is two runtime calls, and says so
        assert r["model_ms"]["n"] == 12 and len(r["model_samples_ms"]) == 12
        assert r["model_ms"]["min"] <= r["model_ms"]["p50"] <= r["model_ms"]["p99"] <= r["model_ms"]["max"]
        assert r["cold_start"]["load_plus_first_ms"] > 0 and r["cold_start"]["peak_rss_mb"] > 0
        assert r["accuracy"]["n"] == 8 and r["accuracy"]["top1"] == pytest.approx(FOLDER_TOP1)  # not "at least half"
        assert r["agreement"]["reference"] == "lite0.onnx" and r["agreement"]["n"] == 8  # the labelled images, unlabelled
        # the reference agrees with itself exactly; OpenVINO FP32 of the same model at least on every top-1
        assert r["agreement"]["top1"] == 1.0 and r["agreement"]["top5_overlap"] >= (1.0 if r["backend"] == "onnxruntime" else 0.8)
        assert r["cold_start"]["import_ms"] > 1.0  # `import edgecls` is timed, not done before the clock starts
    assert result["device"]["cpu"]["logical_cores"] >= 1 and "onnxruntime" in result["device"]["versions"]
    cpu = [min(os.sched_getaffinity(0))]
    assert result["device"]["cpu"]["affinity"] == cpu and result["options"]["cpus"] == cpu  # pinned, and says so
    assert result["budget_pick"]["model"] in ("lite0.onnx", "lite0.xml") and result["budget_pick"]["budget_ms"] == 1000
    assert (rep / "bench.csv").read_text().count("\n") == 5
    assert "| model |" in (rep / "bench.md").read_text()
    html = (rep / "bench.html").read_text()
    assert html.count("data:image/png;base64,") == 2 and "<table>" in html
    assert "pick" in stdout
    assert result["budget_pick"]["why"] in html.replace("&#x27;", "'") and "Budget 1000 ms: " in (rep / "bench.md").read_text()
    # the shared renderer: its stylesheet, and the table rows the sections hold, in the HTML and the Markdown
    from report_tables import assert_same_tables

    from edgecls.report.document import CSS

    assert CSS in html
    assert_same_tables(report.sections(result, with_figures=False), html, (rep / "bench.md").read_text())


def test_cold_start_reports_the_child_not_the_parent(artifacts):
    """ru_maxrss survives exec on Linux: a parent holding 1.5 GB made every child 'peak' at 1.5 GB."""
    import numpy as np

    from edgecls.bench.cold import cold_start

    ballast = np.ones(1536 * 2**20, np.uint8)  # touched pages: this process's RSS is now > 1.5 GB
    cold = cold_start(artifacts["onnx"], 1)
    assert ballast[-1] == 1 and "error" not in cold, cold
    assert 20 < cold["peak_rss_mb"] < 1000, cold
    assert cold["load_ms"] > 0 and cold["first_inference_ms"] > 0 and cold["import_ms"] > 1.0


def test_cold_start_with_a_compiled_model_cache(artifacts, tmp_path):
    """OpenVINO with cache_dir: the first start fills the cache, the reported start finds it; both are in the row."""
    from edgecls.bench.cold import cold_start

    cache = tmp_path / "ov_cache"
    cold = cold_start(artifacts["xml"], 1, str(cache))
    assert "error" not in cold, cold
    assert cold["cache_fill_ms"] > 0 and cold["load_plus_first_ms"] > 0 and cold["cache_dir"] == str(cache)
    assert any(cache.iterdir())  # the compiled blob the second start loaded


def _result(rows):
    base = {"model_samples_ms": [1.0], "preprocess_ms": latency_stats([0.3, 0.3]), "cold_start": None, "path": "x",
            "format": "onnx", "threads": 2, "batch": 1, "size_mb": 5.0, "throughput_ips": 100.0}
    out = []
    for name, p50, acc in rows:
        r = dict(base, model=name, backend="onnxruntime", precision="fp32", model_ms=latency_stats([p50, p50]), model_samples_ms=[p50, p50],
                 end_to_end_ms=latency_stats([p50 + 1, p50 + 1]), accuracy={"dataset": "folder", "n": 10, "top1": acc} if acc is not None else None)
        out.append(r)
    return report.make_result(out, _DEVICE, {"warmup": 1, "runs": 2, "batch_sizes": [1], "threads": [2]})


from edgecls.bench.fingerprint import fingerprint  # noqa: E402

_DEVICE = fingerprint([2])


def test_budget_pick_most_accurate_that_fits():
    res = _result([("fast.onnx", 2.0, 0.90), ("mid.onnx", 5.0, 0.93), ("slow.onnx", 12.0, 0.95)])
    best, why = report.pick_under_budget(res, 7.0)  # e2e = p50 + 1: fast 3, mid 6, slow 13
    assert best["model"] == "mid.onnx" and "most accurate of 2" in why
    best, why = report.pick_under_budget(res, 1.0)
    assert best is None and "fast.onnx" in why
    no_acc = _result([("a.onnx", 4.0, None), ("b.onnx", 3.0, None)])
    best, why = report.pick_under_budget(no_acc, 10.0)
    assert best["model"] == "b.onnx" and "fastest" in why
    # no labels, agreement with a reference: the most faithful build that fits
    agree = _result([("fp32.onnx", 8.0, None), ("int8a.onnx", 4.0, None), ("int8b.onnx", 5.0, None)])
    for r, a in zip(agree["results"], (1.0, 0.7, 0.9)):
        r["agreement"] = {"reference": "fp32.onnx", "n": 10, "top1": a, "top5_overlap": a}
    best, why = report.pick_under_budget(agree, 7.0)
    assert best["model"] == "int8b.onnx" and "most faithful of 2" in why


def test_int8_rows_are_set_beside_their_runtimes_fp32_and_slower_ones_said_so():
    res = _result([("m.onnx", 8.0, None), ("m_int8.onnx", 5.0, None), ("m.tflite", 6.0, None), ("m_int8.tflite", 7.5, None),
                   ("other.onnx", 9.0, None)])
    for r, backend, prec, arch in zip(res["results"], ("onnxruntime", "onnxruntime", "litert", "litert", "onnxruntime"),
                                      ("fp32", "int8", "fp32", "int8", "fp32"), ("lite0", "lite0", "lite0", "lite0", "mnv3")):
        r.update(backend=backend, precision=prec, arch=arch, input="uint8 NHWC [224, 224, 3]")
    pairs = {s["int8_model"]: s for s in report.int8_speedups(res)}
    assert set(pairs) == {"m_int8.onnx", "m_int8.tflite"}  # other.onnx is another model: it pairs with nothing
    assert pairs["m_int8.onnx"]["fp32_model"] == "m.onnx" and pairs["m_int8.onnx"]["speedup"] == pytest.approx(8.0 / 5.0)
    assert pairs["m_int8.onnx"]["faster"] and pairs["m_int8.onnx"]["e2e_speedup"] == pytest.approx(9.0 / 6.0)
    slow = pairs["m_int8.tflite"]
    assert not slow["faster"] and slow["speedup"] == pytest.approx(0.8)
    assert "NOT faster" in report.speedup_text(slow) and "NOT" not in report.speedup_text(pairs["m_int8.onnx"])
    res["int8_vs_fp32"] = report.int8_speedups(res)
    report.validate(res)
    assert "NOT faster than FP32 on this device" in report.to_markdown(res)
    # two FP32 files of one arch and input: which one an INT8 came from is unknown, so no ratio is made up
    res["results"][4]["arch"] = "lite0"
    assert {s["int8_model"] for s in report.int8_speedups(res)} == {"m_int8.tflite"}


def test_compare_ratios():
    a = _result([("m.onnx", 4.0, None)])
    b = copy.deepcopy(a)
    b["results"][0]["model_ms"] = latency_stats([2.0, 2.0])
    rows = report.compare(a, b)
    assert rows[0]["p50_ratio"] == pytest.approx(0.5)
    # the same file name from two folders: the first row is compared with the first, the second with the second
    a2, b2 = _result([("m.onnx", 4.0, None), ("m.onnx", 10.0, None)]), _result([("m.onnx", 2.0, None), ("m.onnx", 10.0, None)])
    assert [r["p50_ratio"] for r in report.compare(a2, b2)] == pytest.approx([0.5, 1.0])


def test_budget_without_end_to_end_says_model_only():
    res = _result([("a.onnx", 4.0, 0.8), ("b.onnx", 3.0, 0.7)])
    for r in res["results"]:
        r["end_to_end_ms"] = None
    best, why = report.pick_under_budget(res, 3.5)
    assert best["model"] == "b.onnx" and "model-only p50" in why and "3.00 ms" in why
    res["results"][0]["accuracy"] = res["results"][1]["accuracy"] = {"error": "dataset classes ['x'] are not labels"}
    best, why = report.pick_under_budget(res, 10.0)
    assert best["model"] == "b.onnx" and "accuracy failed" in why and "of 2 artifact(s)" in why


def test_reports_render_without_accuracy_on_some_rows_and_validate_leaf_types():
    res = _result([("a.onnx", 4.0, 0.8), ("b.onnx", 3.0, None)])
    report.validate(res)
    html = report.to_html(res)
    assert html.count("data:image/png;base64,") == 2 and "<td class='n'>b.onnx</td>" in html
    assert "| b.onnx |" in report.to_markdown(res)
    bad = copy.deepcopy(res)
    bad["results"][0]["accuracy"]["top1"] = "ninety"
    with pytest.raises(ValueError, match="results/0/accuracy"):
        report.validate(bad)
    bad = copy.deepcopy(res)
    bad["results"][0]["model_samples_ms"] = [1.0, 2.0, 3.0]  # n says 2
    with pytest.raises(ValueError, match="model_ms.n=2 but 3 samples"):
        report.validate(bad)


def test_pareto_points_are_one_per_artifact():
    """Thread lists and batch lists: per artifact, its fastest thread count at the smallest batch measured."""
    res = _result([("a.onnx", 4.0, 0.8), ("a.onnx", 3.0, 0.8), ("a.onnx", 1.0, 0.8)])
    rs = res["results"]
    rs[0]["threads"], rs[1]["threads"], rs[2]["batch"] = 1, 2, 8
    for r in rs:
        r["batch"] = r["batch"] if r["batch"] == 8 else 2
    pts = report.one_per_artifact(rs)
    assert [(r["threads"], r["batch"]) for r, _ in pts] == [(2, 2)]


def test_cli_errors_and_compare(bench_run, tmp_path):
    rep, _ = bench_run
    r = subprocess.run([sys.executable, "-m", "edgecls.cli.bench", str(tmp_path / "none.onnx")], capture_output=True, text=True)
    assert r.returncode == 2 and "no such model" in r.stderr
    for bad_opt in (["--duration", "0"], ["--accuracy-limit", "0"], ["--warmup", "-1"]):
        r = subprocess.run([sys.executable, "-m", "edgecls.cli.bench", str(rep / "bench.json"), *bad_opt], capture_output=True, text=True)
        assert r.returncode == 2 and "--duration must be > 0" in r.stderr, bad_opt
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    r = subprocess.run([sys.executable, "-m", "edgecls.cli.bench", "--compare", str(rep / "bench.json"), str(bad)], capture_output=True, text=True)
    assert r.returncode == 2 and "not an edgecls-bench result" in r.stderr
    r = subprocess.run([sys.executable, "-m", "edgecls.cli.bench", "--compare", str(rep / "bench.json"), str(rep / "bench.json")],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "1.00" in r.stdout


def test_default_thread_row_gets_the_libraries_default_pools(artifacts):
    """threads [1, 0]: the Predictor with 1 thread sets OpenCV's process-wide pool; the default row must not inherit it."""
    import cv2

    from edgecls.bench.runner import BenchOptions, bench_artifact

    before = cv2.getNumThreads()
    seen = []
    opts = BenchOptions(warmup=1, runs=2, threads=[1, 0], end_to_end=False, cold_start=False)
    bench_artifact(artifacts["onnx"], opts, progress=lambda s: seen.append(cv2.getNumThreads()))
    assert seen[0] == 1 and seen[-1] == before and cv2.getNumThreads() == before


def test_agreement_refuses_a_reference_with_other_labels(artifacts):
    """A Fashion-MNIST model against an ImageNet reference would read as 0% agreement: it is an error instead."""
    import edgecls
    from edgecls.bench.runner import agreement

    spec = edgecls.Predictor(artifacts["onnx"]).spec
    other = spec.replace(labels=tuple(f"class {i}" for i in range(spec.num_classes)))
    pred = edgecls.Predictor(artifacts["onnx"], spec=other)
    got = agreement(pred, str(artifacts["onnx"]), None, 4)
    assert "other labels" in got["error"]
    assert agreement(edgecls.Predictor(artifacts["onnx"]), str(artifacts["onnx"]), None, 4)["top1"] == 1.0


def test_cpus_parse_like_taskset():
    from edgecls.cli.bench import parse_cpus

    assert parse_cpus("0-2,5") == [0, 1, 2, 5] and parse_cpus("3") == [3] and parse_cpus("1,1-2") == [1, 2]
    for bad in ("", "a", "3-1", "-1", "0-"):
        with pytest.raises(ValueError, match="taskset"):
            parse_cpus(bad)


def _why_an_engine_cannot_run_here() -> str:
    """What the skip must say on this machine: no TensorRT, no GPU, or (both present) a corrupt engine."""
    import importlib.util

    import torch

    if importlib.util.find_spec("tensorrt") is None:
        return "edgecls[tensorrt]"
    return "cannot load" if torch.cuda.is_available() else "NVIDIA GPU"


def test_folder_with_an_engine_that_cannot_run_benches_the_rest(artifacts, tmp_path):
    """A folder holding a corrupt TensorRT engine: whatever this machine has (no TensorRT, no GPU, or both, where the
    engine is opened and rejected as corrupt), the engine is skipped with that reason and the rest is measured."""
    import shutil

    folder = tmp_path / "models"
    folder.mkdir()
    for f in (artifacts["onnx"], artifacts["onnx"].with_name(artifacts["onnx"].name + ".json")):
        shutil.copy(f, folder / f.name)
    (folder / "detector.engine").write_bytes(b"not a real engine")
    r = subprocess.run([sys.executable, "-m", "edgecls.cli.bench", str(folder), "--runs", "3", "--warmup", "1", "--no-cold",
                        "--no-e2e", "-o", str(tmp_path / "rep")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "skipped" in r.stdout and "detector.engine" in r.stdout and _why_an_engine_cannot_run_here() in r.stdout, r.stdout
    rows = json.loads((tmp_path / "rep" / "bench.json").read_text())["results"]
    assert [row["model"] for row in rows] == [artifacts["onnx"].name]
    (folder / artifacts["onnx"].name).unlink()
    r = subprocess.run([sys.executable, "-m", "edgecls.cli.bench", str(folder), "--runs", "3", "-o", str(tmp_path / "rep2")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "no artifact could be benchmarked" in r.stderr


def test_interleaved_timing_alternates_chunks_and_counts_runs():
    from edgecls.bench.runner import time_interleaved

    calls = []
    ms = time_interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, warmup=1, runs=25, duration_s=None, chunk=10)
    assert len(ms["a"]) == len(ms["b"]) == 25 and all(v >= 0 for v in ms["a"] + ms["b"])
    # warmup a, warmup b, then a x10, b x10, a x10, b x10, a x5, b x5
    assert "".join(calls) == "ab" + "a" * 10 + "b" * 10 + "a" * 10 + "b" * 10 + "a" * 5 + "b" * 5


def test_topk_is_the_stable_argsort_prefix():
    import numpy as np

    from edgecls.runtime.scores import softmax, topk_indices

    row = np.array([0.1, 0.5, 0.5, 0.2, 0.5] + [0.0] * 95)
    # three-way tie at 0.5: lower index first; the 4th is 0.2 at index 3
    assert topk_indices(row, 4).tolist() == [1, 2, 4, 3]
    assert topk_indices(row, 2).tolist() == [1, 2]  # the tie at the boundary keeps the lowest indices
    rng = np.random.default_rng(0)
    for _ in range(200):
        r = rng.integers(0, 4, int(rng.integers(65, 400))).astype(np.float64)
        k = int(rng.integers(1, 10))
        assert topk_indices(r, k).tolist() == np.argsort(-r, kind="stable")[:k].tolist()
    # softmax by hand: logits (0, ln 3) -> (1/4, 3/4); temperature 2 -> (1, sqrt 3) / (1 + sqrt 3)
    np.testing.assert_allclose(softmax(np.array([[0.0, np.log(3.0)]])), [[0.25, 0.75]], rtol=1e-12)
    np.testing.assert_allclose(softmax(np.array([0.0, np.log(3.0)]), 2.0), np.array([1.0, 3**0.5]) / (1 + 3**0.5), rtol=1e-12)


def test_an_artifact_with_an_open_set_threshold_is_timed_rejecting_and_monitored(artifacts, photos, tmp_path):
    """Fitted artifacts are benched as apps run them: with rejection on, and with the cost of drift monitoring."""
    import shutil

    from edgecls.bench.fingerprint import fingerprint
    from edgecls.bench.runner import BenchOptions, bench_artifact
    from edgecls.openset import fit_reference

    onnx = tmp_path / "lite0.onnx"
    shutil.copy(artifacts["onnx"], onnx)
    shutil.copy(str(artifacts["onnx"]) + ".json", str(onnx) + ".json")
    spec = fit_reference(onnx, _photo_folder(tmp_path / "val", photos))
    opts = BenchOptions(warmup=2, runs=20, cold_start=False, power=False)
    rows = bench_artifact(onnx, opts)
    row = rows[0]
    assert row["open_set"] == {"score": "msp", "threshold": spec.open_set.threshold}
    assert row["end_to_end_monitored_ms"]["n"] == 20
    result = report.make_result(rows, fingerprint([0]), opts.as_dict())
    report.validate(result)
    f = report.flat(row)
    assert f["reject"].startswith("msp >= ") and isinstance(f["monitor_overhead_ms"], float)
    assert "monitor" in report.to_markdown(result)
    plain = bench_artifact(artifacts["onnx"], BenchOptions(warmup=1, runs=4, cold_start=False, power=False))[0]
    assert plain["open_set"] is None and plain["end_to_end_monitored_ms"] is None

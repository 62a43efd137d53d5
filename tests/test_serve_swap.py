"""`edgecls serve` under load, each case its own server on loopback: the hot swap (a new file switched in without a
failed request; a file that fails its self-check, and a truncated one, refused while the old model serves; SIGHUP),
the queue bound (503 with Retry-After, never a dropped or doubled answer), and memory over many requests."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import time

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from serve_client import call, call_json, jpeg, metric, rss_mb, running_server

from edgecls.runtime.artifacts import file_sha256
from edgecls.serve.loadgen import Payload, closed_loop

pytestmark = pytest.mark.slow
PHOTOS = ("coffee", "chelsea", "rocket", "camera")


@pytest.fixture(scope="module")
def payloads(photos, predictors):
    out = []
    for k in PHOTOS:
        data = jpeg(photos[k])
        out.append(Payload(data, predictors["onnx_dyn"].predict(data).label))
    return out


def replace(dst, src_bytes: bytes) -> None:
    """Publish a new model file the way an operator should: written beside it, renamed over it."""
    tmp = dst.with_name(dst.name + ".new")
    tmp.write_bytes(src_bytes)
    os.replace(tmp, dst)


def broken_copy(path) -> bytes:
    """The same ONNX file, metadata and self-check record kept, with its classifier weights negated: it loads, runs,
    and computes something other than what was verified at export (the recorded graph fingerprint no longer matches)."""
    m = onnx.load(str(path))
    big = max(m.graph.initializer, key=lambda t: int(np.prod(t.dims)) if len(t.dims) == 2 else 0)
    big.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(big), big.name))
    return m.SerializeToString()


def test_hot_swap_under_load(artifacts, payloads, tmp_path):
    model = tmp_path / "cam.onnx"
    shutil.copy(artifacts["onnx_dyn"], model)
    first, second = file_sha256(model), file_sha256(artifacts["onnx_f32"])  # the same weights, float NCHW input
    with running_server([model], "--max-batch", "4", log=tmp_path / "server.log") as (proc, port):
        loop_timings: dict = {}

        async def scenario():
            stop = asyncio.Event()
            load = asyncio.create_task(closed_loop("127.0.0.1", port, payloads, clients=6, requests=100_000,
                                                   duration_s=120, stop=stop))
            run = asyncio.get_running_loop().run_in_executor
            await asyncio.sleep(1.5)
            replace(model, artifacts["onnx_f32"].read_bytes())
            t = time.monotonic()
            swapped = await run(None, lambda: call_json(port, "POST", "/v2/repository/models/cam/load"))
            loop_timings["swap_s"] = round(time.monotonic() - t, 2)
            await asyncio.sleep(1.5)
            replace(model, broken_copy(artifacts["onnx_dyn"]))
            refused = await run(None, lambda: call_json(port, "POST", "/v2/repository/models/cam/load"))
            replace(model, artifacts["onnx_dyn"].read_bytes()[:100_000])  # a copy cut short
            truncated = await run(None, lambda: call_json(port, "POST", "/v2/repository/models/cam/load"))
            await asyncio.sleep(1.0)
            stop.set()
            return swapped, refused, truncated, await load

        swapped, refused, truncated, r = asyncio.run(scenario())
        print("\nhot swap:", json.dumps({"load": r.summary(), **loop_timings,
                                         "versions": {f"v{v} {s[:12]}": n for (v, s), n in r.versions.items()}}))
        assert swapped == (200, {"name": "cam", "version": "2", "sha256": second})
        # the graph's fingerprint (runtime/graphs.py) catches the changed weights before the self-check would
        assert refused[0] == 400 and "changed after edgecls exported it" in refused[1]["error"], refused
        assert "version 2" in refused[1]["error"]
        assert truncated[0] == 400 and "version 2" in truncated[1]["error"]
        # zero failed requests through a swap and two refusals; answers from both versions, each from its own file
        assert r.sent == r.ok > 50 and r.exactly_once() and r.wrong_label == 0, r.summary()
        assert set(r.versions) == {(1, first), (2, second)}
        _, models = call_json(port, "GET", "/v1/models")
        assert models["models"][0]["version"] == 2 and models["models"][0]["sha256"] == second
        text = call(port, "GET", "/metrics")[2].decode()
        assert metric(text, "edgecls_model_loads_total", model="cam", result="loaded") == 2
        assert metric(text, "edgecls_model_loads_total", model="cam", result="refused") == 2

        # SIGHUP reloads every model from its file
        replace(model, artifacts["onnx_dyn"].read_bytes())
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and call_json(port, "GET", "/v1/models")[1]["models"][0]["version"] != 3:
            time.sleep(0.2)
        m = call_json(port, "GET", "/v1/models")[1]["models"][0]
        assert m["version"] == 3 and m["sha256"] == first
        assert call_json(port, "POST", "/v1/predict", payloads[0].body)[1]["label"] == payloads[0].label


def test_drift_events_and_rejection(artifacts, hymenoptera, tmp_path):
    """An artifact carrying a drift reference and an open-set threshold (fit-reference on the ants/bees photos): the
    server answers known/ood_score with --reject, feeds the monitor, and counts a darkened stream's drift event."""
    from PIL import Image

    from edgecls.openset import fit_reference, list_images

    model = tmp_path / "bugs.onnx"
    shutil.copy(artifacts["onnx_dyn"], model)
    fit_reference(model, hymenoptera / "val")
    files = list_images(hymenoptera / "val")[:40]
    dark = [jpeg((np.asarray(Image.open(f).convert("RGB")) * 0.35).astype(np.uint8)) for f in files]
    with running_server([model], "--reject", "--drift-window", "40", log=tmp_path / "server.log") as (_, port):
        r = asyncio.run(closed_loop("127.0.0.1", port, [Payload(b) for b in dark], clients=4, requests=40, duration_s=300))
        assert r.ok == 40 and r.exactly_once()
        code, answer = call_json(port, "POST", "/v1/predict", dark[0])
        assert code == 200 and isinstance(answer["known"], bool) and 0 <= answer["ood_score"] <= 1
        text = call(port, "GET", "/metrics")[2].decode()
        assert metric(text, "edgecls_drift_events_total", model="bugs", statistic="brightness") >= 1, text[-2000:]
        assert call_json(port, "GET", "/v1/models")[1]["models"][0]["drift_events"] >= 1


def test_full_queue_answers_503_with_retry_after(artifacts, payloads, tmp_path):
    with running_server([artifacts["onnx_dyn"]], "--max-batch", "1", "--max-queue", "2", "--workers", "1", "--threads", "1",
                        log=tmp_path / "server.log") as (_, port):
        r = asyncio.run(closed_loop("127.0.0.1", port, payloads, clients=24, requests=96, duration_s=120))
        print("\nqueue bound:", json.dumps(r.summary()))
        assert set(r.statuses) == {200, 503} and r.statuses[503] > 0 and r.ok >= 2, r.summary()
        assert r.exactly_once() and r.wrong_label == 0 and set(r.retry_after) == {"1"}
        text = call(port, "GET", "/metrics")[2].decode()
        assert metric(text, "edgecls_requests_total", endpoint="/v1/predict", code="503") == r.statuses[503]
        assert metric(text, "edgecls_in_flight", model="lite0_dyn") == 0  # every admitted image was released


def test_many_requests_each_answered_once_and_memory_flat(artifacts, payloads, tmp_path):
    with running_server([artifacts["onnx_dyn"]], "--max-batch", "8", log=tmp_path / "server.log") as (proc, port):
        warm = asyncio.run(closed_loop("127.0.0.1", port, payloads, clients=16, requests=300, duration_s=300, tag="w"))
        before = rss_mb(proc.pid)
        r = asyncio.run(closed_loop("127.0.0.1", port, payloads, clients=16, requests=1500, duration_s=600))
        after = rss_mb(proc.pid)
        print("\nmany requests:", json.dumps({"warmup": warm.summary(), "run": r.summary(), "rss_before_mb": round(before, 1),
                                              "rss_after_mb": round(after, 1)}))
        assert r.sent == r.ok == 1500 and r.exactly_once() and r.wrong_label == 0
        text = call(port, "GET", "/metrics")[2].decode()
        assert metric(text, "edgecls_images_total", model="lite0_dyn") == 1800  # the server counted each image once
        assert after - before < 20, f"RSS grew {after - before:.1f} MB over 1500 requests"

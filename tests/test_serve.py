"""`edgecls serve` for real: one server process on loopback (a dynamic-batch and a fixed-batch Lite0, bearer tokens on),
real photos, raw sockets. Its answers are compared with the Predictor's on the same bytes, never with figures copied
from the server; timings are printed (run with -s), never asserted."""

from __future__ import annotations

import asyncio
import base64
import gzip
import io
import json
import socket
import subprocess
import time

import numpy as np
import pytest
from PIL import Image
from serve_client import (
    bomb_png,
    call,
    call_json,
    jpeg,
    metric,
    multipart,
    running_server,
    threads_of,
    tritonclient_python,
)

from edgecls.runtime.artifacts import file_sha256
from edgecls.serve.loadgen import Payload, Stallers, closed_loop, open_loop

TOKEN = "test-token-5f0c2a9be41d7783"
READ_TIMEOUT = 2.0
PHOTOS = ("coffee", "chelsea", "rocket", "camera")


@pytest.fixture(scope="module")
def server(artifacts, tmp_path_factory):
    d = tmp_path_factory.mktemp("serve")
    keys = d / "keys.txt"
    keys.write_text(f"# tokens, one a line\n{TOKEN}\nsecond-token-0123456789abcdef\n")
    with running_server([f"lite0={artifacts['onnx_dyn']}", f"fixed={artifacts['onnx']}"], "--api-key-file", keys,
                        "--max-batch", "4", "--max-wait-ms", "5", "--read-timeout", str(READ_TIMEOUT),
                        "--threads", "1", log=d / "server.log") as (proc, port):
        yield proc, port


@pytest.fixture(scope="module")
def photo_bytes(photos):
    return {k: jpeg(photos[k]) for k in PHOTOS}


def test_predict_answers_what_the_predictor_answers(server, predictors, photo_bytes, artifacts):
    _, port = server
    sha = file_sha256(artifacts["onnx_dyn"])
    for name, data in photo_bytes.items():
        want = predictors["onnx_dyn"].predict(data, topk=3)
        code, got = call_json(port, "POST", "/v1/predict?topk=3", data, token=TOKEN, headers={"X-Request-Id": f"r-{name}"})
        assert code == 200, got
        assert (got["label"], got["index"], got["id"], got["known"]) == (want.label, want.index, f"r-{name}", True)
        assert abs(got["score"] - want.score) < 1e-5 and [t["label"] for t in got["topk"]] == [t.label for t in want.topk]
        assert got["model"] == "lite0" and got["sha256"] == sha and got["version"] == 1
        assert set(got["timings_ms"]) == {"read", "decode", "queue", "infer", "postprocess", "total"}
    body, ctype = multipart("image", "coffee.jpg", photo_bytes["coffee"])
    code, got = call_json(port, "POST", "/v1/predict?model=fixed", body, token=TOKEN, headers={"Content-Type": ctype})
    assert code == 200 and got["label"] == predictors["onnx"].predict(photo_bytes["coffee"]).label == "espresso"
    assert got["model"] == "fixed" and len(got["topk"]) == 5


def test_protocol_routes(server, predictors, photos, photo_bytes):
    _, port = server
    assert call(port, "GET", "/v2/health/live")[0] == 200  # probes need no token
    assert call(port, "GET", "/v2/health/ready")[0] == 200
    code, meta = call_json(port, "GET", "/v2/models/lite0", token=TOKEN)
    assert code == 200 and meta["versions"] == ["1"] and {i["name"] for i in meta["inputs"]} == {"image", "image_bytes"}
    assert json.loads(meta["parameters"]["labels"])[967] == "espresso"
    assert call(port, "GET", "/v2/models/lite0/versions/1/ready", token=TOKEN)[0] == 200
    code, err = call_json(port, "GET", "/v2/models/lite0/versions/7", token=TOKEN)
    assert code == 404 and "version 1 is serving" in err["error"]
    code, err = call_json(port, "GET", "/v2/models/nope", token=TOKEN)
    assert code == 404 and "lite0, fixed" in err["error"]
    assert call_json(port, "GET", "/v2/models/fixed/config", token=TOKEN)[1]["max_batch_size"] == 1
    assert call_json(port, "GET", "/v2/models/lite0/config", token=TOKEN)[1]["max_batch_size"] == 4

    # JSON request: encoded images as base64, outputs as JSON data
    req = {"id": "j1", "inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [2],
                                   "data": [{"b64": base64.b64encode(photo_bytes[k]).decode()} for k in ("coffee", "rocket")]}],
           "outputs": [{"name": "label"}, {"name": "scores", "parameters": {"classification": 2}}]}
    code, got = call_json(port, "POST", "/v2/models/lite0/infer", json.dumps(req).encode(), token=TOKEN)
    want = [predictors["onnx_dyn"].predict(photo_bytes[k]) for k in ("coffee", "rocket")]
    assert code == 200 and got["id"] == "j1" and got["model_version"] == "1"
    assert got["outputs"][0]["data"] == [w.label for w in want]
    top = got["outputs"][1]["data"]
    assert got["outputs"][1]["shape"] == [2, 2] and top[0].endswith(f":{want[0].index}:{want[0].label}")

    # binary request (what tritonclient sends): a uint8 frame, raw logits back in binary
    frame = np.ascontiguousarray(photos["chelsea"])
    head = json.dumps({"inputs": [{"name": "image", "datatype": "UINT8", "shape": [1, *frame.shape],
                                   "parameters": {"binary_data_size": frame.nbytes}}],
                       "outputs": [{"name": "logits", "parameters": {"binary_data": True}}]}).encode()
    code, hdr, data = call(port, "POST", "/v2/models/lite0/infer", head + frame.tobytes(), token=TOKEN,
                           headers={"Inference-Header-Content-Length": str(len(head))})
    n = int(hdr["inference-header-content-length"])
    answer = json.loads(data[:n])
    logits = np.frombuffer(data[n:], np.float32).reshape(answer["outputs"][0]["shape"])
    ref = predictors["onnx_dyn"].infer(predictors["onnx_dyn"].preprocess(frame, color="RGB"))
    assert code == 200 and np.abs(logits - ref).max() < 1e-4

    code, models = call_json(port, "GET", "/v1/models", token=TOKEN)
    assert [m["name"] for m in models["models"]] == ["lite0", "fixed"]
    assert all(m["self_check"] == "pass" and "/" not in m["file"] for m in models["models"])
    code, api = call_json(port, "GET", "/openapi.json", token=TOKEN)
    assert {"/v1/predict", "/v2/models/{name}/infer", "/v2/repository/models/{name}/load"} <= set(api["paths"])
    code, _, text = call(port, "GET", "/metrics", token=TOKEN)
    text = text.decode()
    assert metric(text, "edgecls_requests_total", endpoint="/v2/models/{name}/infer", code="200") >= 2
    assert metric(text, "edgecls_requests_total", endpoint="/v2/models/{name}", code="404") >= 1
    assert metric(text, "edgecls_model_info", model="fixed", version="1", sha256=models["models"][1]["sha256"],
                  backend="onnxruntime") == 1


def test_tokens(server, photo_bytes):
    _, port = server
    code, hdr, body = call(port, "POST", "/v1/predict", photo_bytes["coffee"])
    assert code == 401 and hdr["www-authenticate"].startswith("Bearer") and "api-key-file" in json.loads(body)["error"]
    assert call(port, "POST", "/v1/predict", photo_bytes["coffee"], token="wrong-token-0123456789")[0] == 401
    assert call(port, "GET", "/metrics")[0] == 401 and call(port, "GET", "/docs")[0] == 401
    assert call(port, "POST", "/v1/predict", photo_bytes["coffee"], token="second-token-0123456789abcdef")[0] == 200
    # refused before any body is read: a client announcing 5 MB and sending nothing hears 401 at once, not 408
    t = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n")
        assert s.recv(100).split(b" ")[1] == b"401" and time.monotonic() - t < READ_TIMEOUT


def test_bad_requests_get_the_status_that_says_why(server, photos, photo_bytes):
    _, port = server
    assert call(port, "POST", "/v1/predict", b"", token=TOKEN)[0] == 400  # no body
    code, _, body = call(port, "POST", "/v1/predict", b"", token=TOKEN, headers={"Content-Length": "lots"})
    assert code == 400
    t = time.monotonic()
    code, hdr, body = call(port, "POST", "/v1/predict", b"", token=TOKEN, headers={"Content-Length": str(10**12)})
    assert code == 413 and "limit" in json.loads(body)["error"] and time.monotonic() - t < READ_TIMEOUT  # before reading
    code, _, body = call(port, "POST", "/v1/predict", bomb_png(), token=TOKEN)  # 20000x20000 declared in a few KB
    assert code == 413 and "downscale" in json.loads(body)["error"]
    eps = io.BytesIO()
    Image.fromarray(photos["coffee"]).save(eps, format="EPS")  # PostScript: decoding it would run Ghostscript
    code, _, body = call(port, "POST", "/v1/predict", eps.getvalue(), token=TOKEN)
    assert code == 415 and "JPEG, PNG or WEBP" in json.loads(body)["error"]
    code, _, body = call(port, "POST", "/v1/predict", photo_bytes["coffee"][:2000], token=TOKEN)
    assert code == 400 and "truncated" in json.loads(body)["error"]
    # a phone photo stored sideways with EXIF orientation 6 is classified upright
    upright = call_json(port, "POST", "/v1/predict", jpeg(photos["camera"]), token=TOKEN)[1]
    sideways = call_json(port, "POST", "/v1/predict", jpeg(np.ascontiguousarray(np.rot90(photos["camera"], 1)), 6),
                         token=TOKEN)[1]
    assert upright["label"] == sideways["label"] == "tripod" and abs(upright["score"] - sideways["score"]) < 0.05
    assert call(port, "POST", "/v1/predict?topk=0", photo_bytes["coffee"], token=TOKEN)[0] == 400
    assert call(port, "POST", "/v1/predict?model=nope", photo_bytes["coffee"], token=TOKEN)[0] == 404
    big = jpeg(np.asarray(Image.fromarray(photos["coffee"]).resize((3000, 2000))))
    code, _, body = call(port, "POST", "/v1/predict?timeout_ms=1", big, token=TOKEN)  # its decode alone takes longer
    assert code == 504 and "deadline" in json.loads(body)["error"]

    infer = "/v2/models/lite0/infer"
    cases = [(b"{not json", {}, 400, "not JSON"),
             (json.dumps({"inputs": [{"name": "pixels", "datatype": "UINT8", "shape": [1], "data": [0]}]}).encode(), {}, 400,
              "unknown input"),
             (json.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 2, 2, 3], "data": [0] * 12}]}).encode(),
              {}, 400, "UINT8"),
             (json.dumps({"inputs": [{"name": "image", "datatype": "UINT8", "shape": [1, 2, 2, 3], "data": [0] * 11}]}).encode(),
              {}, 400, "12 integers"),
             (json.dumps({"inputs": [{"name": "image", "datatype": "UINT8", "shape": [1, 2, 2, 3],
                                      "data": [300] * 12}]}).encode(), {}, 400, "0-255"),
             (json.dumps({"inputs": [{"name": "image", "datatype": "UINT8", "shape": [1, 2, 2, 3],
                                      "parameters": {"binary_data_size": 12}}]}).encode() + b"\0" * 5,
              {"Inference-Header-Content-Length": "0"}, 400, "not JSON"),
             (json.dumps({"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [40],
                                      "data": ["AAAA"] * 40}]}).encode(), {}, 413, "the most is"),
             (json.dumps({"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [1], "data": ["AAAA"]}],
                          "outputs": [{"name": "probabilities"}]}).encode(), {}, 400, "unknown output"),
             (gzip.compress(b"\0" * 30_000_000), {"Content-Encoding": "gzip"}, 413, "inflates past")]
    for body, headers, want, text in cases:
        code, _, data = call(port, "POST", infer, body, token=TOKEN, headers=headers)
        assert code == want and text in json.loads(data)["error"], (want, text, code, data[:300])
    code, _, data = call(port, "POST", "/v2/repository/models/lite0/load",
                         json.dumps({"parameters": {"file:1/model.onnx": "AAAA"}}).encode(), token=TOKEN)
    assert code == 400 and "no model files" in json.loads(data)["error"]
    assert call(port, "POST", "/v2/repository/models/lite0/unload", token=TOKEN)[0] == 400
    # still serving after all of it
    assert call_json(port, "POST", "/v1/predict", photo_bytes["coffee"], token=TOKEN)[1]["label"] == "espresso"


def test_stalled_clients_cost_a_socket_not_a_worker(server, photo_bytes):
    """100 connections announce a body and send none, one sends nothing at all, one half a header: meanwhile real
    requests are answered at once; the stalled ones get 408 after --read-timeout; no thread is started for them."""
    proc, port = server
    headers = {"Authorization": f"Bearer {TOKEN}"}
    warm = [Payload(photo_bytes["coffee"], "espresso")]
    asyncio.run(closed_loop("127.0.0.1", port, warm, clients=4, requests=8, duration_s=60, headers=headers))  # pools up
    baseline = threads_of(proc.pid)
    silent = socket.create_connection(("127.0.0.1", port), timeout=30)
    half = socket.create_connection(("127.0.0.1", port), timeout=30)
    half.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Le")

    async def scenario():
        stall = Stallers("127.0.0.1", port, 100, headers=headers)
        await stall.start()
        opened = stall.open
        peak = threads_of(proc.pid)
        t = time.monotonic()
        real = await closed_loop("127.0.0.1", port, warm, clients=4, requests=12, duration_s=60, headers=headers)
        served_s = time.monotonic() - t
        await asyncio.sleep(READ_TIMEOUT + 1.0)  # every stalled request has met its deadline by now
        answers = dict(stall.answers)
        await stall.stop()
        return opened, peak, real, served_s, answers

    opened, peak, real, served_s, answers = asyncio.run(scenario())
    print("\nstalled clients:", json.dumps({"opened": opened, "threads_before": baseline, "threads_during": peak,
                                             "real": real.summary(), "real_served_s": round(served_s, 2),
                                             "stalled_answers": answers}))
    assert opened == 100 and real.ok == 12 and real.exactly_once() and real.wrong_label == 0
    assert served_s < READ_TIMEOUT  # answered while the stalled requests were all still waiting for their bodies
    assert answers.get(408, 0) >= 100 and set(answers) <= {408}, answers
    assert peak <= baseline + 2, f"{peak} threads with 100 stalled clients (baseline {baseline})"
    for s in (silent, half):  # the header deadline closed them
        s.settimeout(READ_TIMEOUT + 5)
        data = s.recv(1000)
        assert data == b"" or data.startswith(b"HTTP/1.1 408"), data
        s.close()


@pytest.mark.slow
def test_concurrent_requests_are_batched_and_answered_to_their_callers(server, photo_bytes, predictors):
    """24 clients, 4 different photos: every answer carries its request's id and its photo's label; on the dynamic-batch
    model the batches hold several images, on the fixed-batch one exactly one."""
    _, port = server
    payloads = [Payload(photo_bytes[k], predictors["onnx_dyn"].predict(photo_bytes[k]).label) for k in PHOTOS]
    headers = {"Authorization": f"Bearer {TOKEN}"}
    dyn = asyncio.run(closed_loop("127.0.0.1", port, payloads, clients=24, requests=240, duration_s=240, headers=headers))
    fixed = asyncio.run(closed_loop("127.0.0.1", port, payloads, clients=8, requests=40, duration_s=240, headers=headers,
                                    path="/v1/predict?model=fixed"))
    slow = asyncio.run(open_loop("127.0.0.1", port, payloads, rate=5, requests=20, duration_s=30, headers=headers))
    print("\nbatching:", json.dumps({"dynamic": dyn.summary(), "fixed": fixed.summary(), "open_loop_5_per_s": slow.summary()}))
    for r, n in ((dyn, 240), (fixed, 40), (slow, 20)):
        assert r.sent == r.ok == n and r.exactly_once() and r.wrong_label == 0, r.summary()
    assert max(dyn.batch_sizes) > 1 and max(dyn.batch_sizes) <= 4
    assert set(fixed.batch_sizes) == {1}
    _, _, text = call(port, "GET", "/metrics", token=TOKEN)
    text = text.decode()
    count, total = (metric(text, f"edgecls_batch_size_{s}", model="lite0") for s in ("count", "sum"))
    assert total / count > 1.2  # images per batch run on the dynamic model, as the server counted them


@pytest.mark.slow
def test_tritonclient_talks_to_it(server, predictors, photos, photo_bytes):
    """tritonclient (pip, in its own venv) unchanged: health, metadata, config, infer with frames and with encoded
    images, classification output; top-1 as the Predictor's."""
    py = tritonclient_python()
    if py is None:
        from conftest import missing_data

        missing_data("no tritonclient venv (make install builds .venv-tritonclient; or set EDGECLS_TRITONCLIENT_PYTHON)")
    _, port = server
    frames = np.stack([np.asarray(Image.fromarray(photos[k]).resize((320, 240))) for k in PHOTOS])
    want_frames = [predictors["onnx_dyn"].predict(f, color="RGB").index for f in frames]
    want_bytes = [predictors["onnx_dyn"].predict(photo_bytes[k]).index for k in PHOTOS]
    code = f"""
import json, sys, numpy as np
import tritonclient.http as h
c = h.InferenceServerClient("127.0.0.1:{port}")
auth = {{"Authorization": "Bearer {TOKEN}"}}
out = {{"live": c.is_server_live(), "ready": c.is_server_ready(), "model_ready": c.is_model_ready("lite0", headers=auth)}}
out["versions"] = c.get_model_metadata("lite0", headers=auth)["versions"]
out["max_batch"] = c.get_model_config("lite0", headers=auth)["max_batch_size"]
frames = np.frombuffer(sys.stdin.buffer.read({frames.nbytes}), np.uint8).reshape({list(frames.shape)})
i = h.InferInput("image", list(frames.shape), "UINT8"); i.set_data_from_numpy(frames)
r = c.infer("lite0", [i], headers=auth, outputs=[h.InferRequestedOutput("scores"), h.InferRequestedOutput("label"),
            h.InferRequestedOutput("logits", class_count=1)], request_id="t1")
out["frames_top1"] = r.as_numpy("scores").argmax(1).tolist()
out["frames_label"] = [x.decode() for x in r.as_numpy("label")]
out["classification"] = [x.decode() for x in r.as_numpy("logits").reshape(-1)]
out["id"] = r.get_response()["id"]
files = [sys.stdin.buffer.read(int(n)) for n in sys.argv[1:]]
i = h.InferInput("image_bytes", [len(files)], "BYTES"); i.set_data_from_numpy(np.array(files, dtype=np.object_))
out["bytes_top1"] = c.infer("lite0", [i], headers=auth).as_numpy("scores").argmax(1).tolist()
try:
    c.get_model_metadata("lite0")
except Exception as e:
    out["no_token"] = str(e)
print(json.dumps(out))
"""
    stdin = frames.tobytes() + b"".join(photo_bytes[k] for k in PHOTOS)
    r = subprocess.run([str(py), "-c", code, *(str(len(photo_bytes[k])) for k in PHOTOS)], input=stdin,
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    out = json.loads(r.stdout)
    print("\ntritonclient:", out)
    assert out["live"] and out["ready"] and out["model_ready"] and out["versions"] == ["1"] and out["max_batch"] == 4
    assert out["frames_top1"] == want_frames and out["bytes_top1"] == want_bytes and out["id"] == "t1"
    labels = predictors["onnx_dyn"].labels
    assert out["frames_label"] == [labels[i] for i in want_frames]
    assert [c.split(":", 2)[1] for c in out["classification"]] == [str(i) for i in want_frames]
    assert "401" in out["no_token"]

"""The parts of `edgecls serve` that need no server: settings and their errors, model names, key files, bodies
(compression, multipart), protocol parsing, and the batcher's gathering rules on a real event loop."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest
from serve_client import REPO, multipart

from edgecls.errors import ConfigError, RequestError
from edgecls.serve import oip
from edgecls.serve.batcher import Batcher
from edgecls.serve.config import ServeConfig, parse_models, read_api_keys
from edgecls.serve.uploads import inflate, multipart_image


def test_settings_refuse_what_cannot_work(tmp_path):
    with pytest.raises(ConfigError, match="max_queue=4 is below max_batch=8"):
        ServeConfig(max_queue=4, max_batch=8)
    with pytest.raises(ConfigError, match="workers=0 must be a whole number >= 1"):
        ServeConfig(workers=0)
    with pytest.raises(ConfigError, match="read_timeout=0 must be a number > 0"):
        ServeConfig(read_timeout=0)
    with pytest.raises(ConfigError, match=r"max_wait_ms=5000 must be in \[0, 1000\]"):
        ServeConfig(max_wait_ms=5000)
    with pytest.raises(ConfigError, match="no such file"):
        ServeConfig(api_key_file=str(tmp_path / "none.txt"))
    assert ServeConfig().loopback and ServeConfig(host="::1").loopback and ServeConfig(host="localhost").loopback
    assert not ServeConfig(host="0.0.0.0").loopback


def test_model_names(tmp_path):
    a, b = tmp_path / "lite0.int8.onnx", tmp_path / "b.xml"
    a.write_bytes(b"x")
    b.write_bytes(b"x")
    assert parse_models([str(a), f"cam={b}"]) == {"lite0.int8": a, "cam": b}
    with pytest.raises(ConfigError, match="two models are named 'cam'"):
        parse_models([f"cam={a}", f"cam={b}"])
    with pytest.raises(ConfigError, match="must be 1-64 letters"):
        parse_models([f"my cam={a}"])
    with pytest.raises(ConfigError, match="no such file"):
        parse_models([str(tmp_path / "missing.onnx")])


def test_key_files(tmp_path):
    f = tmp_path / "keys"
    f.write_text("# ops team\n\n  k1-0123456789abcdef  \nk2-0123456789abcdef\n")
    assert read_api_keys(f) == ("k1-0123456789abcdef", "k2-0123456789abcdef")
    f.write_text("# nothing\n")
    with pytest.raises(ConfigError, match="holds no token"):
        read_api_keys(f)
    f.write_text("short\n")
    with pytest.raises(ConfigError, match="shorter than 16 characters"):
        read_api_keys(f)


def test_bodies_compression_and_forms():
    data = b"\xff\xd8" + bytes(range(256)) * 40
    assert inflate(gzip.compress(data), "gzip", 1 << 20) == data
    assert inflate(zlib.compress(data), "deflate", 1 << 20) == data
    for body, enc, status in ((gzip.compress(b"\0" * 5_000_000), "gzip", 413), (gzip.compress(data)[:-30], "gzip", 400),
                              (data, "br", 415), (b"not gzip", "gzip", 400)):
        with pytest.raises(RequestError) as e:
            inflate(body, enc, 1 << 20)
        assert e.value.status == status
    body, ctype = multipart("image", "x.jpg", data)
    assert multipart_image(body, ctype) == data
    body, ctype = multipart("upload", "x.jpg", data)  # the one file part, whatever its field name
    assert multipart_image(body, ctype) == data
    with pytest.raises(RequestError, match="without a boundary"):
        multipart_image(body, "multipart/form-data")
    note = b"--B\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n--B--\r\n"
    with pytest.raises(RequestError, match="no field 'image'.*note"):
        multipart_image(note, "multipart/form-data; boundary=B")


def _parse(req: dict, binary: bytes = b"", **kw) -> oip.InferRequest:
    head = json.dumps(req).encode()
    limits = {"channels": 3, "max_images": 8, "max_pixels": 10_000} | kw
    return oip.parse(head + binary, str(len(head)) if binary else None, **limits)


def test_protocol_requests_parse_or_say_why():
    frames = np.arange(2 * 4 * 5 * 3, dtype=np.uint8).reshape(2, 4, 5, 3)
    r = _parse({"inputs": [{"name": "image", "datatype": "UINT8", "shape": [2, 4, 5, 3],
                            "parameters": {"binary_data_size": frames.nbytes}}], "parameters": {"color": "BGR", "timeout": 2500}},
               frames.tobytes())
    assert len(r.images) == 2 and (r.images[1][0] == frames[1]).all() and r.images[1][1] == "BGR"
    assert r.timeout_s == 0.0025 and [w.name for w in r.outputs] == list(oip.OUTPUTS) and not r.outputs[0].binary
    r = _parse({"inputs": [{"name": "image", "datatype": "UINT8", "shape": [4, 5, 3], "data": frames[0].tolist()}]})
    assert (r.images[0][0] == frames[0]).all()
    files = [b"\xff\xd8jpeg", b"\x89PNGpng"]
    packed = b"".join(struct.pack("<I", len(f)) + f for f in files)
    r = _parse({"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [2],
                            "parameters": {"binary_data_size": len(packed)}}],
                "outputs": [{"name": "scores", "parameters": {"classification": 3, "binary_data": True}}]}, packed)
    assert r.images == files and r.outputs == [oip.Wanted("scores", True, 3)]
    r = _parse({"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [1],
                            "data": [{"b64": base64.b64encode(files[0]).decode()}]}]})
    assert r.images == files[:1]
    bad = [({"inputs": []}, b"", 400, "exactly one input"),
           ({"inputs": [{"name": "image", "datatype": "UINT8", "shape": [1, 200, 200, 3], "data": [0]}]}, b"", 413,
            "pixel limit"),
           ({"inputs": [{"name": "image", "datatype": "UINT8", "shape": [1, 2, 2, 4], "data": [0] * 16}]}, b"", 400,
            "[N, H, W, 3]"),
           ({"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [2],
                         "parameters": {"binary_data_size": 6}}]}, b"\x09\0\0\0ab", 400, "data ends first"),
           ({"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [1], "data": ["%%%"]}]}, b"", 400, "base64"),
           ({"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [1], "data": ["AAAA"]}],
             "outputs": [{"name": "label", "parameters": {"classification": 2}}]}, b"", 400, "classification applies"),
           ({"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [1], "data": ["AAAA"]}],
             "parameters": {"timeout": -5}}, b"", 400, "timeout"),
           ({"inputs": [{"name": "image", "datatype": "UINT8", "shape": [1, 2, 2, 3], "data": [0] * 12,
                         "parameters": {"color": "HSV"}}]}, b"", 400, "color='HSV'")]
    for req, binary, status, text in bad:
        with pytest.raises(RequestError) as e:
            _parse(req, binary)
        assert e.value.status == status and text in str(e.value), (req, str(e.value))


def test_batcher_gathers_runs_and_returns_each_row_to_its_caller():
    """A real event loop and a real worker thread running numpy: 10 images with max_batch 4 go as batches of at most
    4, each caller gets its own row; an image whose caller gave up is never run; a lone image waits max_wait, no more."""
    from concurrent.futures import ThreadPoolExecutor

    ran: list[int] = []

    def run(jobs):
        ran.append(len(jobs))
        time.sleep(0.02)
        batch = np.concatenate([j.x for j in jobs])
        return [row * 2 for row in batch]

    async def scenario():
        with ThreadPoolExecutor(1) as pool:
            b = Batcher(run, max_batch=4, max_wait_s=0.05, executor=pool, workers=1)
            b.start()
            futures = [b.submit(np.full((1, 3), i, np.float32), 1) for i in range(10)]
            futures[9].cancel()  # its caller's deadline passed while it was queued
            rows = await asyncio.gather(*futures[:9])
            t = time.monotonic()
            alone = await b.submit(np.full((1, 3), 7, np.float32), 1)
            waited = time.monotonic() - t
            await b.drain()
            return rows, alone, waited

    rows, alone, waited = asyncio.run(scenario())
    assert [float(r[0]) for r in rows] == [2.0 * i for i in range(9)] and float(alone[0]) == 14.0
    assert sum(ran) == 10 and max(ran) == 4 and ran[-1] == 1  # 9 queued images + the lone one; the cancelled one never ran
    assert 0.04 <= waited < 2.0


def test_serve_command_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "edgecls", "serve", "--help"], capture_output=True, text=True, cwd=REPO,
                       timeout=120)
    assert r.returncode == 0
    for flag in ("--host", "--port", "--max-batch", "--max-wait-ms", "--workers", "--api-key-file", "--max-queue",
                 "--read-timeout", "--backend", "--allow-unchecked"):
        assert flag in r.stdout, flag
    r = subprocess.run([sys.executable, "-m", "edgecls", "serve", str(tmp_path / "none.onnx")], capture_output=True,
                       text=True, cwd=REPO, timeout=120)
    assert r.returncode == 2 and "no such file" in r.stderr
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    r = subprocess.run([sys.executable, "-m", "edgecls", "serve", str(model), "--max-batch", "16", "--max-queue", "8"],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 2 and "max_queue=8 is below max_batch=16" in r.stderr

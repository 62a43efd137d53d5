"""examples/http_service.py attacked on loopback: the real server process, real sockets, a hard time bound.

Run with -s to see the figures (threads, responses, times) this test asserts bounds on.
"""

from __future__ import annotations

import io
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "http_service.py"
WORKERS, BACKLOG, TIMEOUT = 4, 4, 2.0
SLOWLORIS = 200


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no thread count in /proc")


def request(port: int, head: bytes, body: bytes = b"", wait_s: float = 30.0) -> tuple[int | None, dict | None]:
    """Send raw bytes, return (status, JSON body) or (None, None) if the server closed without answering."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as s:
        s.sendall(head + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    if not data:
        return None, None
    status = int(data.split(b" ", 2)[1])
    payload = data.split(b"\r\n\r\n", 1)[1]
    return status, json.loads(payload) if payload else None


def post(port: int, body: bytes, **headers) -> tuple[int | None, dict | None]:
    hdr = {"Content-Length": str(len(body)), **headers}
    head = b"POST /predict HTTP/1.1\r\nHost: x\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in hdr.items()) + b"\r\n"
    return request(port, head, body)


def jpeg(img: np.ndarray, exif_orientation: int | None = None) -> bytes:
    im = Image.fromarray(img)
    buf = io.BytesIO()
    if exif_orientation is None:
        im.save(buf, format="JPEG", quality=95)
    else:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        im.save(buf, format="JPEG", quality=95, exif=exif.tobytes())
    return buf.getvalue()


def bomb_png(w: int = 20000, h: int = 20000) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * (w * 3 + 1))) + chunk(b"IEND", b""))


@pytest.fixture
def server(artifacts):
    proc = subprocess.Popen([sys.executable, str(EXAMPLE), str(artifacts["onnx"]), "--port", "0", "--workers", str(WORKERS),
                             "--backlog", str(BACKLOG), "--timeout", str(TIMEOUT), "--max-pixels", "40000000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "serving" in line, proc.stderr.read() if proc.poll() is not None else line
        port = int(line.strip().rsplit(":", 1)[1].split("/")[0])
        yield proc, port
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_http_service_under_attack(server, photos):
    proc, port = server
    started = time.monotonic()
    figures: dict = {}
    ok, body = post(port, jpeg(photos["coffee"]))
    assert ok == 200 and body["label"] == "espresso"
    baseline = threads_of(proc.pid)
    bound = baseline + 2 * WORKERS + 2  # the pool's threads and one deadline timer per running request

    # --- malformed requests: answered at once, with the status that says why ------------------------------------
    head = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: %s\r\n\r\n"
    assert request(port, head % b"lots")[0] == 400  # non-numeric Content-Length
    assert request(port, head % b"-5")[0] == 400
    t = time.monotonic()
    code, body = request(port, head % str(10**12).encode())  # huge Content-Length: refused before reading
    assert code == 413 and "limit" in body["error"] and time.monotonic() - t < TIMEOUT
    assert request(port, b"POST /predict HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 411  # no Content-Length
    t = time.monotonic()
    code, body = post(port, bomb_png())  # a 20000x20000 PNG header: 1.2 GB if decoded
    figures["bomb"] = (code, round(time.monotonic() - t, 3))
    assert code == 413 and "downscale" in body["error"]
    eps = io.BytesIO()
    Image.fromarray(photos["coffee"]).save(eps, format="EPS")  # PostScript: decoding it means running Ghostscript
    code, body = post(port, eps.getvalue())
    assert code == 415 and "JPEG, PNG or WebP" in body["error"]
    # a phone photo stored sideways with its EXIF orientation (6: rotate 90 CW to view): classified upright
    upright = post(port, jpeg(photos["camera"]))[1]
    sideways = post(port, jpeg(np.ascontiguousarray(np.rot90(photos["camera"], 1)), exif_orientation=6))[1]
    figures["exif"] = (upright["label"], sideways["label"], round(sideways["score"], 3))
    assert upright["label"] == sideways["label"] == "tripod" and abs(upright["score"] - sideways["score"]) < 0.05

    # --- slowloris: 200 clients announce 100 bytes and send none --------------------------------------------------
    socks = []
    for _ in range(SLOWLORIS):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        socks.append(s)
    time.sleep(0.5)
    peak = threads_of(proc.pid)
    statuses: Counter = Counter()

    def drain(s):
        data = b""
        try:
            while chunk := s.recv(4096):
                data += chunk
        except OSError:
            pass
        statuses[int(data.split(b" ", 2)[1]) if data else "closed"] += 1
        s.close()

    t = time.monotonic()
    readers = [threading.Thread(target=drain, args=(s,)) for s in socks]
    for r in readers:
        r.start()
    for r in readers:
        r.join(30)
    figures["slowloris"] = {"threads_before": baseline, "threads_during": peak, "responses": dict(statuses),
                            "all_answered_s": round(time.monotonic() - t, 2)}
    assert not any(r.is_alive() for r in readers), "a slowloris connection was never closed"
    assert peak <= bound, f"{peak} threads with {SLOWLORIS} idle clients (baseline {baseline})"
    assert statuses[408] == WORKERS + BACKLOG and statuses[503] == SLOWLORIS - WORKERS - BACKLOG, statuses
    code, body = post(port, jpeg(photos["coffee"]))
    assert code == 200 and body["label"] == "espresso"  # served again once the idle clients timed out

    # --- many honest clients at once: served or told to retry, never a thread each --------------------------------
    results: list = []
    peak_busy = [0]
    data = jpeg(photos["coffee"])

    def client():
        results.append(post(port, data))

    clients = [threading.Thread(target=client) for _ in range(60)]
    t = time.monotonic()
    for c in clients:
        c.start()
    while any(c.is_alive() for c in clients) and time.monotonic() - t < 120:
        peak_busy[0] = max(peak_busy[0], threads_of(proc.pid))
        time.sleep(0.02)
    for c in clients:
        c.join(1)
    tally = Counter(code for code, _ in results)
    figures["concurrent_60"] = {"responses": dict(tally), "threads_peak": peak_busy[0], "seconds": round(time.monotonic() - t, 2)}
    assert len(results) == 60 and set(tally) <= {200, 503} and tally[200] >= WORKERS, tally
    assert all(b["label"] == "espresso" for code, b in results if code == 200)
    assert peak_busy[0] <= bound, peak_busy[0]
    figures["total_s"] = round(time.monotonic() - started, 1)
    print("\nHTTP attack figures:", json.dumps(figures))
    assert time.monotonic() - started < 240  # a hard bound: nothing in here may hang
    assert proc.poll() is None  # the server survived all of it
    os.kill(proc.pid, 0)

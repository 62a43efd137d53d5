"""Helpers for tests that run the real `edgecls serve` on loopback: start it in a subprocess on a free port, raw HTTP
over sockets (what a careless or hostile client sends, not what a client library would let through), test images."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no thread count in /proc")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc")


@contextlib.contextmanager
def running_server(models: list, *flags: str, log: Path, wait_s: float = 180.0):
    """`edgecls serve MODELS --port 0 FLAGS` in a subprocess; yields (process, port). Killed on exit whatever happens."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "edgecls", "serve", *map(str, models), "--port", "0", *flags],
                                stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        try:
            deadline = time.monotonic() + wait_s
            line = ""
            while time.monotonic() < deadline and "serving" not in line:
                line = proc.stdout.readline()
                if not line and proc.poll() is not None:
                    raise AssertionError(f"edgecls serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            assert "serving" in line, log.read_text()[-3000:]
            port = int(line.split("http://", 1)[1].split()[0].rsplit(":", 1)[1])
            yield proc, port
        finally:
            proc.kill()
            proc.wait(timeout=30)


def exchange(port: int, raw: bytes, wait_s: float = 60.0) -> tuple[int | None, dict, bytes]:
    """Send raw bytes on a new connection and read one answer: (status, headers, body); status None if the server
    closed without one. (No half-close: an HTTP server may take the client's EOF as the end of the connection.)"""
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as s:
        s.sendall(raw)
        data = b""
        with contextlib.suppress(ConnectionResetError):
            while b"\r\n\r\n" not in data and (chunk := s.recv(65536)):
                data += chunk
            if not data:
                return None, {}, b""
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
            n = int(headers.get("content-length", 0))
            while len(body) < n and (chunk := s.recv(65536)):
                body += chunk
    if not data:
        return None, {}, b""
    return int(lines[0].split(" ", 2)[1]), headers, body[:n]


def call(port: int, method: str, path: str, body: bytes = b"", *, token: str | None = None,
         headers: dict[str, str] | None = None, wait_s: float = 60.0) -> tuple[int | None, dict, bytes]:
    hdr = {"Host": "127.0.0.1", "Connection": "close", **({"Content-Length": str(len(body))} if body or method == "POST" else {}),
           **({"Authorization": f"Bearer {token}"} if token else {}), **(headers or {})}
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdr.items()) + "\r\n"
    return exchange(port, head.encode() + body, wait_s)


def call_json(port: int, method: str, path: str, body: bytes = b"", **kw) -> tuple[int | None, dict | list | None]:
    status, _, data = call(port, method, path, body, **kw)
    return status, json.loads(data) if data else None


def jpeg(img: np.ndarray, exif_orientation: int | None = None, quality: int = 92) -> bytes:
    im = Image.fromarray(img)
    buf = io.BytesIO()
    if exif_orientation is None:
        im.save(buf, format="JPEG", quality=quality)
    else:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        im.save(buf, format="JPEG", quality=quality, exif=exif.tobytes())
    return buf.getvalue()


def bomb_png(w: int = 20000, h: int = 20000) -> bytes:
    """A valid PNG header declaring w x h pixels (1.2 GB decoded at the default size) in a few KB."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * (w * 3 + 1))) + chunk(b"IEND", b""))


def multipart(field: str, filename: str, data: bytes, content_type: str = "image/jpeg") -> tuple[bytes, str]:
    boundary = "edgecls-test-boundary-7d1f"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
            f"Content-Type: {content_type}\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text page (0.0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            key, _, value = line.rpartition(" ")
            got = key[len(name):].strip("{}")
            if ",".join(sorted(got.split(","))) == want or (not labels and not got):
                return float(value)
    return 0.0


def tritonclient_python() -> Path | None:
    """The interpreter of the tritonclient venv `make install` builds (tritonclient pins ml-dtypes<=0.5.4, older than
    the onnx/jax stack's): $EDGECLS_TRITONCLIENT_PYTHON, else .venv-tritonclient/ in the repository."""
    p = Path(os.environ.get("EDGECLS_TRITONCLIENT_PYTHON") or REPO / ".venv-tritonclient" / "bin" / "python")
    return p if p.is_file() else None

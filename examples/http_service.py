"""A minimal HTTP classification service (standard library only). POST image bytes to /predict.

    python examples/http_service.py model.onnx --port 8080
    curl --data-binary @photo.jpg http://127.0.0.1:8080/predict

Hardened for a network you do not control, since this is the file people copy:
- a fixed pool of worker threads (--workers) and a bounded wait list (--backlog); a connection beyond both gets
  503 at once instead of a new thread (200 idle clients used to make 204 threads);
- socket timeouts on every read and an overall deadline per request (--timeout), so a client that announces 100 bytes
  and sends none, or trickles a header a byte at a time, loses its worker instead of holding it forever;
- a body size limit (--max-bytes, 413), Content-Length required and numeric (411 / 400);
- only the formats served are decoded (JPEG, PNG, WebP: an EPS file never reaches Ghostscript, 415), and the pixel
  count is checked from the header before decoding (--max-pixels: a 20000x20000 PNG bomb is a 413, not 1.2 GB);
- EXIF orientation applied (phone photos are stored sideways), alpha/grayscale/palette converted to RGB.
"""

import argparse
import io
import json
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer

from PIL import Image, ImageOps, UnidentifiedImageError

import edgecls

FORMATS = ("JPEG", "PNG", "WEBP")  # what the service accepts; PIL never tries another decoder


class Reject(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def decode(body: bytes, max_pixels: int) -> Image.Image:
    """Bytes -> upright RGB PIL image, or Reject with the HTTP status and what to send instead."""
    try:
        img = Image.open(io.BytesIO(body), formats=FORMATS)  # reads the header only
    except UnidentifiedImageError:
        raise Reject(415, "not a JPEG, PNG or WebP image; send one of those") from None
    except Image.DecompressionBombError as exc:
        raise Reject(413, f"{exc}; downscale the image") from None
    if img.width * img.height > max_pixels:
        raise Reject(413, f"the image is {img.width}x{img.height}, over the {max_pixels:,}-pixel limit; downscale it")
    try:
        img.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise Reject(400, f"the image could not be decoded ({exc}); it is truncated or corrupt") from None
    img = ImageOps.exif_transpose(img)  # camera photos store their rotation in EXIF
    return img if img.mode == "RGB" else img.convert("RGB")


def make_handler(pred: edgecls.Predictor, *, timeout: float, max_bytes: int, max_pixels: int):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one request per connection: a worker is never parked on a keep-alive

        def setup(self):
            super().setup()
            # the overall deadline: a client trickling one byte per (timeout - 1) s would otherwise keep its worker
            self._deadline = threading.Timer(4 * timeout, self._cut_off)
            self._deadline.daemon = True
            self._deadline.start()

        def finish(self):
            self._deadline.cancel()
            try:
                super().finish()
            except OSError:  # the client is gone
                pass

        def _cut_off(self):
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        def _reply(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            try:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client went away or stopped reading: nothing more to do for it
                pass

        def _body(self) -> bytes:
            length = self.headers.get("Content-Length")
            if length is None:
                raise Reject(411, "send the image with a Content-Length header (no chunked uploads)")
            if not length.strip().isdigit():
                raise Reject(400, f"Content-Length {length[:40]!r} is not a number of bytes")
            n = int(length)
            if n == 0:
                raise Reject(400, "the request has no body; POST the image bytes")
            if n > max_bytes:
                raise Reject(413, f"{n} bytes is over the {max_bytes}-byte limit; send a smaller image")
            try:
                body = self.rfile.read(n)
            except TimeoutError:
                raise Reject(408, f"the body did not arrive within {timeout:g} s") from None
            if len(body) != n:
                raise Reject(400, f"the connection closed after {len(body)} of {n} bytes")
            return body

        def do_POST(self):  # noqa: N802
            if self.path != "/predict":
                return self._reply(404, {"error": "POST image bytes to /predict"})
            try:
                img = decode(self._body(), max_pixels)
                r = pred.predict(img)  # one Predictor shared by the worker threads: thread-safe
            except Reject as exc:
                return self._reply(exc.code, {"error": str(exc)})
            except edgecls.InputError as exc:
                return self._reply(400, {"error": str(exc)})
            self._reply(200, {"label": r.label, "index": r.index, "score": r.score,
                              "topk": [{"label": t.label, "index": t.index, "score": t.score} for t in r.topk]})

        def log_message(self, *args):  # quiet
            pass

    Handler.timeout = timeout  # StreamRequestHandler applies it to the socket: every read and write times out
    return Handler


class PooledHTTPServer(HTTPServer):
    """HTTPServer on a fixed thread pool: `workers` requests run, `backlog` more wait, the rest get 503 at once."""

    request_queue_size = 128  # the kernel's accept queue; socketserver's default of 5 stalls bursts of clients

    def __init__(self, address, handler, *, workers: int = 4, backlog: int = 16):
        super().__init__(address, handler)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="http-worker")
        self.slots = threading.BoundedSemaphore(workers + backlog)

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):
            return self._busy(request)
        self.pool.submit(self._work, request, client_address)

    def _work(self, request, client_address):
        try:
            self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001 - one bad connection must not take the worker down
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            self.slots.release()

    def _busy(self, request):
        body = b'{"error": "the server is busy; retry shortly"}'
        try:
            request.settimeout(1.0)  # answered from the accept loop: never wait on a client that does not read
            request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\n"
                            b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        except OSError:
            pass
        finally:
            self.shutdown_request(request)

    def server_close(self):
        super().server_close()
        self.pool.shutdown(wait=False, cancel_futures=True)


def main() -> None:
    ap = argparse.ArgumentParser(description="Serve an edgecls model: POST image bytes (JPEG, PNG, WebP) to /predict")
    ap.add_argument("model", help="an exported model (.onnx, .xml, .tflite, .pt, .engine)")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    ap.add_argument("--port", type=int, default=8080, help="TCP port; 0 picks a free one (printed at start)")
    ap.add_argument("--workers", type=int, default=4, help="requests handled at once (threads; default 4)")
    ap.add_argument("--backlog", type=int, default=16, help="accepted requests that may wait for a worker (default 16)")
    ap.add_argument("--timeout", type=float, default=10.0,
                    help="seconds a client may stay silent while sending; a request gets 4x that in all (default 10)")
    ap.add_argument("--max-bytes", type=int, default=10 * 2**20, help="largest request body in bytes (default 10 MiB)")
    ap.add_argument("--max-pixels", type=int, default=40_000_000, help="largest image, width x height (default 40 MP)")
    a = ap.parse_args()
    pred = edgecls.Predictor(a.model)
    handler = make_handler(pred, timeout=a.timeout, max_bytes=a.max_bytes, max_pixels=a.max_pixels)
    server = PooledHTTPServer((a.host, a.port), handler, workers=a.workers, backlog=a.backlog)
    print(f"serving {a.model} on http://{a.host}:{server.server_port}/predict", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        pred.close()


if __name__ == "__main__":
    main()

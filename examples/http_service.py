"""A minimal HTTP classification service (standard library only). POST image bytes to /predict.

    python examples/http_service.py model.onnx --port 8080
    curl --data-binary @photo.jpg http://127.0.0.1:8080/predict
"""

import argparse
import io
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image, UnidentifiedImageError

import edgecls

MAX_BYTES = 20 * 1024 * 1024


def make_handler(pred: edgecls.Predictor):
    class Handler(BaseHTTPRequestHandler):
        def _reply(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):  # noqa: N802
            if self.path != "/predict":
                return self._reply(404, {"error": "POST image bytes to /predict"})
            n = int(self.headers.get("Content-Length") or 0)
            if not 0 < n <= MAX_BYTES:
                return self._reply(413 if n else 400, {"error": f"send 1..{MAX_BYTES} bytes of an image"})
            try:
                img = Image.open(io.BytesIO(self.rfile.read(n)))
                img.load()
                r = pred.predict(img)  # one Predictor shared by the server's threads: thread-safe
            except (UnidentifiedImageError, OSError) as exc:
                return self._reply(400, {"error": f"not a readable image: {exc}"})
            except edgecls.InputError as exc:
                return self._reply(400, {"error": str(exc)})
            self._reply(200, {"label": r.label, "index": r.index, "score": r.score,
                              "topk": [{"label": t.label, "index": t.index, "score": t.score} for t in r.topk]})

        def log_message(self, *args):  # quiet
            pass

    return Handler


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    a = ap.parse_args()
    server = ThreadingHTTPServer((a.host, a.port), make_handler(edgecls.Predictor(a.model)))
    print(f"serving {a.model} on http://{a.host}:{server.server_port}/predict", flush=True)
    server.serve_forever()

"""The ASGI app of `edgecls serve` (FastAPI): the routes, and how errors become answers.

    POST /v1/predict                        image bytes or a multipart form -> label, score, top-k, known, model,
                                            sha256, timings (JSON)
    GET  /v1/models                         what each model is: file name, sha256, version, labels, batch, self-check
    GET  /v2  /v2/health/live  /v2/health/ready
    GET  /v2/models/{name}[/versions/{v}][/ready|/config]
    POST /v2/models/{name}[/versions/{v}]/infer      the Open Inference Protocol (oip.py)
    POST /v2/repository/index  /v2/repository/models/{name}/load     hot swap (models.py)
    GET  /metrics                           Prometheus (metrics.py)
    GET  /docs  /openapi.json               the API described (the /docs page loads Swagger UI from a CDN)

Every error answer is JSON {"error": "..."} (what tritonclient reads), with the status of its cause (errors.RequestError).
"""

# no `from __future__ import annotations`: FastAPI reads the route functions' annotations (Request, Query) at definition
import asyncio
import contextlib
import json
import logging
import signal
import time
from typing import Any

from ..errors import ConfigError, EdgeclsError, ImageFormatError, ImageTooLargeError, InputError, RequestError
from ..version import package_version
from . import oip
from .config import ServeConfig
from .gate import Gate, KeyRing
from .models import Repository
from .uploads import inflate, multipart_image, read_body

log = logging.getLogger("edgecls.serve")
LARGE = 256 * 1024  # bodies above this are parsed on a decode thread, not on the event loop

_IMAGE_BODY = {"type": "string", "format": "binary"}
PREDICT_BODY = {"requestBody": {"required": True, "description": "a JPEG, PNG or WebP file: the raw bytes, or a "
                                "multipart form with the file in field `image`",
                                "content": {**{t: {"schema": _IMAGE_BODY} for t in
                                               ("image/jpeg", "image/png", "image/webp", "application/octet-stream")},
                                            "multipart/form-data": {"schema": {"type": "object", "properties":
                                                                               {"image": _IMAGE_BODY}}}}}}
PREDICT_EXAMPLE = {"id": "cam3-000172", "model": "lite0", "version": 1, "sha256": "9f2c...", "backend": "onnxruntime",
                   "label": "espresso", "index": 967, "score": 0.9595, "known": True,
                   "topk": [{"label": "espresso", "index": 967, "score": 0.9595}], "batch_size": 4,
                   "timings_ms": {"read": 0.1, "decode": 2.1, "queue": 1.3, "infer": 9.8, "postprocess": 0.1,
                                  "total": 13.6}}
INFER_BODY = {"requestBody": {"required": True, "description": "Open Inference Protocol request: JSON, or JSON then "
                              "binary tensors (header Inference-Header-Content-Length); input 'image' (UINT8 [N,H,W,C]) "
                              "or 'image_bytes' (BYTES [N])",
                              "content": {"application/json": {"schema": {"type": "object"}},
                                          "application/octet-stream": {"schema": _IMAGE_BODY}}}}


def status_of(exc: EdgeclsError) -> int:
    if isinstance(exc, RequestError):
        return exc.status
    if isinstance(exc, ImageFormatError):
        return 415
    if isinstance(exc, ImageTooLargeError):
        return 413
    if isinstance(exc, InputError):
        return 400
    return 500


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None):
    from starlette.responses import Response

    return Response(json.dumps(obj).encode(), status, headers, media_type="application/json")


def create_app(repo: Repository, cfg: ServeConfig, keys: KeyRing | None = None, *, handle_sighup: bool = False):
    """The app over a Repository whose models are loaded (repo.load_all()); its lifespan starts and stops them.
    handle_sighup: reload every model and the key file on SIGHUP (only where the event loop runs in the main thread)."""
    from fastapi import FastAPI, Query, Request
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException
    from starlette.responses import Response

    keys = keys or KeyRing(cfg.api_key_file)

    async def on_sighup() -> None:
        try:
            keys.reload()
        except ConfigError as exc:
            log.error("SIGHUP: the key file was not reloaded, the old tokens stay: %s", exc)
        for name, result in (await repo.reload_all()).items():
            log.warning("SIGHUP: %s: %s", name, result)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await repo.start()
        loop = asyncio.get_running_loop()
        if handle_sighup:
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(on_sighup()))
        try:
            yield
        finally:
            if handle_sighup:
                loop.remove_signal_handler(signal.SIGHUP)
            await repo.stop()

    app = FastAPI(title="edgecls serve", version=package_version(), lifespan=lifespan,
                  description="Image classification with dynamic batching: `POST /v1/predict` with an image, or the "
                              "Open Inference Protocol (KServe v2, tritonclient) under /v2.")
    app.add_middleware(Gate, metrics=repo.metrics, keys=keys)

    @app.exception_handler(EdgeclsError)
    async def on_error(request, exc: EdgeclsError):
        return json_response({"error": str(exc)}, status_of(exc), getattr(exc, "headers", None))

    @app.exception_handler(HTTPException)
    async def on_http(request, exc: HTTPException):
        return json_response({"error": str(exc.detail)}, exc.status_code, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request, exc: RequestValidationError):
        what = "; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in exc.errors())
        return json_response({"error": what}, 400)

    def timeout_s(asked_s: float | None) -> float:
        return min(cfg.timeout_ms / 1e3, asked_s) if asked_s else cfg.timeout_ms / 1e3

    def slot_for(name: str, version: str | None):
        slot = repo.get(name)
        if version is not None and version != str(slot.version):
            raise RequestError(404, f"version {version} of {name} is not loaded; version {slot.version} is serving")
        return slot

    async def off_loop(body: bytes, fn, *args):
        """fn(*args) on a decode thread when the body is large (a 10 MB JSON parse would stall every connection)."""
        if len(body) <= LARGE:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(repo.decode_pool, fn, *args)

    def stages(t0: float, t_read: float, decode_s: float, outs: list) -> dict[str, float]:
        return {"read": t_read - t0, "decode": decode_s, "queue": max(o.queue_s for o in outs),
                "infer": max(o.infer_s for o in outs), "postprocess": max(o.post_s for o in outs),
                "total": time.perf_counter() - t0}

    # --- edgecls's own API -------------------------------------------------------------------------------------------
    @app.post("/v1/predict", openapi_extra=PREDICT_BODY, tags=["predict"],
              responses={200: {"content": {"application/json": {"example": PREDICT_EXAMPLE}}}})
    async def predict(request: Request, model: str | None = Query(None, description="model name (default: the first)"),
                      topk: int | None = Query(None, ge=1, le=1000, description="classes in topk"),
                      timeout_ms: float | None = Query(None, gt=0, description="this request's deadline, at most "
                                                                               "the server's --timeout-ms")):
        """Classify one image. Header `X-Request-Id` comes back as `id` (and the header)."""
        t0 = time.perf_counter()
        name = model or repo.default
        repo.get(name).check_room(1)  # a full queue answers 503 before the upload is read
        body = await read_body(request, cfg.max_bytes, cfg.read_timeout)
        t_read = time.perf_counter()
        ctype = request.headers.get("content-type", "")
        image = await off_loop(body, multipart_image, body, ctype) if ctype.lower().startswith("multipart/") else body
        slot = repo.get(name)
        k = topk or cfg.topk
        (out,), decode_s = await slot.classify([image], k, timeout_s(timeout_ms and timeout_ms / 1e3))
        seconds = stages(t0, t_read, decode_s, [out])
        repo.metrics.observe_stages(name, seconds)
        p = out.prediction
        rid = request.headers.get("x-request-id")
        answer = ({"id": rid[:128]} if rid else {}) | {
            "model": name, "version": slot.version, "sha256": slot.sha256, "backend": slot.predictor.backend_name,
            "label": p.label, "index": p.index, "score": p.score, "known": p.known,
            "topk": [{"label": t.label, "index": t.index, "score": t.score} for t in p.topk[:k]]}
        if p.multilabel:
            answer["labels"] = [{"label": t.label, "index": t.index, "score": t.score} for t in p.labels]
        if p.ood_score is not None:
            answer["ood_score"] = p.ood_score
        answer |= {"batch_size": out.batch_size, "timings_ms": {s: round(v * 1e3, 3) for s, v in seconds.items()}}
        return json_response(answer, headers={"X-Request-Id": rid[:128]} if rid else None)

    @app.get("/v1/models", tags=["predict"])
    async def models():
        """The models served: file name (never its path), sha256, version, labels, input, batch, self-check."""
        return json_response({"models": [s.describe() for s in repo.slots.values()]})

    # --- Open Inference Protocol -------------------------------------------------------------------------------------
    @app.get("/v2/health/live", tags=["health"])
    async def live():
        return Response(status_code=200)

    @app.get("/v2/health/ready", tags=["health"])
    async def ready():
        return Response(status_code=200 if repo.ready else 503)

    @app.get("/v2", tags=["open inference protocol"])
    async def server_metadata():
        return json_response(oip.server_metadata())

    @app.get("/v2/models/{name}", tags=["open inference protocol"])
    @app.get("/v2/models/{name}/versions/{version}", tags=["open inference protocol"])
    async def model_metadata(name: str, version: str | None = None):
        return json_response(oip.metadata(slot_for(name, version)))

    @app.get("/v2/models/{name}/ready", tags=["health"])
    @app.get("/v2/models/{name}/versions/{version}/ready", tags=["health"])
    async def model_ready(name: str, version: str | None = None):
        slot_for(name, version)
        return Response(status_code=200 if repo.ready else 503)

    @app.get("/v2/models/{name}/config", tags=["open inference protocol"])
    @app.get("/v2/models/{name}/versions/{version}/config", tags=["open inference protocol"])
    async def model_config(name: str, version: str | None = None):
        return json_response(oip.model_config(slot_for(name, version)))

    @app.post("/v2/models/{name}/infer", openapi_extra=INFER_BODY, tags=["open inference protocol"])
    @app.post("/v2/models/{name}/versions/{version}/infer", openapi_extra=INFER_BODY, tags=["open inference protocol"])
    async def infer(request: Request, name: str, version: str | None = None):
        t0 = time.perf_counter()
        slot_for(name, version).check_room(1)
        body = await read_body(request, cfg.max_bytes, cfg.read_timeout)
        t_read = time.perf_counter()
        slot = slot_for(name, version)
        h = request.headers

        def parse():
            raw = inflate(body, h.get("content-encoding"), cfg.max_bytes)
            return oip.parse(raw, h.get("inference-header-content-length"), channels=slot.spec.input.channels,
                             max_images=cfg.max_images, max_pixels=cfg.max_pixels)

        req = await off_loop(body, parse)
        outs, decode_s = await slot.classify(req.images, 1, timeout_s(req.timeout_s))
        seconds = stages(t0, t_read, decode_s, outs)
        repo.metrics.observe_stages(name, seconds)
        data, headers = oip.answer(slot, req, outs, {s: v * 1e3 for s, v in seconds.items()})
        return Response(data, headers=headers)

    @app.post("/v2/repository/index", tags=["model repository"])
    async def repository_index():
        return json_response([{"name": s.name, "version": str(s.version), "state": "READY"}
                              for s in repo.slots.values()])

    @app.post("/v2/repository/models/{name}/load", tags=["model repository"])
    async def load(request: Request, name: str):
        """Hot swap: load the model's file again (the MODEL it was started with: replace that file first), self-check
        it, switch; requests in flight finish on the old one. Refused (400) if it fails: the old one keeps serving."""
        repo.get(name)
        body = await read_body(request, 64 * 1024, cfg.read_timeout, allow_empty=True)
        if body.strip():
            try:
                params = (json.loads(body) or {}).get("parameters") or {}
            except (ValueError, AttributeError):
                raise RequestError(400, "the load request's body must be JSON (or empty)") from None
            if any(k == "config" or str(k).startswith("file:") for k in params):
                raise RequestError(400, "edgecls serve reloads the file it was started with (its MODEL argument); "
                                        "it takes no model files or configs over the network: replace the file, then load")
        slot = await repo.reload(name)
        return json_response({"name": slot.name, "version": str(slot.version), "sha256": slot.sha256})

    @app.post("/v2/repository/models/{name}/unload", tags=["model repository"])
    async def unload(name: str):
        repo.get(name)
        raise RequestError(400, "edgecls serve keeps serving the models it was started with; `load` swaps in a new "
                                "file, stopping the server unloads")

    @app.get("/metrics", tags=["metrics"])
    async def metrics():
        data, ctype = repo.metrics.render()
        return Response(data, headers={"Content-Type": ctype})

    return app


__all__ = ["create_app", "status_of"]

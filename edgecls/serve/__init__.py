"""`edgecls serve`: an inference server for many cameras on one box (pip install 'edgecls[serve]').

FastAPI on uvicorn: one event loop reads every connection (a slow or stalled client costs a socket, never a thread),
decode threads turn uploads into model inputs, and a batcher per model gathers the images of concurrent requests into
one batch for an inference thread. `POST /v1/predict` answers JSON; the Open Inference Protocol (/v2, what tritonclient
and KServe tooling speak) takes frames or encoded images; /metrics is Prometheus; a reload swaps a model atomically
after it passes its self-check.

    config.py   ServeConfig (the command's flags), model names, API key files
    server.py   serve(): load, check, listen (uvicorn, with a header deadline)
    app.py      the routes and how errors become answers
    gate.py     bearer-token auth and the count of answers, before routing
    uploads.py  bodies under size and time limits, compression, multipart forms in memory
    models.py   ModelSlot / Repository: admission, decode, batches on threads, hot swap
    batcher.py  dynamic batching on the event loop
    oip.py      the Open Inference Protocol's requests and answers
    metrics.py  what /metrics exposes
    loadgen.py  a load generator over raw sockets (the benchmark and the tests)

Nothing here is imported by edgecls.runtime: a device without the serve extra never loads it.
"""

from .config import ServeConfig, parse_models


def serve(models, config: ServeConfig | None = None, **settings) -> None:
    """Serve `models` ({name: path}, or paths named by file stem) until SIGINT/SIGTERM; settings as ServeConfig's."""
    from .server import serve as _serve

    cfg = config or ServeConfig(**settings)
    _serve(models if isinstance(models, dict) else parse_models([str(m) for m in models]), cfg)


__all__ = ["ServeConfig", "parse_models", "serve"]

"""`edgecls serve MODEL...`: an inference server (dynamic batching, Open Inference Protocol, metrics, hot swap)."""

from __future__ import annotations

NAME = "serve"
HELP = "serve models over HTTP: dynamic batching, /v1/predict, the Open Inference Protocol (tritonclient), /metrics"
DESCRIPTION = ("Serve one or more models on this box: POST /v1/predict with an image, or the Open Inference Protocol "
               "(KServe v2: tritonclient works unchanged) under /v2. Concurrent requests are batched per model; a full "
               "queue answers 503; slow clients cost the event loop a socket, never an inference thread. "
               "POST /v2/repository/models/NAME/load (or SIGHUP) reloads a model's file, self-checks it and switches "
               "without dropping a request. Needs pip install 'edgecls[serve]'.")


def add_arguments(p) -> None:
    from ..serve.config import ServeConfig
    from .flags import add_backend_flag, add_config_flags

    p.add_argument("models", nargs="+", metavar="MODEL",
                   help="artifacts to serve (.onnx/.xml/.tflite/.pt/.pte/.engine); NAME=PATH names one (default: its "
                        "file name without the suffix), the name used in /v2/models/NAME and ?model=NAME")
    add_config_flags(p, ServeConfig, skip=("backend",))
    add_backend_flag(p)


def run(a) -> int:
    from ..serve.config import ServeConfig, parse_models
    from ..serve.server import serve
    from .flags import given

    cfg = ServeConfig(**given(a, ServeConfig))
    serve(parse_models(a.models), cfg)
    return 0

"""`edgecls check MODEL...`: run each artifact's own reference inputs on this machine's runtime; exit 0 pass, 1 fail
or no reference data."""

from __future__ import annotations

import json

from .flags import add_backend_flag

NAME = "check"
HELP = ("self-check: run the reference inputs an artifact carries on this device's runtime and compare with what was "
        "verified at export (exit 0 pass, 1 fail)")


def add_arguments(p) -> None:
    p.add_argument("models", nargs="+", help="artifacts exported by edgecls (.onnx/.xml/.tflite/.pt/.engine/.trt/.plan)")
    add_backend_flag(p)
    p.add_argument("--device", help="cpu or cuda (default: the backend's own: cuda for TensorRT, cpu otherwise)")
    p.add_argument("--threads", type=int, help="runtime threads (default: the runtime's own)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")


def run(a) -> int:
    from .. import Predictor
    from .render import console, text

    results = []
    for model in a.models:
        pred = Predictor(model, backend=a.backend, device=a.device, threads=a.threads)
        r = pred.run_self_check()
        results.append({"model": str(model), "backend": pred.backend_name, "device": pred.device, **r.as_dict()})
        if not a.json:
            color = {"pass": "green", "fail": "red"}.get(r.status, "yellow")
            console().print(f"[{color}]{r.status.upper()}[/] {text(model)} on {pred.backend_name}/{pred.device}: {text(r)}",
                            highlight=False)
    if a.json:
        print(json.dumps(results, indent=2))
    return 0 if all(r["status"] == "pass" for r in results) else 1

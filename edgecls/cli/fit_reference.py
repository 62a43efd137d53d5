"""`edgecls fit-reference MODEL... --data DIR`: fit each artifact's open-set threshold and drift reference."""

from __future__ import annotations

from .flags import add_backend_flag

NAME = "fit-reference"
HELP = ("fit an artifact's open-set threshold and drift reference on validation images of its known classes and store "
        "them in its spec (per artifact: INT8 gets its own)")


def add_arguments(p) -> None:
    from ..runtime.scores import SCORES

    p.add_argument("models", nargs="+", help="exported artifacts (.onnx/.xml/.tflite/.pt/.pte)")
    p.add_argument("--data", required=True, help="folder of validation images of the known classes, never trained on "
                   "(class subfolders or flat)")
    p.add_argument("--score", default="msp", choices=SCORES,
                   help="open-set score: msp (max softmax at the spec's temperature, default), max_logit, energy")
    p.add_argument("--coverage", type=float, default=0.95,
                   help="share of known validation images the threshold keeps, strictly between 0 and 1 (default 0.95)")
    add_backend_flag(p)


def run(a) -> int:
    from ..openset import fit_reference
    from .render import plain

    for model in a.models:
        spec = fit_reference(model, a.data, score=a.score, coverage=a.coverage, backend=a.backend)
        o, r = spec.open_set, spec.reference
        print(plain(f"{model}: {o.score} threshold {o.threshold:.6g} keeps {o.coverage:.0%} of {o.n} validation images; "
                    f"drift reference: unknown rate {r.unknown_rate:.1%}, {len(r.histograms)} statistics"))
    return 0

"""`edgecls predict MODEL IMAGE...`: classify image files, as a table or JSON."""

from __future__ import annotations

import json

from .flags import add_backend_flag

NAME = "predict"
HELP = "classify image files"


def add_arguments(p) -> None:
    p.add_argument("model")
    p.add_argument("images", nargs="+")
    add_backend_flag(p)
    p.add_argument("--device", help="cpu or cuda (default: the backend's own: cuda for .engine, cpu otherwise)")
    p.add_argument("--threads", type=int)
    p.add_argument("-k", "--topk", type=int, default=5)
    p.add_argument("--json", action="store_true")
    p.add_argument("--reject", action="store_true", help="answer 'unknown' below the open-set threshold stored in the "
                   "spec (edgecls fit-reference); the closest class stays in top-k")


def _top(items) -> list[dict]:
    return [{"index": t.index, "label": t.label, "score": t.score} for t in items]


def run(a) -> int:
    from .. import Predictor
    from .render import console, text

    pred = Predictor(a.model, backend=a.backend, threads=a.threads, device=a.device, reject=a.reject)
    rows = []
    for img in a.images:
        p = pred.predict(img, topk=a.topk)
        rows.append({"image": img, "index": p.index, "label": p.label, "score": p.score, "known": p.known,
                     "topk": _top(p.topk)} | ({"labels": _top(p.labels)} if p.multilabel else {}))
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.table import Table

    t = Table(title=text(f"{pred.path.name} on {pred.backend_name}"))
    if pred.spec.multilabel:  # the answer is the set of labels at or above their thresholds
        for col in ("image", "labels (score)", f"top-{a.topk}"):
            t.add_column(col)
        for r in rows:
            t.add_row(text(r["image"]), text(", ".join(f"{x['label']} ({x['score']:.3f})" for x in r["labels"]) or "none"),
                      text(", ".join(x["label"] for x in r["topk"])))
        console().print(t)
        return 0
    for col in ("image", "top-1", "score", f"top-{a.topk}"):
        t.add_column(col)
    for r in rows:
        t.add_row(text(r["image"]), text(f"{r['label']} (#{r['index']})"), f"{r['score']:.3f}",
                  text(", ".join(x["label"] for x in r["topk"])))
    console().print(t)
    return 0

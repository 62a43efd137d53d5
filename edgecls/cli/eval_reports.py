"""`edgecls eval`'s two other reports: a multi-label model's mAP/F1, and open-set separation (--ood)."""

from __future__ import annotations

import json
from pathlib import Path

from ..quiet import terminal
from .render import console, text


def is_multilabel(model: str, backend: str | None) -> bool:
    from ..runtime.artifacts import read_sidecar

    spec = read_sidecar(model) if Path(model).suffix != ".pt" else None
    if spec is None:
        from ..runtime.predictor import Predictor

        with Predictor(model, backend=backend) as pred:
            spec = pred.spec
    return spec.multilabel


def evaluate_multilabel(a, model: str) -> None:
    from rich.table import Table

    from ..evaluation.multilabel import evaluate

    r = evaluate(model, a.data, backend=a.backend, n_boot=a.n_boot)
    if a.json:
        print(json.dumps(r, indent=2), file=terminal())
        return
    con = console()

    def fig(m):
        return f"{m['value']:.4f} [{m['interval'][0]:.4f}, {m['interval'][1]:.4f}]"

    con.print(text(f"{r['model']} on {r['backend']} ({r['precision'] or 'fp32'}): {r['n']} images, "
                   f"{r['labels_per_image']:.2f} labels each; mAP {fig(r['map'])}, micro F1 {fig(r['micro_f1'])}, "
                   f"macro F1 {fig(r['macro_f1'])} (bootstrap 95% intervals; F1 at the spec's thresholds)"), highlight=False)
    t = Table(title="per label")
    for col in ("label", "AP", "F1", "threshold", "support", "predicted"):
        t.add_column(col)
    for name, m in r["per_label"].items():
        t.add_row(text(name), "" if m["ap"] is None else f"{m['ap']:.4f}", f"{m['f1']:.4f}", f"{m['threshold']:.3f}",
                  str(m["support"]), str(m["predicted"]))
    con.print(t)


def evaluate_ood(a, model: str) -> None:
    from rich.table import Table

    from ..openset import evaluate_ood as evaluate
    from ..runtime.scores import SCORES

    r = evaluate(model, a.data, a.ood, scores=a.score or SCORES, backend=a.backend, n_boot=a.n_boot)
    if a.json:
        print(json.dumps(r, indent=2), file=terminal())
        return
    k = r["known"]
    con = console()
    head = f"{r['model']} on {r['backend']}: {k['n']} known images"
    if "top1" in k:
        t1 = k["top1"]
        head += f", top-1 {t1['value']:.1%} [{t1['lo']:.1%}, {t1['hi']:.1%}]"
    if "threshold" in r:
        th, rj = r["threshold"], k["rejected"]
        head += (f"; {th['score']} threshold {th['value']:.4g} (fitted on {th['fitted_on']}) rejects "
                 f"{rj['value']:.1%} [{rj['lo']:.1%}, {rj['hi']:.1%}] of them")
    con.print(text(head), highlight=False)
    t = Table(title="known vs unknown: AUROC (bootstrap 95% interval), FPR at 95% TPR, rejection rate (Wilson 95%)")
    for col in ("unknown set", "n", "score", "AUROC", "FPR@95%TPR", "rejected"):
        t.add_column(col)
    for folder, row in r["sets"].items():
        rej = row.get("rejected")
        for i, (name, m) in enumerate(row["scores"].items()):
            lo, hi = m["auroc_interval"]
            t.add_row(text(folder) if i == 0 else "", str(row["n"]) if i == 0 else "", name,
                      f"{m['auroc']:.3f} [{lo:.3f}, {hi:.3f}]", f"{m['fpr_at_95tpr']:.3f}",
                      f"{rej['value']:.1%} [{rej['lo']:.1%}, {rej['hi']:.1%}]" if rej and i == 0 else "")
    con.print(t)

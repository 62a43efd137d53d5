"""What the deploy report's sections read from a run's context (the dict DeployPipeline._report_context builds):
the task, the float model's figure, an artifact's figure, the INT8 attempts of each target."""

from __future__ import annotations

from typing import Iterator

from ... import stats
from ..format import acc_text


def is_multilabel(ctx: dict) -> bool:
    return ctx.get("task") == "multilabel"


def figure_name(ctx: dict) -> str:
    """What the artifacts are judged by: top-1, or mAP for a multi-label model."""
    return "mAP" if is_multilabel(ctx) else "top-1"


def float_figure(ctx: dict) -> tuple[float, float, float, str]:
    """The PyTorch float model's validation figure: (value, lo, hi, text)."""
    m = ctx["model"].result
    if is_multilabel(ctx):
        v, (lo, hi) = m["summary"]["val_map"], m["summary"]["val_map_interval"]
        return v, lo, hi, f"validation mAP {v:.4f} [{lo:.4f}, {hi:.4f}] on {m['val']['n']} images (bootstrap 95% interval)"
    n = m["val"]["n"]
    acc = stats.wilson(int(round(m["summary"]["val_top1"] * n)), n)
    return acc.value, acc.lo, acc.hi, f"validation top-1 {acc.pct()} on {n} images (95% Wilson interval)"


def score(r: dict) -> float | None:
    """An artifact's (or attempt's) figure: mAP for a multi-label one, top-1 otherwise."""
    return r.get("val_map", r.get("val_top1"))


def acc_cell(r: dict) -> str:
    """An artifact's figure in a table cell: mAP with its bootstrap interval and n, or top-1 with Wilson and k/n."""
    if "val_map" in r:
        return f"{r['val_map']:.4f} [{r['val_interval'][0]:.4f}, {r['val_interval'][1]:.4f}] (n={r['n']})"
    return acc_text(r["val_top1"], *r["val_interval"], r["k"], r["n"])


def built(ctx: dict) -> Iterator[tuple[str, str, dict]]:
    """(target, precision, result) of every artifact that was built, in the run's order."""
    for t, per in ctx["artifacts"].items():
        for prec, st in per.items():
            if "artifact" in st.result:
                yield t, prec, st.result


def int8_pairs(ctx: dict) -> Iterator[tuple[str, dict, dict]]:
    """(target, FP32 result, INT8 result) of every target that tried an INT8 build beside its FP32 one."""
    for t, per in ctx["artifacts"].items():
        f, q = per.get("fp32"), per.get("int8")
        if f and q:
            yield t, f.result, q.result


def chosen_attempt(int8: dict) -> dict | None:
    """The INT8 attempt the ladder kept (within budget, or the most accurate when none was)."""
    return next((a for a in int8.get("attempts", []) if a.get("final")), None)


__all__ = ["acc_cell", "built", "chosen_attempt", "figure_name", "float_figure", "int8_pairs", "is_multilabel", "score"]

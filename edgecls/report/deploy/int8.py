"""The deploy report's INT8 sections: each INT8 build against the FP32 artifact of its runtime on the same
validation images, by McNemar's test and Newcombe's interval for a single-label model (int8_section), by the paired
bootstrap of mAP for a multi-label one (int8_map_section); then every attempt of the PTQ/float-fallback ladder."""

from __future__ import annotations

import numpy as np

from ... import stats
from ..document import Section
from ..format import pct, points
from .context import chosen_attempt, int8_pairs, is_multilabel

_ACCEPTED = "An INT8 build is accepted when its drop is within the budget."


def _signed(v: float | None) -> str:
    return "-" if v is None else f"{v:+.2f}"


def _attempt(t: str, a: dict, figure: str, *tests: str) -> list[str]:
    speed = f"{a['speedup']:.2f}x" if a.get("speedup") else "-"
    return [t, a["method"], ", ".join(a["keep_float"]) or "-", figure, _signed(a.get("drop_pts")), *tests, speed,
            "chosen" if a.get("final") else "", a.get("error", "")[:160]]


def _speedup(ctx: dict, target: str) -> str:
    """INT8's speed over its runtime's FP32 here (the pick's latency figures), beside the drop: INT8 that is not
    faster is said so, not left for the reader to work out."""
    c = next((c for c in ctx.get("picks", {}).get("candidates", []) if c["target"] == target and c["precision"] == "int8"), None)
    if c is None or c.get("speedup") is None:
        return "not timed"
    return f"{c['speedup']:.2f}x" + ("" if c["speedup"] > 1.0 else " (NOT faster)")


def _close(s: Section, headers: list[str], rows: list, attempt_headers: list[str], attempts: list, data: dict,
           notes: list[str]) -> Section:
    """The part both INT8 sections end with: the paired table, every attempt, each target's budget decision."""
    if rows:
        s.table(headers, rows)
    else:
        s.p("No INT8 artifact was built.")
    if attempts:
        s.p("Every attempt (PTQ first, then the runtime's other all-INT8 forms for the target CPU, then layers kept in "
            "float until the budget holds), with its speed against the FP32 artifact here (model-only p50, batch 1; "
            "a quick figure: the latency section has the benchmark):")
        s.table(["runtime", "attempt", "kept in float", *attempt_headers, "INT8/FP32 speed", "", "error"], attempts)
    if notes:
        s.items(notes)
    s.data = data
    return s


def int8_section(ctx: dict) -> Section | None:
    if is_multilabel(ctx):  # top-1 and McNemar do not apply: int8_map_section
        return None
    cfg = ctx["config"]
    s = Section("int8", f"INT8 vs FP32: paired test per runtime (budget {points(cfg['max_drop'])})")
    s.p("Each INT8 build is compared with the FP32 artifact of the same runtime on the same validation images. Only "
        "images the two classify differently carry information: lost = right in FP32, wrong in INT8; gained = the "
        "reverse. McNemar's exact test asks whether lost and gained differ by more than chance; the interval is "
        "Newcombe's for a paired difference. " + _ACCEPTED)
    rows, attempts, data = [], [], {}
    labels = np.asarray(ctx["labels"])
    for t, f, q in int8_pairs(ctx):
        if "artifact" in q:
            ref_ok, ok = np.asarray(f["val_pred"]) == labels, np.asarray(q["val_pred"]) == labels
            d = stats.budget(ref_ok, ok, cfg["max_drop"])
            cmp = d.comparison
            rows.append([t, cmp.n, cmp.ref_only, cmp.other_only, f"{d.drop_pts:+.2f}",
                         f"[{-cmp.hi * 100:+.2f}, {-cmp.lo * 100:+.2f}]", f"{cmp.p_value:.3g}",
                         "yes" if d.within else "NO", "yes" if d.resolved else "no", _speedup(ctx, t)])
            data[t] = d.as_dict() | {"speedup": _speedup(ctx, t)}
        for a in q.get("attempts", []):
            attempts.append(_attempt(t, a, pct(a.get("val_top1"), 2) if a.get("val_top1") is not None else "failed",
                                     "-" if a.get("mcnemar_p") is None else f"{a['mcnemar_p']:.3g}"))
    return _close(s, ["runtime", "n", "lost", "gained", "drop, pts", "95% interval of the drop", "McNemar p", "within budget",
                      "budget resolved", "INT8/FP32 speed here"], rows, ["val top-1", "drop", "p"], attempts, data,
                  [f"{t}: {d['note']}" for t, d in data.items()])


def int8_map_section(ctx: dict) -> Section | None:
    """A multi-label model's INT8 builds judged in mAP points. Its id is int8's: one place in report.json for the
    INT8 decision, whatever the task."""
    if not is_multilabel(ctx):
        return None
    cfg = ctx["config"]
    s = Section("int8", f"INT8 vs FP32 in mAP: paired bootstrap per runtime (budget {points(cfg['max_drop'])} of mAP x 100)")
    s.p("Each INT8 build is compared with the FP32 artifact of the same runtime on the same validation images: the "
        "images are resampled 1,000 times and both models' mAP computed on each resample, so the interval of the drop "
        "accounts for the two being measured on the same images. " + _ACCEPTED)
    rows, attempts, data = [], [], {}
    for t, f, q in int8_pairs(ctx):
        chosen = chosen_attempt(q)
        if "artifact" in q and chosen is not None:
            lo, hi = chosen["drop_interval"]
            rows.append([t, chosen["n"], f"{f['val_map']:.4f}", f"{q['val_map']:.4f}",
                         f"{chosen['drop_pts']:+.2f}", f"[{lo:+.2f}, {hi:+.2f}]", "yes" if chosen["significant"] else "no",
                         "yes" if chosen["within_budget"] else "NO", "yes" if chosen["resolved"] else "no", _speedup(ctx, t)])
            data[t] = {k: chosen.get(k) for k in ("n", "drop_pts", "drop_interval", "within_budget", "resolved",
                                                   "significant", "budget")} | {"speedup": _speedup(ctx, t)}
        for a in q.get("attempts", []):
            attempts.append(_attempt(t, a, f"{a['val_map']:.4f}" if a.get("val_map") is not None else "failed"))
    return _close(s, ["runtime", "n", "FP32 mAP", "INT8 mAP", "drop, mAP pts", "95% interval of the drop", "significant",
                      "within budget", "budget resolved", "INT8/FP32 speed here"], rows, ["val mAP", "drop"], attempts, data,
                  [f"{t}: {d['budget']}" for t, d in data.items() if d.get("budget")])


__all__ = ["int8_map_section", "int8_section"]

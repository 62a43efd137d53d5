"""The deploy report's verdict sections: the summary with its warnings, the pick rule and what it chose, and the
lineage of the picked artifact."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ... import stats
from ..document import Section
from ..format import points, short
from .context import acc_cell, chosen_attempt, figure_name, float_figure, is_multilabel


def summary_section(ctx: dict) -> Section:
    s = Section("summary", "Summary")
    value, lo, hi, text = float_figure(ctx)
    pk = ctx["picks"].get("overall")
    cfg = ctx["config"]
    if pk:
        (s.p if pk.get("meets_budgets") else s.warn)(f"Pick: {pk['why']}")
    else:
        s.warn("No artifact could be built for any target here; see the sections below.")
    arch = ctx["model"].result.get("arch") or cfg["arch"]
    s.p(f"Float model ({arch}{', chosen by arch auto' if cfg['arch'] == 'auto' else ''}): {text}.")
    rows = []
    for t, per in ctx["artifacts"].items():
        f, q = per.get("fp32"), per.get("int8")
        if not per:  # skipped: its own row below
            continue
        rows.append([t, acc_cell(f.result) if f else "-", acc_cell(q.result) if q and "artifact" in q.result else "-",
                     int8_verdict(q.result) if q else "-"])
    for t, why in ctx["skipped_targets"].items():
        rows.append([t, "skipped", "skipped", why])
    f = figure_name(ctx)
    s.table(["target", f"FP32 val {f}", f"INT8 val {f}", f"INT8 within {cfg['max_drop']:g} pts?"], rows)
    found = summary_warnings(ctx)
    if found:
        s.items(found)
    s.data = {"pick": pk, f"float_val_{'map' if is_multilabel(ctx) else 'top1'}": {"value": value, "lo": lo, "hi": hi},
              "warnings": found}
    return s


def int8_verdict(r: dict) -> str:
    """An INT8 stage's result in one cell: built or not, within the budget or not, and the paired drop."""
    if "artifact" not in r:
        return "not built: " + r.get("error", "?")
    chosen = chosen_attempt(r) or {}
    verdict = "yes" if r["within_budget"] else "NO"
    if "drop_interval" in chosen:  # multi-label: mAP points with the paired bootstrap interval
        lo, hi = chosen["drop_interval"]
        return f"{verdict}: drop {chosen.get('drop_pts', 0):+.2f} mAP pts [{lo:+.2f}, {hi:+.2f}]"
    return f"{verdict}: drop {chosen.get('drop_pts', 0):+.2f} pts, McNemar p={chosen.get('mcnemar_p', 1):.2g}"


def summary_warnings(ctx: dict) -> list[str]:
    """What a reader must not miss: skipped or suspect data, budgets the validation set cannot resolve or that no
    artifact meets, skipped targets."""
    out = []
    d = ctx["data"].result["summary"]
    if d["skipped"]:
        out.append(f"{len(d['skipped'])} file(s) skipped (listed under Data).")
    if d["label_conflicts"]:
        out.append(f"{len(d['label_conflicts'])} identical file(s) carry different classes (label conflicts, listed under Data).")
    if d["suspect"]:
        out.append(f"{len(d['suspect'])} picture(s) look like graphics rather than photos (kept; listed under Data).")
    for t, per in ctx["artifacts"].items():
        q = per.get("int8")
        if q is None:
            continue
        chosen = chosen_attempt(q.result)
        if chosen and not chosen.get("resolved", True):
            n = chosen.get("n")
            lo_hi = ""
            if q.result.get("val_pred") is not None:
                labels = np.asarray(ctx["labels"])
                cmp = stats.paired(np.asarray(per["fp32"].result["val_pred"]) == labels, np.asarray(q.result["val_pred"]) == labels)
                lo_hi = f" (the 95% interval of the drop is [{-cmp.hi * 100:+.2f}, {-cmp.lo * 100:+.2f}] points)"
            out.append(f"{t}: {n} validation images cannot resolve a {points(ctx['config']['max_drop'])} budget{lo_hi}; "
                       "the INT8 decision rests on the observed drop (INT8 vs FP32 section).")
        if "artifact" in q.result and not q.result["within_budget"]:
            out.append(f"{t}: INT8 is over the accuracy budget after every fallback; the pick uses FP32 for {t}.")
    pk = ctx["picks"].get("overall")
    if pk and not pk.get("meets_budgets"):
        out.append("The latency budget is not met by any acceptable artifact on this machine.")
    if ctx["skipped_targets"]:
        out += [f"{t} skipped: {why}" for t, why in ctx["skipped_targets"].items()]
    return out


def pick_section(ctx: dict) -> Section:
    p = ctx["picks"]
    cfg = ctx["config"]
    s = Section("pick", "The pick")
    s.p(f"Rule: keep the artifacts within the accuracy budget ({points(cfg['max_drop'])} of {figure_name(ctx)} below FP32, paired "
        "test), then those within the latency budget"
        + (f" ({cfg['budget_ms']:g} ms {p['metric']})" if cfg["budget_ms"] else " (none given)") + ", then the fastest.")
    rows = [[t, pk["precision"].upper(), Path(pk["path"]).name, pk["why"]] for t, pk in p["targets"].items()]
    if p.get("overall"):
        o = p["overall"]
        rows.append(["overall", o["precision"].upper(), f"{o['target']}/{Path(o['path']).name}", o["why"]])
    s.table(["for", "precision", "artifact", "why"], rows)
    s.data = {k: v for k, v in p.items() if k != "candidates"}
    return s


def lineage_section(ctx: dict) -> Section:
    s = Section("lineage", "Lineage of the picked artifact")
    o = ctx["picks"].get("overall")
    if not o:
        s.p("Nothing was picked.")
        return s
    st = ctx["artifacts"][o["target"]][o["precision"]].result
    rows = []
    for step in st.get("lineage", []):
        params = ", ".join(f"{k}={short(v)}" for k, v in step["params"].items() if v not in (None, [], {}, ""))
        metrics = ", ".join(f"{k}={short(v)}" for k, v in (step.get("metrics") or {}).items())
        rows.append([step["step"], params[:300], metrics[:200]])
    s.p(f"{o['target']}/{o['precision']}/{Path(o['path']).name}: every step recorded in its spec (the sidecar JSON and "
        "the file's own metadata; `edgecls info` prints it).")
    s.table(["step", "parameters", "figures"], rows)
    s.data = {"lineage": st.get("lineage", [])}
    return s


__all__ = ["int8_verdict", "lineage_section", "pick_section", "summary_section", "summary_warnings"]

"""The deploy report's sections for a multi-label model: per-label AP/F1/threshold (in place of per-class recall
and the confusion matrix) and INT8 vs FP32 judged in mAP by the paired bootstrap (in place of McNemar's test)."""

from __future__ import annotations

from .deploy import Section, points


def _built(ctx: dict):
    for t, per in ctx["artifacts"].items():
        for prec, st in per.items():
            if "artifact" in st.result:
                yield f"{t} {prec.upper()}", st.result


def per_label_section(ctx: dict) -> Section:
    v = ctx["model"].result["val"]
    s = Section("per_class", "Per label (validation)")
    arts = list(_built(ctx))
    rows = []
    for name, x in v["per_label"].items():
        ap = "-" if x["ap"] is None else f"{x['ap']:.4f}"
        others = []
        for _, r in arts:
            y = (r.get("per_label") or {}).get(name, {})
            others.append("-" if y.get("ap") is None else f"{y['ap']:.4f}")
        rows.append([name, x["support"], ap, *others, f"{x['threshold']:.3f}", f"{x['f1']:.3f}", x["predicted"]])
    s.table(["label", "val images with it", "AP, PyTorch float", *[f"AP, {n}" for n, _ in arts], "threshold",
             "F1 at it (float)", "predicted"], rows)
    mi, ma = v["micro_f1"], v["macro_f1"]
    s.p(f"Float model at its per-label thresholds: micro F1 {mi['value']:.4f} [{mi['interval'][0]:.4f}, "
        f"{mi['interval'][1]:.4f}], macro F1 {ma['value']:.4f} [{ma['interval'][0]:.4f}, {ma['interval'][1]:.4f}], "
        f"exact match {v['exact_match']:.1%} (n={v['n']}, bootstrap 95% intervals). Each threshold maximizes its "
        "label's F1 on these same validation images, so the F1 figures are optimistic; AP and mAP do not depend on "
        "thresholds. The thresholds travel in every artifact's spec: Predictor.predict(...).labels applies them; an "
        "INT8 build gets its own, refitted on its own validation scores (INT8 moves the scores).")
    for name, r in arts:
        if r.get("micro_f1"):
            moved = (r.get("thresholds") or {}).get("max_change")
            s.p(f"{name} at its thresholds: micro F1 {r['micro_f1']['value']:.4f}, macro F1 {r['macro_f1']['value']:.4f}"
                + (f" (refitted: the largest threshold moved {moved:.3f})." if moved is not None else "."))
    s.data = {"per_label": v["per_label"], "micro_f1": mi, "macro_f1": ma,
              "artifacts": {n: r.get("per_label") for n, r in arts}}
    return s


def int8_map_section(ctx: dict) -> Section:
    cfg = ctx["config"]
    s = Section("int8", f"INT8 vs FP32 in mAP: paired bootstrap per runtime (budget {points(cfg['max_drop'])} of mAP x 100)")
    s.p("Each INT8 build is compared with the FP32 artifact of the same runtime on the same validation images: the "
        "images are resampled 1,000 times and both models' mAP computed on each resample, so the interval of the drop "
        "accounts for the two being measured on the same images. An INT8 build is accepted when its drop is within "
        "the budget.")
    rows, attempts, data = [], [], {}
    for t, per in ctx["artifacts"].items():
        f, q = per.get("fp32"), per.get("int8")
        if not f or not q:
            continue
        chosen = next((a for a in q.result.get("attempts", []) if a.get("final")), None)
        if "artifact" in q.result and chosen is not None:
            lo, hi = chosen["drop_interval"]
            rows.append([t, chosen["n"], f"{f.result['val_map']:.4f}", f"{q.result['val_map']:.4f}",
                         f"{chosen['drop_pts']:+.2f}", f"[{lo:+.2f}, {hi:+.2f}]", "yes" if chosen["significant"] else "no",
                         "yes" if chosen["within_budget"] else "NO", "yes" if chosen["resolved"] else "no"])
            data[t] = {k: chosen.get(k) for k in ("n", "drop_pts", "drop_interval", "within_budget", "resolved",
                                                   "significant", "budget")}
        for a in q.result.get("attempts", []):
            attempts.append([t, a["method"], ", ".join(a["keep_float"]) or "-",
                             f"{a['val_map']:.4f}" if a.get("val_map") is not None else "failed",
                             "-" if a.get("drop_pts") is None else f"{a['drop_pts']:+.2f}",
                             "chosen" if a.get("final") else "", a.get("error", "")[:160]])
    if rows:
        s.table(["runtime", "n", "FP32 mAP", "INT8 mAP", "drop, mAP pts", "95% interval of the drop", "significant",
                 "within budget", "budget resolved"], rows)
    else:
        s.p("No INT8 artifact was built.")
    if attempts:
        s.p("Every attempt (PTQ first, then layers kept in float until the budget holds):")
        s.table(["runtime", "attempt", "kept in float", "val mAP", "drop", "", "error"], attempts)
    notes = [f"{t}: {d['budget']}" for t, d in data.items() if d.get("budget")]
    if notes:
        s.items(notes)
    s.data = data
    return s


__all__ = ["int8_map_section", "per_label_section"]

"""The pick, per target and overall: first the accuracy budget, then the latency budget, then speed.

An artifact is acceptable when it is an FP32 export (verified against PyTorch) or an INT8 build within max_drop of
its runtime's FP32 (paired test, compress/budget.py; top-1 points, or mAP points for a multi-label model). Among the acceptable ones, those whose end-to-end p50 (batch
1, measured here by edgecls-bench) fits --budget-ms; the fastest of them is the pick. When none fits, the fastest
acceptable one is named and the report says the latency budget is missed. Without latency figures, INT8 within
budget is preferred (smaller), and the reason says no latency was measured.

INT8 is not automatically faster (XNNPACK's int8 kernels on x86 without VNNI, ARM cores without dot product, layers
the budget kept in float): each INT8 candidate carries its speed-up over the FP32 artifact of its runtime, measured
here, and every reason names the INT8 builds that are not faster. An INT8 that is slower than its FP32 is never
picked over it (the fastest acceptable artifact wins; a tie goes to FP32, which has nothing to lose).
"""

from __future__ import annotations

from pathlib import Path


def _latency(ctx: dict) -> tuple[dict[str, float], str]:
    bench = ctx.get("bench")
    if bench is None or "rows" not in bench.result:
        return {}, ""
    threads = (ctx["config"]["bench_threads"] or [0])[0]
    rows = [r for r in bench.result["rows"] if r["batch"] == 1 and r["threads"] == threads]
    e2e = all(r.get("e2e_p50_ms") is not None for r in rows)
    key = "e2e_p50_ms" if e2e else "p50_ms"
    return {str(Path(r["path"]).resolve()): r[key] for r in rows}, ("end-to-end p50" if e2e else "model-only p50")


def candidates(ctx: dict) -> list[dict]:
    """Every artifact built, with whether it is within the accuracy budget and its latency."""
    lat, _ = _latency(ctx)
    out = []
    for target, per in ctx["artifacts"].items():
        for prec, st in per.items():
            r = st.result
            if "artifact" not in r:
                continue
            path = st.path(r["artifact"])
            ok = prec == "fp32" or bool(r.get("within_budget"))
            out.append({"target": target, "precision": prec, "path": str(path), "acceptable": ok,
                        "latency_ms": lat.get(str(path.resolve())), "val_top1": r.get("val_top1"),
                        "val_map": r.get("val_map"), "file_mb": r["file_mb"],
                        "int8_note": r.get("budget") if prec == "int8" else None})
    for c in out:  # INT8's speed-up over the FP32 artifact of its runtime, both timed here
        f = next((o for o in out if o["target"] == c["target"] and o["precision"] == "fp32"), None)
        c["speedup"] = (round(f["latency_ms"] / c["latency_ms"], 3) if c["precision"] == "int8" and f is not None
                        and f["latency_ms"] and c["latency_ms"] else None)
    return out


def _not_faster(cands: list[dict]) -> str:
    """'; onnxruntime INT8 is not faster than its FP32 here (0.88x)' for each such INT8 build."""
    return "".join(f"; {c['target']} INT8 is not faster than its FP32 here ({c['speedup']:.2f}x)"
                   for c in cands if c.get("speedup") is not None and c["speedup"] <= 1.0)


def _figure(c: dict) -> str:
    return f"val mAP {c['val_map']:.4f}" if c.get("val_map") is not None else f"val top-1 {c['val_top1']:.2%}"


def _choose(cands: list[dict], budget_ms: float | None, metric: str, max_drop: float) -> dict | None:
    ok = [c for c in cands if c["acceptable"]]
    if not ok:
        return None
    timed = [c for c in ok if c["latency_ms"] is not None]
    name = lambda c: f"{c['target']} {c['precision'].upper()} ({Path(c['path']).name})"  # noqa: E731
    rejected = [c for c in cands if not c["acceptable"]]
    tail = "".join(f"; {name(c)} is over the {max_drop:g}-point accuracy budget" for c in rejected) + _not_faster(cands)
    if not timed:
        best = next((c for c in ok if c["precision"] == "int8"), ok[0])
        return {**best, "meets_budgets": budget_ms is None,
                "why": f"{name(best)}: within the {max_drop:g}-point accuracy budget; no latency was measured, so the "
                       f"smaller file{' (latency budget not checked)' if budget_ms else ''}{tail}"}
    fits = [c for c in timed if budget_ms is None or c["latency_ms"] <= budget_ms]
    if fits:
        best = min(fits, key=lambda c: (c["latency_ms"], c["precision"] != "fp32"))
        limit = f" that fit {budget_ms:g} ms" if budget_ms is not None else ""
        gain = f" ({best['speedup']:.2f}x its FP32's speed)" if best.get("speedup") else ""
        why = (f"{name(best)}: {best['latency_ms']:.2f} ms {metric}{gain}, the fastest of {len(fits)} artifact(s) within "
               f"the {max_drop:g}-point accuracy budget{limit}; {_figure(best)}{tail}")
        return {**best, "meets_budgets": True, "why": why}
    best = min(timed, key=lambda c: (c["latency_ms"], c["precision"] != "fp32"))
    return {**best, "meets_budgets": False,
            "why": f"nothing within the {max_drop:g}-point accuracy budget fits {budget_ms:g} ms {metric}; the fastest is "
                   f"{name(best)} at {best['latency_ms']:.2f} ms{tail}"}


def picks(ctx: dict) -> dict:
    cfg = ctx["config"]
    _, metric = _latency(ctx)
    cands = candidates(ctx)
    per = {}
    for t in ctx["artifacts"]:
        mine = [c for c in cands if c["target"] == t]
        if mine:
            per[t] = _choose(mine, cfg["budget_ms"], metric or "latency", cfg["max_drop"])
    return {"targets": {k: v for k, v in per.items() if v}, "overall": _choose(cands, cfg["budget_ms"], metric or "latency", cfg["max_drop"]),
            "metric": metric, "candidates": cands}


__all__ = ["candidates", "picks"]

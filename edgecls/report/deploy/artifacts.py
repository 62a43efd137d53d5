"""The deploy report's sections on the built artifacts: each one's accuracy on the validation set against the
PyTorch float model, and its latency and size as edgecls-bench measured them on this machine."""

from __future__ import annotations

from .. import plots
from ..document import Section
from ..format import acc_text, number
from .context import acc_cell, built, float_figure, is_multilabel, score


def artifacts_section(ctx: dict) -> Section:
    s = Section("artifacts", "Artifacts: accuracy on the validation set")
    n = ctx["model"].result["val"]["n"]
    ref, lo, hi, _ = float_figure(ctx)
    ml = is_multilabel(ctx)
    bars = [{"label": "PyTorch float", "value": ref, "lo": lo, "hi": hi}]
    rows = [["PyTorch float", "model/model.pt", "-",
             f"{ref:.4f} [{lo:.4f}, {hi:.4f}] (n={n})" if ml else acc_text(ref, lo, hi, int(round(ref * n)), n), "-"]]
    for t, prec, r in built(ctx):
        v = r.get("verify") or {}
        check = (f"max|dlogit| {v['max_abs_diff']:.2g}, top-1 agree {v['top1_agreement']:.0%} ({v['images']} images)"
                 if v else ("evaluated on validation (INT8 from the verified FP32 artifact)" if prec == "int8" else "-"))
        rows.append([f"{t} {prec.upper()}", f"{t}/{prec}/{r['artifact']}", f"{r['file_mb']:.2f}", acc_cell(r), check])
        bars.append({"label": f"{t} {prec.upper()}", "value": score(r), "lo": r["val_interval"][0], "hi": r["val_interval"][1]})
    s.table(["artifact", "file", "MB", "val mAP [95%] (n)" if ml else "val top-1 [95%] (k/n)", "check against PyTorch"], rows)
    s.img("accuracy.png", plots.accuracy_bars(bars, ref, "validation mAP x 100" if ml else "validation top-1, %"),
          "validation figure per artifact with 95% intervals")
    if ml:
        s.p("Intervals are percentile bootstrap 95% intervals over images (1,000 resamples). Differences between "
            "artifacts are judged by the paired bootstrap in the next section, not by whether these intervals overlap.")
    else:
        s.p("Intervals are 95% Wilson score intervals: with n validation images one image is "
            f"{100 / n:.2f} points. Differences between artifacts are judged by the paired test in the next section, "
            "not by whether these intervals overlap.")
    s.data = {"rows": bars}
    return s


def latency_section(ctx: dict) -> Section:
    b = ctx.get("bench")
    s = Section("latency", "Latency and size (edgecls-bench, this machine)")
    if b is None or "rows" not in b.result:
        s.warn("No latency was measured" + (f": {b.result.get('error')}" if b is not None else "."))
        return s
    dev = b.result.get("device", {})
    cpu = dev.get("cpu") or {}
    s.p(f"Measured here, batch 1: {cpu.get('model', '?')} ({cpu.get('logical_cores', cpu.get('cores', '?'))} cores"
        f"{', flags ' + ', '.join(cpu.get('flags', [])[:8]) if cpu.get('flags') else ''}); "
        "latency on the device will differ: rerun edgecls-bench there on these files. End-to-end = a 1080p camera "
        "frame to top-k (resize/crop, inference, postprocessing). Full tables and distributions: bench/bench.html.")
    load = b.result.get("load_average")
    if load and cpu.get("logical_cores") and load[0] > 0.5 * cpu["logical_cores"]:
        s.warn(f"The machine was busy while this was measured (load average {load[0]:.1f} on {cpu['logical_cores']} cores): "
               "the latencies are inflated and noisy; compare artifacts by their ratios, or rerun edgecls-bench on an idle machine.")
    names = {c["path"]: f"{c['target']} {c['precision']}" for c in ctx["picks"]["candidates"]}
    rows = []
    for r in b.result["rows"]:
        rows.append([names.get(r["path"], r["model"]), r["threads"] or "default", f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}",
                     number(r.get("e2e_p50_ms")), number(r.get("preprocess_p50_ms")), f"{r['throughput_ips']:.0f}",
                     number(r.get("cold_load_plus_first_ms"), 0), number(r.get("peak_rss_mb"), 0), f"{r['size_mb']:.2f}", r["runs"]])
    s.table(["artifact", "threads", "p50 ms", "p99 ms", "e2e p50 ms", "pre ms", "img/s", "cold ms", "RSS MB", "MB", "runs"], rows)
    s.p("p50/p99: model only (the runtime call); e2e: from the frame; pre: resize/crop of the frame; cold: import, load "
        "and first inference in a fresh process; RSS: that process's peak memory.")
    pts = []
    for c in ctx["picks"]["candidates"]:
        if c["latency_ms"] is None:
            continue
        st = ctx["artifacts"][c["target"]][c["precision"]].result
        pts.append({"label": f"{c['target']} {c['precision']}", "target": c["target"], "precision": c["precision"],
                    "latency_ms": c["latency_ms"], "value": score(st),
                    "lo": st["val_interval"][0], "hi": st["val_interval"][1], "size_mb": c["file_mb"], "acceptable": c["acceptable"]})
    if pts:
        s.img("pareto.png", plots.pareto(pts, ctx["config"]["budget_ms"], ctx["picks"]["metric"],
                                         "validation mAP x 100" if is_multilabel(ctx) else "validation top-1, %"),
              "accuracy vs latency")
    if b.result.get("errors"):
        s.table(["artifact", "not benchmarked because"], [[k, v] for k, v in b.result["errors"].items()])
    s.data = {"rows": b.result["rows"], "device": dev}
    return s


__all__ = ["artifacts_section", "latency_section"]

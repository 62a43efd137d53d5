"""The deploy report: a list of sections, each built from the run's context, written as report.html (one file,
figures embedded, no network), report.md (figures beside it in report_files/) and report.json (every figure).

A section is a function (ctx) -> Section | None; SECTIONS is the order. Later work adds a section by writing one
function and inserting it (`add_section(fn, after="int8")`): open-set rejection, drift, robustness, explanations.
Tables are built once as rows and rendered to Markdown and HTML from the same rows, so the two never disagree.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .. import stats
from ..runtime.artifacts import atomic_write_bytes


@dataclass
class Section:
    id: str
    title: str
    blocks: list = field(default_factory=list)  # ("p", text) | ("table", headers, rows) | ("img", name, png, alt) | ("list", items) | ("code", text) | ("warn", text)
    data: dict = field(default_factory=dict)

    def p(self, text: str) -> Section:
        self.blocks.append(("p", text))
        return self

    def warn(self, text: str) -> Section:
        self.blocks.append(("warn", text))
        return self

    def table(self, headers: list[str], rows: list[list]) -> Section:
        self.blocks.append(("table", headers, [[("-" if v is None else str(v)) for v in r] for r in rows]))
        return self

    def img(self, name: str, png: bytes, alt: str) -> Section:
        self.blocks.append(("img", name, png, alt))
        return self

    def items(self, items: list[str]) -> Section:
        self.blocks.append(("list", items))
        return self

    def code(self, text: str) -> Section:
        self.blocks.append(("code", text))
        return self


def pct(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{100 * v:.{digits}f}%"


def acc_text(value: float, lo: float, hi: float, k: int | None = None, n: int | None = None) -> str:
    s = f"{100 * value:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"
    return s + (f" ({k}/{n})" if k is not None else "")


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


# --- sections -------------------------------------------------------------------------------------------------
def summary(ctx: dict) -> Section:
    s = Section("summary", "Summary")
    value, lo, hi, text = float_figure(ctx)
    pk = ctx["picks"].get("overall")
    cfg = ctx["config"]
    if pk:
        (s.p if pk.get("meets_budgets") else s.warn)(f"Pick: {pk['why']}")
    else:
        s.warn("No artifact could be built for any target here; see the sections below.")
    s.p(f"Float model ({cfg['arch']}): {text}.")
    rows = []
    for t, per in ctx["artifacts"].items():
        f, q = per.get("fp32"), per.get("int8")
        if not per:  # skipped: its own row below
            continue
        rows.append([t, _acc_cell(f.result) if f else "-", _acc_cell(q.result) if q and "artifact" in q.result else "-",
                     _int8_verdict(q) if q else "-"])
    for t, why in ctx["skipped_targets"].items():
        rows.append([t, "skipped", "skipped", why])
    f = figure_name(ctx)
    s.table(["target", f"FP32 val {f}", f"INT8 val {f}", f"INT8 within {cfg['max_drop']:g} pts?"], rows)
    warnings = _warnings(ctx)
    if warnings:
        s.items(warnings)
    s.data = {"pick": pk, f"float_val_{'map' if is_multilabel(ctx) else 'top1'}": {"value": value, "lo": lo, "hi": hi},
              "warnings": warnings}
    return s


def _acc_cell(r: dict) -> str:
    if "val_map" in r:
        return f"{r['val_map']:.4f} [{r['val_interval'][0]:.4f}, {r['val_interval'][1]:.4f}] (n={r['n']})"
    return acc_text(r["val_top1"], *r["val_interval"], r["k"], r["n"])


def _int8_verdict(q) -> str:
    r = q.result
    if "artifact" not in r:
        return "not built: " + r.get("error", "?")
    chosen = next((a for a in r["attempts"] if a["final"]), {})
    verdict = "yes" if r["within_budget"] else "NO"
    if "drop_interval" in chosen:  # multi-label: mAP points with the paired bootstrap interval
        lo, hi = chosen["drop_interval"]
        return f"{verdict}: drop {chosen.get('drop_pts', 0):+.2f} mAP pts [{lo:+.2f}, {hi:+.2f}]"
    return f"{verdict}: drop {chosen.get('drop_pts', 0):+.2f} pts, McNemar p={chosen.get('mcnemar_p', 1):.2g}"


def _warnings(ctx: dict) -> list[str]:
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
        chosen = next((a for a in q.result.get("attempts", []) if a["final"]), None)
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


def data_section(ctx: dict) -> Section:
    d = ctx["data"].result["summary"]
    s = Section("data", "Data")
    s.p(f"Training images from {d['train_root']}; validation: {d['val_split']} ({d['layout']}).")
    if d.get("task") == "multilabel":
        s.p(f"Multi-label: {d['labels_per_image']:.2f} labels per image on average; the counts are images carrying each label.")
        s.table(["label", "train images", "val images"], [[c, a, b] for c, a, b in zip(d["classes"], d["train_counts"], d["val_counts"])]
                + [["images", d["n_train"], d["n_val"]]])
    else:
        s.table(["class", "train", "val"], [[c, a, b] for c, a, b in zip(d["classes"], d["train_counts"], d["val_counts"])]
                + [["total", d["n_train"], d["n_val"]]])
    ss, mp = d["shorter_side"], d["megapixels"]
    s.p(f"Picture size: shorter side {ss['min']}-{ss['max']} px (median {ss['median']:.0f}); {_mp(mp['min'])} to "
        f"{_mp(mp['max'])} (median {_mp(mp['median'])}). Class imbalance (largest/smallest training class): {d['imbalance']:.2f}:1.")
    record = json.loads((ctx["data"].folder / "data.json").read_text())
    rows = record["train"] + record["val"]
    s.img("sizes.png", _plots().image_sizes([r["width"] for r in rows], [r["height"] for r in rows]), "picture sizes")
    if d["skipped"]:
        s.p(f"Skipped ({len(d['skipped'])}): not used, with the reason.")
        s.table(["file", "reason"], [[x["path"], x["reason"]] for x in d["skipped"]])
    else:
        s.p("Skipped: none; every file could be read.")
    if d["converted"]:
        s.p(f"Converted to RGB when read ({len(d['converted'])}), the same way in training, evaluation and the Predictor:")
        s.table(["file", "conversion"], [[x["path"], x["how"]] for x in d["converted"][:50]])
    if d["suspect"]:
        s.p("Look like graphics rather than photos (kept; check their labels):")
        s.table(["file", "why"], [[x["path"], x["why"]] for x in d["suspect"]])
    if d["duplicates"]:
        s.p(f"Byte-identical files (SHA-256): {len(d['duplicates'])} group(s); "
            + (f"{len(d['removed_from_val'])} validation copies of training images were removed from validation."
               if d["dedup"] else "kept in validation (dedup off): validation accuracy is optimistic by those images."))
        s.table(["files", "classes", "across train/val"],
                [["; ".join(g["files"]), ", ".join(g["classes"]), "yes" if g["across_train_val"] else "no"] for g in d["duplicates"][:50]])
    else:
        s.p("Duplicates: no two files are byte-identical (SHA-256), within or across train/val.")
    s.data = d
    return s


def _mp(v: float) -> str:
    return f"{v:.2f} MP" if v >= 0.1 else f"{v * 1e6:,.0f} pixels"


def recipe_section(ctx: dict) -> Section:
    from ..train.config import TrainConfig

    r = ctx["recipe"].result
    s = Section("recipe", "Recipe")
    s.p(f"Recipe: {r['name']}.")
    s.items(r["why"])
    helps = TrainConfig.help()
    s.table(["setting", "value", "meaning"], [[k, v, helps.get(k, {}).get("help", "")] for k, v in r["settings"].items()])
    s.data = r
    return s


def training_section(ctx: dict) -> Section:
    m = ctx["model"].result
    h = m["history"]
    best = m["summary"]["best_epoch"]
    s = Section("training", "Training")
    key, what = ("val_map", "val mAP") if is_multilabel(ctx) else ("val_top1", "val top-1")
    s.img("curves.png", _plots().training_curves(h, best, key, what.replace("val", "validation") + ", x100"), "training curves")
    s.table(["epoch", "train loss", "val loss", what, "lr", "img/s", "seconds"],
            [[x["epoch"], f"{x['loss']:.4f}", f"{x['val_loss']:.4f}" if "val_loss" in x else "-", pct(x[key], 2),
              f"{x['lr']:.2e}", f"{x['images_per_s']:.1f}", f"{x['seconds']:.0f}"] for x in h])
    last = h[-1][key]
    probe = " (epoch 0: the classifier fitted on frozen features, before any fine-tuning)" if h[0]["epoch"] == 0 else ""
    s.p(f"The model kept is epoch {best} of {h[-1]['epoch']}{probe}, the best {what.replace('val', 'validation')}. Choosing the epoch on the validation set "
        f"makes its figure slightly optimistic; the last epoch scored {pct(last, 2)}. "
        f"Training ran at {m['train_images_per_s']:.1f} images/s"
        + (" and resumed from a checkpoint after an interruption." if m.get("resumed") else "."))
    s.data = {"history": h, "best_epoch": best}
    return s


def calibration_section(ctx: dict) -> Section | None:
    if is_multilabel(ctx):  # per-label thresholds take the place of the temperature: per-label section
        return None
    m = ctx["model"].result
    s = Section("calibration", "Calibration")
    b, a = m["val"], m["val_calibrated"]
    s.p(f"Temperature T = {m['temperature']:.3f}, fitted on the validation logits by minimizing NLL; stored in the "
        "model's spec, so every artifact's Predictor scores are softmax(logits / T). The top-1 does not change.")
    s.table(["", "ECE", "NLL"], [["before (T=1)", f"{b['ece']:.4f}", f"{b['nll']:.4f}"],
                                 [f"after (T={m['temperature']:.2f})", f"{a['ece']:.4f}", f"{a['nll']:.4f}"]])
    png = ctx["model"].folder / "reliability.png"
    if png.is_file():
        s.img("reliability.png", png.read_bytes(), "reliability diagram before and after temperature scaling")
    s.p("ECE and the temperature are measured on the same validation images the temperature was fitted on: the "
        "'after' figure is optimistic; a held-out set would show the honest calibration.")
    s.data = {"temperature": m["temperature"], "ece": b["ece"], "ece_calibrated": a["ece"], "nll": b["nll"],
              "nll_calibrated": a["nll"]}
    return s


def per_class_section(ctx: dict) -> Section:
    if is_multilabel(ctx):
        from .deploy_multilabel import per_label_section

        return per_label_section(ctx)
    v = ctx["model"].result["val"]
    s = Section("per_class", "Per class (float model, validation)")
    rows = []
    for c, x in v["per_class"].items():
        rec = stats.wilson(int(round(x["recall"] * x["support"])), x["support"]) if x["support"] else None
        rows.append([c, f"{x['precision']:.3f}", f"{x['recall']:.3f}" + (f" [{rec.lo:.2f}, {rec.hi:.2f}]" if rec else ""),
                     f"{x['f1']:.3f}", x["support"]])
    s.table(["class", "precision", "recall [95%]", "F1", "support"], rows)
    s.p(f"Balanced accuracy {v['balanced_accuracy']:.4f}, macro F1 {v['macro_f1']:.4f}.")
    png = ctx["model"].folder / "confusion.png"
    if png.is_file():
        s.img("confusion.png", png.read_bytes(), "confusion matrix")
    s.data = {"per_class": v["per_class"], "confusion_matrix": v["confusion_matrix"]}
    return s


def mistakes_section(ctx: dict) -> Section | None:
    """The most confident wrong validation predictions with their Grad-CAM maps (edgecls.train.mistakes), or why
    the gallery is missing."""
    try:
        entry = json.loads((ctx["model"].folder / "metrics.json").read_text()).get("mistakes")
    except (OSError, ValueError, KeyError, AttributeError):
        return None
    if not entry:
        return None
    s = Section("mistakes", "Most confident mistakes (float model, validation)")
    s.data = entry
    if "skipped" in entry:
        s.p(f"No gallery: {entry['skipped']}.")
        return s
    s.p(f"{entry['wrong']} of {entry['n']} validation images are classified wrong; the {len(entry['shown'])} with the "
        f"highest confidence ({entry['confidence']}), with the {entry['method']} at {entry['layer']}: what the model "
        "looked at when it was most sure and wrong. Look for mislabelled images, overlapping classes and shortcuts.")
    s.table(["#", "image", "true", "predicted", "confidence"],
            [[k + 1, Path(m["image"]).name, m["true"], m["predicted"], f"{m['confidence']:.3f}"] for k, m in enumerate(entry["shown"])])
    png = ctx["model"].folder / "mistakes.png"
    if png.is_file():
        s.img("mistakes.png", png.read_bytes(), "most confident mistakes with Grad-CAM maps")
    return s


def artifacts_section(ctx: dict) -> Section:
    s = Section("artifacts", "Artifacts: accuracy on the validation set")
    m = ctx["model"].result
    n = m["val"]["n"]
    ref, lo, hi, _ = float_figure(ctx)
    ml = is_multilabel(ctx)
    bars = [{"label": "PyTorch float", "value": ref, "lo": lo, "hi": hi}]
    rows = [["PyTorch float", "model/model.pt", "-",
             f"{ref:.4f} [{lo:.4f}, {hi:.4f}] (n={n})" if ml else acc_text(ref, lo, hi, int(round(ref * n)), n), "-"]]
    for t, per in ctx["artifacts"].items():
        for prec, st in per.items():
            r = st.result
            if "artifact" not in r:
                continue
            v = r.get("verify") or {}
            check = (f"max|dlogit| {v['max_abs_diff']:.2g}, top-1 agree {v['top1_agreement']:.0%} ({v['images']} images)"
                     if v else ("evaluated on validation (INT8 from the verified FP32 artifact)" if prec == "int8" else "-"))
            rel = f"{t}/{prec}/{r['artifact']}"
            rows.append([f"{t} {prec.upper()}", rel, f"{r['file_mb']:.2f}", _acc_cell(r), check])
            bars.append({"label": f"{t} {prec.upper()}", "value": score(r), "lo": r["val_interval"][0], "hi": r["val_interval"][1]})
    s.table(["artifact", "file", "MB", "val mAP [95%] (n)" if ml else "val top-1 [95%] (k/n)", "check against PyTorch"], rows)
    s.img("accuracy.png", _plots().accuracy_bars(bars, ref, "validation mAP x 100" if ml else "validation top-1, %"),
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


def points(v: float) -> str:
    return f"{v:g} point" + ("" if v == 1 else "s")


def _ci(v: float, n: int) -> tuple[float, float]:
    w = stats.wilson(int(round(v * n)), n)
    return w.lo, w.hi


def int8_section(ctx: dict) -> Section:
    if is_multilabel(ctx):
        from .deploy_multilabel import int8_map_section

        return int8_map_section(ctx)
    cfg = ctx["config"]
    s = Section("int8", f"INT8 vs FP32: paired test per runtime (budget {points(cfg['max_drop'])})")
    s.p("Each INT8 build is compared with the FP32 artifact of the same runtime on the same validation images. Only "
        "images the two classify differently carry information: lost = right in FP32, wrong in INT8; gained = the "
        "reverse. McNemar's exact test asks whether lost and gained differ by more than chance; the interval is "
        "Newcombe's for a paired difference. An INT8 build is accepted when its drop is within the budget.")
    rows, attempts, data = [], [], {}
    labels = np.asarray(ctx["labels"])
    for t, per in ctx["artifacts"].items():
        f, q = per.get("fp32"), per.get("int8")
        if not f or not q:
            continue
        if "artifact" in q.result:
            cmp = stats.paired(np.asarray(f.result["val_pred"]) == labels, np.asarray(q.result["val_pred"]) == labels)
            d = stats.budget(np.asarray(f.result["val_pred"]) == labels, np.asarray(q.result["val_pred"]) == labels, cfg["max_drop"])
            rows.append([t, cmp.n, cmp.ref_only, cmp.other_only, f"{d.drop_pts:+.2f}",
                         f"[{-cmp.hi * 100:+.2f}, {-cmp.lo * 100:+.2f}]", f"{cmp.p_value:.3g}",
                         "yes" if d.within else "NO", "yes" if d.resolved else "no"])
            data[t] = d.as_dict()
        for a in q.result.get("attempts", []):
            attempts.append([t, a["method"], ", ".join(a["keep_float"]) or "-",
                             pct(a.get("val_top1"), 2) if a.get("val_top1") is not None else "failed",
                             "-" if a.get("drop_pts") is None else f"{a['drop_pts']:+.2f}",
                             "-" if a.get("mcnemar_p") is None else f"{a['mcnemar_p']:.3g}",
                             "chosen" if a.get("final") else "", a.get("error", "")[:160]])
    if rows:
        s.table(["runtime", "n", "lost", "gained", "drop, pts", "95% interval of the drop", "McNemar p", "within budget",
                 "budget resolved"], rows)
    else:
        s.p("No INT8 artifact was built.")
    if attempts:
        s.p("Every attempt (PTQ first, then layers kept in float until the budget holds):")
        s.table(["runtime", "attempt", "kept in float", "val top-1", "drop", "p", "", "error"], attempts)
    notes = [f"{t}: {d['note']}" for t, d in data.items()]
    if notes:
        s.items(notes)
    s.data = data
    return s


def latency_section(ctx: dict) -> Section | None:
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
                     _f(r.get("e2e_p50_ms")), _f(r.get("preprocess_p50_ms")), f"{r['throughput_ips']:.0f}",
                     _f(r.get("cold_load_plus_first_ms"), 0), _f(r.get("peak_rss_mb"), 0), f"{r['size_mb']:.2f}", r["runs"]])
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
        s.img("pareto.png", _plots().pareto(pts, ctx["config"]["budget_ms"], ctx["picks"]["metric"],
                                            "validation mAP x 100" if is_multilabel(ctx) else "validation top-1, %"),
              "accuracy vs latency")
    if b.result.get("errors"):
        s.table(["artifact", "not benchmarked because"], [[k, v] for k, v in b.result["errors"].items()])
    s.data = {"rows": b.result["rows"], "device": dev}
    return s


def _f(v, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


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
        params = ", ".join(f"{k}={_short(v)}" for k, v in step["params"].items() if v not in (None, [], {}, ""))
        metrics = ", ".join(f"{k}={_short(v)}" for k, v in (step.get("metrics") or {}).items())
        rows.append([step["step"], params[:300], metrics[:200]])
    s.p(f"{o['target']}/{o['precision']}/{Path(o['path']).name}: every step recorded in its spec (the sidecar JSON and "
        "the file's own metadata; `edgecls info` prints it).")
    s.table(["step", "parameters", "figures"], rows)
    s.data = {"lineage": st.get("lineage", [])}
    return s


def _short(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)) and len(v) > 6:
        return f"[{len(v)} items]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_short(x)}" for k, x in list(v.items())[:6]) + ("..." if len(v) > 6 else "") + "}"
    return str(v)


def reproduce_section(ctx: dict) -> Section:
    cfg = ctx["config"]
    out = ctx["out"]
    s = Section("reproduce", "Reproduce")
    cmd = ["edgecls", "deploy", _q(cfg["data"])]
    if cfg["val_dir"]:
        cmd += ["--val-dir", _q(cfg["val_dir"])]
    cmd += ["--targets", *cfg["targets"], "--max-drop", f"{cfg['max_drop']:g}"]
    if cfg["budget_ms"]:
        cmd += ["--budget-ms", f"{cfg['budget_ms']:g}"]
    cmd += ["--arch", cfg["arch"]]
    if cfg["recipe"]:
        cmd += ["--recipe", _q(cfg["recipe"])]
    for k, v in cfg["train"].items():
        cmd += ["--train", f"{k}={v}"]
    for k, flag in (("calibration", "--calibration"), ("bench_runs", "--bench-runs"), ("seed", "--seed"),
                    ("val_fraction", "--val-fraction"), ("verify_images", "--verify-images")):
        if cfg[k] != ctx["config_defaults"][k]:
            cmd += [flag, str(cfg[k])]
    for k, flag in (("strict", "--strict"),):
        if cfg[k]:
            cmd.append(flag)
    if not cfg["dedup"]:
        cmd.append("--no-dedup")
    if not cfg["bench_cold"]:
        cmd.append("--no-bench-cold")
    if cfg["bench_threads"] != [0]:
        cmd += ["--bench-threads", *map(str, cfg["bench_threads"])]
    cmd += ["-o", _q(out)]
    arts = [f"{out}/{t}/{p}/{st.result['artifact']}" for t, per in ctx["artifacts"].items() for p, st in per.items()
            if "artifact" in st.result]
    s.p("The whole run (rerunning it in the same folder reuses every finished stage):")
    s.code(" ".join(cmd))
    s.p("Training alone, with the recipe this run chose:")
    s.code(f"edgecls train --config {out}/recipe/recipe.yaml --out-dir runs/retrain")
    if arts:
        s.p("The latency table alone (or on the device, with these files copied there):")
        s.code("edgecls-bench " + " ".join(arts) + f" --runs {cfg['bench_runs']}"
               + (f" --budget-ms {cfg['budget_ms']:g}" if cfg["budget_ms"] else "") + " -o bench_again")
    s.data = {"deploy": " ".join(cmd)}
    return s


def _q(v: str) -> str:
    import shlex

    return shlex.quote(str(v))


def run_section(ctx: dict) -> Section:
    s = Section("run", "Run")
    rows = []
    for name, st in ctx["stages"].items():
        rows.append([name, "reused" if st.reused else "ran", f"{st.seconds:.0f}", f"{st.cpu_seconds:.0f}",
                     str(st.folder.relative_to(Path(ctx["out"])))])
    s.table(["stage", "this run", "seconds (when made)", "CPU seconds", "folder"], rows)
    m = ctx["model"].result
    s.p(f"This run: {ctx['wall_seconds']:.0f} s wall, {ctx['cpu_seconds']:.0f} s CPU in this process (benchmark "
        f"children and reused stages not counted). Training: {m['train_images_per_s']:.1f} images/s.")
    s.data = {"stages": {n: {"reused": st.reused, "seconds": st.seconds, "cpu_seconds": st.cpu_seconds} for n, st in ctx["stages"].items()},
              "wall_seconds": ctx["wall_seconds"], "cpu_seconds": ctx["cpu_seconds"]}
    return s


SECTIONS: list[Callable[[dict], Section | None]] = [
    summary, data_section, recipe_section, training_section, calibration_section, per_class_section, mistakes_section,
    artifacts_section, int8_section, latency_section, pick_section, lineage_section, reproduce_section, run_section,
]


def add_section(fn: Callable[[dict], Section | None], after: str | None = None) -> None:
    """Insert a section builder after the one whose function name or section id is `after` (default: before run)."""
    names = [f.__name__ for f in SECTIONS]
    if after is None:
        SECTIONS.insert(len(SECTIONS) - 1, fn)
        return
    for i, n in enumerate(names):
        if n in (after, f"{after}_section"):
            SECTIONS.insert(i + 1, fn)
            return
    raise ValueError(f"no report section {after!r}; sections: {names}")


def _plots():
    from . import plots

    return plots


def build_report(ctx: dict) -> list[Section]:
    return [s for s in (fn(ctx) for fn in SECTIONS) if s is not None]


# --- rendering --------------------------------------------------------------------------------------------------
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1180px;padding:16px 24px;color:#1d2330;line-height:1.45}
h1{font-size:1.6em;margin:.3em 0}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #d8dde6;padding-bottom:4px}
nav{font-size:.9em;margin:.5em 0 1em;display:flex;flex-wrap:wrap;gap:.2em 1em}nav a{white-space:nowrap}
.tw{overflow-x:auto;margin:.6em 0}table{border-collapse:collapse;font-size:.86em}
th,td{border:1px solid #d8dde6;padding:3px 7px;text-align:left;vertical-align:top;max-width:520px;overflow-wrap:break-word}
td.n{white-space:nowrap}td.w{overflow-wrap:anywhere}
th{background:#f1f4f8}tr:nth-child(even) td{background:#fafbfd}
img{max-width:100%;height:auto;display:block;margin:.6em 0}
pre{background:#f4f6f9;padding:8px 10px;overflow-x:auto;white-space:pre-wrap;overflow-wrap:anywhere;font-size:.85em}
.warn{background:#fff4e0;border-left:4px solid #f0a020;padding:6px 10px}
.meta{color:#5a6375;font-size:.85em}
"""


def to_html(sections: list[Section], title: str, meta: str) -> str:
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' content='width=device-width,initial-scale=1'>"
             f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>",
             f"<div class='meta'>{html.escape(meta)}</div><nav>"
             + "\n".join(f"<a href='#{s.id}'>{html.escape(s.title.split(':')[0])}</a>" for s in sections) + "</nav>"]
    for s in sections:
        parts.append(f"<h2 id='{s.id}'>{html.escape(s.title)}</h2>")
        for b in s.blocks:
            kind = b[0]
            if kind == "p":
                parts.append(f"<p>{html.escape(b[1])}</p>")
            elif kind == "warn":
                parts.append(f"<p class='warn'>{html.escape(b[1])}</p>")
            elif kind == "list":
                parts.append("<ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in b[1]) + "</ul>")
            elif kind == "code":
                parts.append(f"<pre>{html.escape(b[1])}</pre>")
            elif kind == "img":
                data = base64.b64encode(b[2]).decode()
                parts.append(f"<img alt='{html.escape(b[3])}' src='data:image/png;base64,{data}'>")
            elif kind == "table":
                head = "".join(f"<th>{html.escape(h)}</th>" for h in b[1])
                body = "".join("<tr>" + "".join(f"<td class='{_cell_class(c)}'>{html.escape(c)}</td>" for c in row) + "</tr>"
                               for row in b[2])
                parts.append(f"<div class='tw'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _cell_class(text: str) -> str:
    """Short cells (numbers, names) never wrap; long unbroken ones (file paths) may wrap anywhere."""
    if len(text) <= 18:
        return "n"
    return "w" if max(map(len, text.split()), default=0) > 40 else ""


def _md_cell(v: str) -> str:
    return v.replace("|", "\\|").replace("\n", " ")


def to_markdown(sections: list[Section], title: str, meta: str, files_dir: str) -> tuple[str, dict[str, bytes]]:
    lines, files = [f"# {title}", "", meta, ""], {}
    for s in sections:
        lines += [f"## {s.title}", ""]
        for b in s.blocks:
            kind = b[0]
            if kind == "p":
                lines += [b[1], ""]
            elif kind == "warn":
                lines += [f"> **Warning:** {b[1]}", ""]
            elif kind == "list":
                lines += [f"- {x}" for x in b[1]] + [""]
            elif kind == "code":
                lines += ["```", b[1], "```", ""]
            elif kind == "img":
                files[b[1]] = b[2]
                lines += [f"![{b[3]}]({files_dir}/{b[1]})", ""]
            elif kind == "table":
                lines.append("| " + " | ".join(map(_md_cell, b[1])) + " |")
                lines.append("|" + "---|" * len(b[1]))
                lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in b[2]]
                lines.append("")
    return "\n".join(lines), files


def write_report(sections: list[Section], out: Path) -> Path:
    import datetime as _dt

    from ..version import package_version

    title = f"edgecls deploy report: {out.resolve().name}"
    meta = f"edgecls {package_version()}, written {_dt.datetime.now().astimezone().isoformat(timespec='seconds')}"
    md, files = to_markdown(sections, title, meta, "report_files")
    for name, png in files.items():
        atomic_write_bytes(out / "report_files" / name, png)
    atomic_write_bytes(out / "report.md", md.encode())
    data = {"schema": "edgecls.deploy-report/1", "title": title, "meta": meta,
            "titles": {s.id: s.title for s in sections}, "sections": {s.id: _jsonable(s.data) for s in sections}}
    atomic_write_bytes(out / "report.json", json.dumps(data, indent=1, default=str, allow_nan=False).encode())
    path = out / "report.html"
    atomic_write_bytes(path, to_html(sections, title, meta).encode())
    return path


def _jsonable(obj):
    """NaN/inf are not JSON: None (the report JSON must load anywhere)."""
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


__all__ = ["SECTIONS", "Section", "add_section", "build_report", "to_html", "to_markdown", "write_report"]


from .openset import open_set_section  # noqa: E402  (after Section and add_section exist)
from .robustness_section import robustness_section  # noqa: E402

add_section(robustness_section, after="int8")
add_section(open_set_section, after="int8")

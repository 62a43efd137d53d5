"""The deploy report's sections on the float model: how training went, its calibration, its per-class figures (or
per-label ones for a multi-label model) and its most confident mistakes."""

from __future__ import annotations

import json
from pathlib import Path

from ... import stats
from .. import plots
from ..document import Section
from ..format import pct
from .context import built, is_multilabel


def training_section(ctx: dict) -> Section:
    m = ctx["model"].result
    h = m["history"]
    best = m["summary"]["best_epoch"]
    s = Section("training", "Training")
    key, what = ("val_map", "val mAP") if is_multilabel(ctx) else ("val_top1", "val top-1")
    s.img("curves.png", plots.training_curves(h, best, key, what.replace("val", "validation") + ", x100"), "training curves")
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
    if is_multilabel(ctx):  # per-label thresholds take the place of the temperature: per_label_section
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


def per_class_section(ctx: dict) -> Section | None:
    if is_multilabel(ctx):  # recall per class means nothing there: per_label_section
        return None
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


def per_label_section(ctx: dict) -> Section | None:
    """A multi-label model's per-label AP, threshold and F1, in place of per-class recall and the confusion matrix.
    Its id is per_class's: one place in report.json for the per-class figures, whatever the task."""
    if not is_multilabel(ctx):
        return None
    v = ctx["model"].result["val"]
    s = Section("per_class", "Per label (validation)")
    arts = [(f"{t} {prec.upper()}", r) for t, prec, r in built(ctx)]
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


__all__ = ["calibration_section", "mistakes_section", "per_class_section", "per_label_section", "training_section"]

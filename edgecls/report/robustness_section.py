"""The deploy report's robustness section: shown when OUT/robustness/robustness.json exists, i.e. after
`edgecls eval OUT/<artifacts>... --data VAL [--adversarial] -o OUT/robustness` (the report stage is rewritten on
every deploy run)."""

from __future__ import annotations

import json
from pathlib import Path


def robustness_section(ctx: dict):
    from . import robustness as report
    from .deploy import Section

    folder = Path(ctx["out"]) / "robustness"
    try:
        result = json.loads((folder / "robustness.json").read_text())
    except (OSError, ValueError):
        return None
    if result.get("kind") != "edgecls.robustness.corruptions" or not (result.get("models") or result.get("adversarial")):
        return None
    s = Section("robustness", "Robustness to common corruptions" if result.get("models") else "Robustness")
    s.data = {}
    if result.get("models"):
        d = result["data"]
        s.p(f"{d['n']} images from {d['source']}, {len(result['corruptions'])} corruptions x severities "
            f"{result['severities']}, applied {result['applied']}; accuracy = {d['accuracy_means']}.")
        rows = report.summary_rows(result)
        s.table(list(rows[0]), [list(r.values()) for r in rows])
        s.p(report.HELP)
        extra = report.extra_drop_rows(result)
        if extra:
            s.p(f"{report.EXTRA_HELP[0].upper()}{report.EXTRA_HELP[1:]}. An average over corruptions can hide one the "
                "compressed model handles badly.")
            s.table(["model", *result["corruptions"]], extra)
        png = folder / "robustness.png"
        if png.is_file():
            s.img("robustness.png", png.read_bytes(), "accuracy vs severity, and per corruption, per model")
        s.data["models"] = [{k: m[k] for k in ("name", "backend", "precision", "clean", "mean_corruption_accuracy",
                                               "mce", "relative_mce")} | {"vs_reference": m.get("vs_reference")}
                            for m in result["models"]]
        s.data["multiple_comparisons"] = result.get("multiple_comparisons")
    adv = result.get("adversarial")
    if adv:
        s.p(f"Adversarial check: {report.adversarial_title(adv)}, applied {adv['applied']}. Attacks crafted on the float "
            "model and fed unchanged to each build: what a shipped build meets when its float model is attacked.")
        head, rows = report.adversarial_rows(adv)
        s.table(head, rows)
        s.p(report.ADVERSARIAL_HELP)
        s.data["adversarial"] = adv
    return s

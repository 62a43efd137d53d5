"""The deploy report's robustness section: shown when OUT/robustness/robustness.json exists, i.e. after
`edgecls eval OUT/<artifacts>... --data VAL -o OUT/robustness` (the report stage is rewritten on every deploy run)."""

from __future__ import annotations

import json
from pathlib import Path


def robustness_section(ctx: dict):
    from ..deploy.report import Section
    from . import report

    folder = Path(ctx["out"]) / "robustness"
    try:
        result = json.loads((folder / "robustness.json").read_text())
    except (OSError, ValueError):
        return None
    if result.get("kind") != "edgecls.robustness.corruptions":
        return None
    s = Section("robustness", "Robustness to common corruptions")
    d = result["data"]
    s.p(f"{d['n']} images from {d['source']}, {len(result['corruptions'])} corruptions x severities "
        f"{result['severities']}, applied {result['applied']}; accuracy = {d['accuracy_means']}.")
    rows = report.summary_rows(result)
    s.table(list(rows[0]), [list(r.values()) for r in rows])
    s.p(report.HELP)
    extra = report.extra_drop_rows(result)
    if extra:
        s.p("Extra drop under each corruption (mean over its severities; * p < 0.05): an average over corruptions can "
            "hide one the compressed model handles badly.")
        s.table(["model", *result["corruptions"]], extra)
    png = folder / "robustness.png"
    if png.is_file():
        s.img("robustness.png", png.read_bytes(), "accuracy vs severity, and per corruption, per model")
    s.data = {"models": [{k: m[k] for k in ("name", "backend", "precision", "clean", "mean_corruption_accuracy",
                                            "mce", "relative_mce")} | {"vs_reference": m.get("vs_reference")}
                         for m in result["models"]]}
    return s

"""The deploy report's robustness section: shown when OUT/robustness/robustness.json exists, i.e. after
`edgecls eval OUT/<artifacts>... --data VAL [--adversarial] -o OUT/robustness` (the report stage is rewritten on
every deploy run). The same tables as robustness.md: both come from report.robustness's sections."""

from __future__ import annotations

import json
from pathlib import Path

from .. import robustness as report
from ..document import Section


def robustness_section(ctx: dict) -> Section | None:
    folder = Path(ctx["out"]) / "robustness"
    try:
        result = json.loads((folder / "robustness.json").read_text())
    except (OSError, ValueError):
        return None
    if result.get("kind") != "edgecls.robustness.corruptions" or not (result.get("models") or result.get("adversarial")):
        return None
    png = folder / "robustness.png"
    parts = report.sections(result, png.read_bytes() if result.get("models") and png.is_file() else None)
    s = Section("robustness", parts[0].title if result.get("models") else "Robustness",
                [b for part in parts for b in part.blocks])
    if result.get("models"):
        s.data["models"] = [{k: m[k] for k in ("name", "backend", "precision", "clean", "mean_corruption_accuracy",
                                               "mce", "relative_mce")} | {"vs_reference": m.get("vs_reference")}
                            for m in result["models"]]
        s.data["multiple_comparisons"] = result.get("multiple_comparisons")
    if result.get("adversarial"):
        s.data["adversarial"] = result["adversarial"]
    return s


__all__ = ["robustness_section"]

"""The deploy report: the sections below, in this order, each built from the run's context (the dict
DeployPipeline._report_context makes), written as report.html (one file, figures embedded, no network), report.md
(figures beside it in report_files/) and report.json (every section's figures).

A section builder is a function (ctx) -> Section | None; it returns None where it does not apply (the calibration
of a multi-label model, the open-set section of a run without thresholds, the robustness section before
`edgecls eval` has written OUT/robustness/). A new section is written in one of these modules and added to
SECTIONS here; nothing registers itself on import.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Callable

from ...version import package_version
from .. import document
from ..document import Section
from .artifacts import artifacts_section, latency_section
from .data import data_section, recipe_section
from .int8 import int8_map_section, int8_section
from .openset import open_set_section
from .plan import candidates_section, plan_section
from .robustness import robustness_section
from .run import reproduce_section, run_section
from .summary import lineage_section, pick_section, summary_section
from .training import calibration_section, mistakes_section, per_class_section, per_label_section, training_section

SectionBuilder = Callable[[dict], "Section | None"]

# single-label and multi-label variants of a section sit side by side; exactly one of each pair applies to a run
SECTIONS: tuple[SectionBuilder, ...] = (
    summary_section,
    data_section,
    recipe_section,
    plan_section,
    candidates_section,
    training_section,
    calibration_section,
    per_class_section,
    per_label_section,
    mistakes_section,
    artifacts_section,
    int8_section,
    int8_map_section,
    open_set_section,
    robustness_section,
    latency_section,
    pick_section,
    lineage_section,
    reproduce_section,
    run_section,
)

SCHEMA = "edgecls.deploy-report/1"


def build_report(ctx: dict) -> list[Section]:
    return [s for s in (build(ctx) for build in SECTIONS) if s is not None]


def write_report(sections: list[Section], out: Path) -> Path:
    """OUT/report.{md,json,html} and OUT/report_files/; returns the HTML's path."""
    title = f"edgecls deploy report: {out.resolve().name}"
    meta = f"edgecls {package_version()}, written {_dt.datetime.now().astimezone().isoformat(timespec='seconds')}"
    return document.write(sections, out, "report", title, meta, SCHEMA)


__all__ = ["SCHEMA", "SECTIONS", "Section", "SectionBuilder", "build_report", "write_report"]

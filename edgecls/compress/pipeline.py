"""`edgecls compress CONFIG.yaml`: chain prune -> fine-tune/distill -> INT8 (PTQ or QAT) under an accuracy budget.

The config names the float model (an edgecls .pt), the data, and the steps in order; each step hands the next a
model and a ModelSpec with one more lineage entry. Every accuracy is measured on the validation split through the
artifact's own runtime; the test split (Fashion-MNIST) is reported at the end and never used to decide anything.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from ..errors import CompressError
from .config import CompressConfig
from .context import Context
from .steps import STEPS


def run(cfg: CompressConfig, console=None) -> dict:
    """Run the steps; returns (and writes to out_dir/compress.json) every figure and the final artifacts."""
    from ..models.pt import load_pt, save_pt
    from ..quiet import console as own_console
    from .data import load_splits, subset

    con = console or own_console(width=max(own_console().width, 150))  # the report table is wide; logs are not terminals
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    model, spec = load_pt(cfg.model)
    splits = load_splits(cfg.data, val_fraction=cfg.val_fraction, seed=cfg.seed, data_root=cfg.data_root, val_dir=cfg.val_dir,
                         spec=spec)
    ctx = Context(cfg, con, out, splits, subset(splits.val, cfg.val_limit), subset(splits.test, cfg.test_limit) if splits.test is not None else None)
    report: dict[str, Any] = {"config": dataclasses.asdict(cfg), "steps": []}
    report["float"] = ctx.evaluate_torch(model, spec, "float (start)")
    for i, step in enumerate(cfg.steps):
        name, opts = next(iter(step.items()))
        t0 = time.perf_counter()
        con.rule(f"step {i + 1}/{len(cfg.steps)}: {name}")
        try:
            model, spec, figures = STEPS[name].run(ctx, model, spec, STEPS[name].options(opts), i)
        except CompressError as exc:
            report["steps"].append({"step": name, "error": str(exc), "rows": exc.rows})
            _write(out / "compress.json", report)
            raise
        figures = {"step": name, "seconds": round(time.perf_counter() - t0, 1), **figures}
        report["steps"].append(figures)
        if name != "quantize":  # quantize leaves the float model as it was; its INT8 files are in its folder
            save_pt(model, spec, out / f"step{i + 1}_{name}.pt")
        _write(out / "compress.json", report)
    _table(con, report)
    return report


def _write(path: Path, report: dict) -> None:
    from ..runtime.artifacts import atomic_write_bytes

    atomic_write_bytes(path, json.dumps(report, indent=2, default=str).encode())


def _table(con, report: dict) -> None:
    """One row per model or artifact; drops in top-1 points vs the float model the pipeline started from."""
    from rich.markup import escape
    from rich.table import Table

    from .budget import score

    t = Table(title="edgecls compress (val = budget split; test = reported only)")
    metric = "val mAP" if "val_map" in report["float"] else "val top-1"
    for c in ("step", "model / artifact", "how", metric, "drop", "test top-1", "MACs", "params"):
        t.add_column(c, overflow="fold")
    ref = report["float"]
    t.add_row("start", "float .pt", "", _fmt(score(ref)), "", _fmt(ref.get("test_top1")), _int(ref.get("macs")), _int(ref.get("params")))
    for s in report["steps"]:
        for row in s.get("rows", [s]):
            name = Path(str(row.get("artifact", ""))).name
            how = " ".join(str(x) for x in (row.get("backend", ""), row.get("precision", ""), row.get("method", "")) if x)
            if row.get("keep_float"):
                how += f" float={','.join(row['keep_float'])}"
            if row.get("drop_pts") is not None:
                how += f" ({row['drop_pts']:+.2f} pts vs its float {row['backend']}"
                how += (f", McNemar p={row['mcnemar_p']:.2g})" if row.get("mcnemar_p") is not None else
                        f", paired bootstrap {row['drop_interval']})" if row.get("drop_interval") else ")")
            if row.get("speedup"):  # INT8 beside its FP32 artifact on this machine: what a float layer costs
                how += f" [{row['speedup']:.2f}x FP32 speed]"
            drop = f"{(score(ref) - score(row)) * 100:+.2f}" if score(row) is not None else ""
            t.add_row(s["step"], escape(name), escape(how), _fmt(score(row)), drop, _fmt(row.get("test_top1")),
                      _int(row.get("macs")), _int(row.get("params")))
    con.print(t)


def _fmt(v) -> str:
    return "" if v is None else f"{v:.4f}"


def _int(v) -> str:
    return "" if v is None else f"{v / 1e6:.2f}M"


__all__ = ["CompressConfig", "CompressError", "run"]

"""INT8 under an accuracy budget, for any target of the table (targets.py): PTQ, then float fallbacks, each attempt
judged against the FP32 artifact of the same runtime on the same validation images with a paired test (stats.py).

The ladder: as asked; then the target's other all-INT8 forms for the CPU it is built for (targets.py `forms`: e.g.
8-bit weights on ONNX Runtime's U8U8 kernels where 7-bit ones lost too much, other calibration statistics), so an
all-INT8 graph is tried before any layer goes back to float; then, from the most accurate form (targets whose INT8
build can leave layers in float), + first/last layers; + SE blocks; then whole stages, most sensitive first (each
stage's sensitivity measured alone), up to max_float_layers. It stops at the first attempt within the budget.
Targets without those controls get one PTQ attempt. Every attempt is a row with its accuracy, 95% interval, drop,
McNemar p, whether the validation set can resolve the budget at all, and its speed against the FP32 artifact here
(model-only p50 ratio, batch 1: `speedup`; a float layer costs speed, which the row shows beside what it bought).

A multi-label model is judged in mAP instead (`multilabel_decision`): `measure(path)` returns each image's per-label
sigmoid scores, and the drop is mAP points (x 100) with a paired bootstrap interval on the same images.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from .. import stats
from ..errors import EdgeclsError
from ..runtime.runtimes import artifact_files
from .targets import Int8Job, Int8Target

FIRST_LAST = ("conv_stem", "conv_head", "classifier")
Decision = Callable[[np.ndarray, np.ndarray, "float | None"], dict]  # (float's measure, INT8's, max_drop) -> row fields


def top1_decision(float_correct: np.ndarray, ok: np.ndarray, max_drop: float | None) -> dict:
    """Per-image correctness of FP32 and INT8 -> the row: top-1, Wilson interval, paired drop, McNemar p."""
    d = stats.budget(float_correct, ok, max_drop)
    acc = stats.accuracy(ok)
    return {"val_top1": acc.value, "val_interval": [acc.lo, acc.hi], "n": acc.n, "drop_pts": round(d.drop_pts, 3),
            "within_budget": d.within, "resolved": d.resolved, "mcnemar_p": d.comparison.p_value, "budget": d.note,
            "summary": f"val top-1 {acc.pct()} — {d.note}"}


def multilabel_decision(truth: np.ndarray, n_boot: int = 1000) -> Decision:
    """The decision for a multi-label model: measures are (N, labels) sigmoid scores on the images whose multi-hot
    truth is `truth`; the budget is in mAP points, judged by a paired bootstrap (edgecls.evaluation.multilabel.map_budget)."""
    from ..evaluation.multilabel import map_budget

    y = np.asarray(truth, bool)

    def decide(float_scores: np.ndarray, scores: np.ndarray, max_drop: float | None) -> dict:
        d = map_budget(y, float_scores, scores, max_drop, n_boot=n_boot)
        return {"val_map": d.other_map, "val_top1": None, "n": d.n, "drop_pts": round(d.drop_pts, 3),
                "drop_interval": [round(d.lo, 3), round(d.hi, 3)], "within_budget": d.within, "resolved": d.resolved,
                "significant": d.significant, "budget": d.note, "summary": d.note}

    return decide


def score(row: dict) -> float | None:
    """The figure attempts are ranked by: mAP for a multi-label row, top-1 otherwise (None: the attempt failed)."""
    return row.get("val_map", row.get("val_top1"))


def blocks(model) -> list[str]:
    """Top-level stages ("blocks.0".."blocks.N"): the unit the ranked fallback keeps in float."""
    return [f"blocks.{k}" for k in range(len(model.blocks))] if hasattr(model, "blocks") else []


def _companions(path: Path) -> list[Path]:
    return [p for p in (*artifact_files(path), path.with_name(path.name + ".json")) if p.exists()]


def remove_artifact(path: Path) -> None:
    for p in _companions(path):
        p.unlink(missing_ok=True)


def ladder(t: Int8Target, job: Int8Job, correct: Callable[[Path], np.ndarray], float_correct: np.ndarray,
           max_drop: float | None, work: Path, *, max_float_layers: int = 12, log: Callable[[str], None] = print,
           name: str | None = None, decide: Decision = top1_decision, speed: bool = True) -> list[dict]:
    """Build INT8 attempts in `work` until one is within max_drop points of float_correct (per-image correctness of
    the FP32 artifact on the validation images); returns every attempt as a row, the chosen one with final=True.

    correct(path): per-image correctness of an artifact on the same images, in the same order (with a `decide` other
    than top1_decision, whatever it compares: multilabel_decision takes per-image scores). speed: time each attempt
    against the FP32 artifact (`speedup`, ~1 s each)."""
    label = name or t.name
    rows: list[dict] = []
    timer = _Timer(job.float_path, t.device) if speed else None

    def attempt(keep: tuple[str, ...], how: str, probe: bool = False, options: dict | None = None) -> dict:
        dst = work / (f"probe_{t.name}{t.suffix}" if probe else f"int8_{t.name}_{len([r for r in rows if r['method'] != 'sensitivity probe'])}{t.suffix}")
        row = {"backend": label, "target": t.name, "precision": "int8", "method": how, "keep_float": list(keep), "artifact": str(dst)}
        if options:
            row["form"] = dict(options)
        try:
            job_k = replace(job, dst=dst, keep_float=keep, options={**job.options, **(options or {})})
            t.build_int8(job_k)
            ok = correct(dst)
        except EdgeclsError as exc:  # a build that fails its own verification, a runtime that refuses the graph
            row.update(error=f"{type(exc).__name__}: {exc}", within_budget=False, val_top1=None, val_map=None)
            log(f"{label} {how}: failed: {exc}")
            rows.append(row)
            return row
        fields = decide(float_correct, ok, max_drop)
        summary = fields.pop("summary")
        row.update(fields, file_mb=round(sum(p.stat().st_size for p in _companions(dst) if p.suffix != ".json") / 1e6, 3))
        if timer is not None and not probe:
            row["speedup"] = timer.speedup(dst)
        gain = f", {row['speedup']:.2f}x FP32's speed here" if row.get("speedup") else ""
        log(f"{label} {how} keep_float={list(keep) or 'none'}: {summary}{gain}")
        rows.append(row)
        return row

    keep = tuple(job.keep_float)
    first = attempt(keep, "ptq")
    if first["within_budget"] or max_drop is None:
        return _finish(rows)
    best_form: dict = {}  # the options of the most accurate all-INT8 form so far: the float fallbacks start from it
    best = score(first)
    for how, options in t.forms(job):
        r = attempt(keep, f"ptq form: {how}", options=options)
        if r["within_budget"]:
            return _finish(rows)
        if score(r) is not None and (best is None or score(r) > best):
            best, best_form = score(r), options
    if not t.keep_float:
        return _finish(rows)
    for extra, how in ((FIRST_LAST, "ptq fallback: first/last layers float"), (("se",), "ptq fallback: + SE blocks float")):
        keep = tuple(dict.fromkeys(keep + extra))
        if attempt(keep, how, options=best_form)["within_budget"]:
            return _finish(rows)
    gains = []
    for blk in blocks(job.model):  # sensitivity: how much keeping this stage in float alone recovers
        r = attempt(keep + (blk,), "sensitivity probe", probe=True, options=best_form)
        if score(r) is not None:
            gains.append((score(r), blk))
    remove_artifact(work / f"probe_{t.name}{t.suffix}")  # probes are measurements, not artifacts to ship
    for _, blk in sorted(gains, reverse=True)[:max_float_layers]:
        keep = keep + (blk,)
        if attempt(keep, f"ptq fallback: + {blk} float (ranked)", options=best_form)["within_budget"]:
            break
    return _finish(rows)


class _Timer:
    """Model-only p50 of an INT8 attempt against its FP32 artifact, batch 1, on this machine, the two timed in
    alternating chunks (runtime.timing.time_interleaved) so load changes hit both: a quick figure beside each attempt's
    drop (edgecls-bench measures the shipped artifacts properly)."""

    RUNS, WARMUP = 40, 5

    def __init__(self, float_path: Path, device: str):
        self.float_path, self.device = Path(float_path), device

    def speedup(self, path: Path) -> float | None:
        import statistics
        import warnings

        from ..runtime.predictor import Predictor
        from ..runtime.timing import time_interleaved

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a load-time note about this CPU was given when the attempt was judged
                with Predictor(self.float_path, device=self.device) as f, Predictor(path, device=self.device) as q:
                    x = np.zeros((1, *f.spec.input.shape[1:]), dtype=f.spec.input.dtype)
                    ms = time_interleaved({"fp32": lambda: f.infer(x), "int8": lambda: q.infer(x)}, self.WARMUP,
                                          self.RUNS, None)
        except EdgeclsError:
            return None
        return round(statistics.median(ms["fp32"]) / statistics.median(ms["int8"]), 3)


def _finish(rows: list[dict]) -> list[dict]:
    """Mark the chosen attempt: the first within budget (the ladder stops there), else the most accurate one."""
    real = [r for r in rows if r["method"] != "sensitivity probe"]
    ok = [r for r in real if r["within_budget"]]
    scored = [r for r in real if score(r) is not None]
    best = ok[0] if ok else (max(scored, key=score) if scored else None)
    for r in rows:
        r["final"] = r is best
    if best is not None:
        best["notes"] = f"chosen of {len(real)} attempt(s)"
    return rows


__all__ = ["FIRST_LAST", "blocks", "ladder", "multilabel_decision", "remove_artifact", "score", "top1_decision"]

"""Fit an artifact's open-set threshold and drift reference on validation images, and measure how well its scores
separate known from unknown images. Per artifact: an INT8 build moves the scores, so it gets its own threshold,
fitted on its own logits, and it is stored in that artifact's spec (embedded and sidecar, rewritten atomically).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InputError
from ..runtime.decode import IMAGE_SUFFIXES as DECODED_SUFFIXES
from ..runtime.drift import build_reference, input_stats
from ..runtime.predictor import Predictor
from ..runtime.scores import SCORES, ood_score
from ..runtime.spec import ModelSpec, OpenSet
from ..stats import bootstrap, wilson
from .metrics import auroc, auroc_labelled, fpr_at_tpr

IMAGE_SUFFIXES = tuple(s for s in DECODED_SUFFIXES if s != ".gif")  # photos: GIFs are left out of open-set folders


def list_images(folder: str | os.PathLike, what: str = "image folder") -> list[Path]:
    """Every image file under `folder`, recursively, sorted; InputError when the folder is missing or has none."""
    d = Path(folder)
    if not d.is_dir():
        raise InputError(f"{what} {d} is not a folder; give a folder of images (class subfolders allowed)")
    files = sorted(p for p in d.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"{what} {d} holds no images ({', '.join(IMAGE_SUFFIXES)}); point it at a folder of photos")
    return files


def labelled_images(folder: str | os.PathLike, labels: Sequence[str]) -> tuple[list[Path], np.ndarray | None]:
    """Images of a validation folder and, when its class subfolders are the model's labels, their class indices."""
    files = list_images(folder, "validation folder")
    root = Path(folder)
    names = {p.relative_to(root).parts[0] for p in files if len(p.relative_to(root).parts) > 1}
    if not names or not names <= set(labels):
        return files, None
    index = {name: i for i, name in enumerate(labels)}
    return files, np.array([index[p.relative_to(root).parts[0]] for p in files])


def run_images(pred: Predictor, files: Sequence[Path], batch: int = 32) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Logits and input statistics of image files through one artifact (its own preprocessing and runtime)."""
    step = batch if pred.max_batch is None else pred.max_batch
    logits, stats = [], []
    for i in range(0, len(files), step):
        x = np.concatenate([pred.preprocess(f) for f in files[i : i + step]])
        logits.append(pred.infer(x))
        stats.append(input_stats(x, pred.spec))
    return np.concatenate(logits), {k: np.concatenate([s[k] for s in stats]) for k in stats[0]}


def fit_threshold(known_scores: np.ndarray, coverage: float = 0.95) -> float:
    """The largest threshold that keeps at least `coverage` of the known images (score >= threshold is known)."""
    if not 0.0 < coverage < 1.0:
        raise InputError(f"coverage={coverage!r}: the share of known images to keep must lie strictly between 0 and 1 "
                         "(default 0.95)")
    s = np.sort(np.asarray(known_scores, np.float64))
    if s.size == 0:
        raise InputError("fitting a threshold needs the scores of at least one validation image")
    return float(s[int(np.floor((1 - coverage) * s.size))])


def restamp(path: str | os.PathLike, spec: ModelSpec) -> None:
    """Write `spec` into an artifact (its metadata slot and sidecar): on a staged copy, then published atomically."""
    from ..exporters import FORMATS, format_for
    from ..runtime.artifacts import publish, staging

    final = Path(path)
    fmt = format_for(final, None)
    with staging(final) as staged:
        shutil.copy2(final, staged)
        if fmt is FORMATS["openvino"]:
            shutil.copy2(final.with_suffix(".bin"), staged.with_suffix(".bin"))
        fmt.embed(staged, spec)
        publish(staged, final, spec)


def reference_spec(spec: ModelSpec, logits: np.ndarray, stats: dict[str, np.ndarray], *, score: str = "msp",
                   coverage: float = 0.95, bins: int = 10, data: str = "") -> ModelSpec:
    """`spec` with the open-set threshold and drift reference fitted on validation logits and input statistics that
    came from the artifact's own runtime (run_images, or any loop that ran infer() and drift.input_stats)."""
    if score not in SCORES:
        raise InputError(f"unknown open-set score {score!r}; choose one of {', '.join(SCORES)}")
    s = ood_score(logits, score, spec.temperature)
    open_set = OpenSet(score=score, threshold=fit_threshold(s, coverage), coverage=coverage, n=len(s))
    spec = spec.replace(open_set=open_set)
    reference = build_reference(spec, stats, logits, bins)
    return spec.with_step("fit_reference", {"score": score, "coverage": coverage, "data": data, "bins": bins},
                          {"n": len(s), "threshold": open_set.threshold, "unknown_rate": reference.unknown_rate},
                          reference=reference)


def fit_reference(model: str | os.PathLike, data: str | os.PathLike, *, score: str = "msp", coverage: float = 0.95,
                  backend: str | None = None, write: bool = True, bins: int = 10) -> ModelSpec:
    """Fit the open-set threshold (`score` keeps `coverage` of the validation images) and the drift reference on the
    images under `data` (validation images of the known classes, never trained on), through this artifact's own
    runtime; stores both in the artifact's spec (write=True) and returns the new spec."""
    if score not in SCORES:
        raise InputError(f"unknown open-set score {score!r}; choose one of {', '.join(SCORES)}")
    fit_threshold(np.zeros(1), coverage)  # a bad coverage fails before any image runs
    pred = Predictor(model, backend=backend)
    try:
        files, _ = labelled_images(data, pred.labels)
        logits, stats = run_images(pred, files)
        spec = pred.spec
    finally:
        pred.close()
    spec = reference_spec(spec, logits, stats, score=score, coverage=coverage, bins=bins, data=str(data))
    if write:
        restamp(model, spec)
    return spec


def evaluate_ood(model: str | os.PathLike, data: str | os.PathLike, ood: Sequence[str | os.PathLike], *,
                 scores: Sequence[str] = SCORES, backend: str | None = None, n_boot: int = 1000) -> dict:
    """Known images (`data`) against each folder of unknown ones (`ood`): per score, AUROC with a bootstrap 95%
    interval and FPR at 95% TPR; with the threshold stored in the spec, the rejection rate of each set (Wilson 95%).
    """
    bad = [s for s in scores if s not in SCORES]
    if bad:
        raise InputError(f"unknown open-set score(s) {bad}; choose from {', '.join(SCORES)}")
    if not ood:
        raise InputError("give at least one folder of unknown images (--ood DIR ...)")
    pred = Predictor(model, backend=backend)
    try:
        files, y = labelled_images(data, pred.labels)
        ood_files = {str(d): list_images(d, "OOD folder") for d in ood}
        known_logits, _ = run_images(pred, files)
        ood_logits = {d: run_images(pred, f)[0] for d, f in ood_files.items()}
    finally:
        pred.close()
    report = ood_report(pred.spec, known_logits, ood_logits, y=y, scores=scores, n_boot=n_boot)
    return {"model": str(model), "backend": pred.backend_name, **report, "known": {"folder": str(data), **report["known"]}}


def ood_report(spec: ModelSpec, known_logits: np.ndarray, ood_logits: dict[str, np.ndarray], *, y: np.ndarray | None = None,
               scores: Sequence[str] = SCORES, n_boot: int = 1000, seed: int = 0) -> dict:
    """Known logits against each named set of unknown ones, all from one artifact: per score, AUROC with a bootstrap
    95% interval and FPR at 95% TPR; with spec.open_set, the share of each set rejected (Wilson 95%)."""
    report: dict = {"precision": spec.artifact.get("precision"), "known": {"n": len(known_logits)}, "sets": {}}
    if y is not None:
        report["known"]["top1"] = wilson(int((known_logits.argmax(1) == y).sum()), len(y)).as_dict()
    o = spec.open_set
    if o is not None:
        kept = ood_score(known_logits, o.score, spec.temperature) >= o.threshold
        report["threshold"] = {"score": o.score, "value": o.threshold, "coverage": o.coverage, "fitted_on": o.n}
        report["known"]["rejected"] = wilson(int((~kept).sum()), len(kept)).as_dict()
    for d, lg in ood_logits.items():
        row: dict = {"n": len(lg), "scores": {}}
        for name in scores:
            a, b = ood_score(known_logits, name, spec.temperature), ood_score(lg, name, spec.temperature)
            is_known = np.r_[np.ones(len(a), bool), np.zeros(len(b), bool)]
            est, lo, hi = bootstrap(auroc_labelled, is_known, np.r_[a, b], n_boot=n_boot, seed=seed)
            row["scores"][name] = {"auroc": auroc(a, b), "auroc_interval": [lo, hi], "fpr_at_95tpr": fpr_at_tpr(a, b)}
        if o is not None:
            rej = ood_score(lg, o.score, spec.temperature) < o.threshold
            row["rejected"] = wilson(int(rej.sum()), len(rej)).as_dict()
        report["sets"][d] = row
    return report

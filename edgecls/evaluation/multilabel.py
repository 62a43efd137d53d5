"""Multi-label evaluation: average precision per label, mAP, micro/macro F1, per-label thresholds fitted for max F1,
and the paired bootstrap that judges an INT8 build against its float model in mAP. numpy only (with stats.py), so
`edgecls eval` and compression use it without scikit-learn.

`average_precision` is scikit-learn's `average_precision_score` for one label (the step-wise area under the
precision-recall curve, tied scores taken as one threshold; tests/test_multilabel.py checks the two agree), written
here because the bootstrap computes it thousands of times: sklearn's input validation costs more than the sort.
mAP is the macro mean over the labels that have at least one positive image (AP is undefined without one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..stats import bootstrap

N_BOOT = 1000


def average_precision(y: np.ndarray, s: np.ndarray) -> float:
    """AP of one label: sum over distinct score thresholds of (recall step) * precision; NaN without positives."""
    y = np.asarray(y, dtype=bool)
    npos = int(y.sum())
    if npos == 0:
        return float("nan")
    order = np.argsort(-np.asarray(s, dtype=np.float64), kind="mergesort")
    s_sorted, y_sorted = np.asarray(s, dtype=np.float64)[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s_sorted)), len(s_sorted) - 1]  # the last index of each run of equal scores
    tp = np.cumsum(y_sorted)[last]
    precision = tp / (last + 1)
    recall_step = np.diff(np.r_[0, tp]) / npos
    return float((recall_step * precision).sum())


def per_label_ap(Y: np.ndarray, S: np.ndarray) -> np.ndarray:
    return np.array([average_precision(Y[:, k], S[:, k]) for k in range(Y.shape[1])])


def mean_ap(Y: np.ndarray, S: np.ndarray) -> float:
    """Macro mAP over the labels with at least one positive (NaN when no label has one)."""
    ap = per_label_ap(Y, S)
    return float(np.nanmean(ap)) if np.isfinite(ap).any() else float("nan")


def f1(Y: np.ndarray, P: np.ndarray) -> tuple[float, float]:
    """(micro F1, macro F1) of boolean decisions P against boolean truth Y; macro over labels with a positive or a
    prediction (a label absent from both is neither right nor wrong)."""
    Y, P = np.asarray(Y, bool), np.asarray(P, bool)
    tp, fp, fn = (Y & P).sum(0), (~Y & P).sum(0), (Y & ~P).sum(0)
    denom = 2 * tp + fp + fn
    micro = 2 * tp.sum() / denom.sum() if denom.sum() else 1.0
    used = denom > 0
    macro = float(np.mean(2 * tp[used] / denom[used])) if used.any() else 1.0
    return float(micro), macro


def fit_thresholds(Y: np.ndarray, S: np.ndarray, default: float = 0.5) -> np.ndarray:
    """Per label, the score threshold (score >= t is positive) that maximizes that label's F1 on these images; the
    midpoint between the chosen score and the next lower one, so a nearby unseen score falls on the same side. A label
    without positives keeps `default`."""
    Y, S = np.asarray(Y, bool), np.asarray(S, np.float64)
    out = np.full(Y.shape[1], default)
    for k in range(Y.shape[1]):
        y, s = Y[:, k], S[:, k]
        npos = int(y.sum())
        if npos == 0:
            continue
        order = np.argsort(-s, kind="mergesort")
        ss, ys = s[order], y[order]
        last = np.r_[np.flatnonzero(np.diff(ss)), len(ss) - 1]
        tp = np.cumsum(ys)[last]
        predicted = last + 1
        f = 2 * tp / (predicted + npos)
        i = int(np.argmax(f))  # the first (highest-threshold) maximum: fewest false positives among the ties
        lower = ss[last[i] + 1] if last[i] + 1 < len(ss) else 0.0
        out[k] = float(np.clip((ss[last[i]] + lower) / 2, 0.0, 1.0))
    return out


def _interval(stat, *arrays, n_boot: int, seed: int = 0) -> dict:
    est, lo, hi = bootstrap(stat, *arrays, n_boot=n_boot, seed=seed)
    return {"value": est, "interval": [lo, hi]}


def metrics(Y: np.ndarray, S: np.ndarray, labels: tuple[str, ...], thresholds, *, n_boot: int = N_BOOT) -> dict:
    """mAP, micro and macro F1 at `thresholds`, each with a percentile bootstrap 95% interval over images, n, and
    per-label AP, F1, threshold and support."""
    Y, S = np.asarray(Y, bool), np.asarray(S, np.float64)
    t = np.asarray(thresholds, np.float64)
    P = S >= t[None, :]
    ap = per_label_ap(Y, S)
    micro, macro = f1(Y, P)
    per = {}
    for k, name in enumerate(labels):
        f_k = f1(Y[:, [k]], P[:, [k]])[0]
        per[name] = {"ap": None if math.isnan(ap[k]) else float(ap[k]), "f1": f_k, "threshold": float(t[k]),
                     "support": int(Y[:, k].sum()), "predicted": int(P[:, k].sum())}
    return {
        "n": int(len(Y)),
        "labels_per_image": float(Y.sum(1).mean()),
        "map": _interval(mean_ap, Y, S, n_boot=n_boot),
        "micro_f1": _interval(lambda y, p: f1(y, p)[0], Y, P, n_boot=n_boot),
        "macro_f1": _interval(lambda y, p: f1(y, p)[1], Y, P, n_boot=n_boot),
        "exact_match": float((P == Y).all(1).mean()),
        "per_label": per,
    }


@dataclass(frozen=True)
class MapBudgetDecision:
    """Is `other` (INT8) within max_drop mAP points (mAP x 100) of `ref` (FP32) on the same validation images?

    The paired bootstrap resamples images, computing both models' mAP on each resample: the interval of the
    difference accounts for the two being measured on the same images. resolved: the interval of the drop lies on one
    side of max_drop; significant: the interval of the drop excludes 0."""

    max_drop: float
    ref_map: float
    other_map: float
    drop_pts: float
    lo: float  # 95% interval of the drop, points
    hi: float
    n: int
    within: bool
    resolved: bool
    significant: bool
    note: str

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def paired_map(Y, ref_S, other_S, *, n_boot: int = N_BOOT, seed: int = 0) -> tuple[float, float, float]:
    """(drop, lo, hi) of mAP(ref) - mAP(other), in mAP points (x 100), by a paired percentile bootstrap over images."""
    Y, R, O = np.asarray(Y, bool), np.asarray(ref_S), np.asarray(other_S)
    if R.shape != O.shape or R.shape != Y.shape or Y.ndim != 2 or len(Y) == 0:
        raise InputError(f"paired_map(): need truth and two score matrices of one shape (N, labels), got {Y.shape}, "
                         f"{R.shape}, {O.shape}")
    idx = np.arange(len(Y))
    est, lo, hi = bootstrap(lambda i: (mean_ap(Y[i], R[i]) - mean_ap(Y[i], O[i])) * 100, idx, n_boot=n_boot, seed=seed)
    return est + 0.0, lo + 0.0, hi + 0.0


def map_budget(Y, ref_S, other_S, max_drop: float | None, *, n_boot: int = N_BOOT) -> MapBudgetDecision:
    drop, lo, hi = paired_map(Y, ref_S, other_S, n_boot=n_boot)
    ref, other = mean_ap(Y, ref_S), mean_ap(Y, other_S)
    significant = lo > 0 or hi < 0
    head = (f"mAP {ref:.4f} -> {other:.4f}: drop {drop:+.2f} pts, paired bootstrap 95% interval [{lo:+.2f}, {hi:+.2f}] "
            f"on {len(ref_S)} images")
    if max_drop is None:
        return MapBudgetDecision(float("nan"), ref, other, drop, lo, hi, len(ref_S), True, True, significant,
                                 f"no budget; {head}.")
    within = drop <= max_drop + 1e-9
    resolved = hi <= max_drop or lo > max_drop
    parts = [f"{head}: {'within' if within else 'over'} the {max_drop:g}-point mAP budget"]
    if not resolved:
        parts.append("the validation set is too small to resolve the budget (the interval covers it)")
    if not within and not significant:
        parts.append("the drop itself is not significant (it may be noise)")
    return MapBudgetDecision(float(max_drop), ref, other, drop, lo, hi, len(ref_S), within, resolved, significant,
                             "; ".join(parts) + ".")


__all__ = ["MapBudgetDecision", "average_precision", "f1", "fit_thresholds", "map_budget", "mean_ap", "metrics",
           "paired_map", "per_label_ap"]


def evaluate(model, data, *, backend: str | None = None, n_boot: int = N_BOOT, batch: int = 32) -> dict:
    """`edgecls eval` for a multi-label artifact: its mAP, micro/macro F1 at the thresholds in its spec (each with a
    bootstrap 95% interval) and per-label AP/F1 on the images of `data` (a folder with labels.csv/labels.json, or the
    manifest), through the artifact's own runtime and preprocessing."""
    from ..data.manifest import load_multilabel
    from ..runtime.predictor import Predictor
    from ..runtime.scores import sigmoid

    with Predictor(model, backend=backend) as pred:
        spec = pred.spec
        if not spec.multilabel:
            raise InputError(f"{model} is a single-label model (task {spec.task!r}); multi-label evaluation needs one "
                             "trained with task: multilabel")
        ds = load_multilabel(data, classes=spec.labels, allow_empty=True)
        step = pred.max_batch or batch
        logits = np.concatenate([pred.infer(np.concatenate([pred.preprocess(ds.images[j])
                                                            for j in range(i, min(len(ds), i + step))]))
                                 for i in range(0, len(ds), step)])
        name = pred.backend_name
    report = metrics(ds.labels.astype(bool), sigmoid(logits), spec.labels, pred.thresholds, n_boot=n_boot)
    return {"model": str(model), "backend": name, "precision": spec.artifact.get("precision"), "data": str(data),
            "skipped": [{"path": s.path, "reason": s.reason} for s in ds.skipped], **report}

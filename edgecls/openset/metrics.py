"""Separating known from unknown images by a score (higher = known): AUROC and FPR at a TPR. numpy only."""

from __future__ import annotations

import numpy as np

from ..errors import InputError


def _ranks(v: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given their average rank."""
    order = np.argsort(v, kind="mergesort")
    _, inv, counts = np.unique(v[order], return_inverse=True, return_counts=True)
    avg = np.cumsum(counts) - counts + (counts + 1) / 2
    r = np.empty(len(v))
    r[order] = avg[inv]
    return r


def auroc(known: np.ndarray, unknown: np.ndarray) -> float:
    """P(score of a known image > score of an unknown one), ties counting one half (Mann-Whitney U / n1 n2)."""
    a, b = np.asarray(known, np.float64), np.asarray(unknown, np.float64)
    if a.size == 0 or b.size == 0:
        raise InputError(f"auroc() needs scores of both kinds, got {a.size} known and {b.size} unknown")
    r = _ranks(np.concatenate([a, b]))
    return float((r[: a.size].sum() - a.size * (a.size + 1) / 2) / (a.size * b.size))


def auroc_labelled(is_known: np.ndarray, scores: np.ndarray) -> float:
    """auroc() from one array of scores and a boolean array saying which are known (for the bootstrap)."""
    k = np.asarray(is_known, bool)
    if k.all() or not k.any():
        return float("nan")  # a resample without one of the kinds
    return auroc(scores[k], scores[~k])


def fpr_at_tpr(known: np.ndarray, unknown: np.ndarray, tpr: float = 0.95) -> float:
    """Share of unknown images kept at the threshold that keeps `tpr` of the known ones (ties kept)."""
    a, b = np.sort(np.asarray(known, np.float64)), np.asarray(unknown, np.float64)
    t = a[int(np.floor((1 - tpr) * a.size))]
    return float((b >= t).mean())

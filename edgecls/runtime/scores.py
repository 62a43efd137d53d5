"""Logits -> calibrated probabilities (numpy only: used on the device and in evaluation)."""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """softmax(logits / temperature) over the last axis, in float64; one new array, the rest in place."""
    z = np.array(logits, dtype=np.float64)
    if temperature != 1.0:
        z /= temperature
    z -= z.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


def topk_indices(row: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest values, largest first, ties by lower index: exactly
    np.argsort(-row, kind="stable")[:k], without sorting the whole row."""
    n = row.shape[0]
    if k >= n or n <= 64:
        return np.argsort(-row, kind="stable")[:k]
    kth = np.partition(row, n - k)[n - k]  # the k-th largest value
    cand = np.flatnonzero(row >= kth)  # every value that can make the top k, ties at the boundary included
    order = np.lexsort((cand, -row[cand]))  # by value descending, then index ascending
    return cand[order[:k]]


SCORES = ("msp", "max_logit", "energy")  # = spec.SCORE_NAMES


def ood_score(logits: np.ndarray, name: str, temperature: float = 1.0) -> np.ndarray:
    """How much each row looks like the training classes (higher = more in-distribution), one float64 per row.

    msp: max softmax(logits / T) (Hendrycks & Gimpel 2017); max_logit: the largest logit (Hendrycks et al. 2022);
    energy: T * logsumexp(logits / T), the negative free energy (Liu et al. 2020).
    """
    if name not in SCORES:
        from ..errors import InputError

        raise InputError(f"unknown open-set score {name!r}; choose one of {', '.join(SCORES)}")
    z = np.asarray(logits, dtype=np.float64)
    if name == "max_logit":
        return z.max(axis=-1)
    if name == "msp":
        return softmax(z, temperature).max(axis=-1)
    m = z.max(axis=-1, keepdims=True)
    return (m[..., 0] + temperature * np.log(np.exp((z - m) / temperature).sum(axis=-1)))


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Per-label probabilities of a multi-label model, in float64, without overflow for large |logits|."""
    z = np.asarray(logits, dtype=np.float64)
    out = np.exp(-np.abs(z))  # in (0, 1]: never overflows
    return np.where(z >= 0, 1.0 / (1.0 + out), out / (1.0 + out))


def labels_above(probs: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Multi-label decisions: label i is present when its score is >= its threshold (boolean, same shape)."""
    return np.asarray(probs) >= np.asarray(thresholds)[None, :]

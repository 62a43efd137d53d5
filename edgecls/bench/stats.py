"""Latency statistics. Percentiles use numpy's default linear interpolation between order statistics."""

from __future__ import annotations

import numpy as np

from ..errors import InputError

KEYS = ("min", "p50", "p90", "p99", "max", "mean", "std")


def latency_stats(ms: list[float] | np.ndarray) -> dict:
    a = np.asarray(ms, dtype=np.float64)
    if a.size == 0:
        raise InputError("no timings to summarize; give at least one measured run")
    return {
        "n": int(a.size),
        "min": float(a.min()),
        "p50": float(np.percentile(a, 50)),
        "p90": float(np.percentile(a, 90)),
        "p99": float(np.percentile(a, 99)),
        "max": float(a.max()),
        "mean": float(a.mean()),
        "std": float(a.std(ddof=1)) if a.size > 1 else 0.0,
    }

"""Timing calls on a shared machine: consecutive calls, or several calls in alternating chunks so their ratios come
from the same stretch of time. Used by edgecls-bench, by INT8's accuracy-budget ladder (an attempt's speed against
its FP32 artifact) and by the benchmarks; in the runtime layer so every layer above may use it."""

from __future__ import annotations

import time
from typing import Callable


def time_calls(fn: Callable[[], object], warmup: int, runs: int, duration_s: float | None) -> list[float]:
    for _ in range(warmup):
        fn()
    ms: list[float] = []
    end = time.perf_counter() + duration_s if duration_s else None
    while (len(ms) < runs) if end is None else (time.perf_counter() < end or len(ms) < 2):
        t = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t) * 1e3)
    return ms


def time_interleaved(fns: dict[str, Callable[[], object]], warmup: int, runs: int, duration_s: float | None,
                     chunk: int = 10) -> dict[str, list[float]]:
    """Time several calls in alternating chunks of `chunk` consecutive calls (A x10, B x10, C x10, A x10, ...), so a
    change in background load on a shared machine lands on all of them alike and their ratios hold; each sample is
    still one whole call. With duration_s, all of them together run about len(fns) * duration_s."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    ms: dict[str, list[float]] = {k: [] for k in fns}
    end = time.perf_counter() + duration_s * len(fns) if duration_s else None
    while (min(map(len, ms.values())) < runs) if end is None else (time.perf_counter() < end or min(map(len, ms.values())) < 2):
        for k, fn in fns.items():
            out = ms[k]
            n = chunk if end is not None else min(chunk, runs - len(out))
            for _ in range(n):
                t = time.perf_counter()
                fn()
                out.append((time.perf_counter() - t) * 1e3)
                if end is not None and t > end and len(out) >= 2:  # a slow model: stop within the chunk, not after it
                    break
    return ms


__all__ = ["time_calls", "time_interleaved"]

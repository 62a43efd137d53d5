"""Accuracy is a measurement with an error bar: intervals for a proportion, a paired test for two models on the same
images, and a bootstrap for statistics without a closed form (mAP, AUROC, ...). numpy and the standard library only,
so edgecls-bench can use it on a device.

- `wilson(k, n)`: the Wilson score interval for an accuracy (good coverage down to small n and near 0 or 1, where
  the textbook p +- 1.96 sqrt(p(1-p)/n) collapses to zero width).
- `paired(ref, other)`: two models judged on the SAME images. Only the discordant images carry information about
  the difference: b = right by ref only, c = right by other only. The exact McNemar test (b ~ Binomial(b + c, 1/2)
  under "no difference") gives the p-value; Newcombe's hybrid score interval (method 10, with its correlation
  correction) gives the 95% interval of the difference in accuracy.
- `budget(ref, other, max_drop_pts)`: is a drop within an accuracy budget, and can this validation set tell?
- `bootstrap(stat, *arrays)`: percentile bootstrap interval, resampling images (rows) jointly across the arrays.
- `spread(values)`: a few runs of one thing (seeds): their mean with a Student-t 95% interval, and min/max.
- `holm(pvalues)`: Holm's step-down adjustment, for a table of tests read together (one per corruption, per model):
  with 20 tests one p < 0.05 is expected by chance alone; an adjusted p < 0.05 keeps the family-wise error at 5%.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np

Z95 = 1.959963984540054  # the two-sided 95% normal quantile


def _z(level: float) -> float:
    if level == 0.95:
        return Z95
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + level / 2)


@dataclass(frozen=True)
class Proportion:
    """k successes of n, with its confidence interval [lo, hi] (fractions in [0, 1])."""

    k: int
    n: int
    value: float
    lo: float
    hi: float
    level: float = 0.95

    def pct(self, digits: int = 1) -> str:
        """"96.1% [92.0, 98.2] (147/153)"."""
        return f"{self.value:.{digits}%} [{self.lo * 100:.{digits}f}, {self.hi * 100:.{digits}f}] ({self.k}/{self.n})"

    def as_dict(self) -> dict:
        return asdict(self)


def wilson(k: int, n: int, level: float = 0.95) -> Proportion:
    """Wilson score interval for k successes in n trials."""
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"wilson(k={k}, n={n}): need 0 <= k <= n and n > 0")
    z = _z(level)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo, hi = max(0.0, centre - half), min(1.0, centre + half)
    if k == 0:
        lo = 0.0
    if k == n:
        hi = 1.0
    return Proportion(int(k), int(n), p, lo, hi, level)


def accuracy(correct: Sequence[bool] | np.ndarray, level: float = 0.95) -> Proportion:
    c = np.asarray(correct, dtype=bool)
    return wilson(int(c.sum()), int(c.size), level)


def binom_cdf(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2), exactly (integers: no underflow for any n a validation set has)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return sum(math.comb(n, i) for i in range(k + 1)) / (1 << n)  # int / int: exact, then one rounding


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: b, c are the discordant counts. 1.0 when there are none."""
    m = b + c
    if m == 0:
        return 1.0
    return min(1.0, 2.0 * binom_cdf(min(b, c), m))


@dataclass(frozen=True)
class Paired:
    """Two models on the same n images. difference = acc(other) - acc(ref), interval [lo, hi] (fractions)."""

    n: int
    both: int  # right by both
    ref_only: int  # b: right by ref, wrong by other
    other_only: int  # c: wrong by ref, right by other
    neither: int
    difference: float
    lo: float
    hi: float
    p_value: float  # exact McNemar, two-sided
    level: float = 0.95

    @property
    def significant(self) -> bool:
        return self.p_value < 1 - self.level

    def summary(self) -> str:
        d = self.difference * 100
        net = self.other_only - self.ref_only
        return (f"{d:+.2f} pts ({'+' if net >= 0 else ''}{net} of {self.n} images: {self.other_only} gained, "
                f"{self.ref_only} lost), 95% interval [{self.lo * 100:+.2f}, {self.hi * 100:+.2f}], "
                f"McNemar p={self.p_value:.3g}{' (significant)' if self.significant else ''}")

    def as_dict(self) -> dict:
        return {**asdict(self), "significant": self.significant}


def paired(ref_correct, other_correct, level: float = 0.95) -> Paired:
    """Compare two models judged on the same images (boolean arrays of per-image correctness, same order)."""
    r, o = np.asarray(ref_correct, dtype=bool), np.asarray(other_correct, dtype=bool)
    if r.shape != o.shape or r.ndim != 1 or r.size == 0:
        raise ValueError(f"paired(): need two non-empty 1-D arrays of the same length, got {r.shape} and {o.shape}")
    a = int((r & o).sum())
    b = int((r & ~o).sum())
    c = int((~r & o).sum())
    d = int((~r & ~o).sum())
    lo, hi = newcombe_paired(a, b, c, d, level)
    return Paired(int(r.size), a, b, c, d, (c - b) / r.size, lo, hi, mcnemar_exact(b, c), level)


def newcombe_paired(a: int, b: int, c: int, d: int, level: float = 0.95) -> tuple[float, float]:
    """Interval for p2 - p1 (p1 = (a+b)/n: ref right, p2 = (a+c)/n: other right) by Newcombe (1998), method 10:
    the Wilson intervals of both marginals, combined with the (continuity-corrected) phi correlation of the table."""
    n = a + b + c + d
    p1, p2 = (a + b) / n, (a + c) / n
    w1, w2 = wilson(a + b, n, level), wilson(a + c, n, level)
    l1, u1, l2, u2 = w1.lo, w1.hi, w2.lo, w2.hi
    denom = (a + b) * (c + d) * (a + c) * (b + d)
    phi = 0.0
    if denom > 0:
        num = a * d - b * c
        num = max(num - n / 2, 0.0) if num > 0 else num
        phi = num / math.sqrt(denom)
    # the interval of p1 - p2, then turned around for p2 - p1
    theta = p1 - p2
    low = theta - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    high = theta + math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return max(-1.0, -high), min(1.0, -low)


@dataclass(frozen=True)
class BudgetDecision:
    """Is `other` (INT8) within max_drop points of `ref` (FP32) on the same validation images?

    within: the paired drop (b - c) / n, in points, is at most max_drop: the decision.
    resolved: the 95% interval of the drop lies entirely on one side of max_drop, so the set can tell; when it does
    not, `note` says so and roughly how many validation images would. `note` ends with a period, no clause left
    open: the deploy report and the CLI print it as it is."""

    max_drop: float
    drop_pts: float
    within: bool
    resolved: bool
    comparison: Paired
    note: str

    def as_dict(self) -> dict:
        return {"max_drop": self.max_drop, "drop_pts": self.drop_pts, "within": self.within, "resolved": self.resolved,
                "note": self.note, "paired": self.comparison.as_dict()}


def budget(ref_correct, other_correct, max_drop: float | None, level: float = 0.95) -> BudgetDecision:
    cmp = paired(ref_correct, other_correct, level)
    drop = -cmp.difference * 100 + 0.0  # points lost going from ref to other (+0.0: no "-0.00")
    lo, hi = -cmp.hi * 100 + 0.0, -cmp.lo * 100 + 0.0  # interval of the drop
    one_image = 100.0 / cmp.n
    if max_drop is None:
        return BudgetDecision(float("nan"), drop, True, True, cmp,
                              f"no budget; drop {drop:+.2f} pts, 95% interval [{lo:+.2f}, {hi:+.2f}], McNemar p={cmp.p_value:.3g}.")
    within = drop <= max_drop + 1e-9
    resolved = hi <= max_drop or lo > max_drop
    parts = [f"drop {drop:+.2f} pts ({cmp.ref_only} lost, {cmp.other_only} gained of {cmp.n}), 95% interval "
             f"[{lo:+.2f}, {hi:+.2f}], McNemar p={cmp.p_value:.3g}: "
             + ("within" if within else "over") + f" the {max_drop:g}-point budget"]
    if not resolved:
        if one_image > abs(max_drop) and max_drop >= 0:
            parts.append(f"one image is {one_image:.2f} pts here, more than the budget: {cmp.n} validation images "
                         f"cannot resolve a {max_drop:g}-point budget")
        else:
            gap = abs(drop - max_drop)
            half = (hi - lo) / 2
            need = math.ceil(cmp.n * (half / gap) ** 2) if gap > 1e-9 else None
            parts.append("the validation set is too small to resolve the budget (the interval covers it)"
                         + (f"; about {need} validation images would resolve it" if need else ""))
    if not within and not cmp.significant:
        parts.append("the drop itself is not significant (it may be noise)")
    return BudgetDecision(float(max_drop), drop, within, resolved, cmp, "; ".join(parts) + ".")


def bootstrap(stat: Callable[..., float], *arrays, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """(estimate, lo, hi): percentile bootstrap of stat(*arrays) resampling rows (images) jointly, e.g.
    bootstrap(lambda y, s: auroc(y, s), labels, scores). Deterministic for a seed."""
    arrs = [np.asarray(a) for a in arrays]
    if not arrs or any(len(a) != len(arrs[0]) for a in arrs) or len(arrs[0]) == 0:
        raise ValueError("bootstrap(): give one or more non-empty arrays of the same length")
    n = len(arrs[0])
    rng = np.random.default_rng(seed)
    est = float(stat(*arrs))
    vals = np.empty(n_boot)
    for i in range(n_boot):
        idx = rng.integers(0, n, n)
        vals[i] = stat(*(a[idx] for a in arrs))
    alpha = (1 - level) / 2
    lo, hi = np.nanquantile(vals, [alpha, 1 - alpha])
    return est, float(lo), float(hi)


# two-sided 95% Student t quantiles for 1..30 degrees of freedom (beyond: the normal one is within 4%)
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120,
        2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


@dataclass(frozen=True)
class Spread:
    """Several runs of one thing (seeds): mean, Student-t 95% interval of the mean (None for one run), min, max."""

    n: int
    mean: float
    lo: float | None
    hi: float | None
    min: float
    max: float
    sd: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def spread(values: Sequence[float]) -> Spread:
    v = np.asarray(values, np.float64)
    if v.ndim != 1 or v.size == 0 or not np.all(np.isfinite(v)):
        raise ValueError("spread(): give one or more finite values")
    m = float(v.mean())
    if v.size == 1:
        return Spread(1, m, None, None, m, m, None)
    sd = float(v.std(ddof=1))
    t = _T95[v.size - 2] if v.size - 1 <= len(_T95) else Z95
    half = t * sd / math.sqrt(v.size)
    return Spread(int(v.size), m, m - half, m + half, float(v.min()), float(v.max()), sd)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input's order: the i-th smallest of m is multiplied by (m - i), made
    non-decreasing along that order, capped at 1 (Holm 1979). Controls the family-wise error without assuming
    the tests independent."""
    p = np.asarray(pvalues, np.float64)
    if p.ndim != 1 or np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("holm(): give a list of p-values in [0, 1]")
    m = p.size
    order = np.argsort(p, kind="stable")
    adj = np.maximum.accumulate(np.minimum(1.0, p[order] * (m - np.arange(m))))
    out = np.empty(m)
    out[order] = adj
    return out.tolist()


__all__ = ["BudgetDecision", "Paired", "Proportion", "Z95", "accuracy", "bootstrap", "budget", "holm", "mcnemar_exact",
           "newcombe_paired", "paired", "spread", "Spread", "wilson"]

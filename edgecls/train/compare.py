"""Which backbone: several trained on the same split, judged on the same validation images.

A larger backbone costs latency on the device and time here, so it must earn its place: walking the candidates from
the cheapest (fastest) up, the pick moves to a more expensive one only when that one is more accurate for real:

- the paired test on the validation images says so (each candidate's best seed; exact McNemar p < 0.05 for top-1,
  a paired bootstrap interval of the mAP difference above 0 for multi-label), and
- with several seeds, it holds across seeds: every seed of the more expensive candidate beats the same seed of the
  cheaper one (same split, same seed number, so the same data order and initialization draws).

A candidate over the latency budget is shown but never picked (`eligible=False`); when none is eligible the fastest
is named. Every candidate's row carries its figure with its 95% interval, its seeds' spread and its test against the
pick, so the report can show why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import stats


@dataclass
class Candidate:
    name: str  # e.g. "efficientnet_lite1 240px"
    seed_scores: list[float]  # validation top-1 (mAP for multi-label) per seed, in seed order
    logits: np.ndarray  # the best seed's validation logits
    cost: float  # lower is cheaper: the latency budget's figure (ms) when measured, else seconds per image here
    latency_ms: float | None = None
    eligible: bool = True  # meets the latency budget (or there is none)
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def best_seed(self) -> int:
        return int(np.argmax(self.seed_scores))


def _correct(c: Candidate, y: np.ndarray) -> np.ndarray:
    return c.logits.argmax(1) == y


def better(a: Candidate, b: Candidate, y: np.ndarray) -> tuple[bool, str]:
    """Is `a` more accurate than `b` for real (paired test, and across seeds)? -> (verdict, the evidence in words)."""
    if y.ndim == 2:
        from ..evaluation.multilabel import paired_map
        from ..runtime.scores import sigmoid

        drop, lo, hi = paired_map(y, sigmoid(b.logits), sigmoid(a.logits))  # mAP(b) - mAP(a), points
        gain, glo, ghi = -drop, -hi, -lo
        test_ok = glo > 0
        text = f"mAP {gain:+.2f} pts [{glo:+.2f}, {ghi:+.2f}] (paired bootstrap)"
    else:
        p = stats.paired(_correct(b, y), _correct(a, y))
        test_ok = p.significant and p.difference > 0
        text = p.summary()
    pairs = list(zip(a.seed_scores, b.seed_scores))
    seeds_ok = len(pairs) < 2 or all(x > z for x, z in pairs)
    if len(pairs) >= 2:
        wins = sum(x > z for x, z in pairs)
        text += f"; better in {wins} of {len(pairs)} seeds"
    return test_ok and seeds_ok, text


def choose(cands: list[Candidate], y: np.ndarray) -> tuple[Candidate, list[dict], list[str]]:
    """-> (the pick, a row per candidate, the reasons in order)."""
    order = sorted(cands, key=lambda c: c.cost)
    eligible = [c for c in order if c.eligible]
    why = []
    if not eligible:
        pick = order[0]
        why.append(f"no candidate meets the latency budget; {pick.name} is the fastest")
    else:
        pick = eligible[0]
        why.append(f"start from the cheapest candidate within the latency budget: {pick.name}")
        for c in eligible[1:]:
            ok, text = better(c, pick, y)
            if ok:
                why.append(f"{c.name} is more accurate than {pick.name} for real: {text}")
                pick = c
            else:
                why.append(f"{c.name} vs {pick.name}: {text}; not a real gain, so the cheaper one stays")
    for c in order:
        if not c.eligible:
            why.append(f"{c.name}: over the latency budget ({c.note})")
    rows = [row(c, pick, y) for c in order]
    return pick, rows, why


def row(c: Candidate, pick: Candidate, y: np.ndarray) -> dict:
    sp = stats.spread(c.seed_scores)
    r = {"name": c.name, "cost": c.cost, "latency_ms": c.latency_ms, "eligible": c.eligible, "note": c.note,
         "picked": c is pick, "seeds": c.seed_scores, "best_seed": c.best_seed, "seed_spread": sp.as_dict(), **c.extra}
    if y.ndim == 2:
        from ..evaluation.multilabel import mean_ap
        from ..runtime.scores import sigmoid

        ss = sigmoid(c.logits)
        v, lo, hi = stats.bootstrap(lambda i: mean_ap(y[i], ss[i]), np.arange(len(y)), n_boot=500)
        r.update(value=v, interval=[lo, hi], n=len(y), metric="mAP")
    else:
        acc = stats.accuracy(_correct(c, y))
        r.update(value=acc.value, interval=[acc.lo, acc.hi], k=acc.k, n=acc.n, metric="top-1")
    if c is not pick:
        r["vs_pick"] = better(c, pick, y)[1]
    return r


__all__ = ["Candidate", "better", "choose", "row"]

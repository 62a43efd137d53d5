"""Drift monitoring on the device: is the field still what the model saw when its reference was fitted?

Per frame the monitor takes the model input the Predictor already made and the logits it already got, so it adds
no decoding or inference: cheap input statistics of the pixels (brightness, contrast, sharpness, noise, colour
balance, on a grid of about 64 x 64 pixels of the model input), the answer's class, its confidence and whether it would be rejected as unknown.
Every `window` frames it compares each statistic's distribution with the reference stored in the spec
(`spec.reference`, fitted on validation images by `edgecls fit-reference`) by the population stability index

    PSI = sum_i (p_i - q_i) * ln(p_i / q_i)   (p: this window, q: the reference, over the reference's bins)

and raises a DriftEvent for each statistic over its threshold, with a message naming what moved ("mean brightness
-45%", "'cat' 5.0x more frequent (50% vs 10%)", "unknown rate 31% vs 4%"). Events go to the `on_drift` callback
and, with every window's figures, to a JSON-lines log the app can ship (`edgecls monitor LOG` prints it).

Thresholds are set per statistic from PSI's distribution when nothing changed, not by a fixed rule of thumb: with B
bins fixed by the reference, a window of n frames and a reference of m images drawn from the same population,
PSI ~ (1/n + 1/m) * chi-square(B - 1) asymptotically (Yurdakul 2018, "Statistical properties of population stability
index"; PSI is Jeffreys' divergence, whose second-order term is Pearson's chi-square distance). The user's knob is
`false_alarm_rate`, the chance that a window of an unchanged stream raises any event (default 1e-4: with windows of
250 frames, one false alarm per 2.5 million frames on average); it is split over the statistics of a window by
Bonferroni, as alibi-detect's ChiSquareDrift/TabularDrift do over features. The rule-of-thumb scale (0.1 moderate,
0.25 large) ignores n and m: with 250 frames against 900 images 0.25 is too high for a one-class prior change (PSI
0.20 when one class of six goes from 17% to 36% of the answers), and against a small reference too low (153 photos
over 20 class bins: PSI about 0.2 with nothing changed).

The class prior is tested twice: over all classes together (chi-square with classes - 1 degrees of freedom, for a
change spread over many classes) and class by class, each class's share against the rest (one degree of freedom,
Bonferroni over the classes: `class_share`), which is what catches one class becoming several times as frequent.
An explicit `psi_threshold` restores the single fixed threshold for every statistic (and drops `class_share`, whose
PSI stays under the all-classes one but for smoothing: merging bins cannot raise a divergence). numpy only (device
core).
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import math
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import InputError, SpecError
from .scores import ood_score, softmax
from .spec import INPUT_STATS, Histogram, ModelSpec, Reference

CHUNK = 32  # frames whose statistics are computed together
DEFAULT_FALSE_ALARM_RATE = 1e-4  # per window, all statistics together
MAX_PRIOR_BINS = 20  # classes compared one by one; the rest of a long label list is pooled into "other classes"
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


GRID = 64  # input statistics are computed on about GRID x GRID pixels of the model input (a stride, no filtering)


def input_grid(batch: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """The pixels the statistics use: every k-th row and column of a model input batch (about GRID x GRID), copied,
    still in the artifact's dtype and layout (uint8 for fused inputs: a few KB per frame)."""
    x = np.asarray(batch)
    if x.ndim != 4:
        raise InputError(f"the drift monitor takes a preprocessed batch (4-D), got shape {x.shape}")
    k = max(1, min(spec.input.height, spec.input.width) // GRID)
    return np.ascontiguousarray(x[:, :, ::k, ::k] if spec.input.layout == "NCHW" else x[:, ::k, ::k, :])


def grid_pixels(grid: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """input_grid() -> float32 N x h x w x C pixels in RGB order, 0..255 (the normalization undone)."""
    x = grid.transpose(0, 2, 3, 1) if spec.input.layout == "NCHW" else grid
    x = x.astype(np.float32)
    if not spec.input.normalized_in_graph:  # undo (px/255 - mean) / std
        x = x * (np.asarray(spec.preprocess.std, np.float32) * 255.0) + np.asarray(spec.preprocess.mean, np.float32) * 255.0
    if x.shape[-1] == 3 and spec.preprocess.color == "BGR":
        x = x[..., ::-1]
    return x


def input_stats(batch: np.ndarray, spec: ModelSpec) -> dict[str, np.ndarray]:
    """Per image of a model input batch: brightness (mean luma, 0-255), contrast (luma std), sharpness (mean |Laplacian|
    of luma), noise (median |Laplacian|: the floor that sensor noise raises and blur lowers), red_balance and
    blue_balance (ln of mean R / mean G and mean B / mean G; 0 for grayscale models)."""
    return grid_stats(input_grid(batch, spec), spec)


def grid_stats(grid: np.ndarray, spec: ModelSpec) -> dict[str, np.ndarray]:
    """input_stats() of the pixels input_grid() kept (the monitor keeps grids and computes the statistics in chunks)."""
    px = grid_pixels(grid, spec)
    n, h, w, c = px.shape
    flat = px.reshape(n, h * w, c)
    means = (np.ones((1, h * w), np.float32) @ flat)[:, 0, :] / (h * w)  # channel means as one BLAS call each
    luma = flat @ _LUMA if c == 3 else flat[..., 0]  # n x (h*w)
    brightness = means @ _LUMA if c == 3 else means[:, 0]
    contrast = np.sqrt(np.maximum(np.einsum("np,np->n", luma, luma) / (h * w) - brightness * brightness, 0.0))
    luma = luma.reshape(n, h, w)
    lap = np.abs(4 * luma[:, 1:-1, 1:-1] - luma[:, :-2, 1:-1] - luma[:, 2:, 1:-1] - luma[:, 1:-1, :-2] - luma[:, 1:-1, 2:])
    lap = lap.reshape(n, -1)
    empty = lap.shape[1] == 0
    out = {
        "brightness": brightness,
        "contrast": contrast,
        "sharpness": np.zeros(n) if empty else lap.mean(axis=1),
        "noise": np.zeros(n) if empty else np.median(lap[:, ::3], axis=1),  # every 3rd value: a third of the cost
        "red_balance": np.log((means[:, 0] + 1) / (means[:, 1] + 1)) if c == 3 else np.zeros(n),
        "blue_balance": np.log((means[:, 2] + 1) / (means[:, 1] + 1)) if c == 3 else np.zeros(n),
    }
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


def output_stats(logits: np.ndarray, spec: ModelSpec) -> dict[str, np.ndarray]:
    """Per row of logits: the class (argmax), confidence (max softmax(logits / T)), unknown (1.0 when spec.open_set
    would reject it, else 0.0; all 0 without a fitted threshold)."""
    z = np.asarray(logits, np.float64)
    conf = softmax(z, spec.temperature).max(axis=1)
    rej = spec.open_set
    unknown = (ood_score(z, rej.score, spec.temperature) < rej.threshold) if rej is not None else np.zeros(len(z), bool)
    return {"class": z.argmax(axis=1), "confidence": conf, "unknown": unknown.astype(np.float64)}


# --- the reference, fitted on validation images (edgecls fit-reference) --------------------------------------
def histogram(values: np.ndarray, bins: int = 10) -> Histogram:
    """Quantile bins of the values (deciles by default; tied quantiles merged) and the share in each."""
    v = np.asarray(values, np.float64)
    if v.size == 0 or not np.isfinite(v).all():
        raise InputError("a reference histogram needs finite values from at least one image")
    edges = np.unique(np.quantile(v, np.linspace(0, 1, bins + 1)[1:-1]))
    counts = np.bincount(np.searchsorted(edges, v, side="right"), minlength=len(edges) + 1)
    probs = counts / counts.sum()
    return Histogram(edges=tuple(float(e) for e in edges), probs=tuple(float(p) for p in probs), mean=float(v.mean()))


def build_reference(spec: ModelSpec, stats: dict[str, np.ndarray], logits: np.ndarray, bins: int = 10) -> Reference:
    """The Reference from validation images: `stats` = input_stats() of their model inputs (concatenated), `logits`
    the artifact's logits for them. Uses spec.open_set (fit it first) for the unknown rate."""
    out = output_stats(logits, spec)
    n = len(out["class"])
    prior = np.bincount(out["class"], minlength=spec.num_classes) / n
    hists = {"confidence": histogram(out["confidence"], bins)}
    for name in INPUT_STATS:
        hists[name] = histogram(stats[name], bins)
    return Reference(n=n, class_prior=tuple(float(p) for p in prior), unknown_rate=float(out["unknown"].mean()),
                     histograms=hists)


# --- comparison ------------------------------------------------------------------------------------------------
def psi(counts: np.ndarray, ref_probs: np.ndarray, n_reference: int | None = None) -> float:
    """Population stability index of observed counts against reference shares, both smoothed so no bin is empty:
    half a frame added to each bin of the window and, given `n_reference` (the images the shares were measured on),
    half an image to each reference bin (else a floor of 1e-4), so a class the reference never saw does not make
    PSI explode on its first frame."""
    counts = np.asarray(counts, np.float64)
    p = (counts + 0.5) / (counts.sum() + 0.5 * len(counts))
    q = np.asarray(ref_probs, np.float64)
    q = (q * n_reference + 0.5) / (n_reference + 0.5 * len(q)) if n_reference else np.maximum(q, 1e-4)
    q = q / q.sum()
    return float(((p - q) * np.log(p / q)).sum())


def chi2_sf(x: float, dof: int) -> float:
    """P(X > x) for X ~ chi-square with an integer number of degrees of freedom (the closed forms of the regularized
    upper incomplete gamma function Q(dof/2, x/2): a Poisson sum for even dof, erfc plus a series for odd)."""
    if not isinstance(dof, int) or dof < 1:
        raise InputError(f"chi-square degrees of freedom must be a positive integer, got {dof!r}")
    if x <= 0:
        return 1.0
    h = x / 2.0
    if dof % 2 == 0:
        total = sum(math.exp(-h + i * math.log(h) - math.lgamma(i + 1)) for i in range(dof // 2))
    else:
        total = math.erfc(math.sqrt(h)) + sum(math.exp(-h + (i - 0.5) * math.log(h) - math.lgamma(i + 0.5))
                                              for i in range(1, (dof + 1) // 2))
    return min(1.0, total)


@functools.lru_cache(maxsize=256)
def chi2_isf(p: float, dof: int) -> float:
    """The x with P(X > x) = p for X ~ chi-square(dof) (bisection on chi2_sf, to a relative 1e-10)."""
    if not 0.0 < p < 1.0:
        raise InputError(f"a tail probability must lie strictly between 0 and 1, got {p!r}")
    lo, hi = 0.0, dof + 10.0
    while chi2_sf(hi, dof) > p:
        lo, hi = hi, hi * 2
    while hi - lo > 1e-10 * hi:
        mid = (lo + hi) / 2
        if chi2_sf(mid, dof) > p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def null_threshold(bins: int, window: int, n_reference: int, alpha: float) -> float:
    """The PSI that a window of `window` frames exceeds with probability about `alpha` when the stream is still the
    reference's population: (1/window + 1/n_reference) * chi-square(bins - 1) quantile. A one-bin statistic
    (every reference value tied) cannot move: infinity."""
    if bins < 2:
        return math.inf
    return (1.0 / window + 1.0 / n_reference) * chi2_isf(alpha, bins - 1)


@dataclass(frozen=True)
class DriftEvent:
    statistic: str  # "brightness", "class_prior", "class_share", "unknown_rate", "confidence", ...
    psi: float
    message: str  # what moved, in words: "mean brightness -45% (61 vs 112)"
    frames: int  # frames seen when the window closed
    window: int  # frames in the window
    threshold: float | None = None  # the statistic's threshold it went over

    def as_dict(self) -> dict:
        return asdict(self)


_WORDS = {"brightness": "mean brightness", "contrast": "contrast", "sharpness": "sharpness", "noise": "noise floor"}


def _message(name: str, now: float, ref: float) -> str:
    if name in _WORDS:
        pct = (now / ref - 1) * 100 if ref > 1e-9 else float("inf")
        return f"{_WORDS[name]} {pct:+.0f}% ({now:.3g} vs {ref:.3g})"
    if name in ("red_balance", "blue_balance"):
        ch = "R/G" if name == "red_balance" else "B/G"
        return f"colour balance {ch} {math.exp(now - ref):.2f}x the reference"
    return f"mean confidence {now:.2f} vs {ref:.2f}"


class DriftMonitor:
    """Accumulates per-frame statistics and compares each full window with spec.reference.

    window: frames per comparison (default 250).
    false_alarm_rate: the chance that a window of an unchanged stream raises any event (default 1e-4); each
        statistic's PSI threshold follows from it, the window and the reference's size (see `thresholds`).
    psi_threshold: instead, one fixed PSI threshold for every statistic (the rule of thumb: 0.1 moderate, 0.25 large).
    on_drift: called with each DriftEvent (from the thread that ran the frame; keep it short).
    log: a JSON-lines file, one record per window ({"frames", "psi", "thresholds", "now", "ref", "events"}),
        appended and flushed.

    The false-alarm rate assumes the frames of a window are independent draws, as the reference images were;
    consecutive frames of one video are not (a window of 250 frames of one scene is one scene, not 250 samples of the
    field), so feed the monitor spaced-out frames (e.g. one a second) for the rate to hold.
    """

    def __init__(self, spec: ModelSpec, *, window: int = 250, false_alarm_rate: float | None = None,
                 psi_threshold: float | None = None, on_drift: Callable[[DriftEvent], Any] | None = None,
                 log: str | os.PathLike | None = None):
        if spec.reference is None:
            raise SpecError("this spec has no drift reference; fit one on validation images of the known classes "
                            "(edgecls fit-reference MODEL --data DIR, or edgecls.openset.fit_reference)")
        if isinstance(window, bool) or not isinstance(window, int) or window < 20:
            raise InputError(f"window={window!r}: give at least 20 frames per comparison (default 250)")
        if psi_threshold is not None and false_alarm_rate is not None:
            raise InputError("give either false_alarm_rate (thresholds per statistic from the window and reference "
                             "sizes) or psi_threshold (one fixed PSI threshold for every statistic), not both")
        if psi_threshold is not None and not (_number(psi_threshold) and 0 < psi_threshold < math.inf):
            raise InputError(f"psi_threshold={psi_threshold!r} must be a number > 0 (0.1: moderate shift, 0.25: large), "
                             "or None for thresholds from false_alarm_rate")
        if false_alarm_rate is not None and not (_number(false_alarm_rate) and 0 < false_alarm_rate < 1):
            raise InputError(f"false_alarm_rate={false_alarm_rate!r} is the chance that a window of an unchanged stream "
                             f"raises an event: give a probability strictly between 0 and 1 (default "
                             f"{DEFAULT_FALSE_ALARM_RATE:g})")
        self.spec, self.ref = spec, spec.reference
        self.window, self.on_drift = window, on_drift
        self.psi_threshold = None if psi_threshold is None else float(psi_threshold)
        self.false_alarm_rate = None if psi_threshold is not None else float(false_alarm_rate or DEFAULT_FALSE_ALARM_RATE)
        self.log_path = Path(log) if log is not None else None
        self.frames = 0  # frames in closed windows
        self.history: list[dict] = []  # one record per closed window (what the log holds)
        self.events: list[DriftEvent] = []
        self._lock = threading.Lock()
        self._buf: dict[str, list[np.ndarray]] = {}  # per-frame statistics of the open window
        self._count = 0
        self._raw: list[tuple[np.ndarray, np.ndarray]] = []  # (input grid, logits) not yet turned into statistics
        self._raw_n = 0
        prior = np.asarray(self.ref.class_prior)
        bins = min(len(prior), MAX_PRIOR_BINS)
        keep = np.argsort(-prior, kind="stable")[: bins - 1] if len(prior) > bins else np.arange(len(prior))
        self._prior_map = np.full(len(prior), bins - 1, np.int64)  # class -> bin; pooled classes -> the last bin
        self._prior_map[keep] = np.arange(len(keep))
        self._prior_ref = np.bincount(self._prior_map, weights=prior, minlength=bins)
        self._prior_keep = keep
        self.thresholds = self._thresholds()

    def _thresholds(self) -> dict[str, float]:
        """Each statistic's PSI threshold: the fixed psi_threshold, or its null distribution's 1 - a quantile with a =
        false_alarm_rate / (statistics per window), split again over the classes for class_share."""
        bins = {name: len(h.probs) for name, h in self.ref.histograms.items()}
        bins["class_prior"] = len(self._prior_ref)
        # one class against the rest: with two bins that is the all-classes test again, and under a fixed threshold it
        # can never fire before class_prior does
        if self.psi_threshold is None and len(self._prior_ref) > 2:
            bins["class_share"] = 2
        if self.spec.open_set is not None:
            bins["unknown_rate"] = 2
        if self.psi_threshold is not None:
            return {name: self.psi_threshold for name in bins}
        a = self.false_alarm_rate / len(bins)
        return {name: null_threshold(b, self.window, self.ref.n, a / (len(self._prior_keep) if name == "class_share" else 1))
                for name, b in bins.items()}

    def update(self, batch: np.ndarray, logits: np.ndarray, predictions: Sequence[Any] | None = None) -> list[DriftEvent]:
        """Add one processed batch (model inputs and their logits); returns the events of a window it closed.

        Per frame it only keeps a small copy of the input (input_grid) and the logits; the statistics are computed
        for CHUNK frames at once (numpy's per-call cost, not the pixels, dominates for one small frame)."""
        grid = input_grid(batch, self.spec)
        logits = np.asarray(logits)
        if len(logits) != len(grid):
            raise InputError(f"{len(grid)} inputs but {len(logits)} rows of logits; pass the logits of this batch")
        events: list[DriftEvent] = []
        with self._lock:
            self._raw.append((grid, logits))
            self._raw_n += len(grid)
            if self._raw_n >= CHUNK or self._count + self._raw_n >= self.window:
                g = np.concatenate([r[0] for r in self._raw])
                z = np.concatenate([r[1] for r in self._raw])
                self._raw, self._raw_n = [], 0
                for k, v in {**grid_stats(g, self.spec), **output_stats(z, self.spec)}.items():
                    self._buf.setdefault(k, []).append(v)
                self._count += len(z)
            while self._count >= self.window:  # a batch larger than a window closes several, each exactly `window`
                data = {k: np.concatenate(v) for k, v in self._buf.items()}
                self._buf = {k: [v[self.window :]] for k, v in data.items()}
                self._count -= self.window
                self.frames += self.window
                new, record = self._compare({k: v[: self.window] for k, v in data.items()})
                self.history.append(record)
                self.events.extend(new)
                events.extend(new)
                if self.log_path is not None:
                    with open(self.log_path, "a", encoding="utf-8") as fh:
                        fh.write(json.dumps(record) + "\n")
        for e in events:
            if self.on_drift is not None:
                self.on_drift(e)
        return events

    def _class_shares(self, counts: np.ndarray) -> np.ndarray:
        """PSI of each named class's share against the rest (the pooled "other classes" bin is never named)."""
        n, m = counts.sum(), self.ref.n
        return np.array([psi(np.array([c, n - c]), np.array([q, 1.0 - q]), m)
                         for c, q in zip(counts[: len(self._prior_keep)], self._prior_ref[: len(self._prior_keep)])])

    def _prior_message(self, share: np.ndarray, moved: np.ndarray) -> str:
        """Name the classes whose shares moved: those whose own share test is over class_share's threshold (under a
        fixed psi_threshold: those at 1.5x or under 1/1.5 of their reference share), the more frequent ones first (the
        new scene is what they show), at most three; when none qualifies, the one with the largest PSI."""
        ref = np.maximum(self._prior_ref[: len(moved)], 1e-4)
        ratio = share[: len(moved)] / ref
        limit = self.thresholds.get("class_share")
        named = np.flatnonzero(moved > limit) if limit is not None else np.flatnonzero((ratio >= 1.5) | (ratio <= 1 / 1.5))
        if named.size == 0:
            named = np.array([int(np.argmax(moved))])
        up, down = named[ratio[named] >= 1], named[ratio[named] < 1]
        order = [*up[np.argsort(-ratio[up], kind="stable")], *down[np.argsort(ratio[down], kind="stable")]]
        words = []
        for i in order[:3]:
            label = self.spec.labels[int(self._prior_keep[i])]
            if ratio[i] >= 1:
                how = f"{ratio[i]:.1f}x more frequent"
            else:
                how = "absent" if share[i] == 0 else f"{1 / ratio[i]:.1f}x less frequent"
            words.append(f"'{label}' {how} ({share[i]:.0%} vs {self._prior_ref[i]:.0%})")
        more = f" and {len(order) - 3} more classes" if len(order) > 3 else ""
        return ", ".join(words) + more

    def _compare(self, data: dict[str, np.ndarray]) -> tuple[list[DriftEvent], dict]:
        n, ref, m = len(data["class"]), self.ref, self.ref.n
        scores, now, was, msgs = {}, {}, {}, {}
        for name, h in ref.histograms.items():
            v = data[name]
            counts = np.bincount(np.searchsorted(h.edges, v, side="right"), minlength=len(h.probs))
            scores[name], now[name], was[name] = psi(counts, h.probs, m), float(v.mean()), h.mean
            msgs[name] = _message(name, now[name], was[name])
        counts = np.bincount(self._prior_map[data["class"]], minlength=len(self._prior_ref))
        shares = self._class_shares(counts)
        scores["class_prior"] = psi(counts, self._prior_ref, m)
        msgs["class_prior"] = self._prior_message(counts / n, shares)
        if "class_share" in self.thresholds:
            scores["class_share"], msgs["class_share"] = float(shares.max()), msgs["class_prior"]
        if self.spec.open_set is not None:
            u = float(data["unknown"].mean())
            scores["unknown_rate"] = psi(np.array([n - u * n, u * n]), np.array([1 - ref.unknown_rate, ref.unknown_rate]), m)
            now["unknown_rate"], was["unknown_rate"] = u, ref.unknown_rate
            msgs["unknown_rate"] = f"unknown rate {u:.0%} vs {ref.unknown_rate:.0%}"
        limit = self.thresholds
        over = sorted((k for k, v in scores.items() if v > limit[k]), key=lambda k: -scores[k] / limit[k])
        events = [DriftEvent(k, round(scores[k], 4), msgs[k], self.frames, n, round(limit[k], 4)) for k in over]
        record = {"time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "frames": self.frames,
                  "window": n, "psi_threshold": self.psi_threshold, "false_alarm_rate": self.false_alarm_rate,
                  "thresholds": {k: round(v, 4) if math.isfinite(v) else None for k, v in limit.items()},
                  "psi": {k: round(v, 4) for k, v in scores.items()},
                  "now": {k: round(v, 5) for k, v in now.items()}, "ref": {k: round(v, 5) for k, v in was.items()},
                  "events": [e.as_dict() for e in events]}
        return events, record


def _number(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) and math.isfinite(x)


def read_log(path: str | os.PathLike) -> list[dict]:
    """The window records of a monitor's JSON-lines log, in order (InputError for a missing or damaged file)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"drift log {p} not found; DriftMonitor(log=...) / Predictor.start_monitor(log=...) writes it")
    out = []
    for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as exc:
            raise InputError(f"{p}:{i} is not a JSON line ({exc}); the log is damaged (a record cut by a crash?)") from None
        if not isinstance(rec, dict) or not isinstance(rec.get("psi"), dict) or "frames" not in rec:
            raise InputError(f"{p}:{i} is not a drift window record (no 'frames'/'psi'); is this an edgecls drift log?")
        out.append(rec)
    return out

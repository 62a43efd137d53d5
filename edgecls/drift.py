"""Drift monitoring on the device: is the field still what the model saw when its reference was fitted?

Per frame the monitor takes the model input the Predictor already made and the logits it already got, so it adds
no decoding or inference: cheap input statistics of the pixels (brightness, contrast, sharpness, noise, colour
balance, on a grid of about 64 x 64 pixels of the model input), the answer's class, its confidence and whether it would be rejected as unknown.
Every `window` frames it compares each statistic's distribution with the reference stored in the spec
(`spec.reference`, fitted on validation images by `edgecls fit-reference`) by the population stability index

    PSI = sum_i (p_i - q_i) * ln(p_i / q_i)   (p: this window, q: the reference, over the reference's bins)

and raises a DriftEvent for each statistic over `psi_threshold`, with a message naming what moved ("mean brightness
-45%", "'cat' 5.0x more frequent (50% vs 10%)", "unknown rate 31% vs 4%"). Events go to the `on_drift` callback
and, with every window's figures, to a JSON-lines log the app can ship (`edgecls monitor LOG` prints it).

Why PSI: it is a per-statistic distance with a long-used scale (< 0.1 stable, > 0.25 a real shift) and, over the
reference's decile bins, its value under no drift is about (bins - 1) * (1/window + 1/n_reference) (~0.05 for 250
frames): a default of 0.25 leaves a margin of many standard deviations, so an in-distribution stream stays quiet.
numpy only (device core).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .errors import InputError, SpecError
from .scores import ood_score, softmax
from .spec import INPUT_STATS, Histogram, ModelSpec, Reference

CHUNK = 32  # frames whose statistics are computed together
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
def psi(counts: np.ndarray, ref_probs: np.ndarray) -> float:
    """Population stability index of observed counts against reference shares (both smoothed so no bin is empty)."""
    counts = np.asarray(counts, np.float64)
    p = (counts + 0.5) / (counts.sum() + 0.5 * len(counts))
    q = np.maximum(np.asarray(ref_probs, np.float64), 1e-4)
    q = q / q.sum()
    return float(((p - q) * np.log(p / q)).sum())


@dataclass(frozen=True)
class DriftEvent:
    statistic: str  # "brightness", "class_prior", "unknown_rate", "confidence", ...
    psi: float
    message: str  # what moved, in words: "mean brightness -45% (61 vs 112)"
    frames: int  # frames seen when the window closed
    window: int  # frames in the window

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

    window: frames per comparison (default 250). psi_threshold: a statistic over it raises an event (default 0.25).
    on_drift: called with each DriftEvent (from the thread that ran the frame; keep it short).
    log: a JSON-lines file, one record per window ({"frames", "psi", "now", "ref", "events"}), appended and flushed.
    """

    def __init__(self, spec: ModelSpec, *, window: int = 250, psi_threshold: float = 0.25,
                 on_drift: Callable[[DriftEvent], Any] | None = None, log: str | os.PathLike | None = None):
        if spec.reference is None:
            raise SpecError("this spec has no drift reference; fit one on validation images of the known classes "
                            "(edgecls fit-reference MODEL --data DIR, or edgecls.openset.fit_reference)")
        if not isinstance(window, int) or window < 20:
            raise ValueError(f"window={window!r}: give at least 20 frames per comparison (default 250)")
        if not psi_threshold > 0:
            raise ValueError(f"psi_threshold={psi_threshold!r} must be > 0 (0.1: moderate shift, 0.25: large; default 0.25)")
        self.spec, self.ref = spec, spec.reference
        self.window, self.psi_threshold, self.on_drift = window, float(psi_threshold), on_drift
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

    def _prior_message(self, share: np.ndarray) -> str:
        """Name the class whose share moved most: the one most over-represented when any is 1.5x its reference or
        more, else the most under-represented one."""
        ref = np.maximum(self._prior_ref, 1e-4)
        named = len(self._prior_keep)  # bins of single classes (a pooled "other" bin is never named)
        ratio = share[:named] / ref[:named]
        i = int(np.argmax(ratio))
        if ratio[i] < 1.5:
            i = int(np.argmin(ratio))
        label = self.spec.labels[int(self._prior_keep[i])]
        if ratio[i] >= 1:
            how = f"{ratio[i]:.1f}x more frequent"
        else:
            how = "absent" if share[i] == 0 else f"{1 / ratio[i]:.1f}x less frequent"
        return f"'{label}' {how} ({share[i]:.0%} vs {self._prior_ref[i]:.0%})"

    def _compare(self, data: dict[str, np.ndarray]) -> tuple[list[DriftEvent], dict]:
        n, ref = len(data["class"]), self.ref
        scores, now, was, msgs = {}, {}, {}, {}
        for name, h in ref.histograms.items():
            v = data[name]
            counts = np.bincount(np.searchsorted(h.edges, v, side="right"), minlength=len(h.probs))
            scores[name], now[name], was[name] = psi(counts, h.probs), float(v.mean()), h.mean
            msgs[name] = _message(name, now[name], was[name])
        counts = np.bincount(self._prior_map[data["class"]], minlength=len(self._prior_ref))
        scores["class_prior"] = psi(counts, self._prior_ref)
        msgs["class_prior"] = self._prior_message(counts / n)
        if self.spec.open_set is not None:
            u = float(data["unknown"].mean())
            scores["unknown_rate"] = psi(np.array([n - u * n, u * n]), np.array([1 - ref.unknown_rate, ref.unknown_rate]))
            now["unknown_rate"], was["unknown_rate"] = u, ref.unknown_rate
            msgs["unknown_rate"] = f"unknown rate {u:.0%} vs {ref.unknown_rate:.0%}"
        events = [DriftEvent(k, round(v, 4), msgs[k], self.frames, n)
                  for k, v in sorted(scores.items(), key=lambda kv: -kv[1]) if v > self.psi_threshold]
        record = {"time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "frames": self.frames,
                  "window": n, "psi_threshold": self.psi_threshold, "psi": {k: round(v, 4) for k, v in scores.items()},
                  "now": {k: round(v, 5) for k, v in now.items()}, "ref": {k: round(v, 5) for k, v in was.items()},
                  "events": [e.as_dict() for e in events]}
        return events, record


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

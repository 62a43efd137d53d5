"""A drift log's history as a picture: PSI per statistic per window as a multiple of that statistic's event threshold
(thresholds differ per statistic; 1 = the line an event crosses), the windows with events, and each statistic's window
mean relative to its reference, so "brightness fell 45% at frame 3000" reads off one chart."""

from __future__ import annotations

import io
import os
from pathlib import Path

from ..errors import InputError
from ..runtime.artifacts import atomic_write_bytes

DEFAULT_PSI = 0.25  # DriftMonitor's old fixed default, for logs written before records carried their threshold


def threshold_of(record: dict, name: str) -> float | None:
    """A statistic's event threshold in one window record: its own (records since per-statistic thresholds), else the
    record's fixed psi_threshold, else the old default 0.25; None when the statistic cannot move (one bin)."""
    per = record.get("thresholds")
    if isinstance(per, dict) and name in per:
        return per[name]
    fixed = record.get("psi_threshold")
    return fixed if fixed is not None else DEFAULT_PSI


def plot_history(records: list[dict], out: str | os.PathLike) -> Path:
    """Write a PNG of the monitor's window records (edgecls.runtime.drift.read_log) to `out`, atomically."""
    if not records:
        raise InputError("the drift log holds no window yet: nothing to plot (a window closes every `window` frames)")
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise InputError(f"--plot {out}: give a .png path")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    end = [r["frames"] + r.get("window", 0) for r in records]  # a record's frames = frames before its window
    names = list(dict.fromkeys(k for r in records for k in r["psi"]))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True, constrained_layout=True)
    for name in names:
        ratio = []
        for r in records:
            t, v = threshold_of(r, name), r["psi"].get(name)
            ratio.append(v / t if v is not None and t else float("nan"))
        top.plot(end, ratio, marker=".", label=name)
    top.axhline(1.0, color="k", ls="--", lw=1, label="event threshold")
    for x, r in zip(end, records):
        if r.get("events"):
            top.axvline(x, color="red", alpha=0.25, lw=3)
    top.set_ylabel("PSI / its event threshold")
    top.set_yscale("symlog", linthresh=0.1)
    top.legend(fontsize=7, ncol=4, loc="upper left")
    top.set_title(f"drift monitor: {len(records)} windows, {sum(len(r.get('events', [])) for r in records)} events (red)")
    rel = [k for k in names if all(k in r.get("now", {}) and r.get("ref", {}).get(k) for r in records)]
    for name in rel:
        bottom.plot(end, [100 * (r["now"][name] / r["ref"][name] - 1) for r in records], marker=".", label=name)
    bottom.axhline(0, color="k", lw=0.8)
    bottom.set_ylabel("window mean vs reference, %")
    bottom.set_xlabel("frames")
    if rel:
        bottom.legend(fontsize=7, ncol=4, loc="upper left")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(out, buf.getvalue())
    return out

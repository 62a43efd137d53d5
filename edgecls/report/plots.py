"""The report's figures (matplotlib, headless), returned as PNG bytes so the HTML can embed them (no network)."""

from __future__ import annotations

import io

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def training_curves(history: list[dict], best_epoch: int, key: str = "val_top1", what: str = "validation top-1, %") -> bytes:
    plt = _plt()
    ep = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    a.plot(ep, [h["loss"] for h in history], "o-", label="training loss")
    if all("val_loss" in h for h in history):
        a.plot(ep, [h["val_loss"] for h in history], "s-", label="validation loss")
    a.set_xlabel("epoch")
    a.set_title("loss")
    a.legend(fontsize=8)
    b.plot(ep, [100 * h[key] for h in history], "o-", color="tab:green")
    b.axvline(best_epoch, color="grey", ls=":", lw=1)
    at = next(h for h in history if h["epoch"] == best_epoch)
    b.annotate(f"best: epoch {best_epoch}", (best_epoch, 100 * at[key]), fontsize=8,
               xytext=(5, -14), textcoords="offset points")
    b.set_xlabel("epoch")
    b.set_title(what)
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.set_xticks(ep)
    return _png(fig)


def image_sizes(widths: list[int], heights: list[int]) -> bytes:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.scatter(widths, heights, s=8, alpha=0.5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("width, px")
    ax.set_ylabel("height, px")
    ax.set_title(f"picture sizes ({len(widths)} images)")
    ax.grid(alpha=0.3, which="both")
    return _png(fig)


def accuracy_bars(rows: list[dict], reference: float | None, what: str = "validation top-1, %") -> bytes:
    """rows: {label, value, lo, hi} in [0, 1]; horizontal bars with 95% intervals."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.2))
    y = np.arange(len(rows))
    v = np.array([100 * r["value"] for r in rows])
    err = np.array([[100 * (r["value"] - r["lo"]) for r in rows], [100 * (r["hi"] - r["value"]) for r in rows]])
    ax.errorbar(v, y, xerr=err, fmt="o", capsize=3)
    if reference is not None:
        ax.axvline(100 * reference, color="grey", ls=":", lw=1, label="PyTorch float model")
        ax.legend(fontsize=8, loc="lower left")
    ax.set_yticks(y, [r["label"] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"{what} (95% interval)")
    ax.grid(alpha=0.3, axis="x")
    return _png(fig)


def pareto(points: list[dict], budget_ms: float | None, metric: str, what: str = "validation top-1, %") -> bytes:
    """points: {label, target, precision, latency_ms, value, lo, hi, size_mb, acceptable}. Colour = runtime, marker =
    precision (circle FP32, square INT8, cross: over the accuracy budget), size = file size; the non-dominated front
    is dashed. A legend names the points, so labels never overlap."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8.5, 4.6))
    targets = list(dict.fromkeys(p["target"] for p in points))
    colours = {t: c for t, c in zip(targets, plt.rcParams["axes.prop_cycle"].by_key()["color"])}
    for p in points:
        marker = "x" if not p["acceptable"] else ("s" if p["precision"] == "int8" else "o")
        ax.errorbar(p["latency_ms"], 100 * p["value"], yerr=[[100 * (p["value"] - p["lo"])], [100 * (p["hi"] - p["value"])]],
                    fmt=marker, ms=5 + 2.5 * np.sqrt(max(p["size_mb"], 0.1)), alpha=0.85, capsize=2, color=colours[p["target"]],
                    label=f"{p['label']} ({p['latency_ms']:.2f} ms, {p['size_mb']:.1f} MB)")
    front = []
    for p in sorted(points, key=lambda p: (p["latency_ms"], -p["value"])):
        if not front or p["value"] > front[-1]["value"]:
            front.append(p)
    if len(front) > 1:
        ax.plot([p["latency_ms"] for p in front], [100 * p["value"] for p in front], "--", color="grey", lw=1, label="Pareto front")
    if budget_ms is not None:
        ax.axvline(budget_ms, color="tab:orange", lw=1, label=f"latency budget {budget_ms:g} ms")
    ax.set_xlabel(f"{metric}, ms (this machine, batch 1)")
    ax.set_ylabel(f"{what} (95% interval)")
    ax.set_title("accuracy vs latency (marker size = file size)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), markerscale=0.6)
    return _png(fig)


__all__ = ["accuracy_bars", "image_sizes", "pareto", "training_curves"]

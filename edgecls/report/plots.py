"""The reports' figures (matplotlib, headless), returned as PNG bytes so the HTML can embed them (no network): the
deploy report's training curves, picture sizes, accuracy bars and accuracy-latency front; the bench report's latency
distribution and accuracy-latency chart. Each takes the figures already computed; none reads a result format."""

from __future__ import annotations

import io

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png(fig) -> bytes:
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
    return png(fig)


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
    return png(fig)


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
    return png(fig)


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
    return png(fig)


_MARKERS = {"FP32": "o", "FP16": "^", "INT8": "s"}  # other precisions: "D"


def _colours_by(names: list[str]) -> dict:
    plt = _plt()
    return {b: plt.cm.tab10(i) for i, b in enumerate(sorted(set(names)))}


def _log_if_spread(ax, values: list[float]) -> bool:
    """A log latency axis when the fastest and slowest differ by more than 8x (PyTorch eager beside INT8)."""
    lo, hi = min(values), max(values)
    if lo > 0 and hi / lo > 8:
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # 1 2 5 10 20 50 ...: readable without counting
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        return True
    return False


def latency_distribution(rows: list[dict]) -> bytes:
    """rows: {label, backend, precision, samples_ms} in the table's order: one box per row, colour = backend,
    hatched = INT8, whiskers at p1-p99."""
    from matplotlib.patches import Patch

    plt = _plt()
    colors = _colours_by([r["backend"] for r in rows])
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.42 * len(rows)))
    data = [r["samples_ms"] for r in rows]
    bp = ax.boxplot(data, vert=False, whis=(1, 99), showfliers=True, patch_artist=True, widths=0.6,
                    flierprops={"markersize": 2, "alpha": 0.5}, medianprops={"color": "black", "lw": 1.5})
    for box, r in zip(bp["boxes"], rows):
        box.set_facecolor(colors[r["backend"]])
        box.set_alpha(0.75)
        if r["precision"] == "INT8":
            box.set_hatch("///")
    ax.set_yticks(range(1, len(rows) + 1), [r["label"] for r in rows], fontsize=8)
    ax.invert_yaxis()  # first row on top, as in the table
    _log_if_spread(ax, [min(d) for d in data] + [max(d) for d in data])
    ax.set_xlabel("model-only latency, ms (box: p25-p75, line: median, whiskers: p1-p99)")
    ax.set_title("latency distribution per artifact")
    ax.grid(axis="x", which="both", alpha=0.3)
    handles = [Patch(facecolor=c, alpha=0.75, label=b) for b, c in colors.items()]
    if any(r["precision"] == "INT8" for r in rows):
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="///", label="INT8"))
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    return png(fig)


def latency_scatter(points: list[dict], *, front: bool, xlabel: str, ylabel: str, title: str) -> bytes:
    """points: {label, backend, precision, p50_ms, y, size_mb}: numbered markers (colour = backend, shape =
    precision, size = file size) named in the legend; with front, the points none faster and better are joined."""
    plt = _plt()
    colors = _colours_by([p["backend"] for p in points])
    fig, ax = plt.subplots(figsize=(11, 5.2))
    pts = []
    for n, p in enumerate(points, 1):
        ax.scatter(p["p50_ms"], p["y"], s=40 + 6 * p["size_mb"], alpha=0.7, color=colors[p["backend"]], edgecolors="black",
                   linewidths=0.6, marker=_MARKERS.get(p["precision"], "D"), label=f"{n}  {p['label']}  ({p['p50_ms']:.2f} ms)")
        pts.append((p["p50_ms"], p["y"], n))
    if front:
        line, best = [], -1.0
        for x, y, _ in sorted(pts):
            if y > best:
                line.append((x, y))
                best = y
        if len(line) > 1:
            ax.plot(*zip(*line), "k--", lw=1, label="Pareto front")
    log = _log_if_spread(ax, [x for x, _, _ in pts])
    # number tags beside the points; a point within 3% of the x span of another at the same y gets its tag
    # stacked above that one's, not printed on top of it
    pos = (lambda x: np.log10(x)) if log else (lambda x: x)
    span = (pos(max(x for x, _, _ in pts)) - pos(min(x for x, _, _ in pts))) or 1.0
    placed: list[tuple[float, float, int]] = []
    for x, y, n in sorted(pts):
        level = 1 + max([lv for px, py, lv in placed if py == y and abs(pos(x) - px) < 0.03 * span] + [-1])
        placed.append((pos(x), y, level))
        ax.annotate(str(n), (x, y), fontsize=8, fontweight="bold", xytext=(6, 4 + 10 * level), textcoords="offset points")
    leg = ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0,
                    title="colour = backend, shape = precision (● FP32, ■ INT8, ▲ FP16)", title_fontsize=8)
    for h in leg.legend_handles:  # equal-size legend markers; the plot's size encodes the file size
        if hasattr(h, "set_sizes"):
            h.set_sizes([40])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    return png(fig)


__all__ = ["accuracy_bars", "image_sizes", "latency_distribution", "latency_scatter", "pareto", "png", "training_curves"]

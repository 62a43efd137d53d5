"""How the reports write numbers: percentages, accuracy with its interval, points, milliseconds and sizes, '-' for a
figure that was not measured. One place, so a top-1 reads the same in the deploy, bench and robustness reports."""

from __future__ import annotations


def pct(v: float | None, digits: int = 1) -> str:
    """0.9612 -> '96.1%'."""
    return "-" if v is None else f"{100 * v:.{digits}f}%"


def interval(value: float, lo: float, hi: float) -> str:
    """A proportion with its interval: '96.1% [91.7, 98.2]' (the bounds in the same percent, sign left out)."""
    return f"{100 * value:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"


def acc_text(value: float, lo: float, hi: float, k: int | None = None, n: int | None = None) -> str:
    """'96.1% [91.7, 98.2] (147/153)': top-1, its 95% interval and the count it comes from."""
    return interval(value, lo, hi) + (f" ({k}/{n})" if k is not None else "")


def points(v: float) -> str:
    """A budget in percentage points: '1 point', '0.5 points'."""
    return f"{v:g} point" + ("" if v == 1 else "s")


def number(v: float | None, digits: int = 2) -> str:
    """Milliseconds, megabytes and other measured figures: fixed digits, '-' when not measured."""
    return "-" if v is None else f"{v:.{digits}f}"


def megapixels(v: float) -> str:
    """1.2 -> '1.20 MP'; a tiny picture in pixels (0.001 MP -> '1,000 pixels')."""
    return f"{v:.2f} MP" if v >= 0.1 else f"{v * 1e6:,.0f} pixels"


def short(v) -> str:
    """A parameter value in one table cell: floats to 4 significant digits, long lists counted, dicts abridged."""
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)) and len(v) > 6:
        return f"[{len(v)} items]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {short(x)}" for k, x in list(v.items())[:6]) + ("..." if len(v) > 6 else "") + "}"
    return str(v)


__all__ = ["acc_text", "interval", "megapixels", "number", "pct", "points", "short"]

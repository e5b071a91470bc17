"""Plots of a sweep: MACs (x) against params, acts or latency (y), one line per mode, both axes
logarithmic (a power law is a straight line: activations grow as s^1 under depth or resolution
scaling and as s^0.5 under width scaling, so the lines part).

:func:`write_png` draws a PNG with matplotlib (the optional ``plot`` extra, imported inside the
function); :func:`text_plot` draws a compact plot for the terminal with no dependency.
"""

from __future__ import annotations

import math
from typing import Sequence

from ..errors import ScalekitError
from ..files import atomic_path
from ..studies.sweeps import SweepPoint

Y_METRICS = ("params", "acts", "latency")
_Y_LABELS = {"params": "params (M)", "acts": "activations (M)", "latency": "latency (ms)"}


def y_value(p: SweepPoint, y: str) -> float:
    """The plotted y of a point: params or acts in millions, or the latency in ms (the measured
    median if it was measured, else the prediction)."""
    if y == "latency":
        lat = p.record.latency
        if not lat:
            raise ScalekitError("a latency plot needs timed points: add --latency")
        return float(lat["median_ms"] if lat.get("median_ms") is not None
                     else lat["predicted_ms"])
    return getattr(p.record, y) / 1e6


def series(points: Sequence[SweepPoint], y: str) -> dict[str, list[tuple[float, float, str]]]:
    """mode -> [(MACs in G, y, coefficient label)], in sweep order."""
    if y not in Y_METRICS:
        raise ScalekitError(f"unknown y axis {y!r} (valid: {', '.join(Y_METRICS)})")
    out: dict[str, list[tuple[float, float, str]]] = {}
    for p in points:
        out.setdefault(p.mode, []).append((p.record.macs / 1e9, y_value(p, y),
                                           f"{p.symbol}={p.value:g}"))
    return out


def write_png(points: Sequence[SweepPoint], path: str, *, y: str = "params",
              title: str | None = None) -> None:
    """Draw the sweep into a PNG at ``path`` (written atomically)."""
    lines = series(points, y)
    try:
        from matplotlib.figure import Figure
        from matplotlib.ticker import FuncFormatter
    except ImportError:
        raise ScalekitError("--plot needs matplotlib: pip install 'scalekit[plot]'") from None
    fig = Figure(figsize=(6.4, 4.4), dpi=100)  # no pyplot: no global state, no GUI backend
    ax = fig.add_subplot()
    labelled = set()  # every mode starts at the baseline: label each spot once
    for mode, pts in lines.items():
        xs, ys, _ = zip(*pts)
        ax.plot(xs, ys, marker="o", label=mode)
        for x, yv, label in pts:
            if (x, yv) not in labelled:
                labelled.add((x, yv))
                ax.annotate(label, (x, yv), textcoords="offset points", xytext=(4, -9),
                            fontsize=6, alpha=0.7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(plain)
    ax.set_xlabel("MACs (G), log scale")
    ax.set_ylabel(f"{_Y_LABELS[y]}, log scale")
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8)
    fig.tight_layout()
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png")
    except OSError as e:
        raise ScalekitError(f"{path}: cannot write: {e.strerror or e}") from None


def _markers(modes: Sequence[str]) -> dict[str, str]:
    """One character per mode: its first letter not taken yet (width w, depth d, dWr W, ...)."""
    taken: dict[str, str] = {}
    for mode in modes:
        free = [c for c in mode + "0123456789" if c.isalnum() and c not in taken.values()]
        taken[mode] = free[0]
    return taken


def _scale(v: float, lo: float, hi: float, cells: int) -> int:
    if hi <= lo:
        return 0
    return round((math.log(v) - math.log(lo)) / (math.log(hi) - math.log(lo)) * (cells - 1))


def text_plot(points: Sequence[SweepPoint], *, y: str = "params", width: int = 60,
              height: int = 14) -> str:
    """A compact log-log scatter plot in plain text: one letter per mode, ``*`` where two meet."""
    lines = series(points, y)
    pts = [(x, yv) for s in lines.values() for x, yv, _ in s if x > 0 and yv > 0]
    if not pts:
        return ""
    x_lo, x_hi = min(p[0] for p in pts), max(p[0] for p in pts)
    y_lo, y_hi = min(p[1] for p in pts), max(p[1] for p in pts)
    marks = _markers(list(lines))
    grid = [[" "] * width for _ in range(height)]
    for mode, s in lines.items():
        for x, yv, _ in s:
            if x <= 0 or yv <= 0:
                continue
            row = height - 1 - _scale(yv, y_lo, y_hi, height)
            col = _scale(x, x_lo, x_hi, width)
            cell = grid[row][col]
            grid[row][col] = marks[mode] if cell in (" ", marks[mode]) else "*"
    top, bottom = f"{y_hi:.4g}", f"{y_lo:.4g}"
    pad = max(len(top), len(bottom))
    out = [f"{_Y_LABELS[y]} against MACs (G), both log scale"]
    for i, row in enumerate(grid):
        label = top if i == 0 else bottom if i == height - 1 else ""
        out.append(f"{label:>{pad}} |{''.join(row).rstrip()}")
    out.append(" " * pad + " +" + "-" * width)
    left, right = f"{x_lo:.4g}", f"{x_hi:.4g}"
    out.append(" " * (pad + 2) + left + right.rjust(width - len(left)))
    out.append(" " * (pad + 2) + "   ".join(f"{m} {mode}" for mode, m in marks.items())
               + "   * overlap")
    return "\n".join(out) + "\n"

"""Plots: a sweep (MACs against params, acts or latency, one line per mode), a fit (cost
against the coefficient, with the budget) and a search's candidates, as PNG, SVG or PDF, as the
file's suffix says.

:func:`write_sweep` and :func:`write_fit` draw with matplotlib (the optional ``plot`` extra,
imported inside the functions; no pyplot, so no global state and no GUI backend) in one style
(:data:`STYLE`): text of at least 9 pt, SVG text kept as text, plain tick labels with SI prefixes
(``400 M``, ``1 G``, ``2.5 G``; never ``4x10^1``), what is counted and its unit in each axis title,
and the legend beside the axes, never over the data. :func:`text_plot` draws a compact plot for
the terminal with no dependency.

A plot is a report: written atomically (scalekit.files), replacing the file it names.
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable, Sequence

from ..errors import ScalekitError
from ..extras import require
from ..files import atomic_path
from ..studies.sweeps import SweepPoint

Y_METRICS = ("params", "acts", "latency")
_Y_LABELS = {"params": "params (M)", "acts": "activations (M)", "latency": "latency (ms)"}

PLOT_FORMATS = ("png", "svg", "pdf")
"""What a plot file may be, by its suffix."""

STYLE: dict[str, Any] = {
    "font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "xtick.labelsize": 9,
    "ytick.labelsize": 9, "legend.fontsize": 9, "figure.titlesize": 11,
    "svg.fonttype": "none",  # SVG text stays text: searchable, selectable, legible
    "text.parse_math": False,  # a spec's name is shown as written: "$x$" is no formula
    "axes.grid": True, "grid.alpha": 0.3, "axes.axisbelow": True,
}
"""The plots' matplotlib settings (every font at least 9 pt)."""

MIN_FONT_PT = 9

# what each axis counts, with its unit (tick labels carry the SI prefix: 400 M, 1 G)
AXIS_TITLES = {
    "macs": "MACs (conv + linear multiply-accumulates, the paper's FLOPS)",
    "params": "parameters",
    "acts": "activations (conv, linear and pool output elements)",
    "latency": "median latency (ms, batch 1)",
}
_DIAL_TITLES = {"w": "width multiplier w", "d": "depth multiplier d",
                "r": "resolution multiplier r", "phi": "compound coefficient phi",
                "s": "FLOPs factor s"}


def plot_format(path: str | os.PathLike[str]) -> str:
    """``png``, ``svg`` or ``pdf``, from ``path``'s suffix; anything else is refused
    (:class:`ScalekitError` naming the valid suffixes)."""
    ext = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    if ext not in PLOT_FORMATS:
        raise ScalekitError(f"cannot tell the plot format from {os.fspath(path)!r}: use a "
                            f"{', '.join('.' + f for f in PLOT_FORMATS)} file name")
    return ext


def si(value: float) -> str:
    """A plain tick label: ``40``, ``0.5``, ``400 M``, ``1 G``, ``2.5 G`` (no exponents)."""
    if value == 0:
        return "0"
    for prefix, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.3g} {prefix}"
    return f"{value:.3g}"


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


def figure(draw: Callable[[Any], None]) -> Any:
    """A matplotlib Figure in :data:`STYLE` (constrained layout), drawn by ``draw(ax)``."""
    require("matplotlib", purpose="--plot")
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(8.0, 4.8), dpi=100, layout="constrained")
        draw(fig.add_subplot())
    return fig


def save(fig: Any, path: str) -> None:
    """Write ``fig`` to ``path`` in the format its suffix names (:func:`plot_format`),
    atomically; no creation date, so the same plot is the same file."""
    fmt = plot_format(path)
    import matplotlib

    metadata = {"png": None, "svg": {"Date": None}, "pdf": {"CreationDate": None}}[fmt]
    with matplotlib.rc_context(STYLE):  # svg.fonttype applies when the file is written
        try:
            with atomic_path(path, suffix=f".{fmt}") as tmp:
                fig.savefig(tmp, format=fmt, metadata=metadata)
        except OSError as e:
            raise ScalekitError(f"{path}: cannot write: {e.strerror or e}") from None


def ticks(axis: Any, values: Sequence[float], log: bool) -> None:
    """Plain SI tick labels, unlabelled minor ticks, and enough major ticks on a log axis: each
    decade's 1 over two decades or more, its 1, 2 and 5 over less, evenly spaced round numbers
    over less than a factor of 3."""
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    if log:
        pos = [v for v in values if v > 0]
        ratio = max(pos) / min(pos) if pos else 10.0
        if ratio < 3:
            axis.set_major_locator(MaxNLocator(nbins=5))
        else:
            axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if ratio < 100
                                              else (1.0,)))
    axis.set_minor_formatter(NullFormatter())
    axis.set_major_formatter(FuncFormatter(lambda v, _: si(v)))


def legend_beside(ax: Any) -> None:
    """The legend to the right of the axes (constrained layout makes room): it covers no data."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False)


def write_sweep(points: Sequence[SweepPoint], path: str, *, y: str = "params",
                title: str | None = None) -> None:
    """Draw a sweep (:func:`sweep_figure`) into ``path``: .png, .svg or .pdf, written
    atomically."""
    plot_format(path)
    save(sweep_figure(points, y=y, title=title), path)


write_png = write_sweep  # its name before it wrote SVG and PDF too


def sweep_figure(points: Sequence[SweepPoint], *, y: str = "params",
                 title: str | None = None) -> Any:
    """MACs (x) against ``y`` (params, acts or latency), one line per mode, both axes
    logarithmic (a power law is a straight line: activations grow as s^1 under depth or
    resolution scaling and as s^0.5 under width scaling, so the lines part)."""
    lines = series(points, y)  # checks y, and that latency was measured

    def draw(ax: Any) -> None:
        xs_all, ys_all = [], []
        for mode, pts in lines.items():
            values = [float(lbl.split("=", 1)[1]) for _, _, lbl in pts]
            symbol = pts[0][2].split("=", 1)[0]
            xs = [x * 1e9 for x, _, _ in pts]
            ys = [yv if y == "latency" else yv * 1e6 for _, yv, _ in pts]
            ax.plot(xs, ys, marker="o", markersize=4,
                    label=f"{mode} ({symbol} = {min(values):g} to {max(values):g})")
            xs_all += xs
            ys_all += ys
        ax.set_xscale("log")
        ax.set_yscale("log")
        ticks(ax.xaxis, xs_all, log=True)
        ticks(ax.yaxis, ys_all, log=True)
        ax.set_xlabel(f"{AXIS_TITLES['macs']}, log scale")
        ax.set_ylabel(f"{AXIS_TITLES[y]}, log scale")
        if title:
            ax.set_title(title)
        legend_beside(ax)

    return figure(draw)


def write_fit(curve: Sequence[tuple[float, float]], marks: Sequence[tuple[str, float, float]],
              path: str, **options: Any) -> None:
    """Draw a fit (:func:`fit_figure`, with its ``options``) into ``path``: .png, .svg or .pdf,
    written atomically."""
    plot_format(path)
    save(fit_figure(curve, marks, **options), path)


def fit_figure(curve: Sequence[tuple[float, float]], marks: Sequence[tuple[str, float, float]],
               *, symbol: str, metric: str, target: float, title: str | None = None,
               budget_label: str | None = None) -> Any:
    """The cost (``metric``) of the realised network against the coefficient (``symbol``):
    ``curve`` as (value, cost) points (the step function the search walks), ``marks`` as
    (label, value, cost) (the baseline, the fit and the next step up), and the budget
    ``target`` as a dashed line."""

    def draw(ax: Any) -> None:
        if curve:
            xs, ys = zip(*curve)
            ax.plot(xs, ys, drawstyle="steps-post", color="0.45", linewidth=1.2,
                    label="realised networks (sampled)")
        ax.axhline(target, linestyle="--", color="C3", linewidth=1.2,
                   label=budget_label or f"budget: {si(target)}")
        for i, (label, value, cost) in enumerate(marks):
            ax.plot([value], [cost], linestyle="none", marker="osD"[i % 3], markersize=7,
                    color=f"C{i}", label=f"{label}: {symbol}={value:.6g}, {si(cost)}")
        ticks(ax.xaxis, [], log=False)
        ticks(ax.yaxis, [], log=False)
        ax.set_xlabel(_DIAL_TITLES.get(symbol, symbol))
        ax.set_ylabel(AXIS_TITLES.get(metric, metric))
        if title:
            ax.set_title(title)
        legend_beside(ax)

    return figure(draw)


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

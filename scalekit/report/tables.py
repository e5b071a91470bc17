"""Tables for people: records in, rich renderables out (formatting only; no computing, no torch).

Every string in these tables may come from a user (a spec's name, its stages' names, a path).
They are printed only through :func:`safe_console`, whose consoles never parse rich markup,
emoji codes or highlighting, and show every control character escaped (scalekit/text.py): the
escaping is done once, where text becomes a rich Text, not cell by cell.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Iterable, Iterator, Sequence

from rich import box
from rich.cells import cell_len
from rich.console import Console, Group
from rich.highlighter import RegexHighlighter
from rich.table import Table
from rich.text import Text

from .. import conventions
from ..blocks import KINDS
from ..memory import format_bytes
from ..records import ModelRecord
from ..text import safe_text


class NumberHighlighter(RegexHighlighter):
    """Colours numbers in printed lines, in time linear in the text's length. (rich's default
    ReprHighlighter takes time quadratic in the length of a long word: a spec named by 50,000
    letters took 17 s to print, 200,000 letters four minutes.)"""

    base_style = "repr."
    highlights = [r"(?<![\w.])(?P<number>\d[\d,.]*)"]


class SafeConsole(Console):
    """A rich Console for user-supplied text: every string it renders (cells, titles, captions,
    printed lines) is shown as typed, with control characters escaped; never markup (``[/bold]``,
    ``[link=...]``), never emoji codes; only numbers are highlighted (NumberHighlighter)."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        kwargs.update(markup=False, emoji=False)
        return super().render_str(safe_text(text), **kwargs)


def lines(*parts: str, highlight: bool = False) -> Text:
    """Several lines for a caption or a printed block. A str given to a scalekit console is one
    line (its newlines, like every control character, are shown escaped: a name cannot start a
    line of its own), so text of several lines is built from its lines, each escaped.
    ``highlight``: numbers coloured as in a printed line (NumberHighlighter)."""
    text = Text("\n").join(Text(safe_text(p)) for p in parts)
    if highlight:
        NumberHighlighter().highlight(text)
    return text


def safe_console(**kwargs: Any) -> Console:
    """A :class:`SafeConsole` (``kwargs`` as for rich's Console; markup and emoji are always off,
    and the highlighter is :class:`NumberHighlighter`)."""
    kwargs.update(markup=False, emoji=False, highlighter=NumberHighlighter())
    return SafeConsole(**kwargs)


def fmt_int(n: int) -> str:
    return f"{n:,}"


def fmt_m(n: float) -> str:
    return f"{n / 1e6:,.3f}"


def fmt_g(n: float) -> str:
    return f"{n / 1e9:,.3f}"


def convention_of(records: Sequence[ModelRecord]) -> conventions.Convention:
    """The counting convention of a table's records (one per query: the first record's)."""
    return conventions.get(records[0].convention if records else conventions.DEFAULT)


def macs_header(records: Sequence[ModelRecord], scale: str = "G") -> str:
    """``MACs (G)``; under another convention ``MACs (G, fvcore)``, ``FLOPs (G, full)``."""
    return convention_of(records).header(scale)


def convention_note(records: Sequence[ModelRecord]) -> list[str]:
    """A caption line saying what the MACs count, when that is not the paper's convention."""
    c = convention_of(records)
    return [] if c.name == conventions.DEFAULT else [f"--convention {c.name}: {c.definition}."]


def _vs_paper(r: ModelRecord, paper_b: float) -> str:
    """Ours against a paper figure (billions of multiply-adds); blank for a count in FLOPs."""
    if r.unit != "MACs":
        return ""
    return f"{(r.macs / 1e9 - paper_b) / paper_b * 100:+.1f}%"


def new_table(title: str | None = None, caption: str | Text | None = None) -> ReportTable:
    return ReportTable(title=title, caption=caption, box=box.SIMPLE_HEAVY, caption_justify="left",
                       title_justify="left", header_style="bold")


# ---------------------------------------------------------------------------------------------
# fitting a terminal: the compact column set


SHORT = {
    "params (M)": "params\n(M)", "MACs (G)": "MACs\n(G)", "acts (M)": "acts\n(M)",
    "paper FLOPS (B)": "paper\nFLOPS (B)", "paper top-1 % (reported)": "paper\ntop-1 %",
    "paper params (M)": "paper\nparams (M)", "torchvision params": "torchvision\nparams",
    "torchvision GMACs": "torchvision\nGMACs", "diff vs paper": "diff vs\npaper",
    "paper latency (s)": "paper\nlatency (s)", "paper speedup": "paper\nspeedup",
    "paper's coefficient": "paper's\ncoef.", "vs target": "vs\ntarget",
    "GFLOP/s (% peak)": "GFLOP/s\n(% peak)", "pred. error": "pred.\nerror",
    "optimised ms ± IQR": "optimised\nms ± IQR", "speedup (95%)": "speedup\n(95%)",
    "speedup, optimised": "speedup,\noptimised", "coefficient": "coef.",
    "min - max ms": "min - max\nms", "images/s": "images\n/s",
}
"""Headers of the compact column set: the same words over two lines (units on the second), or
an abbreviation where the full header is long and the cells short. Latency headers are shortened
by :func:`short_header`."""


def short_header(header: str) -> str:
    """The compact form of a column's header (``\\n`` between its lines): :data:`SHORT`'s, or a
    parenthesis on a line of its own (``MACs (G, fvcore)``, ``predicted ms (eager)``)."""
    if header in SHORT:
        return SHORT[header]
    for word in ("predicted", "measured"):
        if header.startswith(f"{word} ms"):
            head, _, rest = header.partition(" (")
            return f"{word}\n{head[len(word) + 1:]}" + (f"\n({rest}" if rest else "")
    head, _, rest = header.partition(" (")
    return f"{head}\n({rest}" if rest and head else header


def _plain(header: Any) -> str:
    return header.plain if isinstance(header, Text) else str(header)


class ReportTable(Table):
    """A rich Table that knows how to narrow itself for a terminal (:func:`fit_width`): which of
    its columns hold names (never shortened: a column of names is as wide as its longest), which
    it may leave out (the most decorative first), a short header for a column, and a unit that
    its cells repeat and a compact header may say once instead (``0.010 -> 0.012 M`` under
    ``params (M)``). Piped output and ``--wide`` show the table as it was built."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.names: set[str] = set()
        self.optional: list[str] = []
        self.short: dict[str, str] = {}
        self.units: dict[str, str] = {}

    def layout(self, *, names: Iterable[str] = (), optional: Iterable[str] = (),
               short: dict[str, str] | None = None,
               units: dict[str, str] | None = None) -> ReportTable:
        """Say how the table narrows: ``names``, the headers of its name columns; ``optional``,
        headers of the columns a narrow terminal may leave out, in the order they go; ``short``
        and ``units`` by header. Headers not among the columns are ignored (a latency column
        that this table lacks)."""
        self.names.update(names)
        self.optional += [h for h in optional if h not in self.optional]
        self.short.update(short or {})
        self.units.update(units or {})
        return self


def _fits(t: Table, width: int) -> bool:
    """Whether rich shows ``t`` whole at ``width``: no cell shortened (``…``), though a column
    that may wrap (a description, a reason) wraps."""
    if safe_console(width=100_000).measure(t).maximum <= width:
        return True
    import io

    buf = io.StringIO()
    safe_console(file=buf, width=width, no_color=True, color_system=None).print(t)
    return "…" not in buf.getvalue()


def _hold_names(t: ReportTable) -> None:
    """A column of names is at least as wide as its longest name and never wraps: rich shortens
    other columns, never a name."""
    for col in t.columns:
        if _plain(col.header) in t.names:
            widest = max([cell_len(_plain(c)) for c in col._cells] + [1])
            col.min_width = max(col.min_width or 0, widest)
            col.no_wrap = True


def _compact(t: ReportTable, gap: int) -> ReportTable:
    """A copy of ``t`` with its compact headers and units, ``gap`` spaces between columns."""
    c = copy.copy(t)
    c.columns = []
    for col in t.columns:
        col = copy.copy(col)
        key = _plain(col.header)
        unit = t.units.get(key)
        if unit:
            col._cells = [x[:-len(unit)].rstrip() if isinstance(x, str) and x.endswith(unit)
                          else x for x in col._cells]
        head = t.short.get(key) or short_header(key)
        if unit:
            head = f"{head}\n({unit.strip()})" if "\n" not in head else f"{head} ({unit.strip()})"
        if head != key:
            col.header = lines(*head.split("\n"))
            col.meta = key  # type: ignore[attr-defined]
        c.columns.append(col)
    if gap == 2:
        c.padding = (0, 1, 0, 0)
        c.pad_edge = False
    return c


def _key(col: Any) -> str:
    return getattr(col, "meta", None) or _plain(col.header)


def _without(t: Table, left_out: set[str]) -> Table:
    c = copy.copy(t)
    c.columns = [copy.copy(col) for col in t.columns if _key(col) not in left_out]
    for i, col in enumerate(c.columns):  # rich pads and measures a column by its index
        col._index = i
    return c


def narrowed(t: ReportTable, width: int) -> Table:
    """``t`` for a terminal ``width`` columns wide: as built if it fits; else with compact
    headers (and units in them); else also with two spaces between columns; else without its
    optional columns, the most decorative first, until it fits (then any of them that fits again
    is put back, the most important first), the caption saying which are not shown and how to
    see them. Name columns are never shortened (:func:`_hold_names`)."""
    _hold_names(t)
    if _fits(t, width):
        return t
    for gap in (3, 2):
        c = _compact(t, gap)
        if _fits(c, width):
            return c
    present = {_key(col) for col in c.columns}
    left_out: list[str] = []
    for header in (h for h in t.optional if h in present):
        left_out.append(header)
        if _fits(_without(c, set(left_out)), width):
            break
    for header in reversed(left_out[:-1]):
        if _fits(_without(c, set(left_out) - {header}), width):
            left_out.remove(header)
    if not left_out:
        return c if _fits(c, width) else _wrap_names(c)
    c = _without(c, set(left_out))
    if not _fits(c, width):
        c = _wrap_names(c)
    note = f"(not shown at this width: {', '.join(left_out)}; --wide for all columns)"
    cap = t.caption
    c.caption = lines(note) if cap is None else Text("\n").join(
        [cap if isinstance(cap, Text) else lines(cap), lines(note)])
    return c


def _wrap_names(t: Table) -> Table:
    """The last resort, when names alone leave the numbers no room: name columns wrap at their
    spaces (a name is never cut: a column is as wide as its longest word), so that no number is
    shortened (``6,116,…``). A long name (``EfficientNet-B0 (d=1, w=1.1, 224px)``) then takes
    two lines."""
    names = getattr(t, "names", set())
    c = copy.copy(t)
    c.columns = []
    for col in t.columns:
        col = copy.copy(col)
        if _key(col) in names:
            words = [w for x in col._cells for w in _plain(x).split()]
            col.min_width = max([cell_len(w) for w in words] + [cell_len(_key(col)), 1])
            col.no_wrap = False
            col.overflow = "fold"  # only a word longer than the column could fold: none is
        c.columns.append(col)
    return c


def _caption_apart(t: Table) -> list[Any]:
    """``t`` and its caption as a block of its own, so that the caption wraps at the terminal's
    width rather than the (narrower) table's."""
    if t.caption is None:
        return [t]
    cap = t.caption if isinstance(t.caption, Text) else lines(t.caption)
    c = copy.copy(t)
    c.caption = None
    return [c, Group(Text.assemble(cap, style="table.caption"))]  # a block: never joined to
    # the text printed after it


def fit_width(renderables: Sequence[Any], width: int, wide: bool = False) -> list[Any]:
    """The one place that decides which columns a terminal gets: each :class:`ReportTable` of
    ``renderables`` :func:`narrowed` to ``width``, or (``wide``) every column as built."""
    out = []
    for r in renderables:
        if isinstance(r, ReportTable):
            _hold_names(r)
            out += _caption_apart(r if wide else narrowed(r, width))
        else:
            out.append(r)
    return out


def _decimals(size: float) -> int:
    """Decimals that give a latency of ``size`` ms 3-4 significant digits."""
    return 1 if size >= 100 else 2 if size >= 1 else 3


def _ms(v: float, like: float | None = None, spread: float | None = None) -> str:
    """Milliseconds with the decimals that give ``like`` (default ``v``) 3-4 significant digits
    (0.412, 35.21, 176.6, 1,204.3), and never more than ``spread`` (an IQR) supports: its second
    significant digit is the last one shown (250.2 with an IQR of 101.8 is 250)."""
    d = _decimals(v if like is None else like)
    if spread is not None and spread > 0 and math.isfinite(spread):
        d = min(d, 1 - math.floor(math.log10(spread)))
    if d <= 0:
        return f"{round(v, d):,.0f}"
    return f"{v:,.{d}f}"


FLAG = "!"  # beside a latency that is not to be trusted; the reason is printed under the table


def _flag(lat: dict[str, Any]) -> str:
    untrusted = lat.get("trusted") is False or lat.get("prediction_trusted") is False
    return f" {FLAG}" if untrusted else ""


def measured(lat: dict[str, Any] | None) -> bool:
    return bool(lat) and isinstance(lat.get("median_ms"), (int, float))


def predicted(lat: dict[str, Any] | None) -> bool:
    return bool(lat) and isinstance(lat.get("predicted_ms"), (int, float))


def latency_text(lat: dict[str, Any]) -> str:
    """``35.21 ± 0.76``: median ± interquartile range, ms, to the digits the spread supports."""
    return f"{_ms(lat['median_ms'], spread=lat['iqr_ms'])} ± " \
           f"{_ms(lat['iqr_ms'], lat['median_ms'], spread=lat['iqr_ms'])}"


def predicted_text(lat: dict[str, Any]) -> str:
    """``35.2``: a predicted latency, ms, to 3 significant digits (a prediction is no finer)."""
    v = lat["predicted_ms"]
    return _ms(v, spread=v / 5)


def latency_summary(lat: dict[str, Any]) -> str:
    """One model's latency in a line: ``35.21 ms median, IQR 0.76 ms, 10 runs``."""
    if not measured(lat):
        return f"{predicted_text(lat)} ms predicted"
    return (f"{_ms(lat['median_ms'], spread=lat['iqr_ms'])} ms median, IQR "
            f"{_ms(lat['iqr_ms'], lat['median_ms'], spread=lat['iqr_ms'])} ms, {lat['runs']} runs")


def peak_share(lat: dict[str, Any]) -> str:
    """``26%`` of the measured peak; ``n/a`` where a network beat it (``peak_note`` says why)."""
    f = lat.get("peak_fraction")
    return "n/a" if f is None else f"{min(f, 1.0) * 100:.0f}%"


def _efficiency(lat: dict[str, Any]) -> str:
    """``21.9 (26%)``: achieved GFLOP/s and its share of the fp32 matmul peak."""
    return f"{lat['gflops_per_s']:.1f} ({peak_share(lat)})"


def interval_text(value: float, interval: Sequence[float] | None, digits: int = 2) -> str:
    """``1.31x (1.25-1.38)``: a ratio and its 95% interval."""
    if not interval:
        return f"{value:.{digits}f}x"
    lo, hi = interval
    return f"{value:.{digits}f}x ({lo:.{digits}f}-{hi:.{digits}f})"


def _runtime(records: Sequence[ModelRecord]) -> str:
    from_records = {r.latency.get("runtime", "eager") for r in records if r.latency}
    runtime = from_records.pop() if len(from_records) == 1 else "eager"
    return {"optimized": "optimised"}.get(runtime, runtime)


def latency_columns(records: Sequence[ModelRecord]) -> list[str]:
    """Headers of the latency columns a table of ``records`` needs (none if nothing was timed):
    each says whether its latency is predicted or measured, and on which runtime."""
    lats = [r.latency for r in records if r.latency]
    if not lats:
        return []
    rt = _runtime(records)
    cols = []
    if any(predicted(lat) for lat in lats):
        cols.append(f"predicted ms ({rt})")
    if any(measured(lat) for lat in lats):
        cols += [f"measured ms ± IQR ({rt})", "GFLOP/s (% peak)"]
        if any(predicted(lat) for lat in lats):
            cols.append("pred. error")
    if any(lat.get("optimized") for lat in lats):
        cols += ["optimised ms ± IQR", "speedup (95%)"]
    return cols


def optional_latency(records: Sequence[ModelRecord]) -> list[str]:
    """The latency columns a narrow terminal leaves out first: efficiency, prediction error,
    the optimised copy's (its speedup last)."""
    rt = _runtime(records)
    return ["GFLOP/s (% peak)", "pred. error", "optimised ms ± IQR", "speedup (95%)",
            f"predicted ms ({rt})"] if any(measured(r.latency) for r in records) else \
        ["GFLOP/s (% peak)", "pred. error", "optimised ms ± IQR", "speedup (95%)"]


def latency_cells(r: ModelRecord, columns: Sequence[str]) -> list[str]:
    """``r``'s cells under :func:`latency_columns` (blank where it was not timed); a latency
    that is not to be trusted carries :data:`FLAG`."""
    lat = r.latency
    if not lat:
        return [""] * len(columns)
    cells = []
    for col in columns:
        if col.startswith("predicted ms"):
            cells.append(predicted_text(lat) + (_flag(lat) if not measured(lat) else "")
                         if predicted(lat) else "")
        elif col.startswith("measured ms"):
            cells.append(latency_text(lat) + _flag(lat) if measured(lat) else "")
        elif col == "GFLOP/s (% peak)":
            cells.append(_efficiency(lat) if measured(lat) else "")
        elif col == "pred. error":
            err = lat.get("prediction_error")
            cells.append("" if err is None else f"{err * 100:+.0f}%")
        else:
            opt = lat.get("optimized")
            if not opt:
                cells.append("")
            elif col.startswith("optimised"):
                cells.append(latency_text(opt) + _flag(opt))
            else:
                cells.append(interval_text(opt["speedup"], opt.get("speedup_interval")))
    return cells


def _runs(records: Iterable[ModelRecord]) -> str:
    runs = sorted({lat["runs"] for r in records if measured(r.latency)
                   for lat in (r.latency, r.latency.get("optimized")) if lat})
    return f"{runs[0]}" if len(runs) == 1 else f"{runs[0]}-{runs[-1]}"


def trust_lines(records: Sequence[ModelRecord]) -> list[str]:
    """``! ResNet-50: contended: ...``: why each flagged latency is not to be trusted."""
    out = []
    for r in records:
        lat = r.latency or {}
        reasons = [lat.get("reason"), lat.get("prediction_reason") and
                   f"prediction: {lat['prediction_reason']}",
                   (lat.get("optimized") or {}).get("reason") and
                   f"optimised: {lat['optimized']['reason']}"]
        reasons = [x for x in reasons if x]
        if reasons:
            out.append(f"{FLAG} {r.name}: not to be trusted ({'; '.join(reasons)})")
        notes = {lat.get("peak_note"), (lat.get("optimized") or {}).get("peak_note")} - {None}
        out += [f"n/a {r.name}: {n}" for n in notes]
    return out


def _threads(timing: dict[str, Any]) -> str:
    n = timing["threads"]
    return f"{n} thread{'s' if n != 1 else ''}"


def peak_text(timing: dict[str, Any]) -> str:
    """``fp32 matmul peak 105.3 GFLOP/s measured (theoretical 124.8: 1 core x ...)``"""
    theory = timing.get("theoretical_peak_gflops")
    basis = timing.get("theoretical_peak_basis")
    text = f"fp32 matmul peak {timing['peak_gflops']:.1f} GFLOP/s measured"
    if theory is not None:
        return f"{text} (theoretical {theory:.1f}: {basis})"
    return f"{text} (theoretical: n/a; {basis})" if basis else text


def timing_line(timing: dict[str, Any], records: Sequence[ModelRecord]) -> Text:
    """:func:`timing_lines` as one printable block."""
    return lines(*timing_lines(timing, records))


def timing_lines(timing: dict[str, Any], records: Sequence[ModelRecord]) -> list[str]:
    """The machine under a latency table: which kind of latency it is, what the numbers depend
    on and how they were taken, and why any flagged one is not to be trusted."""
    kind = timing.get("kind", "measured")
    rt = timing.get("runtime_label") or timing.get("runtime") or "torch eager"
    machine = (f"CPU: {timing['cpu']} ({timing.get('cpu_capability') or '?'}), torch "
               f"{timing['torch']}, {_threads(timing)}, batch {timing['batch']}, runtime {rt}; "
               f"{peak_text(timing)}")
    out = []
    if kind in ("predicted", "both"):
        facts = timing if kind == "predicted" else timing["prediction"]
        table = facts["table"]
        cal = table["calibration"]
        out.append(f"Latency PREDICTED: the calibrated sum of each network's blocks, timed alone "
                     f"on this machine (latency table: {table['pieces']} "
                     f"blocks; factor {cal['factor']:.3f} learned from "
                     f"{len(cal['networks'])} whole networks, which it fits within "
                     f"{table['calibration_spread'] * 100:.0f}%).")
    if kind in ("measured", "both"):
        warmup = next((r.latency["warmup"] for r in records if measured(r.latency)), "?")
        out.append(f"Latency MEASURED: median of {_runs(records)} runs after {warmup} warm-up, "
                     "eval mode, subnormals flushed to zero; ± is the IQR."
                     + (" pred. error = predicted / measured - 1." if kind == "both" else ""))
    out.append(machine + ".")
    return out + trust_lines(records)


def memory_line(r: ModelRecord) -> str:
    """``info``: the network's memory at its batch (one estimate, memory.estimate_memory)."""
    m = r.memory
    if m is None:
        return ""
    return (f"memory (fp32, batch {m.batch}): params {format_bytes(m.params_bytes)}; inference "
            f"peak activations {format_bytes(m.inference_peak_bytes)} (total "
            f"{format_bytes(m.total_bytes)}); training {format_bytes(m.training_bytes)} = params "
            f"+ gradients + {m.optimizer} state {format_bytes(m.optimizer_bytes)} + saved "
            f"activations {format_bytes(m.saved_activation_bytes)}")


def latency_lines(r: ModelRecord) -> list[str]:
    """``info``: the model's latency (predicted, measured or both), its efficiency and
    (``--optimize``) the optimised copy's."""
    lat = r.latency
    if not lat:
        return []
    lines = []
    if predicted(lat):
        lines.append(f"latency, predicted ({lat.get('runtime', 'eager')}): "
                     f"{predicted_text(lat)} ms{_flag(lat) if not measured(lat) else ''}")
    if measured(lat):
        line = (f"latency, measured ({lat.get('runtime', 'eager')}): {latency_summary(lat)} "
                f"after {lat['warmup']} warm-up (mean {_ms(lat['mean_ms'], spread=lat['iqr_ms'])}"
                f", min {_ms(lat['min_ms'], spread=lat['iqr_ms'])}, max "
                f"{_ms(lat['max_ms'], spread=lat['iqr_ms'])} ms); "
                f"{lat['throughput']:,.1f} images/s; {lat['gflops_per_s']:.1f} GFLOP/s = "
                f"{peak_share(lat)} of the fp32 matmul peak")
        if lat.get("cpu_share") is not None:
            line += f"; CPU share {lat['cpu_share']:.2f}"
        lines.append(line + _flag(lat))
        if lat.get("prediction_error") is not None:
            lines.append(f"prediction error: {lat['prediction_error'] * 100:+.1f}% of the "
                         "measured median")
    opt = lat.get("optimized")
    if opt:
        lo, hi = opt.get("speedup_interval") or (opt["speedup"], opt["speedup"])
        lines.append(f"optimised: {latency_summary(opt)}, {opt['speedup']:.2f}x the eager speed "
                     f"(95% interval {lo:.2f}-{hi:.2f}, timed interleaved with it)"
                     f"{_flag(opt)}; {opt['gflops_per_s']:.1f} GFLOP/s = {peak_share(opt)} of "
                     f"peak ({opt['method']})")
    return lines


def _kind_columns(r: ModelRecord) -> dict[str, str]:
    """The block kinds' own columns (key -> header) that some stage of ``r`` fills, in order."""
    cols: dict[str, str] = {}
    for s in r.stages:
        if s.block in KINDS:
            cols.update({k: h for k, h in KINDS[s.block].columns.items() if k in s.columns})
    return cols


def _cell(v: Any) -> str:
    if v is None or v == 0:
        return ""
    return f"{v:g}" if isinstance(v, float) else str(v)


def info_table(r: ModelRecord) -> Table:
    c = convention_of([r])
    flops = "; FLOPs = 2 x MACs" if c.unit == "MACs" else ""
    t = new_table(f"{r.name} at {r.resolution}x{r.resolution}",
               caption=f"counter: {r.counter}. {c.definition}{flops}; acts = conv/linear/"
                       "max-pool output elements (pycls).")
    extra = _kind_columns(r)
    for col, just in (("stage", "left"), ("block", "left"), ("k", "right"), ("s", "right"),
                      *((h, "right") for h in extra.values()), ("in -> out", "right"),
                      ("n", "right"), ("input", "right"), ("params", "right"), (c.label, "right"),
                      ("acts", "right")):
        t.add_column(col, justify=just, no_wrap=True)
    t.layout(names=("stage", "block"), optional=(*extra.values(), "k", "s", "input", "n"))
    for s in r.stages:
        t.add_row(s.name, s.block, str(s.kernel), str(s.stride),
                  *(_cell(s.columns.get(k)) for k in extra),
                  f"{s.cin} -> {s.cout}", str(s.repeats), f"{s.resolution}",
                  fmt_int(s.params), fmt_int(s.macs), fmt_int(s.acts))
    t.add_section()
    t.add_row("total", "", "", "", *("" for _ in extra), "",
              str(sum(s.repeats for s in r.stages if s.name not in ("stem", "head"))),
              f"{r.resolution}", fmt_int(r.params), fmt_int(r.macs), fmt_int(r.acts), style="bold")
    return t


def layers_table(r: ModelRecord) -> Table:
    """``info --layers``: one row per conv, linear layer and pool (``r.layers``), each naming its
    stage (so that ``grep stage3`` finds them), and no other row (the totals line under it is
    their sum). Compact as built (narrow columns k, s, g one space apart, two before each count):
    every bundled network fits 80 columns with every column."""
    c = convention_of([r])
    layers = r.layers or ()
    t = ReportTable(title=f"{r.name} at {r.resolution}x{r.resolution}: {len(layers):,} layers",
              caption=lines(
                  "block: index in the stage; conv+BN: the conv's BatchNorm is counted in its "
                  "row (its params: gamma and beta); output: C x H x W per image; k: kernel, "
                  "s: stride, g: groups (blank: linear layer or global pooling).",
                  f"{c.definition}"
                  + ("" if c.name == conventions.DEFAULT else
                     " (a row: its layer and the ops after it: BN, activation, SE gate, add)")
                  + "; acts = conv/linear/max-pool output elements (pycls). The rows sum to "
                    "the stage rows of `scalekit info` and to the totals."),
              box=box.SIMPLE_HEAVY, caption_justify="left", title_justify="left",
              header_style="bold", padding=0, show_edge=False)
    rows = [[x.stage, str(x.block), x.layer + ("+BN" if "bn" in x.folded else ""), x.shape,
             *("" if v is None else str(v) for v in (x.kernel, x.stride, x.groups)),
             fmt_int(x.params), fmt_int(x.macs), fmt_int(x.acts)] for x in layers]
    heads = ("stage", "block", "layer", "output", "k", "s", "g", "params", c.label, "acts")
    for i, col in enumerate(heads):
        count = i >= 7  # a count column: one space more than the widest cell
        wide = max([len(col)] + [len(row[i]) for row in rows]) + 1 if count else None
        t.add_column(col, justify="left" if i in (0, 2) else "right", no_wrap=True,
                     min_width=wide)
    for row in rows:
        t.add_row(*row)
    return t.layout(names=("stage", "layer"))  # already compact: fit_width keeps every column


def totals_line(r: ModelRecord) -> str:
    c = convention_of([r])
    flops = f"{fmt_int(r.flops)} FLOPs, " if c.unit == "MACs" else ""
    which = "" if c.name == conventions.DEFAULT else f", {c.name} convention"
    return (f"{r.name}: {fmt_int(r.params)} params ({r.params / 1e6:.2f} M), "
            f"{fmt_int(r.macs)} {c.unit} ({r.macs / 1e9:.3f} G{which}), {flops}"
            f"{fmt_int(r.acts)} acts ({r.acts / 1e6:.2f} M)")


def _arrow(a: Any, b: Any) -> str:
    return f"{a}" if a == b else f"{a} -> {b}"


def scale_table(base: ModelRecord, scaled: ModelRecord, ideal: float) -> Table:
    c = scaled.coefficients
    conv = convention_of([scaled])
    what = ("MACs = multiply-accumulates (paper's FLOPS)" if conv.name == conventions.DEFAULT
            else conv.definition)
    t = new_table(f"{base.name} -> {scaled.name}",
               caption=f"coefficients: {c.describe() if c else 'none'}. {what}. Ideal MAC growth "
                       f"d*w^2*r^2 = {ideal:.3f}x before rounding.")
    for col in ("stage", "block", "channels", "repeats", "input", "params", conv.label, "acts"):
        t.add_column(col, justify="left" if col in ("stage", "block") else "right", no_wrap=True)
    t.layout(names=("stage", "block"), optional=("acts", "input", "block", "repeats"),
             units={"params": " M", conv.label: " G", "acts": " M"})
    for a, b in zip(base.stages, scaled.stages):
        t.add_row(a.name, a.block, _arrow(f"{a.cout}", f"{b.cout}"), _arrow(a.repeats, b.repeats),
                  _arrow(a.resolution, b.resolution), _arrow(fmt_m(a.params), fmt_m(b.params)) + " M",
                  _arrow(fmt_g(a.macs), fmt_g(b.macs)) + " G", _arrow(fmt_m(a.acts), fmt_m(b.acts)) + " M")
    return t


def growth_table(base: ModelRecord, scaled: ModelRecord, ideal: float) -> Table:
    t = new_table("totals")
    for col in ("", "baseline", "scaled", "growth", "vs ideal"):
        t.add_column(col, justify="left" if col == "" else "right", no_wrap=True)
    t.layout(names=("",), optional=("vs ideal",))
    t.add_row("resolution", f"{base.resolution}", f"{scaled.resolution}",
              f"{scaled.resolution / base.resolution:.3f}x", "")
    t.add_row("params", fmt_int(base.params), fmt_int(scaled.params),
              f"{scaled.params / base.params:.3f}x", "")
    conv = convention_of([scaled])
    t.add_row(conv.label, fmt_int(base.macs), fmt_int(scaled.macs),
              f"{scaled.macs / base.macs:.3f}x", f"{scaled.macs / base.macs / ideal:.3f} of "
                                                 f"{ideal:.3f}x")
    if conv.unit == "MACs":
        t.add_row("FLOPs (2xMACs)", fmt_int(base.flops), fmt_int(scaled.flops),
                  f"{scaled.flops / base.flops:.3f}x", "")
    t.add_row("acts", fmt_int(base.acts), fmt_int(scaled.acts), f"{scaled.acts / base.acts:.3f}x", "")
    b, s = base.latency, scaled.latency
    macs_x = scaled.macs / base.macs
    if predicted(b) and predicted(s):
        lat_x = s["predicted_ms"] / b["predicted_ms"]
        t.add_row(f"predicted ms ({_runtime([base, scaled])})", predicted_text(b) + _flag(b),
                  predicted_text(s) + _flag(s), f"{lat_x:.3f}x",
                  f"{lat_x / macs_x:.3f} of MACs {macs_x:.3f}x")
    if measured(b) and measured(s):
        lat_x = s["median_ms"] / b["median_ms"]
        t.add_row(f"measured ms ± IQR ({_runtime([base, scaled])})", latency_text(b) + _flag(b),
                  latency_text(s) + _flag(s), f"{lat_x:.3f}x",
                  f"{lat_x / macs_x:.3f} of MACs {macs_x:.3f}x")
        t.add_row("GFLOP/s (% peak)", _efficiency(b), _efficiency(s),
                  f"{s['gflops_per_s'] / b['gflops_per_s']:.3f}x", "")
        bo, so = b.get("optimized"), s.get("optimized")
        if bo and so:
            t.add_row("optimised ms ± IQR", latency_text(bo), latency_text(so),
                      f"{so['median_ms'] / bo['median_ms']:.3f}x", "")
            t.add_row("optimised speedup (95%)",
                      interval_text(bo["speedup"], bo.get("speedup_interval")),
                      interval_text(so["speedup"], so.get("speedup_interval")), "", "")
    mb, ms = base.memory, scaled.memory
    if mb is not None and ms is not None:
        t.add_row(f"memory, inference (b{mb.batch})", format_bytes(mb.total_bytes),
                  format_bytes(ms.total_bytes), f"{ms.total_bytes / mb.total_bytes:.3f}x", "")
        t.add_row(f"memory, training (b{mb.batch})", format_bytes(mb.training_bytes),
                  format_bytes(ms.training_bytes),
                  f"{ms.training_bytes / mb.training_bytes:.3f}x", "")
    return t


def footnotes(records: Iterable[ModelRecord]) -> tuple[dict[str, int], list[str]]:
    """Number each distinct note once, so tables carry [1], [2] and the text follows below."""
    index: dict[str, int] = {}
    for r in records:
        for n in r.notes:
            index.setdefault(n, len(index) + 1)
    return index, [f"[{i}] {n}" for n, i in index.items()]


def by_base(t: Table, records: Iterable[ModelRecord]) -> Iterator[ModelRecord]:
    """Yield ``records``, starting a new section of ``t`` whenever the baseline changes."""
    last = None
    for r in records:
        if last is not None and r.base != last:
            t.add_section()
        last = r.base
        yield r


def compare_table(records: Sequence[ModelRecord], title: str, caption: str) -> Table:
    index, notes = footnotes(records)
    lat_cols = latency_columns(records)
    t = new_table(title, caption=lines(caption, *notes))
    for col, just in (("model", "left"), ("mode", "left"), ("d", "right"), ("w", "right"),
                      ("px", "right"), ("params (M)", "right"), (macs_header(records), "right"),
                      ("paper FLOPS (B)", "right"), ("diff", "right"), ("acts (M)", "right"),
                      ("paper top-1 % (reported)", "right"),
                      *((c, "right") for c in lat_cols), ("note", "left")):
        t.add_column(col, justify=just, no_wrap=True)
    t.layout(names=("model", "mode", "note"),
             optional=("paper top-1 % (reported)", *optional_latency(records), "acts (M)", "d",
                       "w", "params (M)", "px"))
    for r in by_base(t, records):
        ref = r.reference or {}
        pf = ref.get("paper_flops_b")
        diff = "" if pf is None else _vs_paper(r, pf)
        c = r.coefficients
        t.add_row(r.base, r.mode or "", "" if c is None else f"{c.depth:.3g}",
                  "" if c is None else f"{c.width:.3g}", str(r.resolution),
                  f"{r.params / 1e6:.2f}", f"{r.macs / 1e9:.3f}", "" if pf is None else ref.get("paper_flops_b_text", f"{pf:g}"),
                  diff, f"{r.acts / 1e6:.2f}",
                  "" if ref.get("paper_top1") is None else f"{ref['paper_top1']:.1f}",
                  *latency_cells(r, lat_cols), " ".join(f"[{index[n]}]" for n in r.notes))
    return t


def _cost(r: ModelRecord, metric: str, memory: str = "inference") -> float | None:
    """params, MACs or acts of a record, its memory in bytes, or its latency in ms (measured if
    it was, else predicted; None if neither)."""
    if metric == "latency":
        lat = r.latency
        return None if not lat else float(lat["median_ms"] if measured(lat)
                                          else lat["predicted_ms"])
    if metric == "memory":
        m = r.memory
        return None if m is None else float(m.total_bytes if memory == "inference"
                                            else m.training_bytes)
    return float(getattr(r, metric))


def _vs(value: float | None, target: float | None) -> str:
    return "" if value is None or not target else f"{(value - target) / target * 100:+.1f}%"


def _dw(r: ModelRecord) -> tuple[str, str]:
    c = r.coefficients
    return ("", "") if c is None else (f"{c.depth:.6g}", f"{c.width:.6g}")


def fit_table(rows: Sequence[tuple[str, str, ModelRecord]], metric: str, target: float,
              title: str, caption: str | Text, memory: str = "inference") -> Table:
    """``scalekit fit``: (label, coefficient, record) rows -- the baseline, the network found and
    the next realisable step up -- each with its distance from the target."""
    t = new_table(title, caption)
    lats = [r.latency for _, _, r in rows if r.latency]
    pred = any(predicted(lat) for lat in lats)
    meas = any(measured(lat) for lat in lats)
    lat_cols = (["predicted ms"] if pred else []) + (["measured ms"] if meas else [])
    mem_col = [f"memory ({memory})"] if metric == "memory" else []
    for col in ("", "coefficient", "d", "w", "px", "blocks", "params (M)", "MACs (G)", "acts (M)",
                *lat_cols, *mem_col, "vs target"):
        t.add_column(col, justify="left" if col in ("", "coefficient") else "right", no_wrap=True)
    t.layout(names=("", "coefficient"), optional=("acts (M)", "blocks", "d", "w", "params (M)"))
    for label, coef, r in rows:
        lat = r.latency or {}
        cells = []
        if pred:
            cells.append(predicted_text(lat) if predicted(lat) else "")
        if meas:
            cells.append(latency_text(lat) + _flag(lat) if measured(lat) else "")
        if mem_col:
            cells.append(format_bytes(int(_cost(r, metric, memory) or 0)))
        blocks = sum(st.repeats for st in r.stages if st.name not in ("stem", "head"))
        t.add_row(label, coef, *_dw(r), str(r.resolution), str(blocks), f"{r.params / 1e6:.3f}",
                  f"{r.macs / 1e9:.4f}", f"{r.acts / 1e6:.3f}", *cells,
                  _vs(_cost(r, metric, memory), target))
    return t


def sweep_table(rows: Sequence[tuple[str, ModelRecord]], base: ModelRecord, title: str,
                caption: str) -> Table:
    """``scalekit sweep``: one row per (coefficient label, record), a section per mode, with the
    growth of MACs and activations over ``base`` side by side."""
    t = new_table(title, caption)
    lat_cols = latency_columns([r for _, r in rows])
    for col in ("mode", "coefficient", "d", "w", "px", "params (M)", "MACs (G)", "acts (M)",
                "MACs x", "acts x", *lat_cols):
        t.add_column(col, justify="left" if col in ("mode", "coefficient") else "right",
                     no_wrap=True)
    t.layout(names=("mode", "coefficient"),
             optional=(*optional_latency([r for _, r in rows]), "d", "w", "px", "acts (M)",
                       "params (M)"))
    last = None
    for label, r in rows:
        if last is not None and r.mode != last:
            t.add_section()
        last = r.mode
        t.add_row(r.mode or "", label, *_dw(r), str(r.resolution), f"{r.params / 1e6:.2f}",
                  f"{r.macs / 1e9:.3f}", f"{r.acts / 1e6:.2f}", f"{r.macs / base.macs:.2f}",
                  f"{r.acts / base.acts:.2f}", *latency_cells(r, lat_cols))
    return t


def matched_table(records: Sequence[ModelRecord], title: str, caption: str) -> Table:
    """``scalekit compare --match``: each row's solved coefficient beside the paper's stated one,
    and its distance from the common target."""
    index, notes = footnotes(records)
    lat_cols = latency_columns(records)
    t = new_table(title, caption=lines(caption, *notes))
    for col in ("model", "mode", "paper's coefficient", "solved", "d", "w", "px", "params (M)",
                "MACs (G)", "vs target", "acts (M)", *lat_cols, "note"):
        t.add_column(col, justify="left" if col in ("model", "mode", "note") else "right",
                     no_wrap=True)
    t.layout(names=("model", "mode", "note"),
             optional=(*optional_latency(records), "acts (M)", "d", "w", "px", "params (M)",
                       "paper's coefficient"))
    for r in by_base(t, records):
        ref = r.reference or {}
        t.add_row(r.base, r.mode or "", ref.get("paper_coefficient", ""),
                  ref.get("solved_coefficient", ""), *_dw(r), str(r.resolution),
                  f"{r.params / 1e6:.2f}", f"{r.macs / 1e9:.3f}",
                  _vs(r.macs, ref.get("target_macs")), f"{r.acts / 1e6:.2f}",
                  *latency_cells(r, lat_cols), " ".join(f"[{index[n]}]" for n in r.notes))
    return t


def table2_table(records: Sequence[ModelRecord]) -> Table:
    index, notes = footnotes(records)
    lat_cols = latency_columns(records)
    t = new_table("EfficientNet paper Table 2: the EfficientNet family (official presets)",
               caption=lines(*["params and MACs counted exactly by scalekit at each model's "
                                  "official resolution; paper and torchvision columns are their "
                                  "REPORTED figures; top-1 is the paper's, not measured here."]
                                 + convention_note(records) + notes))
    for col in ("model", "px", "params", "paper params (M)", "torchvision params",
                macs_header(records),
                "paper FLOPS (B)", "torchvision GMACs", "diff vs paper",
                "paper top-1 % (reported)", *lat_cols, "note"):
        t.add_column(col, justify="left" if col in ("model", "note") else "right", no_wrap=True)
    t.layout(names=("model", "note"),
             optional=("torchvision params", "paper top-1 % (reported)", "torchvision GMACs",
                       *optional_latency(records), "paper params (M)", "px"))
    for r in records:
        ref = r.reference or {}
        pf = ref.get("paper_flops_b")
        t.add_row(r.name, str(r.resolution), fmt_int(r.params), f"{ref.get('paper_params_m', ''):g}",
                  "" if ref.get("torchvision_params") is None else fmt_int(ref["torchvision_params"]),
                  f"{r.macs / 1e9:.3f}", "" if pf is None else ref.get("paper_flops_b_text", f"{pf:g}"),
                  "" if ref.get("torchvision_gmacs") is None else f"{ref['torchvision_gmacs']:.3f}",
                  "" if pf is None else _vs_paper(r, pf),
                  f"{ref.get('paper_top1', 0):.1f}", *latency_cells(r, lat_cols),
                  " ".join(f"[{index[n]}]" for n in r.notes))
    return t


def _speedup_over_first(records: Sequence[ModelRecord], r: ModelRecord) -> tuple[float, Any]:
    """How many times as fast as the first row ``r`` is, and its 95% interval (None when the
    latencies were predicted, or not measured interleaved)."""
    lat, base = r.latency, records[0].latency
    if measured(lat) and measured(base):
        rel = lat.get("speedup_over_first")
        if rel:
            return rel["speedup"], rel["interval"]
        return base["median_ms"] / lat["median_ms"], None
    return base["predicted_ms"] / lat["predicted_ms"], None


def table4_table(records: Sequence[ModelRecord], timing: dict[str, Any]) -> Table:
    """The paper's Table 4 on this machine: each model's latency beside the paper's, and the
    speedup over the first row (ResNet-152) beside the paper's speedup (measured: both timed
    interleaved, with a 95% interval; or predicted)."""
    base = records[0].latency
    meas = measured(base)
    opt_base = base.get("optimized")
    threads = timing["threads"]
    rows = [r for r in records[1:] if r.latency]
    how = ("measured, timed interleaved with it (A, B, A, B), 95% interval" if meas
           else "predicted")
    text = ["paper: its REPORTED top-1 and latency (batch 1, one core of an Intel Xeon E5-2690, "
             "mean of 20 runs). ours: this CPU, batch "
             f"{timing['batch']}, {threads} thread{'s' if threads != 1 else ''}"
             f"{' (the paper: one core)' if threads != 1 else ''}, "
             f"{'median ± IQR' if meas else 'PREDICTED'}; speedup = "
             f"{records[0].name}'s latency / the row's ({how})"
             f"{' (optimised: both optimised)' if opt_base else ''}. Top-1 needs ImageNet "
             "training and is not measured here."]
    for r in rows:
        lat, ref = r.latency, r.reference or {}
        speedup, interval = _speedup_over_first(records, r)
        line = (f"{r.name} runs {interval_text(speedup, interval, 1)} as fast as "
                f"{records[0].name} here (the paper: {ref.get('paper_speedup', 0):g}x) with "
                f"{records[0].macs / r.macs:.1f}x fewer MACs")
        if meas:
            line += (f": it reaches {lat['gflops_per_s']:.1f} GFLOP/s to {records[0].name}'s "
                     f"{base['gflops_per_s']:.1f} (depthwise convs and squeeze-excitation do "
                     "little arithmetic per byte moved).")
        text.append(line + ("" if meas else "."))
    t = new_table("EfficientNet paper Table 4: inference latency",
                  caption=lines(*text, *convention_note(records)))
    rt = _runtime(records)
    cols = ["model", "px", "params (M)", macs_header(records), "paper top-1 % (reported)",
            "paper latency (s)", "paper speedup"]
    cols += ([f"measured ms ± IQR ({rt})", "GFLOP/s (% peak)", "speedup (95%)"] if meas
             else [f"predicted ms ({rt})", "speedup"])
    if opt_base:
        cols += ["optimised ms ± IQR", "speedup, optimised"]
    for col in cols:
        t.add_column(col, justify="left" if col == "model" else "right", no_wrap=True)
    t.layout(names=("model",),
             optional=("paper top-1 % (reported)", "GFLOP/s (% peak)", "params (M)", "px",
                       "optimised ms ± IQR", "paper latency (s)"))
    for r in records:
        lat, ref = r.latency, r.reference or {}
        speedup, interval = _speedup_over_first(records, r)
        cells = [r.name, str(r.resolution), f"{r.params / 1e6:.2f}", f"{r.macs / 1e9:.3f}",
                 f"{ref['paper_top1']:.1f}", f"{ref['paper_latency_s']:.3f}",
                 f"{ref['paper_speedup']:g}x"]
        if meas:
            cells += [latency_text(lat) + _flag(lat), _efficiency(lat),
                      interval_text(speedup, interval if r is not records[0] else None, 1)]
        else:
            cells += [predicted_text(lat) + _flag(lat), f"{speedup:.1f}x"]
        if opt_base:
            opt = lat["optimized"]
            cells += [latency_text(opt), f"{opt_base['median_ms'] / opt['median_ms']:.1f}x"]
        t.add_row(*cells)
    return t


def bench_table(records: Sequence[ModelRecord]) -> Table:
    """``scalekit bench``: the full statistics of each model's latency, a row per variant."""
    t = new_table(f"latency on this CPU, measured ({_runtime(records)})",
                  caption="median, mean, IQR (p25-p75), min and max of per-forward wall-clock "
                          "times (to the digits the IQR supports); images/s = batch / median; "
                          "GFLOP/s = 2 x MACs x batch / median, and its share of the fp32 matmul "
                          "peak; CPU = the process's CPU time / (wall time x threads) while "
                          f"timing; {FLAG} = not to be trusted (below). speedup = eager / "
                          "optimised, timed interleaved, 95% interval.")
    for col in ("model", "variant", "px", "batch", "MACs (G)", "median ms", "mean ms", "IQR ms",
                "min - max ms", "runs", "warm-up", "images/s", "GFLOP/s", "% peak", "CPU",
                "speedup"):
        t.add_column(col, justify="left" if col in ("model", "variant") else "right",
                     no_wrap=True)
    t.layout(names=("model", "variant"),
             optional=("warm-up", "batch", "px", "mean ms", "CPU", "min - max ms", "runs",
                       "GFLOP/s", "images/s"))
    for i, r in enumerate(records):
        if i:
            t.add_section()
        eager = r.latency
        opt = eager.get("optimized")
        for variant, lat in ((eager.get("runtime", "eager"), eager), ("optimised", opt)):
            if not lat:
                continue
            iqr = lat["iqr_ms"]
            share = lat.get("cpu_share")
            t.add_row(r.name if lat is eager else "", variant + _flag(lat), str(r.resolution),
                      str(lat["batch"]), f"{r.macs / 1e9:.3f}", _ms(lat["median_ms"], spread=iqr),
                      _ms(lat["mean_ms"], spread=iqr), _ms(iqr, lat["median_ms"], spread=iqr),
                      f"{_ms(lat['min_ms'], spread=iqr)} - {_ms(lat['max_ms'], spread=iqr)}",
                      str(lat["runs"]), str(lat["warmup"]), f"{lat['throughput']:,.1f}",
                      f"{lat['gflops_per_s']:.1f}", peak_share(lat),
                      "" if share is None else f"{share:.2f}",
                      interval_text(lat["speedup"], lat.get("speedup_interval"))
                      if lat is opt else "")
    return t


# ---------------------------------------------------------------------------------------------
# scalekit reconcile


def fmt_short(n: int) -> str:
    """A count in 4 significant digits with k / M / G / T: ``4.087G``, ``15.04M``, ``806.0k``;
    below 10,000 as it is."""
    if abs(n) < 10_000:
        return f"{n:,}"
    for suffix, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            v = n / size
            return f"{v:.4g}{suffix}" if abs(v) >= 1000 else f"{v:#.4g}{suffix}"
    return str(n)  # pragma: no cover


def _agreement(t: Any) -> str:
    if t.status == "exact":
        return "exact"
    if t.status == "differs":
        return f"{t.difference:+,}"
    return t.status


def reconcile_explained(counts: dict[str, Any]) -> list[str]:
    """One line per convention: how it differs from the paper's count, term by term, exactly
    (``fvcore = paper + BN 15,038,720 + pool 805,920``)."""
    paper = counts[conventions.DEFAULT]
    lines = []
    for name, c in counts.items():
        if name == conventions.DEFAULT:
            continue
        factor = 1 if c.unit == paper.unit else 2
        parts = [f"{'+' if d > 0 else '-'} {conventions.TERMS[t]} {abs(d):,}"
                 for t in conventions.TERMS
                 for d in [c.terms[t] - factor * paper.terms[t]] if d]
        base = "paper" if factor == 1 else "2 x paper"
        lines.append(f"{name} ({c.unit}) = {base}" + "".join(f" {p}" for p in parts))
    return lines


def reconcile_tables(r: Any) -> list[Any]:
    """``scalekit reconcile``: each tool's total beside scalekit's count of its convention, then
    what every convention counts per op type, and why they differ. ``r``: a
    :class:`scalekit.reconcile.Reconciliation`."""
    h, w = r.resolution
    counts = r.counts
    paper = counts[conventions.DEFAULT].total
    by_convention: dict[str, list[Any]] = {}
    for t in r.results:
        by_convention.setdefault(t.convention, []).append(t)
    text = ["scalekit: each convention counted exactly from the spec, without torch; tool "
             "total: the tool itself run on the built model (batch 1, eval mode). MACs = "
             "multiply-accumulates, FLOPs = 2 x MACs; vs paper: against the paper's count in "
             "the same unit."]
    ran = [f"{t.convention}: {t.package} {t.version} {t.call} "
           f"({'meta device' if t.device == 'meta' else 'CPU forward'})"
           for t in r.results if t.version is not None]
    if ran:
        text.append("tools: " + "; ".join(ran) + ".")
    for status in ("not installed", "not run", "failed", "skipped"):
        hit = [t for t in r.results if t.status == status]
        if not hit:
            continue
        reasons = dict.fromkeys(t.reason or "" for t in hit)
        for reason in reasons:
            names = ", ".join(t.tool for t in hit if (t.reason or "") == reason)
            text.append(f"{status}: {names}{': ' + reason if reason else ''}")
    for t in r.results:
        if t.status == "differs":
            text.append(f"differs: {t.tool} {t.version} counts {t.total:,}, {t.difference:+,} "
                         f"against scalekit's {t.convention} convention (made for the versions "
                         "in docs/conventions.md)")
    totals = new_table(f"{r.record.name} at {h}x{w}: each tool beside scalekit's count of its "
                       "convention", caption=lines(*text))
    for col in ("convention", "unit", "scalekit", "tool total", "agrees", "vs paper"):
        totals.add_column(col, justify="left" if col in ("convention", "unit", "agrees")
                          else "right", no_wrap=True)
    totals.layout(names=("convention",))
    for name, c in counts.items():
        ref = paper * (1 if c.unit == "MACs" else 2)
        vs = "" if name == conventions.DEFAULT else f"{(c.total - ref) / ref * 100:+.2f}%"
        tools = by_convention.get(name, [])
        if not tools:
            totals.add_row(name, c.unit, fmt_int(c.total), "", "no tool", vs)
        for i, t in enumerate(tools):
            totals.add_row(name if i == 0 else "", c.unit if i == 0 else "",
                           fmt_int(c.total) if i == 0 else "",
                           "" if t.total is None else fmt_int(t.total), _agreement(t),
                           vs if i == 0 else "")
    breakdown = new_table("what each convention counts, by op type",
                          caption=lines(*
                              ["in each convention's unit; 0: not counted; k, M, G: 4 "
                               "significant digits (--format json or csv: exact). The rule for "
                               "each op type and its source: docs/conventions.md."]
                              + reconcile_explained(counts)))
    breakdown.add_column("op type", justify="left", no_wrap=True, vertical="bottom")
    breakdown.layout(names=("op type",))
    for name, c in counts.items():  # ptflops-aten over two lines: the table fits 80 columns
        breakdown.add_column(lines(*name.replace("-", "\n-").split("\n"), c.unit),
                             justify="right", no_wrap=True, vertical="bottom")
    for term, label in conventions.TERMS.items():
        breakdown.add_row(label, *(fmt_short(c.terms[term]) for c in counts.values()))
    breakdown.add_section()
    breakdown.add_row("total", *(fmt_short(c.total) for c in counts.values()), style="bold")
    return [totals, "", breakdown]

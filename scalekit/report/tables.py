"""Tables for people: records in, rich renderables out (formatting only; no computing, no torch).

Every string in these tables may come from a user (a spec's name, its stages' names, a path).
They are printed only through :func:`safe_console`, whose consoles never parse rich markup,
emoji codes or highlighting, and show every control character escaped (scalekit/text.py): the
escaping is done once, where text becomes a rich Text, not cell by cell.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Sequence

from rich import box
from rich.console import Console
from rich.highlighter import RegexHighlighter
from rich.table import Table
from rich.text import Text

from .. import conventions
from ..blocks import KINDS
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


def new_table(title: str | None = None, caption: str | Text | None = None) -> Table:
    return Table(title=title, caption=caption, box=box.SIMPLE_HEAVY, caption_justify="left",
                 title_justify="left", header_style="bold")


def _ms(v: float, like: float | None = None) -> str:
    """Milliseconds with the decimals that give ``like`` (default ``v``) 3-4 significant digits:
    0.412, 35.21, 176.6, 1,204.3."""
    size = v if like is None else like
    return f"{v:,.1f}" if size >= 100 else f"{v:.2f}" if size >= 1 else f"{v:.3f}"


def latency_text(lat: dict[str, Any]) -> str:
    """``35.21 ± 0.76``: median ± interquartile range, ms (both to the median's decimals)."""
    return f"{_ms(lat['median_ms'])} ± {_ms(lat['iqr_ms'], lat['median_ms'])}"


def latency_summary(lat: dict[str, Any]) -> str:
    """One model's latency in a line: ``35.21 ms median, IQR 0.76 ms, 10 runs``."""
    return (f"{_ms(lat['median_ms'])} ms median, IQR {_ms(lat['iqr_ms'], lat['median_ms'])} ms, "
            f"{lat['runs']} runs")


def _efficiency(lat: dict[str, Any]) -> str:
    """``21.9 (26%)``: achieved GFLOP/s and its share of the fp32 matmul peak."""
    return f"{lat['gflops_per_s']:.1f} ({lat['peak_fraction'] * 100:.0f}%)"


def latency_columns(records: Sequence[ModelRecord]) -> list[str]:
    """Headers of the latency columns a table of ``records`` needs (none if nothing was timed)."""
    if not any(r.latency for r in records):
        return []
    cols = ["latency ms ± IQR", "GFLOP/s (% peak)"]
    if any(r.latency and r.latency.get("optimized") for r in records):
        cols += ["optimised ms ± IQR", "speedup"]
    return cols


def latency_cells(r: ModelRecord, columns: Sequence[str]) -> list[str]:
    """``r``'s cells under :func:`latency_columns` (blank where it was not timed)."""
    lat = r.latency
    if not lat:
        return [""] * len(columns)
    cells = [latency_text(lat), _efficiency(lat)]
    if len(columns) > 2:
        opt = lat.get("optimized")
        cells += [latency_text(opt), f"{opt['speedup']:.2f}x"] if opt else ["", ""]
    return cells


def _runs(records: Iterable[ModelRecord]) -> str:
    runs = sorted({lat["runs"] for r in records if r.latency
                   for lat in (r.latency, r.latency.get("optimized")) if lat})
    return f"{runs[0]}" if len(runs) == 1 else f"{runs[0]}-{runs[-1]}"


def timing_line(timing: dict[str, Any], records: Sequence[ModelRecord]) -> str:
    """The machine under a latency table: what the numbers depend on and how they were taken."""
    warmup = next(r.latency["warmup"] for r in records if r.latency)
    threads = timing["threads"]
    return (f"CPU: {timing['cpu']} ({timing['cpu_capability']}), torch {timing['torch']}, "
            f"{threads} thread{'s' if threads != 1 else ''}, batch {timing['batch']}; fp32 matmul "
            f"peak {timing['peak_gflops']:.1f} GFLOP/s; median of {_runs(records)} runs after "
            f"{warmup} warm-up, eval mode, subnormals flushed to zero.")


def latency_lines(r: ModelRecord) -> list[str]:
    """``info``: the model's latency, its efficiency and (``--optimize``) the optimised copy's."""
    lat = r.latency
    if not lat:
        return []
    lines = [f"latency: {latency_summary(lat)} after {lat['warmup']} warm-up (mean "
             f"{_ms(lat['mean_ms'])}, min {_ms(lat['min_ms'])}, max {_ms(lat['max_ms'])} ms); "
             f"{lat['throughput']:,.1f} images/s; {lat['gflops_per_s']:.1f} GFLOP/s = "
             f"{lat['peak_fraction'] * 100:.0f}% of the fp32 matmul peak"]
    opt = lat.get("optimized")
    if opt:
        lines.append(f"optimised: {latency_summary(opt)}, {opt['speedup']:.2f}x the eager speed; "
                     f"{opt['gflops_per_s']:.1f} GFLOP/s = {opt['peak_fraction'] * 100:.0f}% of "
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
    for a, b in zip(base.stages, scaled.stages):
        t.add_row(a.name, a.block, _arrow(f"{a.cout}", f"{b.cout}"), _arrow(a.repeats, b.repeats),
                  _arrow(a.resolution, b.resolution), _arrow(fmt_m(a.params), fmt_m(b.params)) + " M",
                  _arrow(fmt_g(a.macs), fmt_g(b.macs)) + " G", _arrow(fmt_m(a.acts), fmt_m(b.acts)) + " M")
    return t


def growth_table(base: ModelRecord, scaled: ModelRecord, ideal: float) -> Table:
    t = new_table("totals")
    for col in ("", "baseline", "scaled", "growth", "vs ideal"):
        t.add_column(col, justify="left" if col == "" else "right", no_wrap=True)
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
    if b and s:
        macs_x = scaled.macs / base.macs
        lat_x = s["median_ms"] / b["median_ms"]
        t.add_row("latency ms ± IQR", latency_text(b), latency_text(s), f"{lat_x:.3f}x",
                  f"{lat_x / macs_x:.3f} of MACs {macs_x:.3f}x")
        t.add_row("GFLOP/s (% peak)", _efficiency(b), _efficiency(s),
                  f"{s['gflops_per_s'] / b['gflops_per_s']:.3f}x", "")
        bo, so = b.get("optimized"), s.get("optimized")
        if bo and so:
            t.add_row("optimised ms ± IQR", latency_text(bo), latency_text(so),
                      f"{so['median_ms'] / bo['median_ms']:.3f}x", "")
            t.add_row("optimised speedup", f"{bo['speedup']:.2f}x", f"{so['speedup']:.2f}x", "", "")
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


def _cost(r: ModelRecord, metric: str) -> float | None:
    """params, MACs or acts of a record, or its median latency in ms (None if not measured)."""
    if metric == "latency":
        return None if not r.latency else float(r.latency["median_ms"])
    return float(getattr(r, metric))


def _vs(value: float | None, target: float | None) -> str:
    return "" if value is None or not target else f"{(value - target) / target * 100:+.1f}%"


def _dw(r: ModelRecord) -> tuple[str, str]:
    c = r.coefficients
    return ("", "") if c is None else (f"{c.depth:.6g}", f"{c.width:.6g}")


def fit_table(rows: Sequence[tuple[str, str, ModelRecord]], metric: str, target: float,
              title: str, caption: str | Text) -> Table:
    """``scalekit fit``: (label, coefficient, record) rows -- the baseline, the network found and
    the next realisable step up -- each with its distance from the target."""
    t = new_table(title, caption)
    latency = any(r.latency for _, _, r in rows)
    for col in ("", "coefficient", "d", "w", "px", "blocks", "params (M)", "MACs (G)", "acts (M)",
                *(["latency (ms)"] if latency else []), "vs target"):
        t.add_column(col, justify="left" if col in ("", "coefficient") else "right", no_wrap=True)
    for label, coef, r in rows:
        lat = [] if not latency else ["" if not r.latency else f"{r.latency['median_ms']:.2f}"]
        blocks = sum(st.repeats for st in r.stages if st.name not in ("stem", "head"))
        t.add_row(label, coef, *_dw(r), str(r.resolution), str(blocks), f"{r.params / 1e6:.3f}",
                  f"{r.macs / 1e9:.4f}", f"{r.acts / 1e6:.3f}", *lat,
                  _vs(_cost(r, metric), target))
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


def table4_table(records: Sequence[ModelRecord], timing: dict[str, Any]) -> Table:
    """The paper's Table 4 on this machine: each model's latency beside the paper's, and the
    speedup over the first row (ResNet-152) beside the paper's speedup."""
    base = records[0].latency
    opt_base = base.get("optimized")
    threads = timing["threads"]
    rows = [r for r in records[1:] if r.latency]
    text = ["paper: its REPORTED top-1 and latency (batch 1, one core of an Intel Xeon E5-2690, "
             "mean of 20 runs). ours: this CPU, batch "
             f"{timing['batch']}, {threads} thread{'s' if threads != 1 else ''}"
             f"{' (the paper: one core)' if threads != 1 else ''}, median ± IQR; speedup = "
             f"{records[0].name}'s latency / the row's"
             f"{' (optimised: both optimised)' if opt_base else ''}. Top-1 needs ImageNet "
             "training and is not measured here."]
    for r in rows:
        lat, ref = r.latency, r.reference or {}
        text.append(
            f"{r.name} runs {base['median_ms'] / lat['median_ms']:.1f}x as fast as "
            f"{records[0].name} here (the paper: {ref.get('paper_speedup', 0):g}x) with "
            f"{records[0].macs / r.macs:.1f}x fewer MACs: it reaches {lat['gflops_per_s']:.1f} "
            f"GFLOP/s to {records[0].name}'s {base['gflops_per_s']:.1f} (depthwise convs and "
            "squeeze-excitation do little arithmetic per byte moved).")
    t = new_table("EfficientNet paper Table 4: inference latency",
                  caption=lines(*text, *convention_note(records)))
    cols = ["model", "px", "params (M)", macs_header(records), "paper top-1 % (reported)",
            "paper latency (s)", "paper speedup", "latency ms ± IQR", "GFLOP/s (% peak)",
            "speedup"]
    if opt_base:
        cols += ["optimised ms ± IQR", "speedup, optimised"]
    for col in cols:
        t.add_column(col, justify="left" if col == "model" else "right", no_wrap=True)
    for r in records:
        lat, ref = r.latency, r.reference or {}
        cells = [r.name, str(r.resolution), f"{r.params / 1e6:.2f}", f"{r.macs / 1e9:.3f}",
                 f"{ref['paper_top1']:.1f}", f"{ref['paper_latency_s']:.3f}",
                 f"{ref['paper_speedup']:g}x", latency_text(lat), _efficiency(lat),
                 f"{base['median_ms'] / lat['median_ms']:.1f}x"]
        if opt_base:
            opt = lat["optimized"]
            cells += [latency_text(opt), f"{opt_base['median_ms'] / opt['median_ms']:.1f}x"]
        t.add_row(*cells)
    return t


def bench_table(records: Sequence[ModelRecord]) -> Table:
    """``scalekit bench``: the full statistics of each model's latency, a row per variant."""
    t = new_table("latency on this CPU",
               caption="median, mean, IQR (p25-p75), min and max of per-forward wall-clock "
                       "times; images/s = batch / median; GFLOP/s = 2 x MACs x batch / median, "
                       "and its share of the fp32 matmul peak. speedup = eager / optimised.")
    for col in ("model", "variant", "px", "batch", "MACs (G)", "median ms", "mean ms", "IQR ms",
                "min - max ms", "runs", "warm-up", "images/s", "GFLOP/s", "% peak", "speedup"):
        t.add_column(col, justify="left" if col in ("model", "variant") else "right",
                     no_wrap=True)
    for i, r in enumerate(records):
        if i:
            t.add_section()
        eager = r.latency
        opt = eager.get("optimized")
        for variant, lat in (("eager", eager), ("optimised", opt)):
            if not lat:
                continue
            t.add_row(r.name if variant == "eager" else "", variant, str(r.resolution),
                      str(lat["batch"]), f"{r.macs / 1e9:.3f}", _ms(lat["median_ms"]),
                      _ms(lat["mean_ms"]), _ms(lat["iqr_ms"], lat["median_ms"]),
                      f"{_ms(lat['min_ms'])} - {_ms(lat['max_ms'])}", str(lat["runs"]),
                      str(lat["warmup"]), f"{lat['throughput']:,.1f}",
                      f"{lat['gflops_per_s']:.1f}", f"{lat['peak_fraction'] * 100:.0f}%",
                      f"{lat['speedup']:.2f}x" if variant == "optimised" else "")
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
    for name, c in counts.items():  # ptflops-aten over two lines: the table fits 80 columns
        breakdown.add_column(lines(*name.replace("-", "\n-").split("\n"), c.unit),
                             justify="right", no_wrap=True, vertical="bottom")
    for term, label in conventions.TERMS.items():
        breakdown.add_row(label, *(fmt_short(c.terms[term]) for c in counts.values()))
    breakdown.add_section()
    breakdown.add_row("total", *(fmt_short(c.total) for c in counts.values()), style="bold")
    return [totals, "", breakdown]

"""Shared pieces of the command line: option groups, running a query and printing its report,
progress and error handling. No torch here, and latency code only when something is timed."""

from __future__ import annotations

import contextlib
import functools
import math
import os
import sys
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import click
from rich.console import Console
from rich.table import Table

from .. import queries
from ..conventions import NAMES as CONVENTION_NAMES
from . import QUIET_KEY, QUIET_OUTSIDE
from ..errors import FlagError, ScalekitError
from ..extras import MissingDependency, require, require_torch
from ..files import STDOUT, Files, write_atomic
from ..host import check_threads
from ..queries import Outcome, QueryError, Run
from ..records import COUNTER_NAMES, ModelRecord
from ..report import document
from ..report.document import REPORT_FORMATS
from ..report.tables import fit_width, safe_console
from ..studies.budget import parse_bytes, parse_count, parse_duration_ms
from ..text import plural, safe_text

if TYPE_CHECKING:
    from ..latency.networks import RecordProgress, TimingOptions


PIPE_WIDTH = 200  # columns of text that does not go to a terminal


def pipe_width(renderables: Sequence[Any] = ()) -> int:
    """Width for text that does not go to a terminal: :data:`PIPE_WIDTH`, or more where a table
    is wider (latency columns beside Table 2's), so that no cell is cropped."""
    console = safe_console(width=100_000)
    return max([PIPE_WIDTH] + [console.measure(r).maximum for r in renderables
                               if isinstance(r, Table)])


def stdout_console(width: int = PIPE_WIDTH) -> Console:
    """stdout for tables. Piped output gets a wide (``width``), colourless table (NO_COLOR is
    respected)."""
    tty = sys.stdout.isatty()
    return safe_console(file=sys.stdout, width=None if tty else width, soft_wrap=False,
                        no_color=bool(os.environ.get("NO_COLOR")) or None)


def stderr_console() -> Console:
    return safe_console(file=sys.stderr, stderr=True)


def set_quiet(ctx: click.Context, param: click.Parameter | None, value: bool) -> None:
    """The callback of a command's -q/--quiet (cli.py's group has its own): remembered in the
    context's ``meta``, which the whole command shares; ``scalekit -q CMD`` or ``CMD -q``."""
    ctx.meta[QUIET_KEY] = bool(value) or ctx.meta.get(QUIET_KEY, False)
    QUIET_OUTSIDE[0] = ctx.meta[QUIET_KEY]


def quiet_option(f: Callable) -> Callable:
    """-q/--quiet: no progress or informational lines on stderr (``timing X``, ``wrote FILE``);
    errors and ``scalekit: warning:`` lines are still shown, and stdout is unchanged."""
    return click.option("--quiet", "-q", is_flag=True, expose_value=False, is_eager=True,
                        callback=set_quiet,
                        help="No progress or informational lines on stderr (timing ..., wrote "
                             "FILE); errors and warnings are still shown.")(f)


def is_quiet() -> bool:
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return QUIET_OUTSIDE[0]
    return bool(ctx.meta.get(QUIET_KEY, False))


def _essential(message: str) -> bool:
    return message.startswith(("Error:", "scalekit: warning:"))


def echo_err(message: str, *, essential: bool = False) -> None:
    """A line for stderr (progress, ``wrote FILE``, warnings): user-supplied text in it (names,
    paths) shown escaped, never interpreted by the terminal. With --quiet only errors,
    warnings and what is ``essential`` (what an interrupted run measured) are shown."""
    if not essential and not _essential(message) and is_quiet():
        return
    click.echo(safe_text(message), err=True)


def warn(msg: str) -> None:
    echo_err(f"scalekit: warning: {msg}")


# ---------------------------------------------------------------------------------------------
# options


def complete_spec(ctx: click.Context, param: click.Parameter, incomplete: str) -> list:
    """Shell completion of a SPEC: the bundled specs' names that start with what is typed, then
    the shell's own file completion (click: a ``file`` item; bash offers files when no name
    matches)."""
    from click.shell_completion import CompletionItem

    from ..bundled import bundled_specs

    names = [p.stem for p in bundled_specs() if p.stem.startswith(incomplete)]
    return [CompletionItem(incomplete, type="file")] + [CompletionItem(n) for n in names]


def format_options(f: Callable) -> Callable:
    f = click.option("--output", "-o", "output", type=click.Path(dir_okay=False, writable=False),
                     default=None, metavar="FILE",
                     help="Write the report to FILE (atomically; a regular file, never an "
                          "input of the command) instead of stdout (also: -).")(f)
    f = click.option("--format", "fmt", type=click.Choice(REPORT_FORMATS), default="table",
                     show_default=True,
                     help="table for people; json (one document), csv or markdown (one row per "
                          "model) for machines and CI.")(f)
    return wide_option(f)


def _plot_path(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    from ..report.plot import plot_format

    try:
        plot_format(value)
    except ScalekitError as e:
        raise click.BadParameter(str(e)) from None
    # the extra is checked once the command line is known to be right (a usage error first),
    # before any work: require_pending(), from report_query and search
    ctx.meta.setdefault(PENDING, {})["matplotlib"] = "--plot"
    return value


PENDING = "scalekit.require"  # ctx.meta key: optional packages the options given need


def require_pending() -> None:
    """The optional packages the given options need (``--plot``: matplotlib), each one line
    naming its extra when missing: called after the command's usage checks, before any work."""
    ctx = click.get_current_context(silent=True)
    for module, purpose in ((ctx.meta.get(PENDING) or {}) if ctx else {}).items():
        require(module, purpose=purpose)


def plot_option(what: str) -> Callable[[Callable], Callable]:
    """--plot FILE: a PNG, SVG or PDF (by its suffix) of ``what``; a report, replaced
    atomically."""
    return click.option(
        "--plot", "plot_path", type=click.Path(dir_okay=False), default=None, metavar="FILE",
        callback=_plot_path,
        help=f"Also draw {what} into FILE: .png, .svg or .pdf, as its suffix says (needs "
             f"matplotlib: pip install 'scalekit-cnn[plot]'); replaced atomically if it exists.")


WIDE = "scalekit.wide"  # ctx.meta key: --wide was given


def _remember_wide(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    ctx.meta[WIDE] = bool(value) or ctx.meta.get(WIDE, False)
    return value


def wide_option(f: Callable) -> Callable:
    """--wide: every column of every table on a terminal (report.tables.fit_width). Not a query
    parameter: how a table is shown, not what is computed."""
    return click.option("--wide", is_flag=True, expose_value=False, callback=_remember_wide,
                        help="On a terminal, show every column of the tables even where they "
                             "do not fit its width (they then wrap or overflow). By default a "
                             "terminal too narrow for a table gets its essential columns, the "
                             "caption saying which are left out. Piped output always has every "
                             "column.")(f)


def wide_asked() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.find_root().meta.get(WIDE))


def counter_option(f: Callable) -> Callable:
    return click.option("--counter", type=click.Choice(COUNTER_NAMES), default="analytic",
                        show_default=True,
                        help="analytic: exact, torch-free. torch: FlopCounterMode on a meta-device "
                             "module. thop: thop.profile on a real module (its own convention: BN "
                             "and average pooling too; --convention thop counts the same without "
                             "torch).")(f)


def convention_option(f: Callable) -> Callable:
    """--convention NAME: what the MACs count (scalekit/conventions.py; docs/conventions.md)."""
    return click.option("--convention", type=click.Choice(CONVENTION_NAMES), default=None,
                        metavar="NAME",
                        help="What MACs count: paper (default: conv + linear multiply-"
                             "accumulates), or the convention of fvcore, ptflops (its pytorch "
                             "backend), ptflops-aten, thop or torchinfo, each reproduced exactly; "
                             "full: every multiply and add, in FLOPs. Choices: "
                             f"{', '.join(CONVENTION_NAMES)}. See docs/conventions.md and "
                             "`scalekit reconcile`.")(f)


def force_option(f: Callable) -> Callable:
    """--force: build a real model even when its memory estimate exceeds what is available. It
    never overwrites a file (that is --overwrite)."""
    return click.option("--force", is_flag=True,
                        help="Build real models (latency, --counter thop, export) even when their "
                             "estimated memory (parameters + peak activations) exceeds the memory "
                             "available. Overwrites nothing (see --overwrite).")(f)


def overwrite_option(what: str) -> Callable[[Callable], Callable]:
    """--overwrite: replace an existing artefact (``what``) that a person may have edited."""
    return click.option("--overwrite", is_flag=True,
                        help=f"Replace {what} if it exists (it is never replaced otherwise, and "
                             "--force does not replace it).")


LATENCY_KEYS = ("latency", "runtime", "threads", "batch", "optimize", "time_budget")
HARNESS_KEYS = ("warmup", "min_runs", "max_runs")
LATENCY_KINDS = ("predicted", "measured", "both")
RUNTIMES = ("eager", "optimized", "onnxruntime")


def runtime_option(f: Callable) -> Callable:
    return click.option(
        "--runtime", type=click.Choice(RUNTIMES), default="eager", show_default=True,
        help="Latency of what: eager (the torch module), optimized (BatchNorm folded, "
             "channels_last, frozen TorchScript) or onnxruntime (the ONNX export on "
             "onnxruntime's CPU provider; needs the onnx extra). Measured or predicted alike; "
             "every table says which.")(f)


def threads_option(f: Callable) -> Callable:
    return click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
                        callback=threads_callback,
                        help="Latency: torch intra-op threads (1: one core, like the paper's "
                             "Table 4), at most the cores available to scalekit.")(f)


def latency_options(default: str | bool = "predicted", toggle: bool = True,
                    budget_s: float = 2.0) -> Callable[[Callable], Callable]:
    """--latency predicted|measured|both and --no-latency (``default``; left out when not
    ``toggle``: ``bench`` always measures), --runtime, --threads, --batch, --optimize and
    --time-budget (``budget_s`` by default)."""

    def decorate(f: Callable) -> Callable:
        opts = [
            click.option("--time-budget", type=click.FloatRange(min=0, min_open=True),
                         default=budget_s, show_default=True, metavar="SECONDS",
                         callback=finite_number,
                         help="Measured latency: time each model until the spread is small (IQR "
                              "within 5% of the median, after at least 10 runs; bench: "
                              "--min-runs) or this many seconds (warm-up included) have passed."),
            click.option("--optimize", is_flag=True,
                         help="Measured latency: also time an inference-optimised copy (BatchNorm "
                              "folded into the convs, channels_last, frozen TorchScript), checked "
                              "to give the same outputs within fp32 tolerance, interleaved with "
                              "eager; its speedup with a 95% interval. Implies --latency measured "
                              "unless --latency is given."),
            click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True,
                         help="Latency and memory: images per forward pass."),
            threads_option,
            runtime_option,
        ]
        if toggle:
            shown = default if default else "off"
            opts += [
                click.option("--no-latency", "no_latency", is_flag=True,
                             help="Counts only: no latency, no torch, instant."),
                click.option(
                    "--latency", "latency", type=click.Choice(LATENCY_KINDS), default=default
                    or None, is_flag=False, flag_value="predicted", metavar="[KIND]",
                    help=f"Latency on this CPU [default: {shown}]: predicted (the calibrated sum "
                         "of the network's blocks from this machine's latency table, under "
                         "~/.cache/scalekit: instant once the blocks are there, a few seconds "
                         "per new network otherwise), measured (the network built and timed "
                         "whole: median of repeated forwards, GFLOP/s against the fp32 matmul "
                         "peak) or both, side by side. A bare --latency is predicted."),
            ]
        for o in opts:
            f = o(f)
        return f

    return decorate


def pop_latency(kwargs: dict) -> dict[str, Any]:
    """Take the latency options out of a command's ``kwargs``, as query parameters.
    ``--latency`` with ``--no-latency``, or ``--optimize`` with ``--no-latency``, is a usage
    error; ``--optimize`` without ``--latency`` measures."""
    opts = {k: kwargs.pop(k) for k in LATENCY_KEYS + HARNESS_KEYS if k in kwargs}
    no_latency = kwargs.pop("no_latency", False)
    if no_latency:
        if "latency" in opts and typed("latency"):
            raise click.UsageError("--latency and --no-latency contradict each other")
        opts["latency"] = False
    if opts.get("optimize") and typed("optimize"):
        if opts.get("latency") is False:
            raise click.UsageError("--optimize times an optimised copy: it needs latency "
                                   "(drop --no-latency)")
        if "latency" in opts and not typed("latency"):
            opts["latency"] = "measured"
    if "latency" in opts and not opts["latency"]:  # nothing is timed
        why = "with --no-latency (nothing is timed)" if no_latency else \
            "without --latency (nothing is timed)"
        refuse_unused({"threads": why, "runtime": why, "time_budget": why})
    elif opts.get("latency") == "predicted":
        refuse_unused({"time_budget": "with --latency predicted (it bounds a measurement: "
                                      "--latency measured or both)"})
    return opts


def refuse_unused_force(latency: Any, counter: str) -> None:
    """--force lets a real model past the memory guard: without latency and with a counter that
    counts from the plan, nothing is built."""
    if not latency and counter != "thop":
        refuse_unused({"force": "when nothing is built (counts come from the plan without "
                                "latency or --counter thop)"})


def threads_callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """--threads: at most the cores this process may use (a usage error otherwise)."""
    if value is None:
        return None
    try:
        return check_threads(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def finite_number(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value is None:
        return None
    if not math.isfinite(value):
        raise click.BadParameter(f"must be a finite number, got {value}")
    if param.name != "phi" and value <= 0:
        raise click.BadParameter(f"must be > 0, got {value:g}")
    return value


def scaling_options(f: Callable) -> Callable:
    """--phi/--alpha/--beta/--gamma, --width/--depth/--resolution/--size, --preset."""
    opts = [
        click.option("--preset", default=None, metavar="NAME",
                     help="Official coefficients stored in the spec (EfficientNet: b0..b7). "
                          "Hand-rounded by the authors, not alpha**phi."),
        click.option("--size", type=click.IntRange(min=1), default=None, metavar="PX",
                     help="Input resolution in pixels (instead of --resolution)."),
        click.option("--resolution", "-r", type=float, default=None, callback=finite_number,
                     metavar="R", help="Resolution multiplier r (base resolution x r, rounded)."),
        click.option("--depth", "-d", type=float, default=None, callback=finite_number, metavar="D",
                     help="Depth multiplier d (repeats per stage x d, rounded up)."),
        click.option("--width", "-w", type=float, default=None, callback=finite_number, metavar="W",
                     help="Width multiplier w (channels x w, rounded to the spec's divisor)."),
        click.option("--gamma", type=float, default=None, callback=finite_number,
                     help="Compound resolution base (default: the spec's, 1.15)."),
        click.option("--beta", type=float, default=None, callback=finite_number,
                     help="Compound width base (default: the spec's, 1.1)."),
        click.option("--alpha", type=float, default=None, callback=finite_number,
                     help="Compound depth base (default: the spec's, 1.2)."),
        click.option("--phi", type=float, default=None, callback=finite_number,
                     help="Compound coefficient: d = alpha^phi, w = beta^phi, r = gamma^phi. "
                          "May be fractional or negative (scaling down)."),
    ]
    for o in opts:
        f = o(f)
    return f


def strategy_options(f: Callable) -> Callable:
    """--strategy NAME --factor S: instead of the flags of :func:`scaling_options`."""
    from ..strategies import STRATEGY_NAMES

    f = click.option("--factor", type=float, default=None, metavar="S", callback=finite_number,
                     help="--strategy: the FLOPs factor (4 = about 4x the baseline's MACs).")(f)
    f = click.option("--strategy", default=None, metavar="NAME",
                     help=f"Pick d, w, r by a strategy ({', '.join(STRATEGY_NAMES)}) and a FLOPs "
                          "factor (--factor): d = s^e_d, w = s^e_w, r = s^e_r with "
                          "d*w^2*r^2 = s.")(f)
    return f


SCALING_KEYS = ("phi", "alpha", "beta", "gamma", "width", "depth", "resolution", "size", "preset")
STRATEGY_KEYS = ("strategy", "factor")


def pop_scaling(kwargs: dict) -> dict:
    """The scaling options (and --strategy/--factor, where the command has them) out of a
    command's ``kwargs``, as query parameters."""
    return {k: kwargs.pop(k) for k in SCALING_KEYS + STRATEGY_KEYS if k in kwargs}


def parse_modes(value: str, valid: Sequence[str]) -> list[str]:
    modes = [m.strip() for m in value.split(",") if m.strip()]
    bad = [m for m in modes if m not in valid]
    if bad or not modes:
        raise click.BadParameter(f"unknown mode {', '.join(bad) or repr(value)} "
                                 f"(valid: {', '.join(valid)})", param_hint="--mode")
    return modes


class Budget(click.ParamType):
    """A count (``2G``, ``2e9``, ``300M``), with ``duration=True`` a time in ms (``40ms``,
    ``0.04s``), with ``size=True`` bytes (``512MiB``, ``1.5GiB``, ``100MB``). A number passes through as it is (a stored query, re-run by ``scalekit check``)."""

    def __init__(self, duration: bool = False, size: bool = False):
        self.duration, self.size = duration, size
        self.name = "time" if duration else "size" if size else "count"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = f"{float(value)!r}{'ms' if self.duration else 'B' if self.size else ''}"
        parse = parse_duration_ms if self.duration else parse_bytes if self.size else parse_count
        try:
            return parse(str(value))
        except ValueError as e:
            self.fail(str(e), param, ctx)


class FloatList(click.ParamType):
    """Comma-separated finite numbers (``1,1.4,1.8``) -> a tuple of floats; a list passes."""

    name = "numbers"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> tuple[float, ...]:
        items = value if isinstance(value, (list, tuple)) else str(value).split(",")
        try:
            out = tuple(float(v) for v in items if str(v).strip())
        except ValueError:
            self.fail(f"expected comma-separated numbers, got {value!r}", param, ctx)
        if not out or not all(math.isfinite(v) for v in out):
            self.fail(f"expected comma-separated finite numbers, got {value!r}", param, ctx)
        return out


# ---------------------------------------------------------------------------------------------
# output


def render_text(renderables: Sequence[Any], width: int | None = None) -> str:
    """Plain text of ``renderables``, ``width`` columns wide (default: :func:`pipe_width`)."""
    import io

    buf = io.StringIO()
    safe_console(file=buf, width=width or pipe_width(renderables), no_color=True,
                 color_system=None).print(*renderables)
    return "".join(line.rstrip() + "\n" for line in buf.getvalue().splitlines())


def say(message: str) -> None:
    """A progress or warning line from the library, on stderr."""
    echo_err(message)


def report_query(command: str, params: dict[str, Any], *, fmt: str, output: str | None,
                 draw: Callable[[Outcome], Sequence[Any]], force: bool = False,
                 after: Callable[[Outcome], None] | None = None,
                 files: Files | None = None,
                 texts: Callable[[Outcome], dict[str, Callable[[], str]]] | None = None) -> Outcome:
    """What every reporting command does: check ``params`` as a query of ``command`` (a problem
    is a usage error), check the files (the specs it reads, ``--output`` and what ``files``
    declares besides: none may be another, each must be writable), run it (timing records with
    progress on stderr, ``force`` past the memory guard), call ``after`` (files the command
    writes besides its report), and print or write the report: ``draw`` makes the table; the
    JSON document records the query; ``texts`` gives the command's own csv or markdown for an
    outcome, where it has any (see :func:`emit`)."""
    try:
        query = queries.make_query(command, params)
    except QueryError as e:
        raise click.UsageError(str(e)) from None
    require_pending()
    (files or Files()).reads("SPEC", *queries.query_inputs(query)) \
        .writes("--output", output, stream=True).check()
    try:
        outcome = queries.run_query(query, Run(measure=measure, say=say, force=force))
    except QueryError as e:
        raise click.UsageError(str(e)) from None
    if after is not None:
        after(outcome)
    emit(outcome.records, fmt=fmt, output=output, command=command_line(),
         table=lambda: draw(outcome), extra={**outcome.extra, "query": query.to_dict()},
         texts=texts(outcome) if texts is not None else None)
    return outcome


def emit(records: Sequence[ModelRecord], *, fmt: str, output: str | None, command: str,
         table: Callable[[], Sequence[Any]], extra: dict | None = None,
         texts: dict[str, Callable[[], str]] | None = None) -> None:
    """Print (or write atomically) ``records`` in ``fmt``. ``table`` builds the rich renderables;
    ``texts`` builds a command's own csv or markdown (default: one row per record)."""
    if fmt in (texts or {}):
        text = texts[fmt]()  # type: ignore[index]
    elif fmt == "json":
        text = document.to_json(document.document(records, command, extra))
    elif fmt == "csv":
        text = document.to_csv(records)
    elif fmt == "markdown":
        text = document.to_markdown(records)
    else:
        show(table(), output)
        return
    put(text, output)


def put(text: str, output: str | None) -> None:
    """``text`` to stdout, or written atomically to ``output``."""
    if output in (None, STDOUT):
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        write_atomic(output, text)
        echo_err(f"wrote {output}")


def show(renderables: Sequence[Any], output: str | None) -> None:
    """Print tables and lines for people. On a terminal: at its width, each table with the
    columns that fit it (report.tables.fit_width; every column with ``--wide``, wrapping or
    overflowing the terminal as it must). Piped or to a file (``output``): plain text, every
    column, no trailing spaces."""
    if output in (None, STDOUT) and (sys.stdout.isatty() or os.environ.get("FORCE_COLOR")):
        console = stdout_console(pipe_width(renderables))
        wide = wide_asked()
        if wide:
            console.width = max(console.width, pipe_width(renderables))
        console.print(*fit_width(renderables, console.width, wide))
        return
    put(render_text(renderables), output)  # a pipe or a file: plain text, no trailing padding


@contextlib.contextmanager
def latency_progress(records: Sequence[ModelRecord]) -> Iterator[RecordProgress]:
    """A progress hook for :func:`measure_records`, on stderr. On a terminal: a transient bar per
    model (and per optimised copy), runs done of those expected. Otherwise (a log, CI): one line
    as each model's timing starts, so stderr stays readable when captured."""
    console = stderr_console()
    n = len(records)
    if is_quiet():
        yield lambda i, r, phase, done, total: None
        return

    def label(i: int, r: ModelRecord, phase: str) -> str:
        how = {"optimized": ", optimised", "interleaved": ", interleaved"}.get(phase, "")
        return safe_text(f"timing {r.name} ({i + 1}/{n}{how})")

    if not console.is_terminal:
        def line(i: int, r: ModelRecord, phase: str, done: int, total: int) -> None:
            if done == 0:
                echo_err(f"scalekit: {label(i, r, phase)}")

        yield line
        return
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn)

    with Progress(TextColumn("{task.description}", markup=False), BarColumn(),
                  MofNCompleteColumn(),
                  TextColumn("runs"), TimeElapsedColumn(), console=console,
                  transient=True) as bar:
        tasks: dict[tuple[int, str], Any] = {}

        def update(i: int, r: ModelRecord, phase: str, done: int, total: int) -> None:
            if (i, phase) not in tasks:
                tasks[i, phase] = bar.add_task(label(i, r, phase), total=total)
                bar.refresh()  # shown at once, even if it is done before the next refresh
            bar.update(tasks[i, phase], completed=done, total=total,
                       visible=done < total)  # done == total: that phase has finished

        yield update


COUNT_ONLY = {"info": "count only with --no-latency", "scale": "count only with --no-latency",
              "compare": "count only with --no-latency", "sweep": "count only (drop --latency)",
              "check": "compare counts only (drop --latency-tolerance)"}
"""Per command: how to get its counts without timing (what to say when torch is missing)."""


def measure(records: Sequence[ModelRecord],
            options: TimingOptions) -> tuple[list[ModelRecord], dict[str, Any]]:
    """Give every record the latency ``options`` ask for (predicted, measured or both; progress
    on stderr) and return them with the report's ``timing`` facts (for the JSON document's
    extra fields). On Ctrl-C: what was measured so far goes to stderr, nothing to stdout or
    ``--output``, and the command exits 130. Measuring without torch (the light install): one
    line saying what to install, or how to do without."""
    ctx = click.get_current_context(silent=True)
    without = COUNT_ONLY.get(ctx.info_name if ctx else "", "")
    if options.kind != "predicted":  # a prediction from a warm table needs no torch
        require_torch("measured latency (timing on this CPU)", alternative=without)
    from ..latency.networks import MeasurementInterrupted, time_records
    from ..report.tables import latency_summary

    try:
        with latency_progress(records) as hook:
            return time_records(records, options, say=say, progress=hook)
    except MissingDependency as e:  # a cold latency table: its blocks are timed with torch
        if e.alternative or not without:
            raise
        raise MissingDependency(e.purpose, e.modules, e.extra, without) from None
    except MeasurementInterrupted as e:
        lines = [f"scalekit: {e} ({len(e.measured)} of {plural(len(records), 'model')} timed; "
                 "no report written)"]
        lines += [f"  {r.name}: {latency_summary(r.latency)}" for r in e.measured]
        if e.partial is not None:
            lines.append(f"  {e.current.name}: {latency_summary(e.partial.to_dict())} "
                         "(unfinished)")
        for ln in lines:
            echo_err(ln, essential=True)
        raise KeyboardInterrupt from None


def command_line() -> str:
    return " ".join(["scalekit"] + sys.argv[1:])


def handle_errors(f: Callable) -> Callable:
    """Turn typed errors into one line and exit 1; flags that contradict each other or cannot
    be used as given (:class:`~scalekit.errors.FlagError`) are usage errors, exit 2, like
    click's own."""

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except FlagError as e:
            raise click.UsageError(str(e)) from None
        except ScalekitError as e:
            raise click.ClickException(str(e)) from None

    return wrapper


def typed(name: str) -> bool:
    """Whether option ``name`` (its parameter name) was given on the command line."""
    ctx = click.get_current_context(silent=True)
    return ctx is not None and \
        ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE


def refuse_unused(unused: dict[str, str]) -> None:
    """The policy for options that would have no effect: a usage error (exit 2, one line saying
    why), never silently ignored. ``unused`` maps a parameter name to why it has none; only
    an option given on the command line is refused (a default never is)."""
    ctx = click.get_current_context()
    for name, why in unused.items():
        if typed(name):
            opt = next((p for p in ctx.command.params if p.name == name), None)
            flag = max(opt.opts, key=len) if opt is not None and opt.opts else f"--{name}"
            raise click.UsageError(f"{flag} has no effect {why}")

"""Shared pieces of the command line: option groups, output, and error handling. No torch here."""

from __future__ import annotations

import functools
import math
import os
import sys
from typing import Any, Callable, Sequence

import click
from rich.console import Console

from . import report
from .analysis import COUNTERS, ModelRecord
from .errors import ScalekitError
from .fit import parse_count, parse_duration_ms


def stdout_console() -> Console:
    """stdout for tables. Piped output gets a wide, colourless table (NO_COLOR is respected)."""
    tty = sys.stdout.isatty()
    return Console(file=sys.stdout, width=None if tty else 200, soft_wrap=False,
                   no_color=bool(os.environ.get("NO_COLOR")) or None)


def stderr_console() -> Console:
    return Console(file=sys.stderr, stderr=True)


def warn(msg: str) -> None:
    click.echo(f"scalekit: warning: {msg}", err=True)


# ---------------------------------------------------------------------------------------------
# options


def format_options(f: Callable) -> Callable:
    f = click.option("--output", "-o", "output", type=click.Path(dir_okay=False, writable=False),
                     default=None, metavar="FILE",
                     help="Write the report to FILE (atomically) instead of stdout.")(f)
    f = click.option("--format", "fmt", type=click.Choice(report.FORMATS), default="table",
                     show_default=True,
                     help="table for people; json (one document), csv or markdown (one row per "
                          "model) for machines and CI.")(f)
    return f


def counter_option(f: Callable) -> Callable:
    return click.option("--counter", type=click.Choice(COUNTERS), default="analytic",
                        show_default=True,
                        help="analytic: exact, torch-free. torch: FlopCounterMode on a meta-device "
                             "module. thop: thop.profile on a real module (counts BN and ReLU too, "
                             "misses SiLU/Sigmoid).")(f)


def force_option(f: Callable) -> Callable:
    """--force: build a real model even when its memory estimate exceeds what is available."""
    return click.option("--force", is_flag=True,
                        help="Build the model (--counter thop) even when its estimated memory "
                             "(parameters + peak activations) exceeds the memory available.")(f)


def _finite(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
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
        click.option("--resolution", "-r", type=float, default=None, callback=_finite,
                     metavar="R", help="Resolution multiplier r (base resolution x r, rounded)."),
        click.option("--depth", "-d", type=float, default=None, callback=_finite, metavar="D",
                     help="Depth multiplier d (repeats per stage x d, rounded up)."),
        click.option("--width", "-w", type=float, default=None, callback=_finite, metavar="W",
                     help="Width multiplier w (channels x w, rounded to the spec's divisor)."),
        click.option("--gamma", type=float, default=None, callback=_finite,
                     help="Compound resolution base (default: the spec's, 1.15)."),
        click.option("--beta", type=float, default=None, callback=_finite,
                     help="Compound width base (default: the spec's, 1.1)."),
        click.option("--alpha", type=float, default=None, callback=_finite,
                     help="Compound depth base (default: the spec's, 1.2)."),
        click.option("--phi", type=float, default=None, callback=_finite,
                     help="Compound coefficient: d = alpha^phi, w = beta^phi, r = gamma^phi. "
                          "May be fractional or negative (scaling down)."),
    ]
    for o in opts:
        f = o(f)
    return f


SCALING_KEYS = ("phi", "alpha", "beta", "gamma", "width", "depth", "resolution", "size", "preset")


def pop_scaling(kwargs: dict) -> dict:
    return {k: kwargs.pop(k) for k in SCALING_KEYS if k in kwargs}


def parse_modes(value: str, valid: Sequence[str]) -> list[str]:
    modes = [m.strip() for m in value.split(",") if m.strip()]
    bad = [m for m in modes if m not in valid]
    if bad or not modes:
        raise click.BadParameter(f"unknown mode {', '.join(bad) or repr(value)} "
                                 f"(valid: {', '.join(valid)})", param_hint="--mode")
    return modes


class Budget(click.ParamType):
    """A count (``2G``, ``2e9``, ``300M``) or, with ``duration=True``, a time in ms (``40ms``,
    ``0.04s``). A number passes through as it is (a stored query, re-run by ``scalekit check``)."""

    def __init__(self, duration: bool = False):
        self.duration = duration
        self.name = "time" if duration else "count"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = f"{float(value)!r}{'ms' if self.duration else ''}"
        try:
            return (parse_duration_ms if self.duration else parse_count)(str(value))
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


def render_text(renderables: Sequence[Any], width: int = 200) -> str:
    import io

    buf = io.StringIO()
    Console(file=buf, width=width, no_color=True, color_system=None).print(*renderables)
    return buf.getvalue()


def check_output_path(path: str | None) -> None:
    if path is None:
        return
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise ScalekitError(f"{path}: directory {d} does not exist")
    if os.path.isdir(path):
        raise ScalekitError(f"{path}: is a directory")


# Parameters that say where a report goes, not what it holds: left out of a document's "query",
# so that `scalekit check` can run the command again without writing anything.
OUTPUT_PARAMS = frozenset({"fmt", "output", "out"})
# ctx.meta key: while `scalekit check` re-runs a command, emit() appends the JSON document to the
# list stored here instead of printing it.
COLLECT = "scalekit.collect"


def query(ctx: click.Context) -> dict[str, Any]:
    """What a reporting command computed, as data: its name and the parameters that decide its
    records, in declaration order (tuples as lists). ``scalekit check`` runs it again from this,
    without parsing a command line."""
    params = {p.name: ctx.params[p.name] for p in ctx.command.params
              if p.name in ctx.params and p.name not in OUTPUT_PARAMS}
    return {"command": ctx.command.name,
            "params": {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}}


def emit(records: Sequence[ModelRecord], *, fmt: str, output: str | None, command: str,
         table: Callable[[], Sequence[Any]], extra: dict | None = None) -> None:
    """Print (or write atomically) ``records`` in ``fmt``. ``table`` builds the rich renderables.

    Inside a click command the JSON document also records the command's :func:`query`; when
    ``scalekit check`` is re-running the command (``ctx.meta[COLLECT]``), the document goes to
    it and nothing is printed."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        extra = {**(extra or {}), "query": query(ctx)}
        collected = ctx.meta.get(COLLECT)
        if collected is not None:
            collected.append(report.document(records, command, extra))
            return
    if fmt == "json":
        text = report.to_json(report.document(records, command, extra))
    elif fmt == "csv":
        text = report.to_csv(records)
    elif fmt == "markdown":
        text = report.to_markdown(records)
    else:
        if output is None:
            stdout_console().print(*table())
            return
        text = render_text(table())
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        report.write_atomic(output, text)
        click.echo(f"wrote {output}", err=True)


def command_line() -> str:
    return " ".join(["scalekit"] + sys.argv[1:])


def handle_errors(f: Callable) -> Callable:
    """Turn typed errors into one line and exit 1 (usage errors stay click's, exit 2)."""

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except ScalekitError as e:
            raise click.ClickException(str(e)) from None

    return wrapper

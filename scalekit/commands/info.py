"""``scalekit list`` and ``scalekit info``."""

from __future__ import annotations

import click

from .. import report
from ..analysis import analyze
from ..bundled import bundled_specs, load_named
from ..cliutil import (check_output_path, command_line, counter_option, emit, force_option,
                       format_options, handle_errors, latency_options, measure, pop_timing)
from ..crosscheck import THOP_NOTE
from ..errors import ScalekitError
from ..spec import SpecError, load_spec


@click.command("list")
@format_options
@handle_errors
def list_specs(fmt: str, output: str | None) -> None:
    """List the bundled baseline specs, with a one-line summary each."""
    check_output_path(output)
    specs = bundled_specs()
    if not specs:
        raise ScalekitError("no bundled specs found (is the package installed correctly?)")
    records, rows = [], []
    for path in specs:
        try:
            spec = load_spec(path)
        except SpecError as e:  # a broken bundled spec must not hide the others
            click.echo(f"Error: {e}", err=True)
            continue
        rec = analyze(spec)
        records.append(rec)
        rows.append((path.stem, spec, rec))

    def table():
        t = report.new_table("bundled specs", caption="MACs = multiply-accumulates (the paper's FLOPS) "
                                                   "at the spec's resolution.")
        for col in ("spec", "name", "px", "blocks", "params (M)", "MACs (G)", "description"):
            t.add_column(col, justify="right" if col in ("px", "blocks", "params (M)", "MACs (G)")
                         else "left")
        for stem, spec, rec in rows:
            t.add_row(stem, spec.name, str(spec.resolution), str(spec.depth),
                      f"{rec.params / 1e6:.2f}", f"{rec.macs / 1e9:.3f}", spec.description)
        return [t]

    emit(records, fmt=fmt, output=output, command=command_line(), table=table)


@click.command()
@click.argument("spec", metavar="SPEC")
@counter_option
@latency_options()
@force_option
@format_options
@handle_errors
def info(spec: str, counter: str, force: bool, fmt: str, output: str | None, **kwargs) -> None:
    """Show a network stage by stage: block type, kernel, stride, expansion, squeeze-excitation,
    channels, repeats, input resolution, and exact params, MACs and activations; then its CPU
    latency, measured (--no-latency: counts only, instant).

    SPEC is a YAML spec file or the name of a bundled spec (see `scalekit list`).
    """
    check_output_path(output)
    timing = pop_timing(kwargs, force=force)
    s = load_named(spec)
    rec = analyze(s, counter=counter, force=force)
    extra: dict = {}
    if timing is not None:
        [rec], extra = measure([rec], timing)

    def table():
        lines = [report.totals_line(rec)]
        if counter == "thop":
            lines.append(f"note: {THOP_NOTE}")
        if timing is not None:
            lines += [*report.latency_lines(rec), report.timing_line(extra["timing"], [rec])]
        return [report.info_table(rec), "\n".join(lines)]

    emit([rec], fmt=fmt, output=output, command=command_line(), table=table, extra=extra)

"""``scalekit sweep``: a baseline through a list of coefficients per mode, as a table and a plot."""

from __future__ import annotations

from dataclasses import replace

import click
from rich.text import Text

from .. import plot, report
from ..analysis import analyze
from ..bundled import load_named
from ..cliutil import (FloatList, check_output_path, command_line, counter_option, emit,
                       force_option, format_options, handle_errors, latency_options, measure,
                       parse_modes, pop_timing)
from ..errors import ScalekitError
from ..strategies import DIAL_MODES
from ..sweep import DEFAULT_MODES, sweep as run_sweep

CAPTION = ("MACs = conv + linear multiply-accumulates (the paper's FLOPS); acts = conv/linear/pool "
           "outputs. 'MACs x' and 'acts x' = growth over the baseline: at equal MACs growth, "
           "depth and resolution scaling grow activations about as fast as MACs, width about as "
           "their square root.")


@click.command()
@click.argument("spec", metavar="SPEC")
@click.option("--mode", "mode", default=",".join(DEFAULT_MODES), show_default=True,
              help=f"Comma-separated modes, one line each: {', '.join(DIAL_MODES)}.")
@click.option("--values", type=FloatList(), default=None, metavar="V1,V2,...",
              help="Coefficients for every mode (w, d or r; phi for compound; the FLOPs factor s "
                   "for uniform and dWr). Default: the paper's Figure 3 values per mode "
                   "(phi 0..5 for compound, s = 1..32 for a strategy).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None, metavar="PNG",
              help="Write a PNG (needs matplotlib: pip install 'scalekit[plot]'): MACs (x) against "
                   "--y, one line per mode, log-log. Without it the table is followed by a "
                   "compact text plot.")
@click.option("--y", "y", type=click.Choice(plot.Y_METRICS), default="params", show_default=True,
              help="What the plot draws against MACs (latency needs --latency).")
@counter_option
@latency_options(default=False, budget_s=1.0)
@force_option
@format_options
@handle_errors
def sweep(spec: str, mode: str, values: tuple[float, ...] | None, plot_path: str | None, y: str,
          counter: str, force: bool, fmt: str, output: str | None, **kwargs) -> None:
    """Scale SPEC through a list of coefficients per mode and count each point: params, MACs,
    activations (and latency with --latency), like the curves of the paper's Figure 3.

    Unlike info, scale and compare, sweep counts only unless --latency is given: a sweep is
    many networks (19 by default), some large, so timing them all is opt-in.

    \b
    scalekit sweep efficientnet_b0                           (Figure 3's width, depth, resolution)
    scalekit sweep resnet50 --mode width --values 1,1.4,1.8,2.6,3.8,5.0
    scalekit sweep efficientnet_b0 --mode compound,uniform,dWr --y acts --plot strategies.png
    """
    check_output_path(output)
    check_output_path(plot_path)
    modes = parse_modes(mode, DIAL_MODES)
    timing = pop_timing(kwargs, force=force)
    if y == "latency" and timing is None:
        raise click.UsageError("--y latency needs --latency (latency is measured, not counted)")
    base = load_named(spec)
    points = run_sweep(base, modes, values, counter=counter)
    if not points:
        raise ScalekitError("nothing to sweep: no values")
    extra: dict = {}
    if timing is not None:
        timed, extra = measure([p.record for p in points], timing)
        points = [replace(p, record=r) for p, r in zip(points, timed)]
    title = f"{base.name}: sweep of {', '.join(modes)}"
    if plot_path:
        plot.write_png(points, plot_path, y=y, title=title)
        click.echo(f"wrote {plot_path}", err=True)
    rb = analyze(base, counter=counter, mode="baseline")

    caption = CAPTION
    if timing is not None:
        caption += " Latency: MEASURED (noisy). " + report.timing_line(
            extra["timing"], [p.record for p in points])

    def table():
        out = [report.sweep_table([(f"{p.symbol}={p.value:g}", p.record) for p in points], rb,
                                  title, caption)]
        if not plot_path:
            out.append(Text(plot.text_plot(points, y=y)))
        return out

    extra["sweep"] = [{"mode": p.mode, "coefficient": p.symbol, "value": p.value}
                      for p in points]
    emit([p.record for p in points], fmt=fmt, output=output, command=command_line(), table=table,
         extra=extra)

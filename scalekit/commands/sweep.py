"""``scalekit sweep``: a baseline through a list of coefficients per mode, as a table and a plot."""

from __future__ import annotations

import click
from rich.text import Text

from ..files import Files
from ..report import plot, tables
from ..strategies import DIAL_MODES
from ..studies.sweeps import DEFAULT_MODES
from .common import (FloatList, counter_option, echo_err, force_option, format_options,
                     handle_errors, latency_options, parse_modes, plot_option, pop_latency,
                     refuse_unused, refuse_unused_force, report_query)
from .common import complete_spec, quiet_option

CAPTION = ("MACs = conv + linear multiply-accumulates (the paper's FLOPS); acts = conv/linear/pool "
           "outputs. 'MACs x' and 'acts x' = growth over the baseline: at equal MACs growth, "
           "depth and resolution scaling grow activations about as fast as MACs, width about as "
           "their square root.")


def _title(outcome) -> str:
    return f"{outcome.view.base.name}: sweep of {', '.join(dict.fromkeys(p.mode for p in outcome.view.points))}"


def _drawer(y: str, plotted: bool):
    def draw(outcome):
        points, rb = outcome.view.points, outcome.view.base
        caption = CAPTION
        if outcome.extra.get("timing"):
            caption = tables.lines(CAPTION, *tables.timing_lines(outcome.extra["timing"],
                                                                  [p.record for p in points]))
        out = [tables.sweep_table([(f"{p.symbol}={p.value:g}", p.record) for p in points], rb,
                                  _title(outcome), caption)]
        if not plotted:
            out.append(Text(plot.text_plot(points, y=y)))
        return out
    return draw


@click.command()
@click.argument("spec", metavar="SPEC", shell_complete=complete_spec)
@click.option("--mode", "mode", default=",".join(DEFAULT_MODES), show_default=True,
              help=f"Comma-separated modes, one line each: {', '.join(DIAL_MODES)}.")
@click.option("--values", type=FloatList(), default=None, metavar="V1,V2,...",
              help="Coefficients for every mode (w, d or r; phi for compound; the FLOPs factor s "
                   "for uniform and dWr). Default: the paper's Figure 3 values per mode "
                   "(phi 0..5 for compound, s = 1..32 for a strategy).")
@plot_option("MACs (x) against --y, one line per mode, log-log (without --plot the table "
             "is followed by a compact text plot)")
@click.option("--y", "y", type=click.Choice(plot.Y_METRICS), default="params", show_default=True,
              help="What the plot draws against MACs (latency needs --latency; measured if it was, "
                   "else predicted).")
@counter_option
@latency_options(default=False, budget_s=1.0)
@force_option
@format_options
@quiet_option
@handle_errors
def sweep(spec: str, mode: str, values: tuple[float, ...] | None, plot_path: str | None, y: str,
          counter: str, force: bool, fmt: str, output: str | None, **kwargs) -> None:
    """Scale SPEC through a list of coefficients per mode and count each point: params, MACs,
    activations (and latency with --latency), like the curves of the paper's Figure 3.

    Unlike info, scale and compare, sweep counts only unless --latency is given: a sweep is
    many networks (19 by default), some large. --latency (predicted) times each new block once
    for this machine's latency table; --latency measured builds and times every network.

    \b
    scalekit sweep efficientnet_b0                           (Figure 3's width, depth, resolution)
    scalekit sweep resnet50 --mode width --values 1,1.4,1.8,2.6,3.8,5.0
    scalekit sweep efficientnet_b0 --mode compound,uniform,dWr --y acts --plot strategies.svg
    """
    def write_plot(outcome):
        plot.write_sweep(outcome.view.points, plot_path, y=y, title=_title(outcome))
        echo_err(f"wrote {plot_path}")

    params = {"spec": spec, "mode": parse_modes(mode, DIAL_MODES),
              "values": None if values is None else list(values), "y": y, "counter": counter,
              **pop_latency(kwargs)}
    refuse_unused_force(params.get("latency"), counter)
    if plot_path is None and fmt != "table":
        refuse_unused({"y": f"with --format {fmt} and no --plot (it picks what a plot draws)"})
    report_query("sweep", params, fmt=fmt, output=output, force=force,
                 draw=_drawer(y, plot_path is not None), after=write_plot if plot_path else None,
                 files=Files().writes("--plot", plot_path))

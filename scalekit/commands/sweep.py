"""``scalekit sweep``: a baseline through a list of coefficients per mode, as a table and a plot."""

from __future__ import annotations

import click
from rich.text import Text

from .. import plot, report
from ..analysis import analyze
from ..bundled import resolve_spec
from ..cliutil import (FloatList, check_output_path, command_line, counter_option, emit,
                       format_options, handle_errors, parse_modes)
from ..errors import ScalekitError
from ..spec import load_spec
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
@click.option("--latency", is_flag=True,
              help="Also build and time every point on this CPU (batch 1; slow, noisy).")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="--latency: intra-op threads to time with.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None, metavar="PNG",
              help="Write a PNG (needs matplotlib: pip install 'scalekit[plot]'): MACs (x) against "
                   "--y, one line per mode, log-log. Without it the table is followed by a "
                   "compact text plot.")
@click.option("--y", "y", type=click.Choice(plot.Y_METRICS), default="params", show_default=True,
              help="What the plot draws against MACs (latency needs --latency).")
@counter_option
@format_options
@handle_errors
def sweep(spec: str, mode: str, values: tuple[float, ...] | None, latency: bool, threads: int,
          plot_path: str | None, y: str, counter: str, fmt: str, output: str | None) -> None:
    """Scale SPEC through a list of coefficients per mode and count each point: params, MACs,
    activations (and latency with --latency), like the curves of the paper's Figure 3.

    \b
    scalekit sweep efficientnet_b0                           (Figure 3's width, depth, resolution)
    scalekit sweep resnet50 --mode width --values 1,1.4,1.8,2.6,3.8,5.0
    scalekit sweep efficientnet_b0 --mode compound,uniform,dWr --y acts --plot strategies.png
    """
    check_output_path(output)
    check_output_path(plot_path)
    modes = parse_modes(mode, DIAL_MODES)
    if y == "latency" and not latency:
        raise click.UsageError("--y latency needs --latency (latency is measured, not counted)")
    base = load_spec(resolve_spec(spec))

    def progress(msg: str) -> None:
        click.echo(f"scalekit: {msg}", err=True)

    points = run_sweep(base, modes, values, counter=counter, latency=latency, threads=threads,
                       progress=progress)
    if not points:
        raise ScalekitError("nothing to sweep: no values")
    title = f"{base.name}: sweep of {', '.join(modes)}"
    if plot_path:
        plot.write_png(points, plot_path, y=y, title=title)
        click.echo(f"wrote {plot_path}", err=True)
    rb = analyze(base, counter=counter, mode="baseline")

    caption = CAPTION
    if latency:
        caption += (f" Latency: MEASURED (noisy), median of batch-1 forwards with {threads} "
                    f"thread(s) on {report.cpu_model()}.")

    def table():
        out = [report.sweep_table([(f"{p.symbol}={p.value:g}", p.record) for p in points], rb,
                                  title, caption)]
        if not plot_path:
            out.append(Text(plot.text_plot(points, y=y)))
        return out

    extra = {"sweep": [{"mode": p.mode, "coefficient": p.symbol, "value": p.value}
                       for p in points]}
    emit([p.record for p in points], fmt=fmt, output=output, command=command_line(), table=table,
         extra=extra)

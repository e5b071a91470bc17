"""``scalekit fit``: the largest network a scaling mode gives within a budget."""

from __future__ import annotations

import click
from rich.text import Text

from ..host import cpu_model
from ..report import tables
from ..strategies import DIAL_MODES, dial, get_strategy
from ..studies.budget import SIG_DIGITS, FitResult, amount
from .common import Budget, format_options, handle_errors, report_query, threads_callback

MACS_NOTE = "MACs = conv + linear multiply-accumulates (the paper's FLOPS)."


def _caption(res: FitResult, spec_arg: str, base) -> Text:
    d = dial(base, res.mode)
    best, above = res.best, res.above
    lines = [
        f"{d.label(best.value)} gives {amount(res.metric, best.cost)}, "
        f"{best.cost / res.target * 100:.1f}% of the target; the next realisable step up, "
        f"{d.label(above.value)}, gives {amount(res.metric, above.cost)} "
        f"({(above.cost / res.target - 1) * 100:+.1f}%).",
        f"the same network: scalekit scale {spec_arg} {d.flags(best.value)}",
        f"strategy {get_strategy(res.mode, base).describe()}.",
    ]
    if res.measured:
        lat = best.latency or {}
        lines.append(f"LATENCY IS MEASURED, NOT COUNTED: noisy, and the search trusts each "
                     f"measurement. Median of batch-1 forwards, {lat.get('threads', '?')} "
                     f"thread(s), on {cpu_model()}; {res.evaluations} networks measured.")
        if not res.resolved:
            lines.append(f"stopped at the measurement limit: networks between "
                         f"{d.label(best.value)} and {d.label(above.value)} were not measured.")
    else:
        lines.append(f"exact counts of the rounded networks, searched over coefficients of up to "
                     f"{SIG_DIGITS} significant digits; {res.evaluations} networks counted. "
                     + MACS_NOTE)
    return tables.lines(*lines)


def _drawer(spec_arg: str):
    def draw(outcome):
        res, rows = outcome.view.result, outcome.view.rows
        base = res.baseline.spec
        d = dial(base, res.mode)
        return [tables.fit_table(
            [(label, d.label(c.value), r) for label, c, r in rows], res.metric, res.target,
            f"{base.name}: the largest {res.mode} scaling within {amount(res.metric, res.target)}",
            _caption(res, spec_arg, base))]
    return draw


@click.command()
@click.argument("spec", metavar="SPEC")
@click.option("--target-macs", type=Budget(), default=None, metavar="N",
              help="MACs budget (the paper's FLOPS): 2G, 2e9, 300M.")
@click.option("--target-params", type=Budget(), default=None, metavar="N",
              help="Parameter budget: 20M, 2e7.")
@click.option("--target-acts", type=Budget(), default=None, metavar="N",
              help="Activation budget (conv/linear/pool outputs): 50M.")
@click.option("--target-latency", type=Budget(duration=True), default=None, metavar="TIME",
              help="Latency budget on this CPU, batch 1: 40ms, 0.04s. MEASURED, so noisy and "
                   "slow (builds and times every network the search visits).")
@click.option("--mode", type=click.Choice(DIAL_MODES), default="compound", show_default=True,
              help="What to scale: compound (phi, the spec's alpha/beta/gamma), width, depth, "
                   "resolution, or a strategy (uniform, dWr) by its FLOPs factor s.")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              callback=threads_callback,
              help="--target-latency: intra-op threads to time with (at most the cores "
                   "available).")
@click.option("--max-measurements", type=click.IntRange(min=2), default=12, show_default=True,
              help="--target-latency: at most this many networks are built and timed.")
@format_options
@handle_errors
def fit(spec: str, fmt: str, output: str | None, **params) -> None:
    """Find the largest coefficient whose rounded, realised network stays within a budget.

    \b
    scalekit fit efficientnet_b0 --target-macs 2G                 (compound: phi)
    scalekit fit resnet50 --target-params 40M --mode width
    scalekit fit mobilenet_v2 --target-macs 1G --mode dWr         (a strategy: factor s)
    scalekit fit mobilenet_v2 --target-latency 20ms --mode width  (measured on this CPU)

    Rounding makes cost a step function of the coefficient, so the search is over realised
    networks: the answer is within the budget, and the next realisable step up (the network just
    past the answer's coefficient) is over it. Both are shown, with how close they are, and the
    `scalekit scale` flags that give the same network.
    """
    report_query("fit", {"spec": spec, **params}, fmt=fmt, output=output, draw=_drawer(spec))

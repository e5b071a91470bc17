"""``scalekit bench``: CPU latency of one or more networks, in detail."""

from __future__ import annotations

import click

from ..report import tables
from .common import (force_option, format_options, handle_errors, latency_options, pop_latency,
                     pop_scaling, report_query, scaling_options, strategy_options)
from .common import complete_spec, quiet_option


def _table(outcome):
    records = outcome.records
    return [tables.bench_table(records), tables.timing_line(outcome.extra["timing"], records)]


@click.command()
@click.argument("specs", nargs=-1, required=True, metavar="SPEC...", shell_complete=complete_spec)
@scaling_options
@strategy_options
@latency_options(toggle=False, budget_s=5.0)
@click.option("--warmup", type=click.IntRange(min=0), default=3, show_default=True,
              help="Untimed forward passes before the timed ones.")
@click.option("--min-runs", type=click.IntRange(min=1), default=10, show_default=True,
              help="Timed forward passes at least, whatever the spread or the time budget.")
@click.option("--max-runs", type=click.IntRange(min=1), default=200, show_default=True,
              help="Timed forward passes at most.")
@force_option
@format_options
@quiet_option
@handle_errors
def bench(specs: tuple[str, ...], force: bool, fmt: str, output: str | None, **kwargs) -> None:
    """Time SPEC... on this CPU (scaled first with --phi, --width, --preset, ... if given) and
    show the measured latency in detail: median, mean, IQR, min and max per forward pass, runs,
    warm-up, throughput (images/s), achieved GFLOP/s (also as a share of this CPU's fp32 matmul
    peak) and the CPU share the process had while timing; a result taken on a contended machine
    or with a wide spread is flagged (!) with the reason.

    \b
    scalekit bench efficientnet_b0 mobilenet_v2 resnet50
    scalekit bench efficientnet_b0 --preset b1 --optimize
    scalekit bench mobilenet_v2 --strategy dWr --factor 4
    scalekit bench resnet50 --threads 2 --batch 8 --format json

    Method: eval mode, torch.inference_mode, weights initialised as for training (kaiming normal),
    fixed intra-op threads (restored afterwards), subnormal floats flushed to zero; after the
    warm-up, forward passes are timed one by one until the IQR is within 5% of the median (after
    --min-runs), --time-budget seconds have passed, or --max-runs are done. The median is reported,
    to the digits its IQR supports. --optimize times the optimised copy interleaved with eager.
    """
    params = {"specs": list(specs), **pop_scaling(kwargs), **pop_latency(kwargs)}
    report_query("bench", params, fmt=fmt, output=output, force=force, draw=_table)

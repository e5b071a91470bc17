"""``scalekit compare``: the paper's scaling tables, reproduced."""

from __future__ import annotations

import click

from ..conventions import DEFAULT as DEFAULT_CONVENTION
from ..report import tables
from ..scaling import MODES
from .common import (Budget, convention_option, counter_option, force_option, format_options,
                     handle_errors, latency_options, parse_modes, pop_latency,
                     refuse_unused, refuse_unused_force, report_query)
from .common import complete_spec, quiet_option

PAPER_MACS = "MACs = conv + linear multiply-accumulates"
CAPTION = (f"{PAPER_MACS}, counted exactly by scalekit; 'paper FLOPS' "
           "and 'paper top-1' are the EfficientNet paper's REPORTED figures (accuracy needs "
           "ImageNet training; scalekit measures none). diff = ours vs the paper's FLOPS.")


def _caption(records) -> str:
    """CAPTION, defining the MACs of the records' convention (--convention)."""
    conv = tables.convention_of(records)
    if conv.name == DEFAULT_CONVENTION:
        return CAPTION
    text = CAPTION.replace(PAPER_MACS, conv.definition, 1)
    return text if conv.unit == "MACs" else text.replace(
        " diff = ours vs the paper's FLOPS.", " diff: none (FLOPs are not the paper's unit).")
MATCH_CAPTION = ("At equal cost: each single-dimension row's coefficient is solved so that its rounded "
                 "network's MACs are as close as they can be to the target (the compound row's, or "
                 "--budget), from either side: rounding makes MACs a step function of the "
                 "coefficient. 'paper's coefficient' is what the paper states; the paper's FLOPS "
                 "and top-1 belong to that coefficient, not to the solved one (scalekit compare "
                 "without --match shows them). MACs = conv + linear multiply-accumulates.")


def _draw(outcome):
    out = []
    for g in outcome.view:
        if g.kind == "table2":
            out.append(tables.table2_table(g.records))
        elif g.kind == "table4":
            out.append(tables.table4_table(g.records, outcome.extra["timing"]))
        else:
            title = " and ".join(f"Table {t}" for t in g.tables)
            if g.kind == "matched":
                target = f"{g.budget / 1e9:g} G MACs" if g.budget else "the compound row's MACs"
                heading = f"EfficientNet paper {title} at equal cost: every row solved to {target}"
                out.append(tables.matched_table(g.records, heading, MATCH_CAPTION))
            else:
                heading = f"EfficientNet paper {title}: scaling by one dimension vs compound"
                out.append(tables.compare_table(g.records, heading, _caption(g.records)))
    if outcome.extra.get("timing"):
        out.append(tables.timing_line(outcome.extra["timing"], outcome.records))
    return out


@click.command()
@click.argument("specs", nargs=-1, metavar="[SPEC]...", shell_complete=complete_spec)
@click.option("--mode", "mode", default=None, metavar="MODES",
              help="Comma-separated rows to show: width, depth, resolution, compound "
                   "(default: all; the baseline row is always shown).")
@click.option("--table", "tables_", type=click.Choice(["2", "3", "4", "7"]), multiple=True,
              help="Which paper table: 2 (EfficientNet-B0..B7 presets), 3 (MobileNets, ResNet-50),"
                   " 4 (latency: EfficientNet-B1 vs ResNet-152, timed on this CPU), 7 "
                   "(EfficientNet-B0). Default: 3 and 7. Repeatable.")
@click.option("--match", type=click.Choice(["macs"]), default=None,
              help="Compare at truly equal cost: solve each width/depth/resolution row's "
                   "coefficient to the compound row's MACs (tables 3 and 7; not table 2).")
@click.option("--budget", type=Budget(), default=None, metavar="N",
              help="With --match (implied): solve every row, compound too, to these MACs: 2G, 2e9.")
@counter_option
@convention_option
@latency_options()
@force_option
@format_options
@quiet_option
@handle_errors
def compare(specs: tuple[str, ...], mode: str | None, tables_: tuple[str, ...],
            match: str | None, budget: float | None, counter: str, convention: str | None,
            force: bool, fmt: str, output: str | None, **kwargs) -> None:
    """Scale baselines by depth, width, resolution and compound scaling at the paper's stated
    coefficients, and show our exact counts next to the paper's figures, and each model's CPU
    latency on this machine: predicted from its latency table by default (--latency measured:
    built and timed; --no-latency: counts only, instant).

    With no arguments: the paper's Table 3 (MobileNetV1, MobileNetV2, ResNet-50) and Table 7
    (EfficientNet-B0). SPEC... picks baselines (specs outside the paper's tables get its standard
    coefficients d=4, w=2, r=2 and compound d=1.4, w=1.2, r=1.3). --table 4 is the paper's
    latency table: EfficientNet-B1 against ResNet-152, batch 1, one thread by default; measured
    (--latency measured), the two are timed interleaved and the speedup has a 95% interval.
    """
    params = {"specs": list(specs), "mode": None if mode is None else parse_modes(mode, MODES),
              "table": [int(t) for t in tables_] or None, "match": match, "budget": budget,
              "counter": counter, "convention": convention, **pop_latency(kwargs)}
    refuse_unused_force(params.get("latency"), counter)
    if not params.get("latency") and fmt == "table":
        refuse_unused({"batch": "in compare's table with --no-latency: it sets only the batch of "
                                "the memory estimate, which --format json, csv and markdown show"})
    report_query("compare", params, fmt=fmt, output=output, force=force, draw=_draw)

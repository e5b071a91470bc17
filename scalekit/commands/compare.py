"""``scalekit compare``: the paper's scaling tables, reproduced."""

from __future__ import annotations

from typing import Any, Callable

import click

from .. import compare as cmp
from .. import report
from ..analysis import ModelRecord
from ..cliutil import (Budget, check_output_path, command_line, counter_option, emit,
                       force_option, format_options, handle_errors, latency_options, measure,
                       parse_modes, pop_timing)
from ..scaling import MODES

CAPTION = ("MACs = conv + linear multiply-accumulates, counted exactly by scalekit; 'paper FLOPS' "
           "and 'paper top-1' are the EfficientNet paper's REPORTED figures (accuracy needs "
           "ImageNet training; scalekit measures none). diff = ours vs the paper's FLOPS.")
MATCH_CAPTION = ("At equal cost: each single-dimension row's coefficient is solved so that its rounded "
                 "network's MACs are as close as they can be to the target (the compound row's, or "
                 "--budget), from either side: rounding makes MACs a step function of the "
                 "coefficient. 'paper's coefficient' is what the paper states; the paper's FLOPS "
                 "and top-1 belong to that coefficient, not to the solved one (scalekit compare "
                 "without --match shows them). MACs = conv + linear multiply-accumulates.")


@click.command()
@click.argument("specs", nargs=-1, metavar="[SPEC]...")
@click.option("--mode", "mode", default=",".join(MODES[1:]), show_default=True,
              help="Comma-separated rows to show: width, depth, resolution, compound "
                   "(the baseline row is always shown).")
@click.option("--table", "tables", type=click.Choice(["2", "3", "4", "7"]), multiple=True,
              help="Which paper table: 2 (EfficientNet-B0..B7 presets), 3 (MobileNets, ResNet-50),"
                   " 4 (latency: EfficientNet-B1 vs ResNet-152, timed on this CPU), 7 "
                   "(EfficientNet-B0). Default: 3 and 7. Repeatable.")
@click.option("--match", type=click.Choice(["macs"]), default=None,
              help="Compare at truly equal cost: solve each width/depth/resolution row's "
                   "coefficient to the compound row's MACs (tables 3 and 7; not table 2).")
@click.option("--budget", type=Budget(), default=None, metavar="N",
              help="With --match (implied): solve every row, compound too, to these MACs: 2G, 2e9.")
@counter_option
@latency_options()
@force_option
@format_options
@handle_errors
def compare(specs: tuple[str, ...], mode: str, tables: tuple[str, ...], match: str | None,
            budget: float | None, counter: str, force: bool, fmt: str, output: str | None,
            **kwargs) -> None:
    """Scale baselines by depth, width, resolution and compound scaling at the paper's stated
    coefficients, and show our exact counts next to the paper's figures, and each model's CPU
    latency, measured on this machine (--no-latency: counts only, instant).

    With no arguments: the paper's Table 3 (MobileNetV1, MobileNetV2, ResNet-50) and Table 7
    (EfficientNet-B0). SPEC... picks baselines (specs outside the paper's tables get its standard
    coefficients d=4, w=2, r=2 and compound d=1.4, w=1.2, r=1.3). --table 4 is the paper's
    latency table: EfficientNet-B1 against ResNet-152, batch 1, one thread by default.
    """
    check_output_path(output)
    timing = pop_timing(kwargs, force=force)
    modes = ["baseline"] + [m for m in parse_modes(mode, MODES) if m != "baseline"]
    chosen = tuple(int(t) for t in tables) or cmp.DEFAULT_TABLES
    typed = click.get_current_context().get_parameter_source("latency")
    if 4 in chosen and timing is None and typed is not None:  # not `scalekit check` re-counting
        raise click.UsageError("--table 4 is a latency table (the paper's inference latency): "
                               "it cannot be shown with --no-latency")
    extra: dict[str, Any] = {}
    # (how to draw a table, its records): drawn once every record is counted and timed
    groups: list[tuple[Callable[[list[ModelRecord]], Any], list[ModelRecord]]] = []
    if 2 in chosen:
        groups.append((report.table2_table, cmp.table2(counter=counter)))
    rest = tuple(t for t in chosen if t not in (2, 4))
    if specs and not tables:
        rest = cmp.DEFAULT_TABLES  # SPEC... without --table: look the specs up in tables 3 and 7
    if not rest:
        ctx = click.get_current_context()
        typed_mode = ctx.get_parameter_source("mode") == click.core.ParameterSource.COMMANDLINE
        for flag, given in (("SPEC...", bool(specs)), ("--match", match is not None),
                            ("--budget", budget is not None), ("--mode", typed_mode)):
            if given:
                raise click.UsageError(f"{flag} applies to the scaling tables 3 and 7 (and specs "
                                       "outside the paper); tables 2 and 4 have fixed rows")
    if rest:
        matched = match is not None or budget is not None
        rows = cmp.compare(specs, modes, rest, counter, match=matched, budget=budget)
        title = " and ".join(f"Table {t}" for t in rest)
        if matched:
            target = f"{budget / 1e9:g} G MACs" if budget else "the compound row's MACs"
            heading = f"EfficientNet paper {title} at equal cost: every row solved to {target}"
            groups.append((lambda recs: report.matched_table(recs, heading, MATCH_CAPTION), rows))
        else:
            heading = f"EfficientNet paper {title}: scaling by one dimension vs compound"
            groups.append((lambda recs: report.compare_table(recs, heading, CAPTION), rows))
    if 4 in chosen:
        groups.append((lambda recs: report.table4_table(recs, extra["timing"]),
                       cmp.table4(counter=counter)))
    records = [r for _, recs in groups for r in recs]
    if timing is not None:
        records, extra = measure(records, timing)

    def table() -> list[Any]:
        renderables = []
        start = 0
        for draw, recs in groups:
            renderables.append(draw(records[start:start + len(recs)]))
            start += len(recs)
        if timing is not None:
            renderables.append(report.timing_line(extra["timing"], records))
        return renderables

    emit(records, fmt=fmt, output=output, command=command_line(), table=table, extra=extra)

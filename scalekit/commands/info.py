"""``scalekit list`` and ``scalekit info``."""

from __future__ import annotations

import click

from ..crosscheck import THOP_NOTE
from ..report import document, tables
from .common import (convention_option, counter_option, force_option, format_options,
                     handle_errors, latency_options, pop_latency, pop_scaling,
                     refuse_unused_force, report_query, scaling_options, strategy_options)
from .common import complete_spec, quiet_option


def _list_table(outcome):
    t = tables.new_table("bundled specs", caption="MACs = multiply-accumulates (the paper's FLOPS) "
                                                  "at the spec's resolution.")
    for col in ("spec", "name", "px", "blocks", "params (M)", "MACs (G)", "description"):
        t.add_column(col, justify="right" if col in ("px", "blocks", "params (M)", "MACs (G)")
                     else "left")
    t.layout(names=("spec", "name"), optional=("blocks", "px"))
    for stem, spec, rec in outcome.view:
        t.add_row(stem, spec.name, str(spec.resolution), str(spec.depth),
                  f"{rec.params / 1e6:.2f}", f"{rec.macs / 1e9:.3f}", spec.description)
    return [t]


@click.command("list")
@format_options
@quiet_option
@handle_errors
def list_specs(fmt: str, output: str | None) -> None:
    """List the bundled baseline specs, with a one-line summary each."""
    report_query("list", {}, fmt=fmt, output=output, draw=_list_table)


def _info_table(outcome):
    rec = outcome.view
    lines = [tables.totals_line(rec), *filter(None, [tables.memory_line(rec)])]
    if rec.counter == "thop":
        lines.append(f"note: {THOP_NOTE}")
    if rec.latency:
        lines += [*tables.latency_lines(rec), *tables.timing_lines(outcome.extra["timing"], [rec])]
    table = tables.layers_table(rec) if rec.layers is not None else tables.info_table(rec)
    return [table, tables.lines(*lines, highlight=True)]


def _layer_texts(outcome):
    """--layers: CSV and Markdown with one row per layer (the JSON record carries them too)."""
    if outcome.view.layers is None:
        return None
    return {"csv": lambda: document.layers_to_csv(outcome.records),
            "markdown": lambda: document.layers_to_markdown(outcome.records)}


@click.command()
@click.argument("spec", metavar="SPEC", shell_complete=complete_spec)
@click.option("--layers", is_flag=True, default=False,
              help="List every conv, linear layer and pool instead of the stages: stage, block, "
                   "output shape, kernel, stride, groups, params, MACs, acts (they sum to the "
                   "stage rows and the totals). CSV and Markdown: one row per layer; JSON: the "
                   "record's `layers`.")
@scaling_options
@strategy_options
@counter_option
@convention_option
@latency_options()
@force_option
@format_options
@quiet_option
@handle_errors
def info(spec: str, layers: bool, counter: str, convention: str | None, force: bool, fmt: str,
         output: str | None, **kwargs) -> None:
    """Show a network stage by stage: block type, kernel, stride, the block kind's own columns
    (expansion, squeeze-excitation width, ...), channels, repeats, input resolution, and exact
    params, MACs and activations; its memory (parameters, the inference peak and training at
    --batch); then its CPU latency, predicted from this machine's latency table by default
    (--latency measured: built and timed; --no-latency: counts only, no torch, instant).

    --layers lists every conv, linear layer and pool instead (torchinfo's habit, from the plan:
    no torch). The scaling flags (--phi, --width, --preset, --strategy/--factor, ... as for
    `scale`) show the scaled network.

    SPEC is a YAML spec file or the name of a bundled spec (see `scalekit list`).
    """
    timing = pop_latency(kwargs)
    refuse_unused_force(timing.get("latency"), counter)
    report_query("info", {"spec": spec, **pop_scaling(kwargs), "counter": counter,
                          "convention": convention, "layers": layers, **timing},
                 fmt=fmt, output=output, force=force, draw=_info_table, texts=_layer_texts)

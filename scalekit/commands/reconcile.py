"""``scalekit reconcile``: each FLOP counter's total on the built model beside scalekit's exact
count of its convention, and the per-op-type breakdown that explains every difference.

Not a stored query (scalekit check cannot run it): it builds real modules past the memory guard
(``--force``), and its answer depends on the tools installed. Its JSON document therefore has no
``query``.
"""

from __future__ import annotations

import click

from .. import reconcile as reconciling
from ..bundled import load_named, resolve_spec
from ..files import Files
from ..records import make_record
from ..report import document, tables
from ..scaling import scale_spec
from .common import (command_line, emit, force_option, format_options, handle_errors,
                     pop_scaling, refuse_unused, scaling_options, warn)
from .common import complete_spec, quiet_option


def _tools(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...]:
    if value is None:
        return reconciling.TOOL_NAMES
    names = tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    bad = [n for n in names if n not in reconciling.TOOLS]
    if bad or not names:
        raise click.BadParameter(f"unknown tool {', '.join(bad) or repr(value)} (known: "
                                 f"{', '.join(reconciling.TOOL_NAMES)})")
    return names


@click.command()
@click.argument("spec", metavar="SPEC", shell_complete=complete_spec)
@scaling_options
@click.option("--tools", "tools", default=None, callback=_tools, metavar="NAMES",
              help="Comma-separated tools to run (default: all): "
                   f"{', '.join(reconciling.TOOL_NAMES)}. The conventions are counted either way.")
@force_option
@format_options
@quiet_option
@handle_errors
def reconcile(spec: str, tools: tuple[str, ...], force: bool, fmt: str, output: str | None,
              **kwargs) -> None:
    """Why FLOP counters disagree: build SPEC (scaled first with --phi, --width, ...), run every
    installed counter on it (torch's FlopCounterMode, fvcore, ptflops with both backends, thop,
    torchinfo), and print each tool's total beside scalekit's exact, torch-free count of that
    tool's convention, then what every convention counts per op type (conv, linear, bias,
    BatchNorm, activation, pooling, SE gate, residual add), in its unit (MACs, or FLOPs for
    `full`).

    fvcore and ptflops (pytorch backend) run a real CPU forward, so they pass the memory guard
    first (--force skips it); the others run on the meta device. A tool that is not installed
    is named with the extra to install (pip install 'scalekit-cnn[reconcile]') and the others are
    still shown. Exits 1 if a tool's total differs from scalekit's count of its convention.
    """
    if all(reconciling.TOOLS[t].device == "meta" for t in tools):
        refuse_unused({"force": f"with --tools {','.join(tools)} (they count on the meta device; "
                                "only fvcore and ptflops build a real module)"})
    Files().reads("SPEC", resolve_spec(spec)).writes("--output", output, stream=True).check()
    flags = {k: v for k, v in pop_scaling(kwargs).items() if v is not None}
    net = load_named(spec)
    coef = None
    if flags:
        net, coef = scale_spec(net, **flags)
    record = make_record(net, coefficients=coef, mode="scaled" if coef else None)
    r = reconciling.reconcile(record, tools, force=force)
    rows = document.reconcile_rows(r)
    emit([r.record], fmt=fmt, output=output, command=command_line(),
         table=lambda: tables.reconcile_tables(r), extra={"reconcile": r.to_dict()},
         texts={"csv": lambda: document.rows_to_csv(rows),
                "markdown": lambda: document.rows_to_markdown(
                    rows, ("convention", "unit", "tool", "tool_version", "status"))})
    missing = [t.tool for t in r.results if t.status == "not installed"]
    if missing:
        warn(f"not installed: {', '.join(missing)} ({reconciling.INSTALL}); the others are "
             "shown")
    for t in r.results:
        if t.status in ("not run", "failed"):
            warn(f"{t.tool} {t.status}: {t.reason}")
    differs = [t for t in r.results if t.status == "differs"]
    for t in differs:
        warn(f"{t.tool} {t.version} counts {t.total:,}, scalekit's {t.convention} convention "
             f"{t.expected:,} ({t.difference:+,}): the tool's counting has changed since the "
             "versions in docs/conventions.md")
    if differs:
        click.get_current_context().exit(1)

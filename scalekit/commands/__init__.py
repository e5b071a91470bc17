"""One module per command. :data:`COMMANDS` is the table cli.py lists in ``--help`` (in this
order): a command's name, the module and function that define it, and its short help (the one
line of ``scalekit --help``; the command's own ``--help`` starts with its docstring).

A command's module is imported only when that command runs or shows its help, so that
``scalekit --version`` and a count-only command pay for no other command's imports. Nothing here
imports click.
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple


class Entry(NamedTuple):
    module: str  # scalekit.commands.<module>
    function: str  # the click command in it
    short_help: str  # scalekit --help's line for it


COMMANDS: dict[str, Entry] = {
    "list": Entry("info", "list_specs", "List the bundled baseline specs, one line each."),
    "info": Entry("info", "info", "Show a network stage by stage, with exact counts."),
    "scale": Entry("scale", "scale", "Scale a spec and show it next to the baseline."),
    "compare": Entry("compare", "compare", "The paper's scaling tables (2, 3, 4, 7), reproduced."),
    "fit": Entry("fit", "fit", "The largest network a scaling mode gives within a budget."),
    "sweep": Entry("sweep", "sweep", "A spec through many coefficients per mode (Figure 3)."),
    "search": Entry("search", "search", "Step 1 of compound scaling: find alpha, beta, gamma."),
    "check": Entry("check", "check", "Compare models with a stored JSON baseline (a CI guard)."),
    "bench": Entry("bench", "bench", "Time networks on this CPU, in detail."),
    "reconcile": Entry("reconcile", "reconcile", "Why FLOP counters disagree, op type by op type."),
    "export": Entry("export", "export", "Build a (scaled) spec and write it to a file, verified."),
}


QUIET_KEY = "scalekit.quiet"  # -q/--quiet, in the click context's meta (the whole command's)
QUIET_OUTSIDE = [False]  # the same, for a line said outside a click context (a worker thread)


def load(name: str) -> Any:
    """The click command ``name`` (importing its module now), with the table's short help."""
    entry = COMMANDS[name]
    command = getattr(importlib.import_module(f"{__name__}.{entry.module}"), entry.function)
    command.short_help = entry.short_help
    return command


__all__ = ["COMMANDS", "Entry", "QUIET_KEY", "QUIET_OUTSIDE", "load"]

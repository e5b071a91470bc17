"""``scalekit check``: recompute a report and compare it with a stored JSON baseline (a CI guard).

Exit codes: 0 within bounds, 1 a regression (or an error computing the models), 2 a usage error
(including a missing or unusable baseline file).
"""

from __future__ import annotations

from typing import Any

import click

from .. import __version__
from .. import baseline as baseline_check
from .. import queries
from ..bundled import resolve_spec
from ..errors import BaselineError, FileError
from ..files import STDOUT, Files, check_input_file, write_atomic
from ..queries import QueryError
from ..report import changes, document
from ..report.tables import lines
from ..studies import regression
from .common import (Budget, command_line, convention_option, counter_option, echo_err,
                     handle_errors,
                     measure, pop_scaling, put, refuse_unused, say, scaling_options, show,
                     strategy_options, warn, wide_option)
from ..text import plural
from .common import complete_spec, quiet_option


class CheckUsageError(click.ClickException):
    """A check that cannot be made (no baseline, an unusable one): one line, exit 2."""

    exit_code = 2


def _percent(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return regression.parse_percent(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


@click.command()
@click.argument("specs", nargs=-1, metavar="[SPEC]...", shell_complete=complete_spec)
@click.option("--baseline", "-b", required=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="The stored JSON report: what any reporting command writes with --format json,"
                   " or what --update writes.")
@click.option("--update", is_flag=True,
              help="Rewrite FILE with the current numbers (atomically; created if missing) and "
                   "exit 0, after showing what changed.")
@click.option("--tolerance", default="0", show_default=True, callback=_percent, metavar="PCT",
              help="Relative change allowed in params, MACs and acts, e.g. 0.5%. They are "
                   "deterministic: the default is an exact match.")
@click.option("--latency-tolerance", default=None, callback=_percent, metavar="PCT",
              help="Also compare median latency: fail when a model is more than PCT slower (e.g."
                   " 25%). Off by default, because shared CI runners are noisy.")
@click.option("--max-memory", type=Budget(size=True), default=None, metavar="SIZE",
              help="Also fail when a model needs more than SIZE (512MiB, 1.5GiB, 100MB): its "
                   "inference memory (params + peak activations, fp32, at the query's batch; "
                   "the memory guard's estimate), or with --memory training its training memory.")
@click.option("--memory", "memory_kind", type=click.Choice(("inference", "training")),
              default="inference", show_default=True, help="--max-memory: the memory of what.")
@scaling_options
@strategy_options
@counter_option
@convention_option
@click.option("--format", "fmt", type=click.Choice(("table", "markdown", "json")),
              default="table", show_default=True,
              help="table for people; markdown (verdict + table) to post on a pull request; "
                   "json: the result as one document (per model: each metric baseline vs now, "
                   "its status; the bounds; the overall status and exit code; docs/json.md).")
@click.option("--output", "-o", "output", type=click.Path(dir_okay=False), default=None,
              metavar="FILE", help="Write the result to FILE (atomically; never the baseline or "
                                   "a spec) instead of stdout (also: -).")
@wide_option
@quiet_option
@handle_errors
def check(specs: tuple[str, ...], baseline: str, update: bool, tolerance: float,
          latency_tolerance: float | None, max_memory: float | None, memory_kind: str,
          counter: str, convention: str | None, fmt: str, output: str | None,
          **kwargs) -> None:
    """Recompute models and compare them with a stored JSON baseline: a CI guard for a model's
    cost. Prints what changed; exits 0 within bounds, 1 on a regression, 2 on a usage error.

    \b
    Without SPEC, the query recorded in the baseline is computed again:
      scalekit info specs/mynet.yaml --format json --output baseline.json
      scalekit check --baseline baseline.json
    With SPEC..., each spec is counted as `info` does (scaled first with --phi, --width, ...
    --preset, or --strategy/--factor, if given), and matched to the baseline's records by name
    and mode:
      scalekit check --baseline costs.json --update specs/a.yaml specs/b.yaml

    The baseline is data: its query names a reporting command and what it counted, checked
    against that command's parameters; nothing in it says where to write or what to run.
    Params, MACs, acts and resolution must match exactly (or within --tolerance); a model added
    or removed is a regression; latency is compared only with --latency-tolerance. Without it
    (and without --update) the query is computed with counts only. A baseline counted under
    another --convention than the current run is refused (rewrite it with --update).
    --max-memory fails any model whose memory (from its plan, as the memory guard estimates it)
    is over a budget.
    """
    ctx = click.get_current_context()
    scaling = pop_scaling(kwargs)
    if update:
        why = "with --update (nothing is judged: the baseline is rewritten)"
        refuse_unused({"max_memory": why, "latency_tolerance": why, "memory_kind": why})
    elif max_memory is None:
        refuse_unused({"memory_kind": "without --max-memory"})
    if not specs:
        given = [f"--{k}" for k, v in scaling.items() if v is not None]
        if ctx.get_parameter_source("counter") is click.core.ParameterSource.COMMANDLINE:
            given.append("--counter")
        if convention is not None:
            given.append("--convention")
        if given:
            raise click.UsageError(f"{', '.join(given)} apply to SPEC...; without SPEC the "
                                   "baseline's own query is computed again as recorded")
    if not update:
        try:  # a baseline that cannot be read: the check cannot be made (exit 2)
            check_input_file(baseline)
        except FileError as e:
            raise CheckUsageError(f"{e.path}: cannot read the baseline: {e.reason}") from None
    files = Files().reads("SPEC", *(resolve_spec(s) for s in specs))
    if update:  # the baseline is what --update rewrites: it must be a writable regular file
        files.writes("--baseline (--update)", baseline)
    else:
        files.reads("--baseline", baseline)
    files.writes("--output", output, stream=True).check()
    spec_query = None
    try:
        if specs:
            spec_query = queries.make_query("check", {"specs": list(specs), "counter": counter,
                                                      "convention": convention, **scaling})
        done = baseline_check.check(baseline, specs=spec_query, update=update,
                                    tolerance=tolerance, latency_tolerance=latency_tolerance,
                                    measure=measure, command=command_line(), say=say,
                                    max_memory=max_memory, memory_kind=memory_kind)
    except BaselineError as e:
        raise CheckUsageError(str(e)) from None
    except QueryError as e:
        raise click.UsageError(str(e)) from None
    query = done.current.get("query") or {}
    if not specs and output not in (None, STDOUT):  # the specs the baseline's query read
        try:
            inputs = queries.query_inputs(queries.query_from_dict(query))
        except QueryError:
            inputs = []
        Files().reads("a spec of the baseline's query", *inputs).writes("--output", output).check()
    hint = changes.update_hint(baseline, _rerun_args(ctx, specs, scaling, counter, convention))
    if fmt == "json":
        code = 2 if done.unusable else 0 if update else 1 if done.failed else 0
        status = ("unusable" if done.unusable else "written" if done.result is None else
                  "updated" if update else "failed" if done.failed else "passed")
        put(document.to_json(changes.check_document(
            done.result, baseline=baseline, headline=done.headline, status=status,
            exit_code=code, command=command_line(), warnings=done.warnings,
            versions={"scalekit_version": __version__},
            update_hint=None if update else hint)), output)
    elif done.result is not None:
        _show(done.result, baseline, done.headline, fmt, output, None if update else hint)
    for w in done.warnings:
        warn(w)
    if done.unusable:
        raise CheckUsageError(done.unusable)
    if update:
        _write_baseline(baseline, done.current)
    elif done.failed:
        ctx.exit(1)


def _rerun_args(ctx: click.Context, specs: tuple[str, ...], scaling: dict[str, Any],
                counter: str, convention: str | None) -> list[str]:
    """What ``--update`` needs besides the baseline to count the same models: the SPEC... and
    the counting and scaling flags of this check (none without SPEC: the baseline's own query
    is computed again)."""
    if not specs:
        return []
    args = list(specs)
    for key, value in scaling.items():
        if value is not None:
            args += [f"--{key}", value if isinstance(value, str) else f"{value:g}"]
    if ctx.get_parameter_source("counter") is click.core.ParameterSource.COMMANDLINE:
        args += ["--counter", counter]
    if convention is not None:
        args += ["--convention", convention]
    return args


def _write_baseline(path: str, doc: dict[str, Any]) -> None:
    write_atomic(path, document.to_json(doc))
    echo_err(f"wrote {path} ({plural(len(doc['records']), 'model')})")


def _show(result: regression.CheckResult, baseline: str, headline: Any, fmt: str,
          output: str | None, hint: str | None) -> None:
    """The changes (if any) and the headline, as a table or Markdown, to stdout or ``output``;
    the command that updates the baseline under the changes."""
    if fmt == "markdown":
        text = changes.changes_markdown(result, headline, hint)
    else:
        if hint and result.changes:  # a line of its own under the verdict
            headline = lines(headline, changes.hint_line(hint))
        show(([changes.changes_table(result, baseline)] if result.changes else []) + [headline],
             output)
        return
    put(text, output)

"""``scalekit check``: recompute a report and compare it with a stored JSON baseline (a CI guard).

Exit codes: 0 within bounds, 1 a regression (or an error computing the models), 2 a usage error
(including a missing or unusable baseline file).
"""

from __future__ import annotations

import os
from typing import Any

import click

from .. import __version__
from .. import check as chk
from .. import report
from ..analysis import COUNTERS, spec_records
from ..cliutil import (COLLECT, SCALING_KEYS, check_output_path, command_line, counter_option,
                       handle_errors, pop_scaling, render_text, scaling_options, stdout_console,
                       warn)
from ..errors import ScalekitError


class CheckUsageError(click.ClickException):
    """A check that cannot be made (no baseline, an unusable one): one line, exit 2."""

    exit_code = 2


def _percent(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return chk.parse_percent(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def spec_query(specs: tuple[str, ...], counter: str, scaling: dict[str, Any]) -> dict[str, Any]:
    """The ``query`` of a baseline computed from SPEC... (so a later check can compute it again)."""
    return {"command": "check",
            "params": {"specs": list(specs), "counter": counter,
                       **{k: scaling.get(k) for k in SCALING_KEYS}}}


def spec_document(specs: tuple[str, ...], counter: str, scaling: dict[str, Any],
                  command: str) -> dict[str, Any]:
    records = spec_records(specs, counter, scaling)
    return report.document(records, command, {"query": spec_query(specs, counter, scaling)})


def rerun(ctx: click.Context, doc: dict[str, Any], source: str, *,
          timed: bool = False) -> dict[str, Any]:
    """Compute again what the baseline ``doc`` holds, from its ``query``: the same command with
    the same parameters, its JSON document collected instead of printed.

    Latency is measured again only when ``timed`` (``--latency-tolerance``, ``--update``) and the
    query measured it; otherwise the command runs with ``--no-latency``: a counts-only check
    takes no time and never imports torch. (``bench`` has no --no-latency: it always times.)"""
    q = doc.get("query")
    if not isinstance(q, dict) or not isinstance(q.get("command"), str) \
            or not isinstance(q.get("params"), dict):
        raise chk.BaselineError(f"{source}: records no query to run again; name the models to "
                                "check: scalekit check --baseline FILE SPEC...")
    name, params = q["command"], q["params"]
    if name == "check":
        unknown = sorted(set(params) - {"specs", "counter", *SCALING_KEYS})
        specs, counter = params.get("specs"), params.get("counter", "analytic")
        if unknown or not isinstance(specs, list) or not specs \
                or not all(isinstance(s, str) for s in specs) or counter not in COUNTERS:
            raise chk.BaselineError(f"{source}: malformed query of `check`")
        return spec_document(tuple(specs), counter, {k: params.get(k) for k in SCALING_KEYS},
                             doc.get("command", command_line()))
    group = ctx.find_root().command
    cmd = group.get_command(ctx, name) if isinstance(group, click.Group) else None
    if cmd is None:
        raise chk.BaselineError(f"{source}: was made by `{name}`, which this scalekit does not "
                                "have")
    declared = {p.name: p for p in cmd.params}
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise chk.BaselineError(f"{source}: `{name}` takes no parameter {', '.join(unknown)} "
                                "(made by another scalekit version?)")
    sub = click.Context(cmd, info_name=name, parent=ctx)
    kwargs = {}
    for k, v in params.items():
        try:
            kwargs[k] = declared[k].type_cast_value(sub, v)
        except click.BadParameter as e:
            raise chk.BaselineError(f"{source}: query parameter {k}: {e.message}") from None
    if "latency" in declared:  # queries from before latency was on by default lack it: counts
        kwargs["latency"] = timed and bool(kwargs.get("latency", False))
    if name == "fit" and kwargs.get("target_latency") is not None and not timed:
        raise chk.BaselineError(f"{source}: its `fit` searched a latency target, which only a new "
                                "measurement can recompute (and noise may move the answer): give "
                                "--latency-tolerance, or keep a fit with a MACs/params/acts target")
    collected: list[dict[str, Any]] = []
    ctx.meta[COLLECT] = collected
    try:
        ctx.invoke(cmd, **kwargs)
    finally:
        del ctx.meta[COLLECT]
    if len(collected) != 1:
        raise ScalekitError(f"`{name}` gave {len(collected)} reports when run again; expected one")
    current = collected[0]
    current["command"] = doc.get("command", current["command"])  # what it records, not `check`
    return current


@click.command()
@click.argument("specs", nargs=-1, metavar="[SPEC]...")
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
@scaling_options
@counter_option
@click.option("--format", "fmt", type=click.Choice(("table", "markdown")), default="table",
              show_default=True,
              help="table for people; markdown (verdict + table) to post on a pull request.")
@click.option("--output", "-o", "output", type=click.Path(dir_okay=False), default=None,
              metavar="FILE", help="Write the result to FILE (atomically) instead of stdout.")
@handle_errors
def check(specs: tuple[str, ...], baseline: str, update: bool, tolerance: float,
          latency_tolerance: float | None, counter: str, fmt: str, output: str | None,
          **kwargs) -> None:
    """Recompute models and compare them with a stored JSON baseline: a CI guard for a model's
    cost. Prints what changed; exits 0 within bounds, 1 on a regression, 2 on a usage error.

    \b
    Without SPEC, the command recorded in the baseline is run again as it was:
      scalekit info specs/mynet.yaml --format json --output baseline.json
      scalekit check --baseline baseline.json
    With SPEC..., each spec is counted as `info` does (scaled first with --phi, --width, ...
    --preset if given), and matched to the baseline's records by name and mode:
      scalekit check --baseline costs.json --update specs/a.yaml specs/b.yaml

    Params, MACs, acts and resolution must match exactly (or within --tolerance); a model added
    or removed is a regression; latency is compared only with --latency-tolerance. Without it
    (and without --update) the baseline's command is re-run with --no-latency: counts only.
    """
    ctx = click.get_current_context()
    scaling = pop_scaling(kwargs)
    if not specs:
        given = [f"--{k}" for k, v in scaling.items() if v is not None]
        if ctx.get_parameter_source("counter") is click.core.ParameterSource.COMMANDLINE:
            given.append("--counter")
        if given:
            raise click.UsageError(f"{', '.join(given)} apply to SPEC...; without SPEC the "
                                   "baseline's own command is run again as recorded")
    check_output_path(output)
    try:
        _check(ctx, specs, baseline, update, tolerance, latency_tolerance, counter, scaling,
               fmt, output)
    except chk.BaselineError as e:
        raise CheckUsageError(str(e)) from None


def _check(ctx: click.Context, specs: tuple[str, ...], baseline: str, update: bool,
           tolerance: float, latency_tolerance: float | None, counter: str,
           scaling: dict[str, Any], fmt: str, output: str | None) -> None:
    if update and not os.path.exists(baseline):
        if not specs:
            raise click.UsageError(f"{baseline} does not exist yet: name the models to put in it "
                                   "(SPEC...), or write it with a reporting command's --format "
                                   "json --output")
        current = spec_document(specs, counter, scaling, command_line())
        _write_baseline(baseline, current)
        return
    old = chk.load_document(baseline)
    if old.get("scalekit_version") not in (None, __version__):
        warn(f"{baseline} was written by scalekit {old['scalekit_version']}; this is {__version__}")
    if latency_tolerance is not None and not update:
        if not any(chk.has_latency(r) for r in old["records"]):
            raise CheckUsageError(f"--latency-tolerance: {baseline} holds no latency to compare "
                                  "(make it with a command that measures latency)")
        if specs:
            raise CheckUsageError("--latency-tolerance: SPEC... are counted, not timed; run "
                                  "check without SPEC to re-run the baseline's own command")
    current = (spec_document(specs, counter, scaling, command_line()) if specs
               else rerun(ctx, old, baseline, timed=update or latency_tolerance is not None))
    result = chk.compare_documents(old, current, tolerance=tolerance,
                                   latency_tolerance=None if update else latency_tolerance)
    if update:
        _show(result, baseline, f"updating {baseline}: "
              + (f"{len(result.changes)} changes" if result.changes else "no changes"), fmt, output)
        _write_baseline(baseline, current)
        return
    _show(result, baseline, chk.verdict(result, baseline), fmt, output)
    if latency_tolerance is not None:
        for c in result.changes:
            if c.status == "no latency":
                warn(f"latency of {c.model} not compared: {c.where}")
        if result.latency_compared == 0:
            raise CheckUsageError("--latency-tolerance: no model has latency on both sides; the "
                                  "current run measured none")
    if not result.ok:
        ctx.exit(1)


def _write_baseline(path: str, doc: dict[str, Any]) -> None:
    report.write_atomic(path, report.to_json(doc))
    click.echo(f"wrote {path} ({len(doc['records'])} models)", err=True)


def _show(result: chk.CheckResult, baseline: str, headline: str, fmt: str,
          output: str | None) -> None:
    """The changes (if any) and the headline, as a table or Markdown, to stdout or ``output``."""
    if fmt == "markdown":
        text = chk.changes_markdown(result, headline)
    else:
        renderables = ([chk.changes_table(result, baseline)] if result.changes else []) + [headline]
        if output is None:
            stdout_console().print(*renderables)
            return
        text = render_text(renderables)
    if output is None:
        click.echo(text, nl=False)
    else:
        report.write_atomic(output, text)
        click.echo(f"wrote {output}", err=True)

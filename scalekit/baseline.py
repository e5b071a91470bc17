"""Guard a model's cost: compute a report again and compare it with a stored baseline.

The baseline is data (see queries.py): its query is checked against the reporting command's
allow-list and computed again; or, with SPEC..., the specs are counted as ``info`` does. This
module decides what is compared and what the verdict is; ``scalekit check`` prints it and writes
files. No click here; latency is measured only through the ``measure`` the caller passes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from . import __version__, queries
from .errors import BaselineError
from .queries import MeasureFn, Query, QueryError, Run
from .report import changes, document
from .studies import regression
from .text import plural


def current_document(query: Query, command: str, *, measure: MeasureFn | None = None,
                     source: str = "", say=queries.quiet) -> dict[str, Any]:
    """Compute ``query`` again, as a report document. Latency is measured again only through
    ``measure`` (None: counts only, which takes no time and never imports torch). ``source``
    names the baseline the query comes from: a query that cannot run is a
    :class:`BaselineError` naming it."""
    try:
        outcome = queries.run_query(query, Run(measure=measure, say=say))
    except QueryError as e:
        if not source:
            raise
        raise BaselineError(f"{source}: {e}") from None
    return document.document(outcome.records, command, {**outcome.extra, "query": query.to_dict()})


@dataclass(frozen=True)
class Checked:
    """What a check found: the comparison, its one-line verdict, the document to store (with
    ``update``), warnings to show, and ``unusable``: why the check, shown, could not be made
    (asked for latency that neither side has)."""

    result: regression.CheckResult | None
    headline: str
    current: dict[str, Any]
    warnings: tuple[str, ...] = field(default_factory=tuple)
    unusable: str | None = None

    @property
    def failed(self) -> bool:
        return self.result is not None and not self.result.ok


def check(baseline: str, *, specs: Query | None = None, update: bool = False,
          tolerance: float = 0.0, latency_tolerance: float | None = None,
          measure: MeasureFn | None = None, command: str = "scalekit check",
          say=queries.quiet, max_memory: float | None = None,
          memory_kind: str = "inference") -> Checked:
    """Compare ``baseline`` (a path) with the numbers computed now: those of ``specs`` (a
    ``check`` query) when given, else of the baseline's own query. ``update``: the comparison is
    only shown (a missing baseline is created from ``specs``). ``latency_tolerance``: compare
    median latency too (the query's records are timed again with ``measure``). ``max_memory``
    (bytes): also fail any current model whose ``memory_kind`` memory exceeds it (the memory
    guard's estimate, from the plan: nothing is built).
    Raises :class:`BaselineError` when the check cannot be made."""
    if update and not os.path.exists(baseline):
        if specs is None:
            raise QueryError(f"{baseline} does not exist yet: name the models to put in it "
                             "(SPEC...), or write it with a reporting command's --format json "
                             "--output")
        return Checked(None, f"writing {baseline}", current_document(specs, command))
    old = document.load_document(baseline)
    warnings = []
    if old.get("scalekit_version") not in (None, __version__):
        warnings.append(f"{baseline} was written by scalekit {old['scalekit_version']}; this is "
                        f"{__version__}")
    if latency_tolerance is not None and not update:
        if not any(regression.has_latency(r) for r in old["records"]):
            raise BaselineError(f"--latency-tolerance: {baseline} holds no latency to compare "
                                "(make it with a command that measures latency)")
        if specs is not None:
            raise BaselineError("--latency-tolerance: SPEC... are counted, not timed; run check "
                                "without SPEC to compute the baseline's own query")
    if specs is not None:
        current = current_document(specs, command)
    else:
        try:
            query = queries.query_from_dict(old.get("query"))
        except QueryError as e:
            raise BaselineError(f"{baseline}: {e}") from None
        timed = update or latency_tolerance is not None
        current = current_document(query, str(old.get("command") or command),
                                   measure=measure if timed else None, source=baseline, say=say)
    before = regression.document_convention(old)
    after = regression.document_convention(current)
    if before and after and before != after:
        if not update:
            raise BaselineError(
                f"{baseline} counts MACs under the {before} convention and this run under "
                f"{after}: they cannot be compared (check with --convention {before}, or "
                "rewrite the baseline with --update)")
        warnings.append(f"{baseline}: the convention changes from {before} to {after}")
    result = regression.compare_documents(old, current, tolerance=tolerance,
                                          latency_tolerance=None if update else latency_tolerance,
                                          max_memory=None if update else max_memory,
                                          memory_kind=memory_kind)
    if update:
        n = len(result.changes)
        return Checked(result,
                       f"updating {baseline}: {plural(n, 'change') if n else 'no changes'}",
                       current, tuple(warnings))
    if latency_tolerance is not None:
        warnings += [f"latency of {c.model} not compared: {c.where}" for c in result.changes
                     if c.status == "no latency"]
        if result.latency_compared == 0:
            return Checked(result, changes.verdict(result, baseline), current, tuple(warnings),
                           "--latency-tolerance: no model has latency on both sides; the "
                           "current run measured none")
    return Checked(result, changes.verdict(result, baseline), current, tuple(warnings))

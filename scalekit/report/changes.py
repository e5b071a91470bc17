"""Formatting the result of ``scalekit check`` (studies/regression.py computes it): a rich table
of the changes, a Markdown table for a pull-request comment, and a one-line verdict."""

from __future__ import annotations

import shlex
from typing import Any, Sequence

from rich.table import Table

from ..memory import format_bytes
from ..studies.regression import (REGRESSIONS, Change, CheckResult, ModelResult, has_latency,
                                  memory_of)
from .document import md_cell
from ..text import plural, safe_text
from .tables import new_table

LABELS = {"resolution": "resolution (px)", "params": "params", "macs": "MACs", "acts": "acts",
          "latency": "latency median (ms)", "memory": "memory (bytes; baseline: the limit)"}


def _value(metric: str, v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.3f}" if metric == "latency" else f"{int(v):,}"


def _delta(c: Change) -> tuple[str, str]:
    d, pct = c.delta, c.delta_pct
    if d is None:
        return "", ""
    text = f"{d:+,.3f}" if c.metric == "latency" else f"{int(d):+,}"
    if pct is None:
        return text, ""
    return text, f"{pct:+.3g}%" if abs(pct) < 1000 else f"{pct:+,.0f}%"


COLUMNS = ("model", "mode", "metric", "baseline", "current", "delta", "delta %", "status", "where")
TEXT_COLUMNS = ("model", "mode", "metric", "status", "where")  # left-aligned; the rest are numbers


def change_rows(result: CheckResult) -> list[tuple[str, ...]]:
    """The changes as rows of text, in :data:`COLUMNS` order."""
    rows = []
    for c in result.changes:
        delta, pct = _delta(c)
        status = c.status.upper() if c.regression else c.status
        rows.append((c.model, c.mode or "", LABELS[c.metric], _value(c.metric, c.baseline),
                     _value(c.metric, c.current), delta, pct, status, c.where))
    return rows


def bounds(result: CheckResult) -> str:
    counts = ("params, MACs and acts exact" if result.tolerance == 0 else
              f"params, MACs and acts within {result.tolerance * 100:g}%")
    if result.latency_tolerance is None:
        lat = "latency not compared"
    else:
        lat = (f"latency at most {result.latency_tolerance * 100:g}% slower "
               f"({result.latency_compared} of {_models(result.compared)} timed on both sides)")
    mem = ""
    if result.max_memory is not None:
        mem = f"; {result.memory_kind} memory at most {format_bytes(int(result.max_memory))}"
    return f"{counts}; {lat}{mem}"


def _models(n: int) -> str:
    return plural(n, "model")


def verdict(result: CheckResult, baseline: str) -> str:
    """One line: pass or fail, against what, within which bounds."""
    if result.ok:
        return (f"check passed against {baseline}: {_models(result.compared)} compared, all "
                f"within bounds ({bounds(result)})")
    failed: dict[str, set] = {}
    for c in result.changes:
        if c.regression:
            failed.setdefault(c.status, set()).add((c.model, c.mode))
    what = ", ".join(f"{_models(len(failed[s]))} {s}" for s in REGRESSIONS if s in failed)
    return f"check FAILED against {baseline}: {what} ({bounds(result)})"


def update_hint(baseline: str, args: Sequence[str] = ()) -> str:
    """The command that rewrites ``baseline`` with the current numbers: ``scalekit check
    --baseline PATH --update`` and ``args`` (the SPEC... and scaling flags of this check), each
    shell-quoted (shown escaped: what a user typed is never interpreted by the terminal)."""
    words = ["scalekit", "check", "--baseline", baseline, "--update", *args]
    return safe_text(" ".join(shlex.quote(w) for w in words))


def changes_table(result: CheckResult, baseline: str) -> Table:
    """The changes (the command that updates the baseline is a line of its own,
    :func:`hint_line`, so that it can be copied whole)."""
    t = new_table(f"changes against {baseline}", caption="delta = current - baseline.")
    rows = change_rows(result)
    used = _used(rows)
    for col in used:
        t.add_column(col, justify="left" if col in TEXT_COLUMNS else "right",
                     no_wrap=col != "where")
    t.layout(names=("model", "mode", "metric", "status"), optional=("delta",))
    for change, row in zip(result.changes, rows):
        t.add_row(*(v for col, v in zip(COLUMNS, row) if col in used),
                  style="red" if change.regression else None)
    return t


def hint_line(hint: str) -> str:
    """The line under the verdict that says how to accept the changes."""
    return f"when a change is intended, update the baseline: {hint}"


def changes_markdown(result: CheckResult, headline: str, hint: str | None = None) -> str:
    """``headline`` (the verdict) and a Markdown table of the changes, for a pull-request
    comment; ``hint`` (:func:`update_hint`) after it when something changed."""
    out = [safe_text(headline), ""]
    if result.changes:
        rows = change_rows(result)
        used = _used(rows)
        out.append("| " + " | ".join(used) + " |")
        out.append("|" + "|".join("---" if c in TEXT_COLUMNS else "---:" for c in used) + "|")
        for row in rows:
            out.append("| " + " | ".join(md_cell(v) for col, v in zip(COLUMNS, row)
                                         if col in used) + " |")
        if hint:
            code = f"`{hint}`" if "`" not in hint else f"`` {hint} ``"  # a code span
            out += ["", f"When a change is intended, update the baseline: {code}"]
    return "\n".join(out) + "\n"


def _used(rows: list[tuple[str, ...]]) -> list[str]:
    """The columns to show: mode and where only when some row has one."""
    return [col for i, col in enumerate(COLUMNS)
            if col not in ("mode", "where") or any(r[i] for r in rows)]


# ---------------------------------------------------------------------------------------------
# the check as a JSON document (``scalekit check --format json``; docs/json.md)

CHECK_SCHEMA_VERSION = 1
COUNT_FIELDS = ("resolution", "params", "macs", "acts")


def _metric(before: Any, after: Any, change: Change | None) -> dict[str, Any]:
    delta = None if before is None or after is None else after - before
    pct = None if delta is None or not before else delta / abs(before) * 100.0
    status = change.status if change is not None else "same" if before == after else "-"
    return {"baseline": before, "current": after, "delta": delta, "delta_pct": pct,
            "status": status}


def _median(record: dict[str, Any] | None) -> float | None:
    return record["latency"]["median_ms"] if record is not None and has_latency(record) else None


def model_entry(m: ModelResult, result: CheckResult) -> dict[str, Any]:
    """One model of the check: its names, each metric baseline vs now with its status, and the
    model's status (``ok``; ``added`` or ``removed``; else ``failed``, with the regressions)."""
    by_metric = {c.metric: c for c in m.changes}
    b, c = m.baseline, m.current
    if b is None or c is None:
        status = "added" if b is None else "removed"
    else:
        status = "ok" if m.ok else "failed"
    metrics: dict[str, Any] = {}
    if b is not None and c is not None:
        for f in COUNT_FIELDS:
            metrics[f] = _metric(b[f], c[f], by_metric.get(f))
        if result.latency_tolerance is not None:
            ch = by_metric.get("latency")
            entry = _metric(_median(b), _median(c), ch)
            if ch is None:
                entry["status"] = "within tolerance"
            metrics["latency_median_ms"] = entry
    else:
        side = b if b is not None else c
        for f in COUNT_FIELDS:
            metrics[f] = {"baseline": None if b is None else side[f],
                          "current": None if c is None else side[f], "delta": None,
                          "delta_pct": None, "status": status}
    if result.max_memory is not None and c is not None:
        ch = by_metric.get("memory")
        have = memory_of(c, result.memory_kind)
        metrics["memory_bytes"] = {"limit": result.max_memory, "current": have,
                                   "status": "over budget" if ch is not None else "within budget"}
    where = next((ch.where for ch in m.changes if ch.where and ch.metric != "memory"), "")
    return {"name": m.name, "mode": m.mode, "status": status, "regressions": list(m.regressions),
            "where": where, "metrics": metrics}


def check_document(result: CheckResult | None, *, baseline: str, headline: str, status: str,
                   exit_code: int, command: str, warnings: Sequence[str] = (),
                   versions: dict[str, Any] | None = None,
                   update_hint: str | None = None) -> dict[str, Any]:
    """``scalekit check --format json``: the verdict as data. ``status`` is ``passed``,
    ``failed``, ``updated`` (``--update``: shown, then rewritten), ``written`` (``--update``
    creating the baseline) or ``unusable`` (the check could not be made); ``exit_code`` is the
    one the command exits with. It has no ``records``: a check result is not a baseline."""
    models = [model_entry(m, result) for m in result.models] if result is not None else []
    bounds_ = None
    if result is not None:
        bounds_ = {"tolerance": result.tolerance, "latency_tolerance": result.latency_tolerance,
                   "max_memory_bytes": result.max_memory,
                   "memory": result.memory_kind if result.max_memory is not None else None,
                   "text": bounds(result)}
    return {
        "check_schema_version": CHECK_SCHEMA_VERSION,
        **(versions or {}),
        "command": command,
        "baseline": baseline,
        "status": status,
        "exit_code": exit_code,
        "verdict": headline,
        "bounds": bounds_,
        "compared": result.compared if result is not None else 0,
        "regressions": result.regressions if result is not None else 0,
        "models": models,
        "changes": [{"model": ch.model, "mode": ch.mode, "metric": ch.metric,
                     "baseline": ch.baseline, "current": ch.current, "delta": ch.delta,
                     "delta_pct": ch.delta_pct, "status": ch.status,
                     "regression": ch.regression, "where": ch.where}
                    for ch in (result.changes if result is not None else ())],
        "update_hint": update_hint,
        "warnings": list(warnings),
    }

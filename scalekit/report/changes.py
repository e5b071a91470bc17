"""Formatting the result of ``scalekit check`` (studies/regression.py computes it): a rich table
of the changes, a Markdown table for a pull-request comment, and a one-line verdict."""

from __future__ import annotations

from rich.table import Table

from ..memory import format_bytes
from ..studies.regression import REGRESSIONS, Change, CheckResult
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


def changes_table(result: CheckResult, baseline: str) -> Table:
    t = new_table(f"changes against {baseline}",
                      caption="delta = current - baseline. Update the baseline with "
                              "`scalekit check --update` when a change is intended.")
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


def changes_markdown(result: CheckResult, headline: str) -> str:
    """``headline`` (the verdict) and a Markdown table of the changes, for a pull-request
    comment."""
    out = [safe_text(headline), ""]
    if result.changes:
        rows = change_rows(result)
        used = _used(rows)
        out.append("| " + " | ".join(used) + " |")
        out.append("|" + "|".join("---" if c in TEXT_COLUMNS else "---:" for c in used) + "|")
        for row in rows:
            out.append("| " + " | ".join(md_cell(v) for col, v in zip(COLUMNS, row)
                                         if col in used) + " |")
    return "\n".join(out) + "\n"


def _used(rows: list[tuple[str, ...]]) -> list[str]:
    """The columns to show: mode and where only when some row has one."""
    return [col for i, col in enumerate(COLUMNS)
            if col not in ("mode", "where") or any(r[i] for r in rows)]

"""Guard a model's cost: compare a recomputed report with a stored JSON baseline.

A baseline is the JSON document any reporting command writes with ``--format json`` (or that
``scalekit check --update`` writes). Records are matched by name and mode (and, where two records
share both, by their order). Params, MACs, acts and resolution are deterministic and must match
exactly, or within a relative tolerance for the counts; latency is noisy and is compared only when
asked, one-sided (slower fails, faster does not). Added and removed models are regressions.

No torch here; formatting of the result is at the bottom (rich table, Markdown, one-line verdict).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable

from rich.table import Table

from . import report
from .errors import ScalekitError

COUNT_METRICS = ("params", "macs", "acts")
LABELS = {"resolution": "resolution (px)", "params": "params", "macs": "MACs", "acts": "acts",
          "latency": "latency median (ms)"}
# statuses that fail the check
REGRESSIONS = ("changed", "added", "removed", "slower")
# stage fields whose change is worth naming (counts are shown per model)
STAGE_FIELDS = ("repeats", "cin", "cout", "kernel", "stride", "expand", "se", "resolution")


class BaselineError(ScalekitError):
    """The baseline file cannot be used: missing, not JSON, or not a scalekit document
    (``scalekit check`` exits 2: the check itself could not be made)."""


def parse_percent(text: str) -> float:
    """``"0.5%"`` (or ``"0.5"``: the % sign is optional) -> 0.005. Raises ValueError."""
    s = text.strip()
    number = s[:-1].strip() if s.endswith("%") else s
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"{text!r} is not a percentage (e.g. 0.5% or 25%)") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{text!r}: must be a finite percentage >= 0")
    return value / 100.0


# ---------------------------------------------------------------------------------------------
# reading a baseline


def parse_document(text: str, source: str) -> dict[str, Any]:
    """Parse and sanity-check a report document (``source`` names it in errors)."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise BaselineError(f"{source}: not valid JSON ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("records"), list) \
            or not isinstance(doc.get("schema_version"), int):
        raise BaselineError(f"{source}: not a scalekit report (expected the JSON document of "
                            "--format json, with schema_version and records)")
    if doc["schema_version"] > report.SCHEMA_VERSION:
        raise BaselineError(f"{source}: schema_version {doc['schema_version']} is newer than this "
                            f"scalekit understands ({report.SCHEMA_VERSION}); upgrade scalekit")
    for i, r in enumerate(doc["records"]):
        if not isinstance(r, dict) or not isinstance(r.get("name"), str) or not all(
                type(r.get(k)) is int for k in COUNT_METRICS + ("resolution",)):
            raise BaselineError(f"{source}: records[{i}] lacks a name or integer resolution, "
                                "params, macs and acts")
    return doc


def load_document(path: str) -> dict[str, Any]:
    """Read a baseline file; any problem is a :class:`BaselineError` naming the file."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise BaselineError(f"{path}: no such baseline file (create it with --update, or with "
                            f"a reporting command's --format json --output {path})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BaselineError(f"{path}: cannot read the baseline ({e})") from None
    return parse_document(text, path)


def has_latency(record: dict[str, Any]) -> bool:
    lat = record.get("latency")
    return isinstance(lat, dict) and isinstance(lat.get("median_ms"), (int, float))


# ---------------------------------------------------------------------------------------------
# computing the models named on the command line


# ---------------------------------------------------------------------------------------------
# comparing


@dataclass(frozen=True)
class Change:
    """One row of what changed: a metric of a model, or a model added or removed."""

    model: str
    mode: str | None
    metric: str  # resolution | params | macs | acts | latency
    baseline: float | None
    current: float | None
    status: str  # changed | within tolerance | added | removed | slower | faster | no latency
    where: str = ""  # the stages that differ, for count changes

    @property
    def regression(self) -> bool:
        return self.status in REGRESSIONS

    @property
    def delta(self) -> float | None:
        if self.baseline is None or self.current is None:
            return None
        return self.current - self.baseline

    @property
    def delta_pct(self) -> float | None:
        d = self.delta
        if d is None or not self.baseline:
            return None
        return d / abs(self.baseline) * 100.0


@dataclass(frozen=True)
class CheckResult:
    changes: tuple[Change, ...]
    compared: int  # models found in both documents
    tolerance: float
    latency_tolerance: float | None
    latency_compared: int  # models whose latency was compared (both sides measured)

    @property
    def regressions(self) -> int:
        return sum(c.regression for c in self.changes)

    @property
    def ok(self) -> bool:
        return self.regressions == 0


Key = tuple[str, Any, int]


def record_keys(records: Iterable[dict[str, Any]]) -> list[Key]:
    """(name, mode, n): the n-th record with that name and mode. Stable across runs of the same
    command, and independent of spec paths (which differ between machines)."""
    seen: Counter = Counter()
    keys = []
    for r in records:
        k = (r["name"], r.get("mode"))
        keys.append((k[0], k[1], seen[k]))
        seen[k] += 1
    return keys


def _stage_diff(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> str:
    """Name what changed stage by stage: ``stage3 repeats 6 -> 7``."""
    b = {s.get("name"): s for s in before if isinstance(s, dict)}
    a = {s.get("name"): s for s in after if isinstance(s, dict)}
    parts = []
    for name in list(b) + [n for n in a if n not in b]:
        if name not in a:
            parts.append(f"{name} removed")
        elif name not in b:
            parts.append(f"{name} added")
        else:
            fields = [f"{f} {b[name].get(f)} -> {a[name].get(f)}" for f in STAGE_FIELDS
                      if b[name].get(f) != a[name].get(f)]
            if fields:
                parts.append(f"{name} " + ", ".join(fields))
            elif any(b[name].get(m) != a[name].get(m) for m in COUNT_METRICS):
                parts.append(f"{name} counts")
    return "; ".join(parts)


def _count_changes(b: dict[str, Any], c: dict[str, Any], tolerance: float) -> list[Change]:
    out = []
    where = _stage_diff(b.get("stages") or [], c.get("stages") or [])
    for metric in ("resolution",) + COUNT_METRICS:
        before, after = b[metric], c[metric]
        if before == after:
            continue
        within = metric != "resolution" and abs(after - before) <= tolerance * abs(before)
        out.append(Change(c["name"], c.get("mode"), metric, before, after,
                          "within tolerance" if within else "changed", where))
        where = ""  # say it once per model
    return out


def _latency_change(b: dict[str, Any], c: dict[str, Any], tolerance: float) -> Change | None:
    if not (has_latency(b) and has_latency(c)):
        return Change(c["name"], c.get("mode"), "latency",
                      b["latency"]["median_ms"] if has_latency(b) else None,
                      c["latency"]["median_ms"] if has_latency(c) else None, "no latency",
                      "baseline has none" if not has_latency(b) else "current run measured none")
    before, after = float(b["latency"]["median_ms"]), float(c["latency"]["median_ms"])
    if after > before * (1 + tolerance):
        return Change(c["name"], c.get("mode"), "latency", before, after, "slower")
    if after < before * (1 - tolerance):
        return Change(c["name"], c.get("mode"), "latency", before, after, "faster")
    return None


def compare_documents(baseline: dict[str, Any], current: dict[str, Any], *,
                      tolerance: float = 0.0,
                      latency_tolerance: float | None = None) -> CheckResult:
    """What changed from ``baseline`` to ``current`` (both report documents)."""
    base = dict(zip(record_keys(baseline["records"]), baseline["records"]))
    cur = dict(zip(record_keys(current["records"]), current["records"]))
    changes: list[Change] = []
    compared = latency_compared = 0
    for key, b in base.items():
        c = cur.get(key)
        if c is None:
            changes.append(Change(b["name"], b.get("mode"), "params", b["params"], None, "removed"))
            continue
        compared += 1
        changes += _count_changes(b, c, tolerance)
        if latency_tolerance is not None:
            lat = _latency_change(b, c, latency_tolerance)
            if lat is None or lat.status != "no latency":
                latency_compared += 1
            if lat is not None:
                changes.append(lat)
    for key, c in cur.items():
        if key not in base:
            changes.append(Change(c["name"], c.get("mode"), "params", None, c["params"], "added"))
    return CheckResult(tuple(changes), compared, tolerance, latency_tolerance, latency_compared)


# ---------------------------------------------------------------------------------------------
# formatting


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
    return f"{counts}; {lat}"


def _models(n: int) -> str:
    return f"{n} model{'' if n == 1 else 's'}"


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
    t = report.new_table(f"changes against {baseline}",
                      caption="delta = current - baseline. Update the baseline with "
                              "`scalekit check --update` when a change is intended.")
    rows = change_rows(result)
    used = _used(rows)
    for col in used:
        t.add_column(col, justify="left" if col in TEXT_COLUMNS else "right",
                     no_wrap=col != "where")
    for change, row in zip(result.changes, rows):
        t.add_row(*(v for col, v in zip(COLUMNS, row) if col in used),
                  style="red" if change.regression else None)
    return t


def changes_markdown(result: CheckResult, headline: str) -> str:
    """``headline`` (the verdict) and a Markdown table of the changes, for a pull-request
    comment."""
    out = [headline, ""]
    if result.changes:
        rows = change_rows(result)
        used = _used(rows)
        out.append("| " + " | ".join(used) + " |")
        out.append("|" + "|".join("---" if c in TEXT_COLUMNS else "---:" for c in used) + "|")
        for row in rows:
            out.append("| " + " | ".join(report._md_cell(v) for col, v in zip(COLUMNS, row)
                                         if col in used) + " |")
    return "\n".join(out) + "\n"


def _used(rows: list[tuple[str, ...]]) -> list[str]:
    """The columns to show: mode and where only when some row has one."""
    return [col for i, col in enumerate(COLUMNS)
            if col not in ("mode", "where") or any(r[i] for r in rows)]

"""Guard a model's cost: compare a recomputed report with a stored JSON baseline.

A baseline is the JSON document any reporting command writes with ``--format json`` (or that
``scalekit check --update`` writes). Records are matched by name and mode (and, where two records
share both, by their order). Params, MACs, acts and resolution are deterministic and must match
exactly, or within a relative tolerance for the counts; latency is noisy and is compared only when
asked, one-sided (slower fails, faster does not). Added and removed models are regressions.

Comparing only: report/changes.py formats the result (rich table, Markdown, one-line verdict).
No torch here.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable

from ..conventions import DEFAULT as DEFAULT_CONVENTION
from ..records import COUNTER_CONVENTIONS

COUNT_METRICS = ("params", "macs", "acts")
# statuses that fail the check
REGRESSIONS = ("changed", "added", "removed", "slower", "over budget")
# stage fields whose change is worth naming (counts are shown per model)
STAGE_FIELDS = ("repeats", "cin", "cout", "kernel", "stride", "expand", "se", "resolution")


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


def record_convention(record: dict[str, Any]) -> str:
    """The convention a stored record's MACs follow (scalekit/conventions.py): its
    ``convention``; a record written before conventions were named follows its counter's (thop's
    for ``--counter thop``), else the paper's."""
    c = record.get("convention")
    if isinstance(c, str):
        return c
    return COUNTER_CONVENTIONS.get(str(record.get("counter")), DEFAULT_CONVENTION)


def document_convention(doc: dict[str, Any]) -> str | None:
    """The convention of a document's records (``paper``; ``paper and thop`` if they are mixed),
    None when it has no records."""
    names = sorted({record_convention(r) for r in doc["records"]})
    return " and ".join(names) if names else None


def has_latency(record: dict[str, Any]) -> bool:
    lat = record.get("latency")
    if not isinstance(lat, dict):
        return False
    m = lat.get("median_ms")  # a NaN, a boolean or a list is no latency (it would compare false)
    return isinstance(m, (int, float)) and not isinstance(m, bool) and math.isfinite(m) and m > 0


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
class ModelResult:
    """One model of a check: its record in the baseline and now (None where it is missing on
    that side: removed or added), and the changes found for it (a subset of the check's)."""

    name: str
    mode: str | None
    baseline: dict[str, Any] | None
    current: dict[str, Any] | None
    changes: tuple[Change, ...]

    @property
    def regressions(self) -> tuple[str, ...]:
        """The regression statuses of its changes (``changed``, ``slower``, ...), in
        :data:`REGRESSIONS` order, each once."""
        found = {c.status for c in self.changes if c.regression}
        return tuple(s for s in REGRESSIONS if s in found)

    @property
    def ok(self) -> bool:
        return not self.regressions


@dataclass(frozen=True)
class CheckResult:
    changes: tuple[Change, ...]
    compared: int  # models found in both documents
    tolerance: float
    latency_tolerance: float | None
    latency_compared: int  # models whose latency was compared (both sides measured)
    max_memory: float | None = None  # --max-memory: bytes no current model may exceed
    memory_kind: str = "inference"  # of what: inference (params + peak activations), training
    models: tuple[ModelResult, ...] = ()  # every model of either side, baseline order first

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


def memory_of(record: dict[str, Any], kind: str = "inference") -> int | None:
    """A record's memory in bytes (its ``memory`` object, the memory guard's estimate):
    ``inference`` = params + the inference activation peak, ``training`` = params + gradients +
    optimizer state + saved activations. None for a record without one."""
    m = record.get("memory")
    if not isinstance(m, dict):
        return None
    if kind == "training":
        return m.get("training_bytes")
    return m.get("params_bytes", 0) + m.get("inference_peak_bytes", 0)


def _memory_change(c: dict[str, Any], limit: float, kind: str) -> Change | None:
    have = memory_of(c, kind)
    if have is None:
        return Change(c["name"], c.get("mode"), "memory", limit, None, "over budget",
                      "no memory estimate")
    if have > limit:
        return Change(c["name"], c.get("mode"), "memory", limit, have, "over budget",
                      f"{kind} memory above --max-memory")
    return None


def compare_documents(baseline: dict[str, Any], current: dict[str, Any], *,
                      tolerance: float = 0.0, latency_tolerance: float | None = None,
                      max_memory: float | None = None,
                      memory_kind: str = "inference") -> CheckResult:
    """What changed from ``baseline`` to ``current`` (both report documents); with
    ``max_memory``, every current model whose memory (:func:`memory_of`) exceeds it too."""
    base = dict(zip(record_keys(baseline["records"]), baseline["records"]))
    cur = dict(zip(record_keys(current["records"]), current["records"]))
    changes: list[Change] = []
    per_model: dict[Key, list[Change]] = {key: [] for key in [*base, *(k for k in cur
                                                                          if k not in base)]}
    compared = latency_compared = 0
    for key, b in base.items():
        c = cur.get(key)
        if c is None:
            found = [Change(b["name"], b.get("mode"), "params", b["params"], None, "removed")]
        else:
            compared += 1
            found = _count_changes(b, c, tolerance)
            if latency_tolerance is not None:
                lat = _latency_change(b, c, latency_tolerance)
                if lat is None or lat.status != "no latency":
                    latency_compared += 1
                if lat is not None:
                    found.append(lat)
        changes += found
        per_model[key] += found
    for key, c in cur.items():
        if key not in base:
            found = [Change(c["name"], c.get("mode"), "params", None, c["params"], "added")]
            changes += found
            per_model[key] += found
    if max_memory is not None:
        for key, c in cur.items():
            ch = _memory_change(c, max_memory, memory_kind)
            if ch is not None:
                changes.append(ch)
                per_model[key].append(ch)
    models = tuple(ModelResult(key[0], key[1], base.get(key), cur.get(key), tuple(found))
                   for key, found in per_model.items())
    return CheckResult(tuple(changes), compared, tolerance, latency_tolerance, latency_compared,
                       max_memory, memory_kind, models)

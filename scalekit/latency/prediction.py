"""Predicted latency: a report's networks read off the per-machine latency table
(scalekit/latency/table.py), with whatever the table lacks timed first (scalekit/latency/pieces.py,
the only part that needs torch) and kept for next time.

With a warm table this is lookups and a multiplication: no torch, no model built. Cold pieces
are timed block by block (a few seconds per network; a new machine, thread count, batch or
runtime also calibrates once, on four small networks).
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..extras import require_torch
from ..host import cpu_model
from ..memory import check_memory
from ..records import ModelRecord
from .harness import MIN_CPU_SHARE
from .machine import available_cores, theoretical_peak
from .runtimes import LABELS, require_runtime, runtime_version
from .table import RETRIES, LatencyTable, table_key

if TYPE_CHECKING:
    from .networks import TimingOptions


def open_table(threads: int, runtime: str, say: Callable[[str], None]) -> LatencyTable:
    """The table of this machine, torch, ``threads`` and ``runtime`` (empty if there is none)."""
    return LatencyTable.load(table_key(threads, runtime, runtime_version(runtime)), say)


PROBE_S = 0.05  # seconds of busy work that say whether the machine is quiet enough to retime


def cpu_share_now(seconds: float = PROBE_S) -> float:
    """This process's share of a core over ``seconds`` of busy work (no torch): below
    :data:`harness.MIN_CPU_SHARE` the machine is contended right now."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - wall0 < seconds:
        sum(range(1000))
    return min(1.0, (time.process_time() - cpu0) / max(1e-9, time.perf_counter() - wall0))


def needs_timing(table: LatencyTable, plans: Sequence[Any], batch: int) -> bool:
    """Whether anything must be timed: a missing piece or calibration (always), or pieces and a
    calibration timed on a contended machine (retimed at most :data:`table.RETRIES` times, and
    only when the machine is quiet now: otherwise the flag stays and nothing is timed)."""
    cal = table.calibration.get(batch)
    must = bool(table.missing(plans, batch, retry=False) or cal is None
                or table.peak_gflops is None or table.cpu_capability is None)
    retry = (len(table.missing(plans, batch)) > len(table.missing(plans, batch, retry=False))
             or (cal is not None and not cal.trusted and cal.attempts <= RETRIES
                 and batch not in table.calibrated))
    if retry and table.quiet_retry is None:  # look once per process
        table.quiet_retry = cpu_share_now() >= MIN_CPU_SHARE
    return must or (retry and bool(table.quiet_retry))


def warm(table: LatencyTable, plans: Sequence[Any], batch: int, threads: int, runtime: str,
         say: Callable[[str], None]) -> int:
    """Time what ``table`` lacks for ``plans`` (saving the table, also when interrupted).
    Returns the pieces timed."""
    if not needs_timing(table, plans, batch):
        return 0
    require_torch("predicted latency (this machine's table lacks blocks, timed once)")
    from .pieces import fill

    try:
        return fill(table, plans, batch, threads, runtime, say)
    finally:
        table.save(say)


def predict_records(records: Sequence[ModelRecord], options: TimingOptions, *,
                    say: Callable[[str], None]) -> tuple[list[ModelRecord], dict[str, Any]]:
    """``records`` with their latency predicted (``latency.kind`` ``predicted``) and the
    report's ``timing`` facts. Networks whose pieces must be timed pass the memory guard first
    (nothing is built otherwise)."""
    require_runtime(options.runtime)
    table = open_table(options.threads, options.runtime, say)
    plans = [r.plan for r in records]
    if any(p is None for p in plans):
        raise ValueError("records without a plan cannot be predicted")
    if needs_timing(table, plans, options.batch):
        for r in records:
            if table.missing([r.plan], options.batch, retry=bool(table.quiet_retry)):
                check_memory(r.plan, batch=options.batch, force=options.force,
                             counts=r.analytic)
    warm(table, plans, options.batch, options.threads, options.runtime, say)
    out = [replace(r, latency=table.predict(r.plan, options.batch).to_dict(
        options.threads, options.batch, options.runtime)) for r in records]
    return out, prediction_facts(table, options)


def prediction_facts(table: LatencyTable, options: TimingOptions) -> dict[str, Any]:
    """The ``timing`` object of a report with predicted latency (no torch)."""
    from .networks import PREDICTION_METHOD

    theory = theoretical_peak(options.threads, table.peak_gflops)
    cal = table.calibration[options.batch]
    return {"cpu": cpu_model(), "logical_cores": os.cpu_count(),
            "available_cores": available_cores(), "cpu_capability": table.cpu_capability,
            "torch": table.key["torch"], "python": platform.python_version(),
            "platform": platform.platform(), "kind": "predicted", "runtime": options.runtime,
            "runtime_label": LABELS[options.runtime], "threads": options.threads,
            "batch": options.batch, "peak_gflops": table.peak_gflops,
            "theoretical_peak_gflops": theory.gflops, "theoretical_peak_basis": theory.basis,
            "method": PREDICTION_METHOD,
            "table": {"path": table.path, "pieces": len(table.pieces),
                      "calibration": cal.to_dict(), "calibration_spread": cal.spread}}


def predicted_cost(threads: int, runtime: str, batch: int, say: Callable[[str], None], *,
                   force: bool = False):
    """A cost for :func:`scalekit.studies.budget.fit`: a realised network's predicted latency
    (ms) at ``batch``, its missing blocks timed once and kept in the table."""
    require_runtime(runtime)
    table = open_table(threads, runtime, say)

    def cost(spec, plan, counts) -> tuple[float, dict[str, Any]]:
        if table.missing([plan], batch):
            check_memory(plan, batch=batch, force=force, counts=counts)
        warm(table, [plan], batch, threads, runtime, say)
        lat = table.predict(plan, batch).to_dict(threads, batch, runtime)
        return lat["predicted_ms"], lat
    return cost


CONFIRM_HARNESS = {"warmup": 2, "min_runs": 7, "max_runs": 100, "budget_s": 1.5}


def confirm(result: Any, threads: int, runtime: str, batch: int, say: Callable[[str], None], *,
            force: bool = False) -> tuple[Any, dict[str, Any]]:
    """A fit searched on predictions, its pick (and the step above it) measured whole
    (interleaved, so that both see the same machine): the result with those measurements beside
    the predictions (``latency.kind`` ``both``), and what the measurement says of the pick."""
    from .networks import measure_records_plans

    best, above = result.best, result.above
    say(f"scalekit: confirming the fit by measurement: {best.spec.name}, {above.spec.name}")
    lats = measure_records_plans([(best.plan, best.counts), (above.plan, above.counts)],
                                 batch=batch, threads=threads, runtime=runtime, force=force,
                                 **CONFIRM_HARNESS)
    cands = []
    for c, lat in zip((best, above), lats):
        pred = c.latency or {}
        both = {**lat, "kind": "both", "predicted_ms": pred.get("predicted_ms"),
                "prediction_error": pred["predicted_ms"] / lat["median_ms"] - 1,
                "prediction_trusted": pred.get("trusted"), "prediction_reason": pred.get("reason")}
        cands.append(replace(c, latency=both))
    measured = cands[0].latency
    confirmed = {"measured_ms": measured["median_ms"], "iqr_ms": measured["iqr_ms"],
                 "within_target": measured["median_ms"] <= result.target,
                 "next_measured_ms": cands[1].latency["median_ms"],
                 "next_over_target": cands[1].latency["median_ms"] > result.target,
                 "trusted": measured["trusted"], "reason": measured["reason"]}
    return replace(result, best=cands[0], above=cands[1]), confirmed

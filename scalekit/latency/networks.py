"""Latency of a network on this CPU, the one code path every command that times a network uses
(``info``, ``scale``, ``compare``, ``sweep``, ``bench``, ``fit --target-latency``).

A latency is *measured* (the network built and timed whole), *predicted* (the calibrated sum of
its blocks' timings from the per-machine table, scalekit/latency/table.py: no torch when the
table already holds them) or *both*, side by side; on a *runtime*: torch eager, the optimised
copy, or onnxruntime (scalekit/latency/runtimes.py). :func:`time_records` does whichever a
report asks for.

Measuring: :func:`measure_records` refuses a network that will not fit in memory
(:func:`memory.check_memory`), builds it with initialised weights, puts it on the runtime
(checked first to give the eager outputs within fp32 tolerance) and times it with
:func:`harness.measure_interleaved`; with ``optimize`` an inference-optimised copy is timed
too, interleaved with the eager model (eager, optimised, eager, ...), and its speedup comes
with a 95% interval; with ``interleave`` (``compare --table 4``) all the report's networks are
timed so, and each one's speedup over the first comes with one. Every measurement says whether
it can be trusted (the process's CPU share and the spread, :attr:`harness.Latency.distrust`).
It reads the achieved GFLOP/s (2 x MACs / median latency) against the machine's fp32 matmul
peak at the same thread count (:func:`machine.peak_gflops`, the best of several GEMM sizes):
near the peak a network is compute-bound (ResNet's dense 3x3 convs), far below it memory-bound
(depthwise convs, squeeze-excitation). A network that beats the measured peak makes it measure
again, longer; if it still wins, its share of the peak is left out (``peak_fraction`` null) and
``peak_note`` says why: no report shows more than 100% of the peak.

No torch at import: count-only commands import this module for nothing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

from ..counting import NetworkCount, count_plan
from ..errors import ScalekitError
from ..memory import check_memory
from ..plan import NetworkPlan, expand
from ..records import ModelRecord
from ..spec import Spec
from .harness import Latency, measure_interleaved, ratio_interval
from .machine import PEAK_SIZES, machine_info, peak_gflops, theoretical_peak
from .runtimes import LABELS, RUNTIMES, require_runtime

METHOD = ("eval mode, torch.inference_mode, fixed-seed standard-normal input, kaiming-initialised "
          "weights, subnormal floats flushed to zero while timing")
PREDICTION_METHOD = ("predicted: calibration factor x the sum of the network's blocks' median "
                     "times, each block timed alone on this machine (interleaved with the "
                     "other blocks of its network) and kept in the per-machine latency table")
KINDS = ("predicted", "measured", "both")

PhaseProgress = Callable[[str, int, int], None]
"""``progress(phase, done_runs, est_total_runs)``: phase ``eager`` (the runtime's model) or
``interleaved`` (several timed in turn); called with 0 done when a phase starts, then after
every timed round."""
RecordProgress = Callable[[int, ModelRecord, str, int, int], None]
"""``progress(index, record, phase, done_runs, est_total_runs)`` for :func:`measure_records`."""

_OPTIMIZED_SEED = 1  # inputs of the optimised copy's trace and output check
_PEAK_RETRY = {"sizes": PEAK_SIZES + (1536,), "budget_s": 2.0}


@dataclass(frozen=True)
class TimingOptions:
    """How the command line times networks: ``--latency`` (``kind``), ``--runtime``,
    ``--batch``, ``--threads``, ``--optimize``, ``--force`` (past the memory guard), the
    harness's stopping rule, and ``interleave`` (time all the records together, A, B, A, B)."""

    batch: int = 1
    threads: int = 1
    optimize: bool = False
    force: bool = False
    warmup: int = 3
    min_runs: int = 10
    max_runs: int = 200
    budget_s: float = 5.0
    kind: str = "measured"
    runtime: str = "eager"
    interleave: bool = False

    def harness(self) -> dict[str, Any]:
        return {"warmup": self.warmup, "min_runs": self.min_runs, "max_runs": self.max_runs,
                "budget_s": self.budget_s}

    def measure_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :func:`measure_spec` beyond the spec and progress."""
        return {"batch": self.batch, "threads": self.threads, "optimize": self.optimize,
                "force": self.force, "runtime": self.runtime, **self.harness()}


class MeasurementInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`measure_records`: ``measured`` holds the records timed before it,
    ``current`` the one being timed, ``partial`` its runs so far (None if none finished)."""

    def __init__(self, measured: list[ModelRecord], current: ModelRecord,
                 partial: Latency | None):
        super().__init__(f"interrupted while timing {current.name}")
        self.measured, self.current, self.partial = measured, current, partial


def _stats(lat: Latency, macs: int, peak: float) -> dict[str, Any]:
    gflops = lat.gflops_per_s(macs)
    return {**lat.to_dict(), "gflops_per_s": gflops, "peak_gflops": peak,
            "peak_fraction": gflops / peak, "peak_note": None}


def _cap_to_peak(stats: dict[str, Any], threads: int) -> None:
    """No share of the peak above 1: measure the peak again, longer, and if the network still
    beats it, say so instead of printing a share."""
    if stats["peak_fraction"] <= 1.0:
        return
    peak = max(stats["peak_gflops"], peak_gflops(threads, **_PEAK_RETRY))
    stats["peak_gflops"] = peak
    stats["peak_fraction"] = stats["gflops_per_s"] / peak
    if stats["peak_fraction"] > 1.0:
        stats["peak_fraction"] = None
        stats["peak_note"] = ("faster than the measured matmul peak, measured twice: the peak "
                              "estimate is too low for this network")


def measure_spec(spec: Spec, *, batch: int = 1, threads: int = 1, optimize: bool = False,
                 force: bool = False, progress: PhaseProgress | None = None,
                 runtime: str = "eager", **harness: Any) -> dict[str, Any]:
    """Build ``spec`` and time it; the statistics as stored in ``ModelRecord.latency``.

    Keys: those of :meth:`Latency.to_dict` (``median_ms``, ``mean_ms``, ``min_ms``, ``max_ms``,
    ``p25_ms``, ``p75_ms``, ``iqr_ms``, ``runs``, ``warmup``, ``threads``, ``batch``,
    ``cpu_share``, ``trusted``, ``reason``, ``throughput``), ``kind`` (``measured``),
    ``runtime``, ``gflops_per_s`` (2 x MACs x batch / median), ``peak_gflops`` (the fp32 matmul
    peak at ``threads``), ``peak_fraction`` (their ratio, at most 1; None with ``peak_note``
    saying why) and ``optimized``: None, or with ``optimize`` the same statistics of the
    optimised copy (timed interleaved with the eager model) plus ``speedup`` (eager median /
    optimised median), ``speedup_interval`` (95%, paired bootstrap), ``method`` and
    ``max_abs_diff`` (its largest output difference from eager on an input it was not traced
    on).

    ``harness`` (``warmup``, ``min_runs``, ``max_runs``, ``budget_s``, ``target_rel_spread``) goes
    to :func:`measure_interleaved`, which documents the method. Raises :class:`ScalekitError`
    when the network will not fit in memory (unless ``force``) or the runtime's copy's outputs
    differ.
    """
    plan = expand(spec)
    return measure_plan(plan, count_plan(plan), batch=batch, threads=threads, optimize=optimize,
                        force=force, progress=progress, runtime=runtime, **harness)


def measure_plan(plan: NetworkPlan, counts: NetworkCount, *, batch: int = 1, threads: int = 1,
                 optimize: bool = False, force: bool = False,
                 progress: PhaseProgress | None = None, runtime: str = "eager",
                 **harness: Any) -> dict[str, Any]:
    """:func:`measure_spec` for a network already expanded (``plan``) and counted (``counts``)."""
    check_memory(plan, batch=batch, force=force, counts=counts)
    return _measure_group([(plan, counts)], batch=batch, threads=threads, optimize=optimize,
                          runtime=runtime, progress=progress, **harness)[0]


def _prepare(plan: NetworkPlan, model: Any, runtime: str, batch: int, threads: int) -> Any:
    """``model`` on ``runtime``, checked against eager on an input it was not made from."""
    import torch

    from .runtimes import prepare

    h, w = plan.resolution
    g = torch.Generator().manual_seed(_OPTIMIZED_SEED)
    example = torch.randn(batch, plan.in_channels, h, w, generator=g)  # traced on
    fresh = torch.randn(batch, plan.in_channels, h, w, generator=g)  # checked on
    try:
        return prepare(model, runtime, example, fresh, threads)
    except ValueError as e:
        what = "optimised" if runtime == "optimized" else runtime
        raise ScalekitError(f"{plan.name}: the {what} model does not compute what the eager one "
                            f"does ({e})") from None


def _measure_group(items: Sequence[tuple[NetworkPlan, NetworkCount]], *, batch: int,
                   threads: int, optimize: bool, runtime: str,
                   progress: PhaseProgress | None = None, **harness: Any) -> list[dict[str, Any]]:
    """Time ``items`` (and with ``optimize`` each one's optimised copy) interleaved."""
    from ..build import build_model

    require_runtime(runtime)
    if optimize and runtime != "eager":
        raise ScalekitError("--optimize times an optimised copy beside eager: it needs the eager "
                            "runtime")
    peak = peak_gflops(threads)
    models, sizes, channels, slots = [], [], [], []
    for plan, _ in items:
        model = build_model(plan).eval()
        main = _prepare(plan, model, runtime, batch, threads)
        entry = [len(models), None, main]
        models.append(main.forward)
        sizes.append(plan.resolution)
        channels.append(plan.in_channels)
        if optimize:
            opt = _prepare(plan, model, "optimized", batch, threads)
            entry[1] = len(models)
            models.append(opt.forward)
            sizes.append(plan.resolution)
            channels.append(plan.in_channels)
            entry.append(opt)
        slots.append(entry)
    phase = "interleaved" if len(models) > 1 else "eager"
    if progress is not None:
        progress(phase, 0, harness.get("min_runs", 10))
    lats = measure_interleaved(models, sizes, in_channels=channels, batch=batch, threads=threads,
                               progress=None if progress is None
                               else functools.partial(progress, phase), **harness)
    out = []
    for (plan, counts), slot in zip(items, slots):
        macs = counts.total.macs
        main = lats[slot[0]]
        stats = {**_stats(main, macs, peak), "kind": "measured", "runtime": runtime,
                 "method": slot[2].method, "optimized": None}
        if runtime != "eager":
            stats["max_abs_diff"] = slot[2].max_abs_diff
        _cap_to_peak(stats, threads)
        if slot[1] is not None:
            opt_lat, opt = lats[slot[1]], slot[3]
            speedup, lo, hi = ratio_interval(main, opt_lat)
            opt_stats = {**_stats(opt_lat, macs, stats["peak_gflops"]), "speedup": speedup,
                         "speedup_interval": [lo, hi], "method": opt.method,
                         "max_abs_diff": opt.max_abs_diff}
            _cap_to_peak(opt_stats, threads)
            stats["optimized"] = opt_stats
        out.append(stats)
    if len(items) > 1:  # interleaved networks: each one's speedup over the first, with interval
        first = lats[slots[0][0]]
        for (plan, _), slot, stats in zip(items, slots, out):
            s, lo, hi = ratio_interval(first, lats[slot[0]])
            stats["speedup_over_first"] = {"to": items[0][0].name, "speedup": s,
                                           "interval": [lo, hi]}
    return out


def measure_records(records: Sequence[ModelRecord], options: TimingOptions, *,
                    progress: RecordProgress | None = None) -> list[ModelRecord]:
    """``records`` with their ``latency`` measured (each record's network, built and timed as
    :func:`measure_spec` does), in order; with ``options.interleave``, all together. Every
    network passes the memory guard before the first is timed. Ctrl-C raises
    :class:`MeasurementInterrupted` with the records timed so far."""
    missing = [r.name for r in records if r.plan is None or r.analytic is None]
    if missing:
        raise ScalekitError(f"no network to time for {', '.join(missing)}")
    require_runtime(options.runtime)
    for r in records:
        check_memory(r.plan, batch=options.batch, force=options.force, counts=r.analytic)
    groups = [list(records)] if options.interleave and records else [[r] for r in records]
    done: list[ModelRecord] = []
    kwargs = {"batch": options.batch, "threads": options.threads, "optimize": options.optimize,
              "runtime": options.runtime, **options.harness()}
    for group in groups:
        i = len(done)
        hook = None if progress is None else functools.partial(progress, i, group[0])
        try:
            lats = _measure_group([(r.plan, r.analytic) for r in group], progress=hook, **kwargs)
        except KeyboardInterrupt as e:
            raise MeasurementInterrupted(done, group[0], getattr(e, "partial", None)) from None
        done += [replace(r, latency=lat) for r, lat in zip(group, lats)]
    return done


def timing_facts(options: TimingOptions, records: Sequence[ModelRecord] = ()) -> dict[str, Any]:
    """What the latencies of a report depend on, for its JSON document (``timing``): the
    machine (:func:`machine_info`), threads, batch, kind and runtime of latency, the fp32 matmul
    peak (measured: the highest any record was read against) and the theoretical one, the
    method and the harness."""
    peak = max([peak_gflops(options.threads)]
               + [r.latency["peak_gflops"] for r in records
                  if r.latency and isinstance(r.latency.get("peak_gflops"), (int, float))])
    theory = theoretical_peak(options.threads, peak)
    return {**machine_info(), "kind": options.kind, "runtime": options.runtime,
            "runtime_label": LABELS[options.runtime], "threads": options.threads,
            "batch": options.batch, "peak_gflops": peak,
            "theoretical_peak_gflops": theory.gflops, "theoretical_peak_basis": theory.basis,
            "method": METHOD, "harness": options.harness()}


def time_records(records: Sequence[ModelRecord], options: TimingOptions, *,
                 say: Callable[[str], None], progress: RecordProgress | None = None
                 ) -> tuple[list[ModelRecord], dict[str, Any]]:
    """``records`` with the latency ``options.kind`` asks for, and the report's ``timing``
    facts: predicted (:func:`prediction.predict_records`), measured (:func:`measure_records`)
    or both (each record's measured statistics with ``predicted_ms`` and ``prediction_error``
    = predicted / measured - 1 beside them)."""
    if options.kind not in KINDS:
        raise ScalekitError(f"unknown kind of latency {options.kind!r} (valid: {', '.join(KINDS)})")
    if options.runtime not in RUNTIMES:
        raise ScalekitError(f"unknown runtime {options.runtime!r}")
    require_runtime(options.runtime)
    if options.kind == "measured":
        timed = measure_records(records, options, progress=progress)
        return timed, {"timing": timing_facts(options, timed)}
    from .prediction import predict_records

    predicted, facts = predict_records(records, options, say=say)
    if options.kind == "predicted":
        return predicted, {"timing": facts}
    timed = measure_records(records, options, progress=progress)
    both = []
    for p, m in zip(predicted, timed):
        lat = dict(m.latency)
        pred = p.latency
        lat.update(kind="both", predicted_ms=pred["predicted_ms"],
                   prediction_error=pred["predicted_ms"] / lat["median_ms"] - 1,
                   prediction_trusted=pred["trusted"], prediction_reason=pred["reason"])
        both.append(replace(m, latency=lat))
    measured = timing_facts(options, timed)
    return both, {"timing": {**measured, "kind": "both", "prediction": facts}}


def latency_cost(threads: int = 1, budget_s: float = 0.5,
                 progress: Callable[[str], None] | None = None, runtime: str = "eager"):
    """A cost for :func:`scalekit.studies.budget.fit`: the median latency in ms of a realised
    network, measured (batch 1, ``threads`` threads; a short harness: 2 warm-up runs, at least 5
    timed, ``budget_s`` seconds). ``progress(message)`` hears of each network measured."""
    def cost(spec: Spec, plan: NetworkPlan, counts: NetworkCount) -> tuple[float, dict[str, Any]]:
        if progress is not None:
            progress(f"measuring {spec.name}")
        lat = measure_plan(plan, counts, threads=threads, warmup=2, min_runs=5, budget_s=budget_s,
                           runtime=runtime)
        return lat["median_ms"], lat
    return cost


def measure_records_plans(items: Sequence[tuple[NetworkPlan, NetworkCount]], *, batch: int = 1,
                          threads: int = 1, runtime: str = "eager", force: bool = False,
                          **harness: Any) -> list[dict[str, Any]]:
    """Several expanded, counted networks measured together, interleaved (each guarded first)."""
    for plan, counts in items:
        check_memory(plan, batch=batch, force=force, counts=counts)
    return _measure_group(list(items), batch=batch, threads=threads, optimize=False,
                          runtime=runtime, **harness)

"""Latency of a network on this CPU, the one code path every command that times a network uses
(``info``, ``scale``, ``compare``, ``sweep``, ``bench``, ``fit --target-latency``).

:func:`measure_plan` refuses a network that will not fit in memory (:func:`memory.check_memory`),
builds it with initialised weights, times it with :func:`harness.measure_latency` and, with
``optimize``, times an inference-optimised copy too (:mod:`scalekit.latency.optimize`), checked
first to give the eager outputs within fp32 tolerance. It reads the achieved GFLOP/s
(2 x MACs / median latency) against the machine's fp32 matmul peak at the same thread count
(:func:`machine.peak_gflops`, measured once per process): near the peak a network is
compute-bound (ResNet's dense 3x3 convs), far below it memory-bound (depthwise convs,
squeeze-excitation). :func:`measure_records` does it for every record of a report, with a
progress hook, from the plans and counts the records carry (nothing is expanded or counted
again), and on Ctrl-C raises :class:`MeasurementInterrupted` carrying what was measured.

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
from .harness import Latency, measure_latency
from .machine import machine_info, peak_gflops

METHOD = ("eval mode, torch.inference_mode, fixed-seed standard-normal input, kaiming-initialised "
          "weights, subnormal floats flushed to zero while timing")

PhaseProgress = Callable[[str, int, int], None]
"""``progress(phase, done_runs, est_total_runs)``: phase ``eager`` or ``optimized``; called with
0 done when a phase starts, then after every timed run."""
RecordProgress = Callable[[int, ModelRecord, str, int, int], None]
"""``progress(index, record, phase, done_runs, est_total_runs)`` for :func:`measure_records`."""

_OPTIMIZED_SEED = 1  # inputs of the optimised copy's trace and output check


@dataclass(frozen=True)
class TimingOptions:
    """How the command line times networks: ``--batch``, ``--threads``, ``--optimize``,
    ``--force`` (past the memory guard) and the harness's stopping rule."""

    batch: int = 1
    threads: int = 1
    optimize: bool = False
    force: bool = False
    warmup: int = 3
    min_runs: int = 10
    max_runs: int = 200
    budget_s: float = 5.0

    def measure_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :func:`measure_spec` beyond the spec and progress."""
        return {"batch": self.batch, "threads": self.threads, "optimize": self.optimize,
                "force": self.force, "warmup": self.warmup, "min_runs": self.min_runs,
                "max_runs": self.max_runs, "budget_s": self.budget_s}


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
            "peak_fraction": gflops / peak}


def measure_spec(spec: Spec, *, batch: int = 1, threads: int = 1, optimize: bool = False,
                 force: bool = False, progress: PhaseProgress | None = None,
                 **harness: Any) -> dict[str, Any]:
    """Build ``spec`` and time it; the statistics as stored in ``ModelRecord.latency``.

    Keys: those of :meth:`Latency.to_dict` (``median_ms``, ``mean_ms``, ``min_ms``, ``max_ms``,
    ``p25_ms``, ``p75_ms``, ``iqr_ms``, ``runs``, ``warmup``, ``threads``, ``batch``,
    ``throughput``), ``gflops_per_s`` (2 x MACs x batch / median), ``peak_gflops`` (the fp32
    matmul peak at ``threads``), ``peak_fraction`` (their ratio) and ``optimized``: None, or with
    ``optimize`` the same statistics of the optimised copy plus ``speedup`` (eager median /
    optimised median), ``method`` and ``max_abs_diff`` (its largest output difference from eager
    on an input it was not traced on).

    ``harness`` (``warmup``, ``min_runs``, ``max_runs``, ``budget_s``, ``target_rel_spread``) goes
    to :func:`measure_latency`, which documents the method. Raises :class:`ScalekitError` when the
    network will not fit in memory (unless ``force``) or the optimised copy's outputs differ.
    """
    plan = expand(spec)
    return measure_plan(plan, count_plan(plan), batch=batch, threads=threads, optimize=optimize,
                        force=force, progress=progress, **harness)


def measure_plan(plan: NetworkPlan, counts: NetworkCount, *, batch: int = 1, threads: int = 1,
                 optimize: bool = False, force: bool = False,
                 progress: PhaseProgress | None = None, **harness: Any) -> dict[str, Any]:
    """:func:`measure_spec` for a network already expanded (``plan``) and counted (``counts``)."""
    check_memory(plan, batch=batch, force=force, counts=counts)
    import torch

    from ..build import build_model
    from ..equivalence import check_outputs
    from .optimize import optimize_for_inference

    macs = counts.total.macs
    peak = peak_gflops(threads)
    model = build_model(plan).eval()
    options = {"in_channels": plan.in_channels, "batch": batch, "threads": threads, **harness}

    def timed(module: Callable, phase: str) -> Latency:
        if progress is not None:
            progress(phase, 0, options.get("min_runs", 10))
        return measure_latency(module, plan.resolution, **options,
                               progress=None if progress is None
                               else functools.partial(progress, phase))

    eager = timed(model, "eager")
    out = {**_stats(eager, macs, peak), "optimized": None}
    if optimize:
        h, w = plan.resolution
        g = torch.Generator().manual_seed(_OPTIMIZED_SEED)
        example = torch.randn(batch, plan.in_channels, h, w, generator=g)  # traced on
        fresh = torch.randn(batch, plan.in_channels, h, w, generator=g)  # checked on
        try:
            fast, method = optimize_for_inference(model, example)
            diff = check_outputs(model, fast, fresh)
        except ValueError as e:
            raise ScalekitError(f"{plan.name}: the optimised model does not compute what the "
                                f"eager one does ({e})") from None
        opt = timed(fast, "optimized")
        out["optimized"] = {**_stats(opt, macs, peak), "speedup": eager.median_ms / opt.median_ms,
                            "method": method, "max_abs_diff": diff}
    return out


def measure_records(records: Sequence[ModelRecord], options: TimingOptions, *,
                    progress: RecordProgress | None = None) -> list[ModelRecord]:
    """``records`` with their ``latency`` measured (each record's ``network``, built and timed by
    :func:`measure_spec`), in order. Every network passes the memory guard before the first is
    timed. Ctrl-C raises :class:`MeasurementInterrupted` with the records timed so far."""
    missing = [r.name for r in records if r.plan is None or r.analytic is None]
    if missing:
        raise ScalekitError(f"no network to time for {', '.join(missing)}")
    for r in records:
        check_memory(r.plan, batch=options.batch, force=options.force, counts=r.analytic)
    done: list[ModelRecord] = []
    for i, r in enumerate(records):
        hook = None if progress is None else functools.partial(progress, i, r)
        try:
            lat = measure_plan(r.plan, r.analytic, progress=hook, **options.measure_kwargs())
        except KeyboardInterrupt as e:
            raise MeasurementInterrupted(done, r, getattr(e, "partial", None)) from None
        done.append(replace(r, latency=lat))
    return done


def timing_facts(options: TimingOptions) -> dict[str, Any]:
    """What the latencies of a report depend on, for its JSON document (``timing``): the
    machine (:func:`machine_info`), threads, batch, the fp32 matmul peak and the method."""
    return {**machine_info(), "threads": options.threads, "batch": options.batch,
            "peak_gflops": peak_gflops(options.threads), "method": METHOD,
            "harness": {"warmup": options.warmup, "min_runs": options.min_runs,
                        "max_runs": options.max_runs, "budget_s": options.budget_s}}


def latency_cost(threads: int = 1, budget_s: float = 0.5,
                 progress: Callable[[str], None] | None = None):
    """A cost for :func:`scalekit.studies.budget.fit`: the median latency in ms of a realised
    network, measured (batch 1, ``threads`` threads; a short harness: 2 warm-up runs, at least 5
    timed, ``budget_s`` seconds). ``progress(message)`` hears of each network measured."""
    def cost(spec: Spec, plan: NetworkPlan, counts: NetworkCount) -> tuple[float, dict[str, Any]]:
        if progress is not None:
            progress(f"measuring {spec.name}")
        lat = measure_plan(plan, counts, threads=threads, warmup=2, min_runs=5, budget_s=budget_s)
        return lat["median_ms"], lat
    return cost

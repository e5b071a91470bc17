"""Cross-check scalekit's latency harness against a plain timing loop, twice, and time the
inference-optimised variant (scalekit.latency.optimize) against eager.

For each model at 224 px, batch 1, one thread: the harness (``measure_latency`` with its defaults)
and an independent loop (own warm-up, a fixed number of ``time.perf_counter`` runs under
``torch.no_grad``, median) run side by side; the whole round is repeated, with the two methods in
the opposite order, to show how repeatable a median is on this machine. Writes
``benchmarks/latency_report.md``. Not part of the test suite; takes about two minutes.

    python benchmarks/latency_harness.py
"""

from __future__ import annotations

import datetime
import functools
import inspect
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TypeVar

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere, without installing scalekit

from scalekit.build import build_model  # noqa: E402
from scalekit.counting import count_plan  # noqa: E402
from scalekit.latency.harness import Latency, measure_latency  # noqa: E402
from scalekit.latency.machine import machine_info, peak_gflops  # noqa: E402
from scalekit.latency.optimize import optimize_for_inference  # noqa: E402
from scalekit.plan import expand  # noqa: E402
from scalekit.spec import load_spec  # noqa: E402

MODELS = ("efficientnet_b0", "mobilenet_v2", "resnet50")
RESOLUTION = 224
THREADS = 1
PLAIN_WARMUP = 5
PLAIN_RUNS = 30
REPORT = ROOT / "benchmarks" / "latency_report.md"


def plain_median_ms(model: nn.Module, resolution: int) -> float:
    """The simplest honest measurement: warm up, time a fixed number of forwards, take the median."""
    x = torch.randn(1, 3, resolution, resolution)
    model.eval()
    times = []
    with torch.no_grad():
        for _ in range(PLAIN_WARMUP):
            model(x)
        for _ in range(PLAIN_RUNS):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000.0


T = TypeVar("T")


@dataclass(frozen=True)
class Load:
    """What else the machine did while one measurement ran."""

    share: float  # CPU time of this process / wall time: below ~0.95, it lost its core for a while
    others: float | None  # cores kept busy by everything else (from /proc/stat; None off Linux)

    def __str__(self) -> str:
        return f"{self.share:.2f} / {'?' if self.others is None else f'{self.others:.2f}'}"


def _busy_seconds() -> float | None:
    """CPU-seconds all cores spent busy since boot (user, nice, system, irq, softirq, steal)."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            ticks = [int(v) for v in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def observed(fn: Callable[[], T]) -> tuple[T, Load]:
    """``fn()`` and the load on the machine meanwhile. Both matter on a shared machine: another
    process on the other core does not take ours, but competes for cache and memory bandwidth."""
    wall, cpu, busy = time.perf_counter(), time.process_time(), _busy_seconds()
    result = fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    after = _busy_seconds()
    others = None if busy is None or after is None else max(0.0, (after - busy - cpu) / wall)
    return result, Load(cpu / wall, others)


@dataclass
class Repetition:
    harness: Latency  # eager model
    plain_ms: float  # eager model, plain loop median
    optimised: Latency
    loads: tuple[Load, Load, Load]  # during harness, plain, optimised


@dataclass
class ModelResult:
    name: str
    macs: int
    optimisation: str
    reps: list[Repetition] = field(default_factory=list)


def run() -> tuple[list[ModelResult], float]:
    torch.set_num_threads(THREADS)  # the plain loop relies on it; the harness sets its own
    peak = peak_gflops(THREADS)
    models: dict[str, tuple[nn.Module, nn.Module]] = {}
    results: list[ModelResult] = []
    for name in MODELS:
        spec = load_spec(ROOT / "specs" / f"{name}.yaml")
        plan = expand(spec, resolution=RESOLUTION)
        eager = build_model(plan).eval()
        example = torch.randn(1, 3, RESOLUTION, RESOLUTION)
        optimised, description = optimize_for_inference(eager, example)
        models[name] = (eager, optimised)
        results.append(ModelResult(name, count_plan(plan).total.macs, description))
    for rep in (1, 2):
        for res in results:
            eager, optimised = models[res.name]
            print(f"repetition {rep}: {res.name}", file=sys.stderr, flush=True)

            harness = functools.partial(measure_latency, eager, RESOLUTION, threads=THREADS)
            plain = functools.partial(plain_median_ms, eager, RESOLUTION)
            if rep == 1:  # alternate the order, so a slow drift of the machine shows as disagreement
                (h, h_load), (p, p_load) = observed(harness), observed(plain)
            else:
                (p, p_load), (h, h_load) = observed(plain), observed(harness)
            o, o_load = observed(
                functools.partial(measure_latency, optimised, RESOLUTION, threads=THREADS))
            res.reps.append(Repetition(h, p, o, (h_load, p_load, o_load)))
    return results, peak


def report(results: list[ModelResult], peak: float, info: dict, load: tuple[float, float, float],
           wall_s: float) -> str:
    """The markdown report."""
    d = {k: p.default for k, p in inspect.signature(measure_latency).parameters.items()}
    lines = [
        "# CPU latency: scalekit harness vs a plain loop, eager vs optimised",
        "",
        f"Written by `python benchmarks/latency_harness.py` on "
        f"{datetime.date.today().isoformat()} in {wall_s:.0f} s. Batch 1, {RESOLUTION}x{RESOLUTION}, "
        f"{THREADS} thread, fp32, randomly initialised weights (kaiming, as `build_model`).",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in info.items()),
        f"| fp32 matmul peak, {THREADS} thread (`peak_gflops`) | {peak:.1f} GFLOP/s |",
        f"| load average at start (1/5/15 min) | {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} |",
        "",
        "## Method",
        "",
        f"- **harness**: `scalekit.latency.harness.measure_latency` with its defaults ({d['warmup']} "
        f"warm-up runs, then timed runs until the relative IQR is <= {100 * d['target_rel_spread']:g} % "
        f"after at least {d['min_runs']} runs, or {d['budget_s']:g} s in all, or {d['max_runs']} "
        "runs); `torch.inference_mode`, `perf_counter_ns` per forward, garbage collector paused, "
        "subnormal floats flushed to zero (none occur in these three networks at 224 px).",
        f"- **plain**: an independent loop, {PLAIN_WARMUP} warm-up runs then {PLAIN_RUNS} forwards "
        "timed with `time.perf_counter` under `torch.no_grad`, median.",
        "- Repetition 1 runs harness then plain for each model; repetition 2 runs plain then "
        "harness. The optimised model (`scalekit.latency.optimize.optimize_for_inference`) is timed with "
        "the harness right after, in both repetitions.",
        "- Load during each measurement: *CPU share* = this process's CPU time / wall time "
        "(below ~0.95 it lost its core for a while); *other busy cores* = CPU time everything "
        "else used meanwhile (from /proc/stat) / wall time. Work on the other core does not take "
        "ours but competes for the shared L3 cache and memory bandwidth, and neighbours outside "
        "this VM are invisible, so a median can move by 10-20 % with a CPU share of 0.99.",
        "",
        "## Summary",
        "",
        "| model | GMACs | harness / plain (rep 1, rep 2) | rep 2 / rep 1 (harness, plain) "
        "| optimised speedup (rep 1, rep 2) | achieved GFLOP/s eager (% of peak) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ratio = [x.harness.median_ms / x.plain_ms for x in r.reps]
        speed = [x.harness.median_ms / x.optimised.median_ms for x in r.reps]
        gf = statistics.median(x.harness.gflops_per_s(r.macs) for x in r.reps)
        first, second = r.reps
        lines.append(
            f"| {r.name} | {r.macs / 1e9:.3f} | {ratio[0]:.3f}, {ratio[1]:.3f} | "
            f"{second.harness.median_ms / first.harness.median_ms:.3f}, "
            f"{second.plain_ms / first.plain_ms:.3f} | {speed[0]:.2f}x, {speed[1]:.2f}x "
            f"| {gf:.1f} ({100 * gf / peak:.0f} %) |")
    for r in results:
        lines += [
            "",
            f"## {r.name}",
            "",
            f"Optimised: {r.optimisation}.",
            "",
            "| repetition | harness median ms | harness IQR ms (rel.) | harness runs | min / max ms "
            "| plain median ms | harness / plain | optimised median ms (IQR) | speedup "
            "| CPU share / other busy cores (harness; plain; optimised) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for i, x in enumerate(r.reps, start=1):
            h, o = x.harness, x.optimised
            lines.append(
                f"| {i} | {h.median_ms:.2f} | {h.iqr_ms:.2f} ({100 * h.rel_iqr:.1f} %) | {h.runs} "
                f"| {h.min_ms:.2f} / {h.max_ms:.2f} | {x.plain_ms:.2f} "
                f"| {h.median_ms / x.plain_ms:.3f} "
                f"| {o.median_ms:.2f} ({o.iqr_ms:.2f}) | {h.median_ms / o.median_ms:.2f}x "
                f"| {'; '.join(map(str, x.loads))} |")
        first, second = r.reps
        lines.append(
            f"| rep 2 / rep 1 | {second.harness.median_ms / first.harness.median_ms:.3f} | | | | "
            f"{second.plain_ms / first.plain_ms:.3f} | | "
            f"{second.optimised.median_ms / first.optimised.median_ms:.3f} | | |")
    return "\n".join(lines) + "\n"


def main() -> None:
    load = os.getloadavg()
    t0 = time.perf_counter()
    results, peak = run()
    text = report(results, peak, machine_info(), load, time.perf_counter() - t0)
    REPORT.write_text(text, encoding="utf-8")
    print(text)
    print(f"wrote {REPORT}", file=sys.stderr)


if __name__ == "__main__":
    main()

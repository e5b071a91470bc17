"""The timing harness: CPU inference latency of one module.

``measure_latency`` times single forward passes of a model on random input and reports robust
statistics of the per-run samples (median, interquartile range), stopping once the spread is small
enough or the time budget is spent. (What the machine can do, its fp32 matmul peak, is in
machine.py; timing a spec or a report's records is networks.py.)

torch is imported inside the functions that need it, never at module import, so the CLI can import
this module for free.
"""

from __future__ import annotations

import gc
import math
import random
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:
    from torch import nn

RunProgress = Callable[[int, int], None]
"""``progress(done_runs, est_total_runs)``, called after each timed run and once at the end."""

INPUT_SEED = 0


MIN_CPU_SHARE = 0.9
"""Below this share of its cores (process CPU time / (wall time x threads)) while timing, the
process was waiting for a CPU some of the time: the machine was contended."""
MAX_REL_SPREAD = 0.10
"""Above this IQR / median, the runs disagree too much for the median to mean much."""


@dataclass(frozen=True)
class Latency:
    """Statistics of per-forward wall-clock times (milliseconds) for one batch, and how much of
    its cores the process had while they were taken."""

    median_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    p25_ms: float
    p75_ms: float
    runs: int  # timed runs the statistics come from
    warmup: int  # untimed runs before them
    threads: int
    batch: int
    # process CPU time / (wall time x threads) over the timed runs: ~1 on a quiet machine, lower
    # when other processes took the cores (None: not measured, e.g. statistics made by hand)
    cpu_share: float | None = None
    samples_ms: tuple[float, ...] = field(default=(), repr=False, compare=False)  # in run order
    # the calling thread's CPU time per run (one thread: all of the work), in run order: what
    # a run cost while the process had its core, whatever else the machine was doing
    cpu_samples_ms: tuple[float, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float], *, warmup: int, threads: int,
                     batch: int, cpu_share: float | None = None,
                     cpu_samples_ms: Sequence[float] = ()) -> Latency:
        """Summarise per-run times (at least one sample), given in the order they were taken."""
        if not samples_ms:
            raise ValueError("no samples to summarise")
        xs = sorted(samples_ms)
        return cls(median_ms=_percentile(xs, 0.5), mean_ms=math.fsum(xs) / len(xs), min_ms=xs[0],
                   max_ms=xs[-1], p25_ms=_percentile(xs, 0.25), p75_ms=_percentile(xs, 0.75),
                   runs=len(xs), warmup=warmup, threads=threads, batch=batch,
                   cpu_share=cpu_share, samples_ms=tuple(samples_ms),
                   cpu_samples_ms=tuple(cpu_samples_ms))

    @property
    def cpu_median_ms(self) -> float | None:
        """The median of the runs' CPU time on the calling thread; at one thread the work's own
        cost, which contention inflates far less than wall time. None at more threads (the
        work is on other threads too) or when not recorded."""
        if self.threads != 1 or not self.cpu_samples_ms:
            return None
        return _percentile(sorted(self.cpu_samples_ms), 0.5)

    @property
    def iqr_ms(self) -> float:
        """Interquartile range p75 - p25: the spread of the middle half of the runs."""
        return self.p75_ms - self.p25_ms

    @property
    def rel_iqr(self) -> float:
        """IQR / median, the spread the harness stops on."""
        return self.iqr_ms / self.median_ms if self.median_ms > 0 else math.inf

    @property
    def throughput(self) -> float:
        """Images per second at the median latency."""
        return self.batch * 1000.0 / self.median_ms

    @property
    def distrust(self) -> str | None:
        """Why the median should not be trusted (None when it can be): the machine was contended
        while timing (CPU share below :data:`MIN_CPU_SHARE`), or the runs spread widely (IQR
        above :data:`MAX_REL_SPREAD` of the median)."""
        return distrust(self.cpu_share, self.rel_iqr, self.threads)

    @property
    def trusted(self) -> bool:
        return self.distrust is None

    def gflops_per_s(self, macs: int) -> float:
        """Achieved GFLOP/s, given the network's multiply-accumulates per image (1 MAC = 2 FLOPs)."""
        return 2.0 * macs * self.batch / (self.median_ms / 1000.0) / 1e9

    def to_dict(self) -> dict[str, Any]:
        """The fields (not the samples) plus ``iqr_ms``, ``throughput``, ``trusted`` and
        ``reason`` (why not, when not), as plain JSON-ready data."""
        d = {k: v for k, v in asdict(self).items() if k not in ("samples_ms", "cpu_samples_ms")}
        why = self.distrust
        return {**d, "iqr_ms": self.iqr_ms, "throughput": self.throughput,
                "cpu_median_ms": self.cpu_median_ms, "trusted": why is None, "reason": why}


def distrust(cpu_share: float | None, rel_spread: float | None, threads: int = 1) -> str | None:
    """The reasons, joined, that a timing with this CPU share and relative spread (IQR / median)
    is not to be trusted; None when there are none."""
    reasons = []
    if cpu_share is not None and cpu_share < MIN_CPU_SHARE:
        cores = f"{threads} core{'s' if threads != 1 else ''}"
        reasons.append(f"contended: the process had {cpu_share:.0%} of its {cores} while timing")
    if rel_spread is not None and rel_spread > MAX_REL_SPREAD:
        reasons.append(f"wide spread: IQR {rel_spread:.0%} of the median")
    return "; ".join(reasons) or None


def ratio_interval(a: Latency, b: Latency, *, confidence: float = 0.95, resamples: int = 2000,
                   seed: int = 0) -> tuple[float, float, float]:
    """``a``'s median over ``b``'s (b's speedup over a, when both time the same work) and a
    ``confidence`` interval for it: a paired bootstrap over runs taken interleaved (run i of
    ``a`` beside run i of ``b``, so both saw the same machine), seeded, so the same samples give
    the same interval. Without paired samples the interval is the ratio itself."""
    ratio = a.median_ms / b.median_ms
    n = min(len(a.samples_ms), len(b.samples_ms))
    if n < 2:
        return ratio, ratio, ratio
    xa, xb = a.samples_ms[:n], b.samples_ms[:n]
    rng = random.Random(seed)
    ratios = []
    for _ in range(resamples):
        idx = [rng.randrange(n) for _ in range(n)]
        ratios.append(_percentile(sorted(xa[i] for i in idx), 0.5)
                      / _percentile(sorted(xb[i] for i in idx), 0.5))
    ratios.sort()
    tail = (1.0 - confidence) / 2
    return ratio, _percentile(ratios, tail), _percentile(ratios, 1.0 - tail)


class LatencyInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`measure_latency`; ``partial`` holds the runs timed so far (None if the
    interrupt came before the first timed run finished)."""

    def __init__(self, partial: Latency | None):
        done = f"{partial.runs} timed runs done" if partial else "no timed run done"
        super().__init__(f"latency measurement interrupted ({done})")
        self.partial = partial


def _percentile(xs: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile of sorted ``xs`` (numpy's default; q=0.5 is the median)."""
    pos = q * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _check_model(model: nn.Module) -> None:
    import torch

    for name, t in (*model.named_parameters(), *model.named_buffers()):
        if t.device.type != "cpu":
            raise ValueError(f"{name} is on {t.device.type!r}: latency is measured on the CPU")
        # min and max propagate NaN and are +-inf if any element is: one cheap pass, no big mask
        if t.is_floating_point() and t.numel() and not all(
                math.isfinite(float(v)) for v in torch.aminmax(t.detach())):
            raise ValueError(f"{name} holds non-finite values: initialise the weights before timing")


def _check_arguments(h: int, w: int, in_channels: int, batch: int, threads: int, warmup: int,
                     min_runs: int, max_runs: int, budget_s: float,
                     target_rel_spread: float) -> None:
    for label, v, lo in (("height", h, 1), ("width", w, 1), ("in_channels", in_channels, 1),
                         ("batch", batch, 1), ("threads", threads, 1), ("warmup", warmup, 0),
                         ("min_runs", min_runs, 1)):
        if v < lo:
            raise ValueError(f"{label} must be >= {lo}, got {v}")
    if max_runs < min_runs:
        raise ValueError(f"max_runs ({max_runs}) must be >= min_runs ({min_runs})")
    if not budget_s > 0 or not target_rel_spread >= 0:
        raise ValueError("budget_s must be > 0 and target_rel_spread >= 0")


def _size(resolution: int | tuple[int, int]) -> tuple[int, int]:
    return (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)


def measure_latency(model: nn.Module, resolution: int | tuple[int, int], *, in_channels: int = 3,
                    batch: int = 1, threads: int = 1, warmup: int = 3, min_runs: int = 10,
                    max_runs: int = 200, budget_s: float = 5.0, target_rel_spread: float = 0.05,
                    flush_denormal: bool = True, progress: RunProgress | None = None) -> Latency:
    """Time ``model``'s forward pass on the CPU and summarise the per-run times.

    The model must already hold initialised weights (``build_model`` does this): the time of float
    arithmetic depends on the values (NaN, subnormals), so uninitialised memory gives meaningless
    numbers. Parameters or buffers that are non-finite, or not on the CPU, raise ``ValueError``.

    Runs in eval mode under ``torch.inference_mode()`` with ``threads`` intra-op threads, on a
    ``batch x in_channels x H x W`` standard-normal input drawn from a fixed seed. After ``warmup``
    untimed runs, each forward is timed alone (``perf_counter_ns``, garbage collector paused) until
    at least ``min_runs`` are done and either the relative IQR is at most ``target_rel_spread``,
    ``budget_s`` seconds (warm-up included) have passed, or ``max_runs`` is reached. The process's
    CPU time over the timed runs, against wall time x ``threads``, is the result's ``cpu_share``:
    below :data:`MIN_CPU_SHARE` the machine was contended and the result says it is not to be
    trusted (so does an IQR above :data:`MAX_REL_SPREAD` of the median).

    ``flush_denormal`` (the default) flushes subnormal floats to zero while timing
    (``torch.set_flush_denormal``, on the calling thread: all of the work at one thread). Randomly
    initialised deep networks can shrink activations into the subnormal range (a MobileNetV1 at
    depth x4 does: 3 % of its activations at 128 px), and arithmetic on subnormals is many times
    slower on some CPUs (microcode assists), so latency would measure the random values instead
    of the network. (On the 2-core AMD EPYC this was written on, that MobileNetV1 timed the same
    either way.) Results change by less than the smallest normal float.

    The defaults time a ResNet-50 at 224 px (about 140 ms a forward on one EPYC core) in 2-5 s
    and an EfficientNet-B0 (about 35 ms) in 0.5-5 s: 10 runs when the machine is quiet, up to the
    budget when it is not. Three warm-up runs cover oneDNN's kernel setup and the TorchScript
    profiling runs of a frozen module.

    The thread count, the flush-denormal mode and the modules' train/eval flags are restored
    afterwards, also on errors.
    Ctrl-C raises :class:`LatencyInterrupted` carrying the statistics of the runs timed so far.
    """
    return measure_interleaved([model], [resolution], in_channels=[in_channels], batch=batch,
                               threads=threads, warmup=warmup, min_runs=min_runs,
                               max_runs=max_runs, budget_s=budget_s,
                               target_rel_spread=target_rel_spread,
                               flush_denormal=flush_denormal, progress=progress)[0]


def measure_interleaved(models: Sequence[Callable], resolutions: Sequence[int | tuple[int, int]],
                        *, in_channels: Sequence[int] | None = None, batch: int = 1,
                        threads: int = 1, warmup: int = 3, min_runs: int = 10,
                        max_runs: int = 200, budget_s: float = 5.0,
                        target_rel_spread: float = 0.05, flush_denormal: bool = True,
                        progress: RunProgress | None = None, inputs: Sequence[Any] | None = None,
                        spread_of_total: bool = False) -> list[Latency]:
    """:func:`measure_latency` for several models at once, interleaved: each round times one
    forward of every model in turn (A, B, A, B, ...), so that all of them see the same machine,
    and their run-by-run samples pair up (:func:`ratio_interval`). ``models[i]`` takes a
    ``batch x in_channels[i] x H x W`` input at ``resolutions[i]``; a model is a module or any
    callable taking a tensor (an onnxruntime session's wrapper). The stopping rule counts
    rounds and holds for every model's spread (``spread_of_total``: for the spread of each
    round's total instead); ``budget_s`` is for all of them together. ``inputs`` gives each
    model its own input instead (a channels_last tensor, say). One ``cpu_share`` is measured for
    the whole run and given to each result."""
    import torch

    if not models or len(models) != len(resolutions):
        raise ValueError("give one resolution per model")
    channels = list(in_channels) if in_channels is not None else [3] * len(models)
    sizes = [_size(r) for r in resolutions]
    for (h, w), c in zip(sizes, channels):
        _check_arguments(h, w, c, batch, threads, warmup, min_runs, max_runs, budget_s,
                         target_rel_spread)
    modules = [m for m in models if hasattr(m, "named_parameters")]
    for m in modules:
        _check_model(m)

    g = torch.Generator().manual_seed(INPUT_SEED)
    given, shared = inputs, {}  # one input per shape, shared by the models
    xs = []
    for (h, w), c in zip(sizes, channels):
        if given is None and (c, h, w) not in shared:
            shared[c, h, w] = torch.randn(batch, c, h, w, generator=g)
        xs.append(shared.get((c, h, w)))
    if given is not None:
        if len(given) != len(models):
            raise ValueError("give one input per model")
        xs = list(given)
    samples: list[list[float]] = [[] for _ in models]
    cpu_samples: list[list[float]] = [[] for _ in models]  # the calling thread's CPU time
    cpu: list[float] = []  # process CPU seconds and wall seconds of the timed runs

    def summarise(i: int) -> Latency:
        share = None
        if len(cpu) == 2 and cpu[1] > 0:
            share = min(1.0, cpu[0] / (cpu[1] * threads))
        return Latency.from_samples(samples[i], warmup=warmup, threads=threads, batch=batch,
                                    cpu_share=share, cpu_samples_ms=cpu_samples[i])

    def spread_ok() -> bool:
        if spread_of_total:
            totals = [math.fsum(run) for run in zip(*samples)]
            return Latency.from_samples(totals, warmup=0, threads=threads,
                                        batch=batch).rel_iqr <= target_rel_spread
        return all(summarise(i).rel_iqr <= target_rel_spread for i in range(len(models)))

    # train/eval flags to restore; frozen TorchScript modules have none (they are inference-only)
    flags = [(m, m.training) for mod in modules for m in mod.modules() if hasattr(m, "training")]
    prev_threads = torch.get_num_threads()
    prev_flush = flush_denormal_enabled() if flush_denormal else None
    gc_was_enabled = gc.isenabled()
    start = time.perf_counter()
    try:
        torch.set_num_threads(threads)
        if flush_denormal:
            torch.set_flush_denormal(True)
        for m, _ in flags:
            m.training = False
        with torch.inference_mode():
            for _ in range(warmup):
                for model, x in zip(models, xs):
                    model(x)
            gc.disable()
            cpu0, wall0 = time.process_time(), time.perf_counter()
            while True:
                for model, x, out, cpu_out in zip(models, xs, samples, cpu_samples):
                    c0 = time.thread_time_ns()
                    t0 = time.perf_counter_ns()
                    model(x)
                    t1 = time.perf_counter_ns()
                    cpu_out.append((time.thread_time_ns() - c0) / 1e6)
                    out.append((t1 - t0) / 1e6)
                cpu[:] = [time.process_time() - cpu0, time.perf_counter() - wall0]
                n = len(samples[0])
                elapsed = time.perf_counter() - start
                done = n >= min_runs and (elapsed >= budget_s or spread_ok())
                if done or n >= max_runs:
                    break
                if progress is not None:
                    per_run = elapsed / (n + warmup)
                    est = n + int(max(0.0, budget_s - elapsed) / per_run)
                    progress(n, max(min_runs, min(est, max_runs), n + 1))
    except KeyboardInterrupt as e:
        raise LatencyInterrupted(summarise(0) if samples[0] else None) from e
    finally:
        if gc_was_enabled:
            gc.enable()
        torch.set_num_threads(prev_threads)
        if prev_flush is not None:
            torch.set_flush_denormal(prev_flush)
        for m, training in flags:
            m.training = training
    if progress is not None:
        progress(len(samples[0]), len(samples[0]))
    return [summarise(i) for i in range(len(models))]


def flush_denormal_enabled() -> bool:
    """Whether this thread flushes subnormal floats to zero (torch can set it, not report it):
    multiplying a subnormal by 1 gives 0 exactly when it does."""
    import torch

    subnormal = torch.full((64,), 1e-40)  # below float32's smallest normal, 1.18e-38
    return bool(((subnormal * 1.0) == 0).all())

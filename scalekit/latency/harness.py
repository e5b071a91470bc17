"""The timing harness: CPU inference latency of one module.

``measure_latency`` times single forward passes of a model on random input and reports robust
statistics of the per-run samples (median, interquartile range), stopping once the spread is small
enough or the time budget is spent. (What the machine can do, its fp32 matmul peak, is in
machine.py; timing a spec or a report's records is networks.py.)

torch is imported inside the functions that need it, never at module import, so the CLI can import
this module for free.
"""

from __future__ import annotations

import functools
import gc
import math
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:
    from torch import nn

RunProgress = Callable[[int, int], None]
"""``progress(done_runs, est_total_runs)``, called after each timed run and once at the end."""

INPUT_SEED = 0


@dataclass(frozen=True)
class Latency:
    """Statistics of per-forward wall-clock times (milliseconds) for one batch."""

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

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float], *, warmup: int, threads: int,
                     batch: int) -> Latency:
        """Summarise per-run times (at least one sample)."""
        if not samples_ms:
            raise ValueError("no samples to summarise")
        xs = sorted(samples_ms)
        return cls(median_ms=_percentile(xs, 0.5), mean_ms=math.fsum(xs) / len(xs), min_ms=xs[0],
                   max_ms=xs[-1], p25_ms=_percentile(xs, 0.25), p75_ms=_percentile(xs, 0.75),
                   runs=len(xs), warmup=warmup, threads=threads, batch=batch)

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

    def gflops_per_s(self, macs: int) -> float:
        """Achieved GFLOP/s, given the network's multiply-accumulates per image (1 MAC = 2 FLOPs)."""
        return 2.0 * macs * self.batch / (self.median_ms / 1000.0) / 1e9

    def to_dict(self) -> dict[str, Any]:
        """The fields plus ``iqr_ms`` and ``throughput``, as plain JSON-ready data."""
        return {**asdict(self), "iqr_ms": self.iqr_ms, "throughput": self.throughput}


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
    ``budget_s`` seconds (warm-up included) have passed, or ``max_runs`` is reached.

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
    import torch

    h, w = (resolution, resolution) if isinstance(resolution, int) else resolution
    for label, v, lo in (("height", h, 1), ("width", w, 1), ("in_channels", in_channels, 1),
                         ("batch", batch, 1), ("threads", threads, 1), ("warmup", warmup, 0),
                         ("min_runs", min_runs, 1)):
        if v < lo:
            raise ValueError(f"{label} must be >= {lo}, got {v}")
    if max_runs < min_runs:
        raise ValueError(f"max_runs ({max_runs}) must be >= min_runs ({min_runs})")
    if not budget_s > 0 or not target_rel_spread >= 0:
        raise ValueError("budget_s must be > 0 and target_rel_spread >= 0")
    _check_model(model)

    x = torch.randn(batch, in_channels, h, w, generator=torch.Generator().manual_seed(INPUT_SEED))
    samples: list[float] = []
    summarise = functools.partial(Latency.from_samples, warmup=warmup, threads=threads, batch=batch)
    # train/eval flags to restore; frozen TorchScript modules have none (they are inference-only)
    flags = [(m, m.training) for m in model.modules() if hasattr(m, "training")]
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
                model(x)
            gc.disable()
            while True:
                t0 = time.perf_counter_ns()
                model(x)
                samples.append((time.perf_counter_ns() - t0) / 1e6)
                n = len(samples)
                elapsed = time.perf_counter() - start
                done = n >= min_runs and (elapsed >= budget_s
                                          or summarise(samples).rel_iqr <= target_rel_spread)
                if done or n >= max_runs:
                    break
                if progress is not None:
                    per_run = elapsed / (n + warmup)
                    est = n + int(max(0.0, budget_s - elapsed) / per_run)
                    progress(n, max(min_runs, min(est, max_runs), n + 1))
    except KeyboardInterrupt as e:
        raise LatencyInterrupted(summarise(samples) if samples else None) from e
    finally:
        if gc_was_enabled:
            gc.enable()
        torch.set_num_threads(prev_threads)
        if prev_flush is not None:
            torch.set_flush_denormal(prev_flush)
        for m, training in flags:
            m.training = training
    if progress is not None:
        progress(len(samples), len(samples))
    return summarise(samples)


def flush_denormal_enabled() -> bool:
    """Whether this thread flushes subnormal floats to zero (torch can set it, not report it):
    multiplying a subnormal by 1 gives 0 exactly when it does."""
    import torch

    subnormal = torch.full((64,), 1e-40)  # below float32's smallest normal, 1.18e-38
    return bool(((subnormal * 1.0) == 0).all())

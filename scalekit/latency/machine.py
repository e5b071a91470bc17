"""What this machine is and can do, for reading a latency: the CPU, cores, torch's SIMD level,
the fp32 matmul peak that an achieved GFLOP/s is read against (measured), and the peak the
CPU's vector units allow in theory (cores x clock x FLOPs per cycle), where the CPU says enough
to work it out.

torch is imported inside the functions that need it; :func:`theoretical_peak` needs none.
"""

from __future__ import annotations

import math
import os
import platform
import time
from dataclasses import dataclass
from typing import Any

from ..host import available_cores, cpu_model
from .harness import INPUT_SEED

PEAK_SIZES = (256, 512, 768, 1024)
"""Square GEMM sizes whose best time gives the measured peak: small enough to sit in the caches,
large enough to amortise the call, as oneDNN/MKL's kernels like it (on the 2-core EPYC this was
written on, 384-768 reached 105 GFLOP/s on one thread, 1024 99, 2048 65-100)."""

_PEAK_CACHE: dict[tuple[int, tuple[int, ...]], float] = {}  # measured once per process


def peak_gflops(threads: int = 1, *, sizes: tuple[int, ...] = PEAK_SIZES,
                budget_s: float = 0.6, n: int | None = None) -> float:
    """Measured fp32 matmul peak of this CPU at ``threads`` threads: the best GFLOP/s
    (``2 n^3`` FLOPs over one call's time) of repeated ``torch.mm`` calls over several square
    sizes ``sizes`` (``n``: one size only), at least 3 calls each and more while within
    ``budget_s`` seconds in all. One size's single best was not enough: on a shared machine it
    varied from 57 to 116 GFLOP/s between runs.

    Measured once per process for each ``threads`` and sizes, and cached; the thread count is
    restored."""
    if n is not None:
        sizes = (n,)
    if threads < 1 or not sizes or min(sizes) < 1 or not budget_s > 0:
        raise ValueError("threads and sizes must be >= 1 and budget_s > 0")
    key = (threads, tuple(sizes))
    if key not in _PEAK_CACHE:
        import torch

        g = torch.Generator().manual_seed(INPUT_SEED)
        prev_threads = torch.get_num_threads()
        best = 0.0
        try:
            torch.set_num_threads(threads)
            for size in sizes:
                a, b = torch.randn(size, size, generator=g), torch.randn(size, size, generator=g)
                out = torch.empty(size, size)
                torch.mm(a, b, out=out)  # warm-up: thread pool, page faults
                fastest = math.inf
                runs = 0
                deadline = time.perf_counter() + budget_s / len(sizes)
                while runs < 3 or time.perf_counter() < deadline:
                    t0 = time.perf_counter_ns()
                    torch.mm(a, b, out=out)
                    fastest = min(fastest, max(1, time.perf_counter_ns() - t0) / 1e9)
                    runs += 1
                best = max(best, 2.0 * size**3 / fastest / 1e9)
        finally:
            torch.set_num_threads(prev_threads)
        _PEAK_CACHE[key] = best
    return _PEAK_CACHE[key]


# ---------------------------------------------------------------------------------------------
# the theoretical peak


@dataclass(frozen=True)
class TheoreticalPeak:
    """cores x clock x fp32 FLOPs per cycle per core, or None (with ``basis`` saying why)."""

    gflops: float | None
    basis: str  # how it was worked out, or why it could not be


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty where there is none)."""
    out: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    if out:
                        break
                    continue
                key, _, value = line.partition(":")
                out.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return out


def _max_clock_ghz(info: dict[str, str]) -> tuple[float | None, str]:
    """The highest clock the kernel knows (cpufreq's maximum), else the one /proc/cpuinfo
    reports (which a VM often gives as the base clock, below what the core runs at)."""
    try:
        with open("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", encoding="ascii") as f:
            return int(f.read().strip()) / 1e6, "cpufreq max"
    except (OSError, ValueError):
        pass
    try:
        return float(info["cpu MHz"]) / 1000, "as /proc/cpuinfo reports it"
    except (KeyError, ValueError):
        return None, ""


def flops_per_cycle(vendor: str, family: int | None, model: int | None,
                    flags: set[str]) -> tuple[int | None, str]:
    """fp32 FLOPs one core can issue per cycle (2 per FMA lane x lanes x FMA units), from its
    vendor, family and ISA flags; None when they do not say (``why`` says what was assumed).

    AMD Zen and Zen+ (family 0x17, model < 0x30) run 256-bit FMAs as two 128-bit halves: 16;
    Zen 2 to Zen 4 (0x17 from 0x30, 0x19) have two 256-bit FMA pipes, AVX-512 double-pumped on
    Zen 4: 32; Zen 5 (0x1A) two 512-bit pipes: 64 (desktop and server parts). Intel with AVX-512
    has one or two 512-bit FMA units depending on the part: two assumed (an upper bound), 64;
    AVX2 + FMA (Haswell on): two 256-bit units, 32; AVX without FMA: a 256-bit add and a
    multiply, 16. Anything else: None."""
    if vendor == "AuthenticAMD" and family is not None:
        if family == 0x17:
            return (16, "Zen/Zen+, 2x128-bit FMA") if (model or 0) < 0x30 else \
                (32, "Zen 2, 2x256-bit FMA")
        if family == 0x19:
            return 32, "Zen 3/4, 2x256-bit FMA"
        if family == 0x1A:
            return 64, "Zen 5, 2x512-bit FMA"
        return None, f"unknown AMD family {family:#x}"
    if vendor == "GenuineIntel":
        if "avx512f" in flags:
            return 64, "AVX-512, up to 2x512-bit FMA"
        if "avx2" in flags and "fma" in flags:
            return 32, "AVX2, 2x256-bit FMA"
        if "avx" in flags:
            return 16, "AVX, 256-bit add + multiply"
        return None, "no AVX"
    return None, f"unknown vendor {vendor or '(none)'}"


def theoretical_peak(threads: int = 1, measured: float | None = None) -> TheoreticalPeak:
    """The fp32 peak ``min(threads, cores)`` cores could reach in theory: cores x clock x
    :func:`flops_per_cycle`, from /proc/cpuinfo and cpufreq (no torch). None where the CPU does
    not say enough; also None when ``measured`` (the matmul peak) beats it, which means the core
    runs faster than the clock it reports (a VM reports its base clock, not its boost)."""
    info = _cpuinfo()
    vendor = info.get("vendor_id", "")
    try:
        family = int(info["cpu family"])
        model = int(info["model"])
    except (KeyError, ValueError):
        family = model = None
    per_cycle, how = flops_per_cycle(vendor, family, model, set(info.get("flags", "").split()))
    ghz, clock = _max_clock_ghz(info)
    if per_cycle is None:
        return TheoreticalPeak(None, f"the CPU does not say enough ({how})")
    if ghz is None:
        return TheoreticalPeak(None, "the CPU reports no clock")
    cores = max(1, min(threads, available_cores()))
    gflops = cores * ghz * per_cycle
    basis = (f"{cores} core{'s' if cores != 1 else ''} x {ghz:.2f} GHz ({clock}) x {per_cycle} "
             f"FLOPs/cycle ({how})")
    if measured is not None and measured > gflops:
        return TheoreticalPeak(None, f"{basis} = {gflops:.1f}, below the measured peak: the core "
                                     "runs faster than its reported clock")
    return TheoreticalPeak(gflops, basis)


def machine_info() -> dict[str, Any]:
    """What a latency number depends on: CPU model, cores, torch's build and SIMD level, Python."""
    import torch

    return {
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "available_cores": available_cores(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }

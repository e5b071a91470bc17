"""What this machine is and can do, for reading a latency: the CPU, cores, torch's SIMD level,
and the fp32 matmul peak that an achieved GFLOP/s is read against.

torch is imported inside the functions that need it.
"""

from __future__ import annotations

import math
import os
import platform
import time
from typing import Any

from ..host import cpu_model
from .harness import INPUT_SEED

_PEAK_CACHE: dict[tuple[int, int], float] = {}  # (threads, n) -> GFLOP/s, measured once per process


def peak_gflops(threads: int = 1, *, n: int = 1024, budget_s: float = 1.0) -> float:
    """fp32 matmul peak of this CPU: ``2 n^3`` FLOPs over the best time of repeated n x n
    ``torch.mm`` calls (at least 3, more while within ``budget_s``).

    Measured once per process for each ``(threads, n)`` and cached; the thread count is restored.
    """
    if threads < 1 or n < 1 or not budget_s > 0:
        raise ValueError("threads and n must be >= 1 and budget_s > 0")
    key = (threads, n)
    if key not in _PEAK_CACHE:
        import torch

        g = torch.Generator().manual_seed(INPUT_SEED)
        a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
        out = torch.empty(n, n)
        prev_threads = torch.get_num_threads()
        try:
            torch.set_num_threads(threads)
            torch.mm(a, b, out=out)  # warm-up: thread pool, page faults
            best = math.inf
            runs = 0
            deadline = time.perf_counter() + budget_s
            while runs < 3 or time.perf_counter() < deadline:
                t0 = time.perf_counter_ns()
                torch.mm(a, b, out=out)
                best = min(best, (time.perf_counter_ns() - t0) / 1e9)
                runs += 1
        finally:
            torch.set_num_threads(prev_threads)
        _PEAK_CACHE[key] = 2.0 * n**3 / best / 1e9
    return _PEAK_CACHE[key]


def machine_info() -> dict[str, Any]:
    """What a latency number depends on: CPU model, cores, torch's build and SIMD level, Python."""
    import torch

    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count()
    return {
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "available_cores": available,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }

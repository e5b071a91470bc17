"""The machine scalekit runs on, without torch: the CPU's model name and the platform, for every
report's ``machine`` facts. (What it can compute, and torch's build, is latency/machine.py.)"""

from __future__ import annotations

import os
import platform
from typing import Any


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), without torch."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine() -> dict[str, Any]:
    """Describe the machine without importing torch (its version comes from package metadata)."""
    return {"cpu": cpu_model(), "logical_cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version()}


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity; all logical cores where that is not
    known)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check_threads(threads: object) -> int:
    """``threads`` as a thread count for timing: an integer from 1 to the cores available to
    this process. More threads than cores measure contention, not the network (and thousands
    make OpenMP fail: libgomp cannot create them, then the process crashes). Raises
    :class:`scalekit.errors.ArgumentError` (a ValueError) otherwise."""
    from .errors import ArgumentError

    if isinstance(threads, bool) or not isinstance(threads, int):
        raise ArgumentError(f"threads must be an integer, got {type(threads).__name__}")
    cores = available_cores()
    if not 1 <= threads <= cores:
        raise ArgumentError(f"threads must be between 1 and {cores} (the cores available to "
                            f"this process), got {threads:,}")
    return threads

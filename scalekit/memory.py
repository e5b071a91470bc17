"""Memory: estimate what a model needs before building or running it, and the guard that refuses
(with the estimate in the message) when it will not fit. No torch here, and no allocation.

Counting never needs the guard: it is exact integer arithmetic on the plan, at any size. Anything
that builds a real module (``--counter thop``, export, latency, bench) calls :func:`check_memory`
first::

    from .memory import check_memory
    check_memory(plan, batch=batch, force=force)   # raises ScalekitError; --force skips it

The estimate, at fp32 (4 bytes a value):

- parameters: exactly ``4 * sum(p.numel() for p in model.parameters())`` (the analytic count);
- activations: the most values alive at once in an inference forward pass, times the batch.
  The caller holds the network's input throughout and, inside a block, the block's input; at
  any layer its input, its output, BatchNorm's (not in-place) copy of that output and a scratch
  copy (a CPU conv backend reorders tensors to its own layout) are alive, each no larger than
  the block's largest tensor (the largest output of any op its kind lists). So: network input
  + max over blocks of (block input + 4 x largest tensor). That is at least the largest single activation tensor and at most 6x it
  (tests/test_guard.py checks both against torch on the meta device). Against the resident
  memory a real CPU forward pass added, it read 0.8x to 1.4x of that (bundled specs, 448-1536 px,
  batch 1-8, torch 2.13); ``HEADROOM`` covers the low end.

A model is refused when the estimate plus ``HEADROOM`` does not fit in the memory available now
(``MemAvailable`` in /proc/meminfo, capped by a cgroup limit; ``os.sysconf`` elsewhere).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .blocks import BlockPlan, kind
from .counting import NetworkCount, count_plan
from .errors import ScalekitError
from .plan import NetworkPlan

BYTES_PER_VALUE = 4  # fp32
HEADROOM = 1.25  # allocator slack, BatchNorm buffers, the interpreter and torch itself
_NO_LIMIT = 1 << 60  # cgroup v1 reports "no limit" as a number near 2**63


def largest_tensor(b: BlockPlan) -> int:
    """Values (batch 1) in the largest tensor a block produces: the largest output of the ops
    its kind lists (each conv's output, the expanded width, the pooled features, ...)."""
    return max(op.out for op in kind(b.kind).ops(b))


def block_peak(b: BlockPlan) -> int:
    """Values (batch 1) alive at once while ``b`` runs, beyond the network's input: the block's
    input plus 4 x its largest tensor (see the module docstring)."""
    return b.cin * b.h * b.w + 4 * largest_tensor(b)


@dataclass(frozen=True)
class MemoryEstimate:
    """What a model needs at fp32: parameters and peak activations at ``batch``."""

    name: str
    params: int  # parameter count
    activations: int  # peak live activation values at batch 1
    batch: int
    resolution: tuple[int, int]

    @property
    def params_bytes(self) -> int:
        return BYTES_PER_VALUE * self.params

    @property
    def activation_bytes(self) -> int:
        return BYTES_PER_VALUE * self.activations * self.batch

    @property
    def total_bytes(self) -> int:
        return self.params_bytes + self.activation_bytes

    def describe(self) -> str:
        """``about 212.4 GiB (params 3.1 GiB + activations 209.3 GiB at batch 1, 4000 px)``"""
        h, w = self.resolution
        px = f"{h} px" if h == w else f"{h}x{w} px"
        return (f"about {format_bytes(self.total_bytes)} (params {format_bytes(self.params_bytes)}"
                f" + activations {format_bytes(self.activation_bytes)} at batch {self.batch}, {px})")


def format_bytes(n: int) -> str:
    """Bytes in the largest binary unit (up to PiB) that leaves a number >= 1."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            return f"{value:.1f} {unit}" if unit != "B" else f"{n} B"
        value /= 1024
    return f"{value:,.1f} PiB"


def estimate_memory(plan: NetworkPlan, batch: int = 1,
                    counts: NetworkCount | None = None) -> MemoryEstimate:
    """Parameters and peak activations of ``plan`` at ``batch``, from the plan alone (``counts``:
    the plan's analytic counts, when the caller has them already)."""
    if batch < 1:
        raise ScalekitError(f"batch must be >= 1, got {batch}")
    h, w = plan.resolution
    params = (counts or count_plan(plan)).total.params
    return MemoryEstimate(name=plan.name, params=params,
                          activations=plan.in_channels * h * w + max(map(block_peak, plan.blocks())),
                          batch=batch, resolution=plan.resolution)


def _read_int(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as f:
            return int(f.read().strip())
    except (OSError, ValueError):  # missing, unreadable, or "max" (cgroup v2: no limit)
        return None


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # reported in kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not on this platform
        return None


def _cgroup_available() -> int | None:
    """What the container's memory limit still allows (cgroup v2, then v1); None if unlimited."""
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit = _read_int(limit_file)
        if limit is not None and limit < _NO_LIMIT:
            return max(0, limit - (_read_int(usage_file) or 0))
    return None


def available_memory() -> int | None:
    """Bytes of memory this process can still use, or None when the system does not say."""
    known = [v for v in (_meminfo_available(), _cgroup_available()) if v is not None]
    return min(known) if known else None


def check_memory(plan: NetworkPlan, batch: int = 1, force: bool = False, *,
                 available: int | None = None,
                 counts: NetworkCount | None = None) -> MemoryEstimate:
    """Refuse (:class:`ScalekitError`, naming the estimate) to build ``plan`` when it will not fit.

    ``available`` (bytes) defaults to :func:`available_memory`; pass
    ``torch.cuda.mem_get_info()[0]`` to guard a GPU. ``force`` skips the refusal. Returns the
    estimate either way, so a caller can report it.
    """
    est = estimate_memory(plan, batch, counts)
    if force:
        return est
    if available is None:
        available = available_memory()
    if available is not None and est.total_bytes * HEADROOM > available:
        raise ScalekitError(
            f"{est.name} needs {est.describe()}; only {format_bytes(available)} available "
            f"(scalekit keeps {HEADROOM - 1:.0%} headroom); use --force to try anyway")
    return est

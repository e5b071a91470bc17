"""Memory: what a model needs, from its plan alone (no torch, no allocation): its parameters,
the peak activation memory of an inference forward pass at a batch size, and what training it
takes; and the guard that refuses to build a model that will not fit (with the estimate in the
message). The guard and every report (the ``memory`` object of a record, ``fit
--target-memory``, ``check --max-memory``) read one function, :func:`estimate_memory`.

Counting never needs the guard: it is exact integer arithmetic on the plan, at any size. Anything
that builds a real module (``--counter thop``, export, latency, bench) calls :func:`check_memory`
first::

    from .memory import check_memory
    check_memory(plan, batch=batch, force=force)   # raises ScalekitError; --force skips it

All at fp32 (4 bytes a value; max-pooling's indices are int64):

- **parameters**: exactly ``4 * sum(p.numel() for p in model.parameters())`` (the analytic
  count; BatchNorm's running statistics, about 1-2 % more, are buffers and not counted).
- **inference peak**: the most activation bytes alive at once in an eval-mode forward pass under
  ``torch.inference_mode()``, network input included, found by walking every block's ops (its
  kind's ``ops``) and keeping alive what the torch modules of scalekit/modules.py keep alive: a
  module's input lives until the module returns, so during any op the network's input, the
  stage's input, the block's input, the conv-BN-act unit's input, a squeeze-excitation's input
  and a residual branch's output are alive beside the op's own input and output; BatchNorm makes
  a new tensor, ReLU, ReLU6 and SiLU run in place. (Against the allocator's bytes in use,
  sampled before and after every layer, torch 2.13: within 1 % for EfficientNet-B0, ResNet-50
  and MobileNetV2 at batch 1 and 4, tests/test_memory.py; within 0.3 % for every bundled spec at
  batch 2.) Transient workspace inside a conv kernel (oneDNN's scratch) is not in it; the
  guard's ``HEADROOM`` is.
- **training**: parameters + their gradients + the optimizer's state (:data:`OPTIMIZER`:
  SGD with momentum, one buffer per parameter, as the torchvision recipes train these networks)
  + the activations autograd saves for the backward pass at the batch size (each distinct tensor
  once: a conv saves its input, BatchNorm its input, an in-place ReLU its result, in-place ReLU6
  and SiLU a copy of their input, max-pooling its input and int64 indices, the SE multiply both
  operands; the network input is among them). The backward pass needs, on top of that, a few
  activation-sized gradients at a time; they are not in it.

A model is refused when params + inference peak, plus ``HEADROOM``, does not fit in the memory
available now (``MemAvailable`` in /proc/meminfo, capped by a cgroup limit; ``os.sysconf``
elsewhere).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .blocks import BlockPlan, kind
from .counting import NetworkCount, count_plan
from .errors import ScalekitError
from .ops import Activation, BatchNorm, Conv, Elementwise, Linear, Pool
from .plan import NetworkPlan

BYTES_PER_VALUE = 4  # fp32
INDEX_BYTES = 8  # max-pooling's indices, saved for its backward (int64)
HEADROOM = 1.25  # allocator slack, conv scratch, BatchNorm buffers, the interpreter and torch
_NO_LIMIT = 1 << 60  # cgroup v1 reports "no limit" as a number near 2**63

OPTIMIZER = "sgd-momentum"
"""The optimizer training memory assumes: SGD with momentum (one state buffer per parameter)."""
OPTIMIZER_STATE = {"sgd": 0, "sgd-momentum": 1, "adam": 2}  # buffers per parameter
IN_PLACE = frozenset({"relu", "relu6", "silu"})  # modules.activation builds these in place
SAVES_COPY = frozenset({"relu6", "silu"})  # in place, yet autograd keeps a copy of the input


def largest_tensor(b: BlockPlan) -> int:
    """Values (batch 1) in the largest tensor a block produces: the largest output of the ops
    its kind lists (each conv's output, the expanded width, the pooled features, ...)."""
    return max(op.out for op in kind(b.kind).ops(b))


class _Walk:
    """The tensors of one forward pass, op by op: which are alive (inference) and which autograd
    saves (training). Sizes in bytes at batch 1; tensors are ids."""

    def __init__(self, c: int, h: int, w: int):
        self.shape: dict[int, tuple[int, int, int]] = {}
        self.bytes: dict[int, int] = {}
        self.held: list[int] = []  # network, stage, block input (the callers' frames hold them)
        self.saved: dict[int, int] = {}  # what autograd keeps for backward, by tensor
        self.per_batch = 0  # saved bytes that do not grow with the batch
        self.peak = 0
        self.cur = self.new(c, h, w)
        self.held.append(self.cur)

    def new(self, c: int, h: int, w: int, per_value: int = BYTES_PER_VALUE) -> int:
        t = len(self.bytes)
        self.shape[t] = (c, h, w)
        self.bytes[t] = c * h * w * per_value
        return t

    def alive(self, *tensors: int | None) -> None:
        live = {t for t in (*self.held, *tensors) if t is not None}
        self.peak = max(self.peak, sum(self.bytes[t] for t in live))

    def save(self, *tensors: int) -> None:
        for t in tensors:
            self.saved[t] = self.bytes[t]

    def block(self, b: BlockPlan) -> None:
        block_in = self.cur
        self.held.append(block_in)
        unit_in = se_in = pending = None
        for op in kind(b.kind).ops(b):
            x = self.cur
            if isinstance(op, Conv):
                if self.shape[x] != (op.cin, op.h, op.w) and \
                        self.shape[block_in] == (op.cin, op.h, op.w):
                    pending, x = x, block_in  # a shortcut conv: the branch output waits
                unit_in = x
                out = self.new(op.cout, op.ho, op.wo)
                self.alive(unit_in, se_in, pending, x, out)
                self.save(x)
            elif isinstance(op, BatchNorm):
                out = self.new(op.c, op.h, op.w)
                self.alive(unit_in, se_in, pending, x, out)
                self.save(x)
                self.per_batch += 2 * op.c * BYTES_PER_VALUE  # the batch's mean, 1/std
            elif isinstance(op, Activation):
                if op.name in IN_PLACE:
                    out = x
                    self.alive(unit_in, se_in, pending, x)
                    if op.name in SAVES_COPY:
                        self.save(self.new(*self.shape[x]))
                    else:
                        self.save(out)
                else:  # sigmoid: a new tensor, its result saved
                    out = self.new(op.c, op.h, op.w)
                    self.alive(unit_in, se_in, pending, x, out)
                    self.save(out)
            elif isinstance(op, Pool):
                out = self.new(op.c, op.ho, op.wo)
                self.alive(unit_in, se_in, pending, x, out)
                if op.is_global:
                    se_in = x  # a squeeze-excitation keeps its input for the gate
                else:  # max-pooling saves its input and where each maximum was
                    self.save(x, self.new(op.c, op.ho, op.wo, INDEX_BYTES))
            elif isinstance(op, Linear):
                out = self.new(op.cout, 1, 1)
                self.alive(unit_in, se_in, pending, x, out)
                self.save(x)
            elif isinstance(op, Elementwise):
                other = se_in if op.op == "mul" else pending if pending is not None else block_in
                out = self.new(op.c, op.h, op.w)
                self.alive(unit_in, other, x, out)
                if op.op == "mul":
                    self.save(other, x)
                    se_in = None
                else:
                    pending = None
            else:  # an op this walk does not know: assume a new tensor of its output's size
                out = self.new(op.out, 1, 1)
                self.alive(unit_in, se_in, pending, x, out)
            self.cur = out
        self.held.pop()


def _walk(plan: NetworkPlan) -> _Walk:
    h, w = plan.resolution
    walk = _Walk(plan.in_channels, h, w)
    for st in plan.stages:
        walk.held.append(walk.cur)  # the stage's input, held by the network's Sequential
        for b in st.blocks:
            walk.block(b)
        walk.held.pop()
    return walk


@dataclass(frozen=True)
class MemoryEstimate:
    """What a model needs at fp32: parameters, the inference peak and training, at ``batch``."""

    name: str
    params: int  # parameter count
    activations: int  # inference peak: activation values alive at once at batch 1, input included
    batch: int
    resolution: tuple[int, int]
    saved_bytes_per_image: int = 0  # what autograd saves for backward, per image
    saved_bytes_per_batch: int = 0  # and once per batch (BatchNorm's batch statistics)
    optimizer: str = OPTIMIZER

    @property
    def params_bytes(self) -> int:
        return BYTES_PER_VALUE * self.params

    @property
    def activation_bytes(self) -> int:
        """The inference peak of activations at ``batch``."""
        return BYTES_PER_VALUE * self.activations * self.batch

    inference_peak_bytes = activation_bytes

    @property
    def total_bytes(self) -> int:
        """What running the model for inference needs: parameters + the activation peak."""
        return self.params_bytes + self.activation_bytes

    @property
    def saved_activation_bytes(self) -> int:
        return self.saved_bytes_per_image * self.batch + self.saved_bytes_per_batch

    @property
    def optimizer_bytes(self) -> int:
        return self.params_bytes * OPTIMIZER_STATE[self.optimizer]

    @property
    def training_bytes(self) -> int:
        """Parameters + gradients + optimizer state + the activations saved for backward."""
        return 2 * self.params_bytes + self.optimizer_bytes + self.saved_activation_bytes

    def to_dict(self) -> dict[str, Any]:
        """The record's ``memory`` object (docs/json.md)."""
        return {"params_bytes": self.params_bytes,
                "inference_peak_bytes": self.inference_peak_bytes,
                "training_bytes": self.training_bytes, "batch": self.batch,
                "saved_activation_bytes": self.saved_activation_bytes,
                "optimizer": self.optimizer, "dtype": "float32"}

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
                    counts: NetworkCount | None = None,
                 override: str = "--force") -> MemoryEstimate:
    """Parameters, the inference peak and training memory of ``plan`` at ``batch``, from the
    plan alone (``counts``: the plan's analytic counts, when the caller has them already). The
    one estimate of memory: the guard, the reports and fit's memory target all read it."""
    if batch < 1:
        raise ScalekitError(f"batch must be >= 1, got {batch}")
    params = (counts or count_plan(plan)).total.params
    walk = _walk(plan)
    return MemoryEstimate(name=plan.name, params=params,
                          activations=-(-walk.peak // BYTES_PER_VALUE), batch=batch,
                          resolution=plan.resolution,
                          saved_bytes_per_image=sum(walk.saved.values()),
                          saved_bytes_per_batch=walk.per_batch)


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
                 counts: NetworkCount | None = None,
                 override: str = "--force") -> MemoryEstimate:
    """Refuse (:class:`ScalekitError`, naming the estimate) to build ``plan`` when it will not fit.

    ``available`` (bytes) defaults to :func:`available_memory`; pass
    ``torch.cuda.mem_get_info()[0]`` to guard a GPU. ``force`` skips the refusal; ``override``
    is how the caller's user says so (``--force`` on the command line, ``force=True`` in the
    Python API). Returns the estimate either way, so a caller can report it.
    """
    est = estimate_memory(plan, batch, counts)
    if force:
        return est
    if available is None:
        available = available_memory()
    if available is not None and est.total_bytes * HEADROOM > available:
        raise ScalekitError(
            f"{est.name} needs {est.describe()}; only {format_bytes(available)} available "
            f"(scalekit keeps {HEADROOM - 1:.0%} headroom); use {override} to try anyway")
    return est

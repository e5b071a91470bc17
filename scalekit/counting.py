"""Analytic params, MACs and activations, from the plan alone (no torch).

Every block's forward pass is a sequence of primitive ops (its kind's ``ops``); the counts here
are sums over them under scalekit's conventions (see ../shared/GUIDE.md, docs/spec-format.md):

- MACs: multiply-accumulates of conv and linear weights; bias adds, BatchNorm, activations,
  pooling, the SE multiply and residual adds count 0. Equals torch FlopCounterMode's total / 2.
- params: weights + biases + BatchNorm gamma/beta, i.e. sum(p.numel() for p in model.parameters()).
- acts: elements output by conv and linear layers and by spatial (max) pooling; global average
  pooling is not counted (pycls's convention).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, NamedTuple

from .blocks import BlockPlan, kind
from .ops import BatchNorm, Conv, Linear, Op, Pool
from .plan import NetworkPlan


class Counts(NamedTuple):
    params: int = 0
    macs: int = 0
    acts: int = 0

    def __add__(self, other: "Counts") -> "Counts":  # type: ignore[override]
        return Counts(self.params + other.params, self.macs + other.macs, self.acts + other.acts)

    @property
    def flops(self) -> int:
        """FLOPs = 2 x MACs (torch.utils.flop_counter's convention)."""
        return 2 * self.macs


def count_ops(ops: Iterable[Op]) -> Counts:
    """params, MACs and acts of a sequence of ops (the conventions above)."""
    params = macs = acts = 0
    for op in ops:
        if isinstance(op, Conv):
            params += op.weights + (op.cout if op.bias else 0)
            out = op.out
            macs += op.weights * op.ho * op.wo
            acts += out
        elif isinstance(op, BatchNorm):
            params += 2 * op.c
        elif isinstance(op, Linear):
            params += op.cin * op.cout + (op.cout if op.bias else 0)
            macs += op.cin * op.cout
            acts += op.cout
        elif isinstance(op, Pool) and not op.is_global:
            acts += op.out
    return Counts(params, macs, acts)


def count_block(b: BlockPlan) -> Counts:
    return count_ops(kind(b.kind).ops(b))


@dataclass(frozen=True)
class StageCount:
    name: str
    counts: Counts


@dataclass(frozen=True)
class NetworkCount:
    total: Counts
    stages: tuple[StageCount, ...]


def count_plan(plan: NetworkPlan) -> NetworkCount:
    stages = []
    total = Counts()
    for st in plan.stages:
        c = Counts()
        for b in st.blocks:
            c += count_block(b)
        stages.append(StageCount(st.name, c))
        total += c
    return NetworkCount(total, tuple(stages))

"""Analytic params, MACs and activations, from the plan alone (no torch).

Conventions (see ../shared/GUIDE.md and docs/spec-format.md):
- MACs: multiply-accumulates of conv and linear weights; bias adds, BatchNorm, activations,
  pooling, the SE multiply and residual adds count 0. Equals torch FlopCounterMode's total / 2.
- params: weights + biases + BatchNorm gamma/beta, i.e. sum(p.numel() for p in model.parameters()).
- acts: elements output by conv and linear layers and by spatial (max) pooling; global average
  pooling is not counted (pycls's convention).

Every block kind has one complexity function here, mirroring one torch class in blocks.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

from .plan import BlockPlan, NetworkPlan, out_size


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


def conv(cin: int, cout: int, k: int, h: int, w: int, stride: int = 1, groups: int = 1,
         bias: bool = False, bn: bool = True) -> Counts:
    """A k x k conv (padding k // 2), optionally followed by BatchNorm."""
    ho, wo = out_size(h, k, stride), out_size(w, k, stride)
    weights = k * k * (cin // groups) * cout
    params = weights + (cout if bias else 0) + (2 * cout if bn else 0)
    return Counts(params, weights * ho * wo, cout * ho * wo)


def linear(cin: int, cout: int, bias: bool = True) -> Counts:
    return Counts(cin * cout + (cout if bias else 0), cin * cout, cout)


def _conv_block(b: BlockPlan) -> Counts:
    return conv(b.cin, b.cout, b.kernel, b.h, b.w, b.stride)


def _maxpool(b: BlockPlan) -> Counts:
    return Counts(0, 0, b.cout * b.ho * b.wo)


def _dwsep(b: BlockPlan) -> Counts:
    dw = conv(b.cin, b.cin, b.kernel, b.h, b.w, b.stride, groups=b.cin)
    return dw + conv(b.cin, b.cout, 1, b.ho, b.wo)


def _mbconv(b: BlockPlan) -> Counts:
    c = Counts()
    if b.mid != b.cin:
        c += conv(b.cin, b.mid, 1, b.h, b.w)
    c += conv(b.mid, b.mid, b.kernel, b.h, b.w, b.stride, groups=b.mid)
    if b.se:  # squeeze: global pool -> 1x1 conv (bias) -> act -> 1x1 conv (bias) -> sigmoid
        c += conv(b.mid, b.se, 1, 1, 1, bias=True, bn=False)
        c += conv(b.se, b.mid, 1, 1, 1, bias=True, bn=False)
    return c + conv(b.mid, b.cout, 1, b.ho, b.wo)


def _bottleneck(b: BlockPlan) -> Counts:
    c = conv(b.cin, b.mid, 1, b.h, b.w)
    c += conv(b.mid, b.mid, 3, b.h, b.w, b.stride)  # ResNet v1.5: stride on the 3x3
    c += conv(b.mid, b.cout, 1, b.ho, b.wo)
    if b.projection:
        c += conv(b.cin, b.cout, 1, b.h, b.w, b.stride)
    return c


def _classifier(b: BlockPlan) -> Counts:
    return linear(b.cin, b.cout)  # global average pool and dropout cost nothing here


COUNTERS: dict[str, Callable[[BlockPlan], Counts]] = {
    "conv": _conv_block,
    "maxpool": _maxpool,
    "dwsep": _dwsep,
    "mbconv": _mbconv,
    "bottleneck": _bottleneck,
    "classifier": _classifier,
}


def count_block(b: BlockPlan) -> Counts:
    return COUNTERS[b.kind](b)


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

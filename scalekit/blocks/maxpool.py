"""``maxpool``: k x k max-pooling with padding k // 2 (ResNet's stem); not a stage kind."""

from __future__ import annotations

from ..ops import Pool
from .base import BlockKind, BlockPlan


class MaxPoolKind(BlockKind):
    name = "maxpool"
    about = "k x k max-pooling, stride s, padding k // 2 (after ResNet's stem conv)"
    module = "MaxPool"

    def label(self, b):
        return f"MaxPool k{b.kernel}x{b.kernel}"

    def wire(self, stage, *, cin, h, w, stride, drop_path):
        raise TypeError("maxpool is not a stage kind: it follows the stem conv (stem.pool)")

    def plan(self, c: int, h: int, w: int, kernel: int, stride: int) -> BlockPlan:
        return BlockPlan(kind=self.name, cin=c, cout=c, h=h, w=w, kernel=kernel, stride=stride)

    def ops(self, b):
        yield Pool("max", b.cin, b.h, b.w, b.kernel, b.stride)


KIND = MaxPoolKind()

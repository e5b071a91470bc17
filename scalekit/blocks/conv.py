"""``conv``: a k x k conv - BatchNorm - activation (a plain stage, and the stem and head convs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from ..fields import kernel_field
from ..ops import Activation, BatchNorm, Conv, Op
from .base import BlockKind, BlockPlan, StageSpec, bn_weights, conv_weights


@dataclass(frozen=True, kw_only=True)
class ConvStage(StageSpec):
    block: str = "conv"
    kernel: int = 3


def conv_bn_act(cin: int, cout: int, kernel: int, h: int, w: int, stride: int = 1,
                groups: int = 1, act: str | None = "relu") -> Iterator[Op]:
    """The ops of a conv (no bias) - BatchNorm - activation (``act`` None: none)."""
    c = Conv(cin, cout, kernel, h, w, stride, groups)
    yield c
    yield BatchNorm(cout, c.ho, c.wo)
    if act:
        yield Activation(cout, c.ho, c.wo, name=act)


class ConvKind(BlockKind):
    name = "conv"
    about = "k x k conv, BatchNorm, activation"
    stage = ConvStage
    module = "ConvBlock"
    example = {"block": "conv", "out": 24, "repeats": 2, "stride": 2, "kernel": 3, "act": "relu"}

    def parse(self, data, path):
        return {"kernel": kernel_field(data, "kernel", path, 3)}

    def label(self, b):
        return f"Conv k{b.kernel}x{b.kernel}"

    def wire(self, stage, *, cin, h, w, stride, drop_path):
        return self.plan(cin, stage.out, stage.kernel, h, w, stride, stage.act)

    def plan(self, cin: int, cout: int, kernel: int, h: int, w: int, stride: int,
             act: str) -> BlockPlan:
        """One conv block outside the stages: the stem conv, the head's 1x1 conv."""
        return BlockPlan(kind=self.name, cin=cin, cout=cout, h=h, w=w, kernel=kernel,
                         stride=stride, act=act)

    def ops(self, b):
        return conv_bn_act(b.cin, b.cout, b.kernel, b.h, b.w, b.stride, act=b.act)

    def weights(self, b):
        # roles "conv" and "bn": a checkpoint family names the stem's and the head's by position
        return [conv_weights("conv", "0", b.cin, b.cout, b.kernel), bn_weights("bn", "1", b.cout)]


KIND = ConvKind()

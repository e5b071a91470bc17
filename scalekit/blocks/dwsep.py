"""``dwsep``: MobileNetV1's depthwise-separable block (Howard et al. 2017): a depthwise k x k
conv-BN-act, then a pointwise 1x1 conv-BN-act."""

from __future__ import annotations

from dataclasses import dataclass

from ..fields import kernel_field
from .base import BlockKind, BlockPlan, StageSpec
from .conv import conv_bn_act


@dataclass(frozen=True, kw_only=True)
class DWSepStage(StageSpec):
    block: str = "dwsep"
    kernel: int = 3


class DWSepKind(BlockKind):
    name = "dwsep"
    about = "depthwise k x k conv-BN-act, pointwise 1x1 conv-BN-act (MobileNetV1)"
    stage = DWSepStage
    module = "DepthwiseSeparable"
    example = {"block": "dwsep", "out": 64, "repeats": 2, "stride": 2, "kernel": 3, "act": "relu6"}

    def parse(self, data, path):
        return {"kernel": kernel_field(data, "kernel", path, 3)}

    def label(self, b):
        return f"DWSep k{b.kernel}x{b.kernel}"

    def wire(self, stage, *, cin, h, w, stride, drop_path):
        return BlockPlan(kind=self.name, cin=cin, cout=stage.out, h=h, w=w, kernel=stage.kernel,
                         stride=stride, act=stage.act)

    def ops(self, b):
        yield from conv_bn_act(b.cin, b.cin, b.kernel, b.h, b.w, b.stride, groups=b.cin, act=b.act)
        yield from conv_bn_act(b.cin, b.cout, 1, b.ho, b.wo, act=b.act)


KIND = DWSepKind()

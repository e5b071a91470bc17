"""``bottleneck``: ResNet v1.5's bottleneck (He et al. 2016, as in torchvision): 1x1 conv-BN-act,
3x3 conv-BN-act carrying the stride, 1x1 conv-BN, a 1x1 conv-BN projection shortcut where the
shape changes, then add and activation."""

from __future__ import annotations

from dataclasses import dataclass

from ..fields import MAX_CHANNELS, int_field
from ..ops import Activation, Elementwise
from .base import BlockKind, BlockPlan, StageSpec
from .conv import conv_bn_act


@dataclass(frozen=True, kw_only=True)
class BottleneckStage(StageSpec):
    block: str = "bottleneck"
    mid: int  # width of the 3x3 conv (ResNet-50 stage 1: 64)


@dataclass(frozen=True, kw_only=True)
class BottleneckPlan(BlockPlan):
    mid: int

    @property
    def projection(self) -> bool:
        """A 1x1 conv + BN shortcut, because the shape changes."""
        return self.stride != 1 or self.cin != self.cout


class BottleneckKind(BlockKind):
    name = "bottleneck"
    about = "1x1, 3x3 (stride), 1x1 convs with a shortcut (ResNet v1.5)"
    stage = BottleneckStage
    module = "Bottleneck"
    width_fields = ("out", "mid")
    example = {"block": "bottleneck", "out": 256, "mid": 64, "repeats": 2, "stride": 2,
               "act": "relu"}

    def parse(self, data, path):
        return {"mid": int_field(data, "mid", path, lo=1, hi=MAX_CHANNELS)}

    def label(self, b):
        return "Bottleneck 1x1-3x3-1x1"

    def wire(self, stage, *, cin, h, w, stride, drop_path):
        return BottleneckPlan(kind=self.name, cin=cin, cout=stage.out, h=h, w=w, kernel=3,
                              stride=stride, act=stage.act, drop_path=drop_path, mid=stage.mid)

    def ops(self, b):
        yield from conv_bn_act(b.cin, b.mid, 1, b.h, b.w, act=b.act)
        yield from conv_bn_act(b.mid, b.mid, 3, b.h, b.w, b.stride, act=b.act)  # v1.5: stride here
        yield from conv_bn_act(b.mid, b.cout, 1, b.ho, b.wo, act=None)
        if b.projection:
            yield from conv_bn_act(b.cin, b.cout, 1, b.h, b.w, b.stride, act=None)
        yield Elementwise(b.cout, b.ho, b.wo, op="add")
        yield Activation(b.cout, b.ho, b.wo, name=b.act)


KIND = BottleneckKind()

"""``basic``: ResNet's basic block (He et al. 2016; torchvision ``BasicBlock``, ResNet-18/34): a
3x3 conv-BN-act carrying the stride, a 3x3 conv-BN, a 1x1 conv-BN projection shortcut where the
shape changes, then add and activation. Expansion 1: both convs have the stage's ``out`` width."""

from __future__ import annotations

from dataclasses import dataclass

from ..ops import Activation, Elementwise
from .base import BlockKind, BlockPlan, StageSpec, bn_weights, conv_weights
from .bottleneck import resnet_names, shortcut_weights
from .conv import conv_bn_act


@dataclass(frozen=True, kw_only=True)
class BasicStage(StageSpec):
    block: str = "basic"


@dataclass(frozen=True, kw_only=True)
class BasicPlan(BlockPlan):
    @property
    def projection(self) -> bool:
        """A 1x1 conv + BN shortcut, because the shape changes."""
        return self.stride != 1 or self.cin != self.cout


class BasicKind(BlockKind):
    name = "basic"
    about = "3x3 (stride), 3x3 convs with a shortcut (ResNet-18/34's basic block)"
    stage = BasicStage
    module = "BasicBlock"
    example = {"block": "basic", "out": 32, "repeats": 2, "stride": 2, "act": "relu"}

    def parse(self, data, path):
        return {}

    def label(self, b):
        return "Basic 3x3-3x3"

    def wire(self, stage, *, cin, h, w, stride, drop_path):
        return BasicPlan(kind=self.name, cin=cin, cout=stage.out, h=h, w=w, kernel=3,
                         stride=stride, act=stage.act, drop_path=drop_path)

    def ops(self, b):
        yield from conv_bn_act(b.cin, b.cout, 3, b.h, b.w, b.stride, act=b.act)
        yield from conv_bn_act(b.cout, b.cout, 3, b.ho, b.wo, act=None)
        if b.projection:
            yield from conv_bn_act(b.cin, b.cout, 1, b.h, b.w, b.stride, act=None)
        yield Elementwise(b.cout, b.ho, b.wo, op="add")
        yield Activation(b.cout, b.ho, b.wo, name=b.act)

    def weights(self, b):
        out = [conv_weights("conv1", "conv1.0", b.cin, b.cout, 3), bn_weights("bn1", "conv1.1", b.cout),
               conv_weights("conv2", "conv2.0", b.cout, b.cout, 3),
               bn_weights("bn2", "conv2.1", b.cout)]
        return out + shortcut_weights(b)

    def checkpoint_names(self, b, family):
        return resnet_names(family)


KIND = BasicKind()

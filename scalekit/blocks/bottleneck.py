"""``bottleneck``: ResNet v1.5's bottleneck (He et al. 2016, as in torchvision): 1x1 conv-BN-act,
3x3 conv-BN-act carrying the stride, 1x1 conv-BN, a 1x1 conv-BN projection shortcut where the
shape changes, then add and activation. With ``groups`` > 1 the 3x3 conv is grouped: ResNeXt's
aggregated transform (Xie et al. 2017; torchvision ``resnext*``: ``mid`` = width per group x
groups)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import SpecError
from ..fields import MAX_CHANNELS, int_field, join
from ..ops import Activation, Elementwise
from .base import BlockKind, BlockPlan, StageSpec, bn_weights, conv_weights
from .conv import conv_bn_act


@dataclass(frozen=True, kw_only=True)
class BottleneckStage(StageSpec):
    block: str = "bottleneck"
    mid: int  # width of the 3x3 conv (ResNet-50 stage 1: 64)
    groups: int = 1  # groups of the 3x3 conv (ResNeXt-50 32x4d: 32, with mid 128)


@dataclass(frozen=True, kw_only=True)
class BottleneckPlan(BlockPlan):
    mid: int
    groups: int = 1

    @property
    def projection(self) -> bool:
        """A 1x1 conv + BN shortcut, because the shape changes."""
        return self.stride != 1 or self.cin != self.cout


# torchvision's and timm's ResNet name the layers of a Bottleneck / BasicBlock alike
RESNET_NAMES = {"conv1": "conv1", "bn1": "bn1", "conv2": "conv2", "bn2": "bn2", "conv3": "conv3",
                "bn3": "bn3", "proj.conv": "downsample.0", "proj.bn": "downsample.1"}


def shortcut_weights(b) -> list:
    """A residual block's projection shortcut (1x1 conv + BN), registered last, as torchvision's
    and timm's ``downsample``; none when the shape does not change."""
    if not b.projection:
        return []
    return [conv_weights("proj.conv", "shortcut.0", b.cin, b.cout, 1),
            bn_weights("proj.bn", "shortcut.1", b.cout)]


def resnet_names(family: str):
    """RESNET_NAMES for torchvision's and timm's ResNets; None (unknown) for another family."""
    return RESNET_NAMES if family in ("torchvision.resnet", "timm.resnet") else None


def compatible_groups(stage: BottleneckStage, mid: int, rules) -> dict[str, int]:
    """``mid`` (already width-scaled and rounded) made divisible by the stage's groups, under the
    spec's ``scaling.groups`` rule. pycls's group-compatibility adjustment
    (pycls/models/blocks.py adjust_block_compatibility, as its scaler.py applies it): round the
    inner width to the nearest multiple ``m`` (Python's round, ties to even, as pycls), at
    least ``m``.

    - ``fixed_groups``: the number of groups stays (torchvision's ResNeXt family keeps its
      cardinality, 32x4d -> 32x8d); ``m`` = lcm(groups, channel_divisor), so the width stays a
      multiple of the divisor too.
    - ``fixed_group_width``: the width per group stays (pycls AnyNet / RegNet); ``m`` = that
      width (at most the new inner width), and groups = mid / m.

    A stage of one group has nothing to keep compatible."""
    if stage.groups == 1:
        return {"mid": mid}
    if rules.groups == "fixed_groups":
        m = math.lcm(stage.groups, rules.channel_divisor)
        return {"mid": max(m, round(mid / m) * m)}
    gw = min(stage.mid // stage.groups, mid)
    mid = max(gw, round(mid / gw) * gw)
    return {"mid": mid, "groups": mid // gw}


class BottleneckKind(BlockKind):
    name = "bottleneck"
    about = ("1x1, 3x3 (stride; grouped with groups > 1: ResNeXt), 1x1 convs with a shortcut "
             "(ResNet v1.5)")
    stage = BottleneckStage
    module = "Bottleneck"
    width_fields = ("out", "mid")
    inner_fields = ("mid",)
    columns = {"groups": "groups"}
    example = {"block": "bottleneck", "out": 256, "mid": 64, "groups": 4, "repeats": 2,
               "stride": 2, "act": "relu"}

    def parse(self, data, path):
        return {"mid": int_field(data, "mid", path, lo=1, hi=MAX_CHANNELS),
                "groups": int_field(data, "groups", path, 1, lo=1, hi=MAX_CHANNELS)}

    def check(self, stage, cin, path):
        if stage.mid % stage.groups:
            raise SpecError(f"must divide mid ({stage.mid:,}) into equal groups, got "
                            f"{stage.groups:,}", field=join(path, "groups"))

    def scale_width(self, stage, scale, rules):
        out = super().scale_width(stage, scale, rules)
        if "mid" in out:
            out.update(compatible_groups(stage, out["mid"], rules))
        return out

    def label(self, b):
        return f"Bottleneck 1x1-3x3-1x1{f' g{b.groups}' if b.groups > 1 else ''}"

    def wire(self, stage, *, cin, h, w, stride, drop_path):
        return BottleneckPlan(kind=self.name, cin=cin, cout=stage.out, h=h, w=w, kernel=3,
                              stride=stride, act=stage.act, drop_path=drop_path, mid=stage.mid,
                              groups=stage.groups)

    def ops(self, b):
        yield from conv_bn_act(b.cin, b.mid, 1, b.h, b.w, act=b.act)
        yield from conv_bn_act(b.mid, b.mid, 3, b.h, b.w, b.stride, groups=b.groups,
                               act=b.act)  # v1.5: the stride here
        yield from conv_bn_act(b.mid, b.cout, 1, b.ho, b.wo, act=None)
        if b.projection:
            yield from conv_bn_act(b.cin, b.cout, 1, b.h, b.w, b.stride, act=None)
        yield Elementwise(b.cout, b.ho, b.wo, op="add")
        yield Activation(b.cout, b.ho, b.wo, name=b.act)

    def report(self, b):
        return {"groups": b.groups} if b.groups > 1 else {}

    def weights(self, b):
        out = [conv_weights("conv1", "conv1.0", b.cin, b.mid, 1), bn_weights("bn1", "conv1.1", b.mid),
               conv_weights("conv2", "conv2.0", b.mid, b.mid, 3, groups=b.groups),
               bn_weights("bn2", "conv2.1", b.mid),
               conv_weights("conv3", "conv3.0", b.mid, b.cout, 1),
               bn_weights("bn3", "conv3.1", b.cout)]
        return out + shortcut_weights(b)

    def checkpoint_names(self, b, family):
        return resnet_names(family)


KIND = BottleneckKind()

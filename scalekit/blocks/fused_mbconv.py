"""``fused_mbconv``: EfficientNetV2's Fused-MBConv (Tan & Le 2021; torchvision ``FusedMBConv``,
automl ``FusedMBConvBlock``, timm ``EdgeResidual``): the MBConv's 1x1 expansion and depthwise
k x k conv fused into one full k x k conv-BN-act carrying the stride, optional squeeze-excitation,
then a linear 1x1 project conv-BN. With expand 1 the block is that single k x k conv-BN-act (the
input to the output width). Identity shortcut where the shape allows."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SpecError
from ..fields import float_field, join, kernel_field
from ..ops import Elementwise
from .base import BlockKind, BlockPlan, StageSpec, Weights, bn_weights, conv_weights
from .conv import conv_bn_act
from .mbconv import expansion, se_field, se_weights, squeeze_excitation


@dataclass(frozen=True, kw_only=True)
class FusedMBConvStage(StageSpec):
    block: str = "fused_mbconv"
    kernel: int = 3
    expand: float = 1.0  # expanded width = block input channels x expand; 1: one k x k conv
    se: float = 0.0  # squeeze ratio of the expanded width (of the input's channels); 0: no SE


@dataclass(frozen=True, kw_only=True)
class FusedMBConvPlan(BlockPlan):
    mid: int  # expanded width (== cin when expand is 1: then the block is one conv)
    squeeze: int = 0  # squeeze-excitation width; 0 = none
    residual: bool = False  # identity shortcut

    @property
    def single(self) -> bool:
        """expand 1: one k x k conv-BN-act, input to output width."""
        return self.mid == self.cin


class FusedMBConvKind(BlockKind):
    name = "fused_mbconv"
    about = ("Fused-MBConv: k x k expand conv (stride), optional squeeze-excitation, linear 1x1 "
             "project; one k x k conv when expand is 1 (EfficientNetV2)")
    stage = FusedMBConvStage
    module = "FusedMBConv"
    columns = {"expand": "exp", "squeeze": "SE ch"}
    example = {"block": "fused_mbconv", "out": 48, "repeats": 2, "stride": 2, "kernel": 3,
               "expand": 4, "se": 0.25, "act": "silu"}

    def parse(self, data, path):
        expand = float_field(data, "expand", path, 1.0, hi=64)
        if expand < 1:
            raise SpecError(f"must be >= 1 (the k x k conv expands its input; 1: the block is "
                            f"one conv), got {expand:g}", field=join(path, "expand"))
        se = se_field(data, path)
        return {"kernel": kernel_field(data, "kernel", path, 3), "expand": expand, "se": se}

    def check(self, stage, cin, path):
        if stage.se and stage.expand == 1:
            raise SpecError("a Fused-MBConv with expand 1 is a single conv, with no expanded "
                            "width to squeeze: give expand > 1 or se 0", field=join(path, "se"))

    def label(self, b):
        return (f"FusedMBConv{round(b.mid / b.cin, 2):g} k{b.kernel}x{b.kernel}"
                f"{' SE' if b.squeeze else ''}")

    def wire(self, stage, *, cin, h, w, stride, drop_path):
        return FusedMBConvPlan(kind=self.name, cin=cin, cout=stage.out, h=h, w=w,
                               kernel=stage.kernel, stride=stride, act=stage.act,
                               drop_path=drop_path, **expansion(stage, cin, stride))

    def ops(self, b):
        if b.single:
            yield from conv_bn_act(b.cin, b.cout, b.kernel, b.h, b.w, b.stride, act=b.act)
        else:
            yield from conv_bn_act(b.cin, b.mid, b.kernel, b.h, b.w, b.stride, act=b.act)
            if b.squeeze:
                yield from squeeze_excitation(b.mid, b.squeeze, b.act, b.ho, b.wo)
            yield from conv_bn_act(b.mid, b.cout, 1, b.ho, b.wo, act=None)  # linear project
        if b.residual:
            yield Elementwise(b.cout, b.ho, b.wo, op="add")

    def report(self, b):
        return {"expand": round(b.mid / b.cin, 4), "squeeze": b.squeeze}

    def weights(self, b):
        # FusedMBConv.block: Sequential(fused conv, [SE], [project]), as torchvision's
        if b.single:
            return [conv_weights("fused.conv", "block.0.0", b.cin, b.cout, b.kernel),
                    bn_weights("fused.bn", "block.0.1", b.cout)]
        out: list[Weights] = [conv_weights("fused.conv", "block.0.0", b.cin, b.mid, b.kernel),
                              bn_weights("fused.bn", "block.0.1", b.mid)]
        j = 1
        if b.squeeze:
            out += se_weights("block.1", b.mid, b.squeeze)
            j = 2
        return out + [conv_weights("project.conv", f"block.{j}.0", b.mid, b.cout, 1),
                      bn_weights("project.bn", f"block.{j}.1", b.cout)]

    def checkpoint_names(self, b, family):
        if family == "torchvision.efficientnet" and not b.squeeze:  # torchvision has no SE here
            return {w.role: w.path for w in self.weights(b)}
        return None


KIND = FusedMBConvKind()

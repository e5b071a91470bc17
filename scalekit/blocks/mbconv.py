"""``mbconv``: the inverted residual (MobileNetV2, Sandler et al. 2018) with optional
squeeze-excitation (EfficientNet): 1x1 expand conv-BN-act (none when expand is 1), depthwise k x k
conv-BN-act with the stride, SE, linear 1x1 project conv-BN, identity shortcut where the shape
allows."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SpecError
from ..fields import float_field, join, kernel_field
from ..ops import Activation, Conv, Elementwise, Pool
from .base import BlockKind, BlockPlan, StageSpec, Weights, bn_weights, conv_weights
from .conv import conv_bn_act


@dataclass(frozen=True, kw_only=True)
class MBConvStage(StageSpec):
    block: str = "mbconv"
    kernel: int = 3
    expand: float = 1.0  # expanded width = block input channels x expand
    se: float = 0.0  # squeeze ratio: squeeze width = max(1, int(block input channels x se)); 0: no SE


@dataclass(frozen=True, kw_only=True)
class MBConvPlan(BlockPlan):
    mid: int  # expanded width (== cin when expand is 1)
    squeeze: int = 0  # squeeze-excitation width; 0 = none
    residual: bool = False  # identity shortcut


def se_weights(path: str, c: int, squeeze: int) -> list[Weights]:
    """The two biased 1x1 convs of a squeeze-excitation at ``path`` (fc1, fc2)."""
    return [conv_weights("se.reduce", f"{path}.fc1", c, squeeze, 1, bias=True),
            conv_weights("se.expand", f"{path}.fc2", squeeze, c, 1, bias=True)]


# timm's names (timm/models/_efficientnet_blocks.py) for the layers of its two blocks
TIMM_DS = {"dw.conv": "conv_dw", "dw.bn": "bn1", "se.reduce": "se.conv_reduce",
           "se.expand": "se.conv_expand", "project.conv": "conv_pw", "project.bn": "bn2"}
TIMM_IR = {"expand.conv": "conv_pw", "expand.bn": "bn1", "dw.conv": "conv_dw", "dw.bn": "bn2",
           "se.reduce": "se.conv_reduce", "se.expand": "se.conv_expand",
           "project.conv": "conv_pwl", "project.bn": "bn3"}


def squeeze_excitation(c: int, squeeze: int, act: str, h: int, w: int):
    """Global pool -> 1x1 conv (bias) -> act -> 1x1 conv (bias) -> sigmoid -> gate c x h x w."""
    yield Pool("avg", c, h, w)
    yield Conv(c, squeeze, 1, 1, 1, bias=True)
    yield Activation(squeeze, 1, 1, name=act)
    yield Conv(squeeze, c, 1, 1, 1, bias=True)
    yield Activation(c, 1, 1, name="sigmoid")
    yield Elementwise(c, h, w, op="mul")


def se_field(data, path) -> float:
    """``se``: the squeeze-excitation ratio of the block's input width, 0 for none."""
    se = float_field(data, "se", path, 0.0)
    if not 0.0 <= se <= 1.0:
        raise SpecError(f"must be > 0 and <= 1, or 0 for no squeeze-excitation, got {se:g}",
                        field=join(path, "se"))
    return se


def expansion(stage, cin: int, stride: int) -> dict:
    """An inverted residual's (MBConv's, Fused-MBConv's) widths and shortcut: ``mid``, the
    expanded width (TF/torchvision adjust_channels(cin, expand), exact for the integer ratios
    1, 3, 4, 6 every published spec uses; int() otherwise); ``squeeze``, the SE width
    (max(1, int(cin * se)), of the block's input, as TF and torchvision); ``residual``, an
    identity shortcut where the shape allows."""
    return {"mid": cin if stage.expand == 1 else int(cin * stage.expand),
            "squeeze": max(1, int(cin * stage.se)) if stage.se > 0 else 0,
            "residual": stride == 1 and cin == stage.out}


class MBConvKind(BlockKind):
    name = "mbconv"
    about = ("inverted residual: 1x1 expand, depthwise k x k, optional squeeze-excitation, linear "
             "1x1 project (MobileNetV2, EfficientNet)")
    stage = MBConvStage
    module = "MBConv"
    columns = {"expand": "exp", "squeeze": "SE ch"}
    example = {"block": "mbconv", "out": 40, "repeats": 2, "stride": 2, "kernel": 5, "expand": 6,
               "se": 0.25, "act": "silu"}

    def parse(self, data, path):
        return {"kernel": kernel_field(data, "kernel", path, 3),
                "expand": float_field(data, "expand", path, 1.0, lo=0.0, lo_open=True, hi=64),
                "se": se_field(data, path)}

    def check(self, stage, cin, path):
        smallest = cin if stage.repeats == 1 else min(cin, stage.out)  # later blocks take out
        if stage.expand != 1 and int(smallest * stage.expand) < 1:
            raise SpecError(f"{smallest} input channels x {stage.expand:g} leaves no expanded "
                            "channel; expand must give at least 1", field=join(path, "expand"))

    def label(self, b):
        return (f"MBConv{round(b.mid / b.cin, 2):g} k{b.kernel}x{b.kernel}"
                f"{' SE' if b.squeeze else ''}")

    def wire(self, stage, *, cin, h, w, stride, drop_path):
        return MBConvPlan(kind=self.name, cin=cin, cout=stage.out, h=h, w=w, kernel=stage.kernel,
                          stride=stride, act=stage.act, drop_path=drop_path,
                          **expansion(stage, cin, stride))

    def ops(self, b):
        if b.mid != b.cin:
            yield from conv_bn_act(b.cin, b.mid, 1, b.h, b.w, act=b.act)
        yield from conv_bn_act(b.mid, b.mid, b.kernel, b.h, b.w, b.stride, groups=b.mid, act=b.act)
        if b.squeeze:
            yield from squeeze_excitation(b.mid, b.squeeze, b.act, b.ho, b.wo)
        yield from conv_bn_act(b.mid, b.cout, 1, b.ho, b.wo, act=None)  # linear bottleneck
        if b.residual:
            yield Elementwise(b.cout, b.ho, b.wo, op="add")

    def report(self, b):
        return {"expand": round(b.mid / b.cin, 4), "squeeze": b.squeeze}

    def weights(self, b):
        # MBConv.block: Sequential([expand], dw, [SE], project), numbered in the order present
        out: list[Weights] = []
        j = 0
        if b.mid != b.cin:
            out += [conv_weights("expand.conv", "block.0.0", b.cin, b.mid, 1),
                    bn_weights("expand.bn", "block.0.1", b.mid)]
            j = 1
        out += [conv_weights("dw.conv", f"block.{j}.0", b.mid, b.mid, b.kernel, groups=b.mid),
                bn_weights("dw.bn", f"block.{j}.1", b.mid)]
        if b.squeeze:
            j += 1
            out += se_weights(f"block.{j}", b.mid, b.squeeze)
        j += 1
        return out + [conv_weights("project.conv", f"block.{j}.0", b.mid, b.cout, 1),
                      bn_weights("project.bn", f"block.{j}.1", b.cout)]

    def checkpoint_names(self, b, family):
        if family == "torchvision.efficientnet":  # torchvision MBConv: the same Sequential
            return {w.role: w.path for w in self.weights(b)}
        if family == "torchvision.mobilenet_v2" and not b.squeeze:
            # InvertedResidual.conv: [ConvBNReLU expand], ConvBNReLU dw, a bare project conv
            # and a bare BatchNorm
            dw = 0 if b.mid == b.cin else 1
            return {"expand.conv": "conv.0.0", "expand.bn": "conv.0.1",
                    "dw.conv": f"conv.{dw}.0", "dw.bn": f"conv.{dw}.1",
                    "project.conv": f"conv.{dw + 1}", "project.bn": f"conv.{dw + 2}"}
        if family == "timm.efficientnet":
            # no expansion: timm's DepthwiseSeparableConv ('ds'); else InvertedResidual ('ir')
            return TIMM_DS if b.mid == b.cin else TIMM_IR
        return None


KIND = MBConvKind()

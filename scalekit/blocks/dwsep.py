"""``dwsep``: MobileNetV1's depthwise-separable block (Howard et al. 2017): a depthwise k x k
conv-BN-act, then a pointwise 1x1 conv-BN-act."""

from __future__ import annotations

from dataclasses import dataclass

from .base import StageSpec, bn_weights, conv_weights
from .conv import ConvKind, conv_bn_act


@dataclass(frozen=True, kw_only=True)
class DWSepStage(StageSpec):
    block: str = "dwsep"
    kernel: int = 3


class DWSepKind(ConvKind):
    """Fields and wiring as a conv stage's (kernel, stride, act); two convs in the block."""

    name = "dwsep"
    about = "depthwise k x k conv-BN-act, pointwise 1x1 conv-BN-act (MobileNetV1)"
    stage = DWSepStage
    module = "DepthwiseSeparable"
    example = {"block": "dwsep", "out": 64, "repeats": 2, "stride": 2, "kernel": 3, "act": "relu6"}

    def label(self, b):
        return f"DWSep k{b.kernel}x{b.kernel}"

    def ops(self, b):
        yield from conv_bn_act(b.cin, b.cin, b.kernel, b.h, b.w, b.stride, groups=b.cin, act=b.act)
        yield from conv_bn_act(b.cin, b.cout, 1, b.ho, b.wo, act=b.act)

    def weights(self, b):
        return [conv_weights("dw.conv", "0.0", b.cin, b.cin, b.kernel, groups=b.cin),
                bn_weights("dw.bn", "0.1", b.cin),
                conv_weights("pw.conv", "1.0", b.cin, b.cout, 1), bn_weights("pw.bn", "1.1", b.cout)]

    def checkpoint_names(self, b, family):
        if family == "timm.efficientnet":  # timm DepthwiseSeparableConv ('ds' / 'dsa' blocks)
            return {"dw.conv": "conv_dw", "dw.bn": "bn1", "pw.conv": "conv_pw", "pw.bn": "bn2"}
        return None


KIND = DWSepKind()

"""Torch modules: one class per block kind, each built from that kind's block plan.

Each class runs the ops its kind lists (scalekit/blocks/KIND.py ``ops``), in that order; tests
prove the analytic counts equal torch's exactly (params, MACs via FlopCounterMode, acts via
forward hooks). A kind names its class here (``BlockKind.module``); this module is imported only
when a model is built. A class whose last BatchNorm ends a residual branch has
``zero_init_residual()`` (build.init_weights calls it; nothing tests a class by name).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .blocks import BlockPlan

_ACTS: dict[str, Callable[[], nn.Module]] = {
    "relu": lambda: nn.ReLU(inplace=True),
    "relu6": lambda: nn.ReLU6(inplace=True),
    "silu": lambda: nn.SiLU(inplace=True),
}


def activation(name: str) -> nn.Module:
    return _ACTS[name]()


class ConvBNAct(nn.Sequential):
    """k x k conv (padding k // 2, no bias) -> BatchNorm -> optional activation."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1,
                 act: str | None = "relu"):
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if act:
            layers.append(activation(act))
        super().__init__(*layers)


class StochasticDepth(nn.Module):
    """Drops the residual branch per sample during training (Huang et al. 2016); identity in eval."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class SqueezeExcitation(nn.Module):
    """Global pool -> 1x1 conv (bias) -> act -> 1x1 conv (bias) -> sigmoid -> scale."""

    def __init__(self, channels: int, squeeze: int, act: str):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.act = activation(act)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))
        return x * s


class ConvBlock(ConvBNAct):
    def __init__(self, p: BlockPlan):
        super().__init__(p.cin, p.cout, p.kernel, p.stride, act=p.act)


class MaxPool(nn.MaxPool2d):
    def __init__(self, p: BlockPlan):
        super().__init__(p.kernel, p.stride, p.kernel // 2)


class DepthwiseSeparable(nn.Sequential):
    """MobileNetV1: depthwise k x k conv-BN-act, pointwise 1x1 conv-BN-act."""

    def __init__(self, p: BlockPlan):
        super().__init__(
            ConvBNAct(p.cin, p.cin, p.kernel, p.stride, groups=p.cin, act=p.act),
            ConvBNAct(p.cin, p.cout, 1, act=p.act),
        )


class _Residual(nn.Module):
    """A sequence of layers (``self.block``) with an identity shortcut where the plan says
    (MBConv, Fused-MBConv): stochastic depth on the branch, zero-init of its last BatchNorm."""

    def __init__(self, p: BlockPlan, layers: list[nn.Module]):
        super().__init__()
        self.block = nn.Sequential(*layers)
        self.residual = p.residual
        self.drop_path = StochasticDepth(p.drop_path) if p.residual and p.drop_path else None

    def zero_init_residual(self) -> None:
        """Zero the last BatchNorm's gamma, so the block starts as the identity."""
        if self.residual:
            nn.init.zeros_(self.block[-1][1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        if self.residual:
            if self.drop_path is not None:
                y = self.drop_path(y)
            y = y + x
        return y


class MBConv(_Residual):
    """Inverted residual (MobileNetV2) with optional squeeze-excitation (EfficientNet)."""

    def __init__(self, p: BlockPlan):
        layers: list[nn.Module] = []
        if p.mid != p.cin:
            layers.append(ConvBNAct(p.cin, p.mid, 1, act=p.act))
        layers.append(ConvBNAct(p.mid, p.mid, p.kernel, p.stride, groups=p.mid, act=p.act))
        if p.squeeze:
            layers.append(SqueezeExcitation(p.mid, p.squeeze, p.act))
        layers.append(ConvBNAct(p.mid, p.cout, 1, act=None))  # linear bottleneck
        super().__init__(p, layers)


class FusedMBConv(_Residual):
    """EfficientNetV2's Fused-MBConv: k x k expand conv (stride) -> [SE] -> 1x1 project, or one
    k x k conv when expand is 1; identity shortcut where the shape allows."""

    def __init__(self, p: BlockPlan):
        if p.single:
            layers: list[nn.Module] = [ConvBNAct(p.cin, p.cout, p.kernel, p.stride, act=p.act)]
        else:
            layers = [ConvBNAct(p.cin, p.mid, p.kernel, p.stride, act=p.act)]
            if p.squeeze:
                layers.append(SqueezeExcitation(p.mid, p.squeeze, p.act))
            layers.append(ConvBNAct(p.mid, p.cout, 1, act=None))  # linear project
        super().__init__(p, layers)


class BasicBlock(nn.Module):
    """ResNet's basic block: 3x3 (stride here) -> 3x3, projection shortcut if needed."""

    def __init__(self, p: BlockPlan):
        super().__init__()
        self.conv1 = ConvBNAct(p.cin, p.cout, 3, p.stride, act=p.act)
        self.conv2 = ConvBNAct(p.cout, p.cout, 3, act=None)
        self.shortcut = ConvBNAct(p.cin, p.cout, 1, p.stride, act=None) if p.projection else None
        self.drop_path = StochasticDepth(p.drop_path) if p.drop_path else None
        self.act = activation(p.act)

    def zero_init_residual(self) -> None:
        """Zero the last BatchNorm's gamma, so the block starts as its shortcut."""
        nn.init.zeros_(self.conv2[1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.conv1(x))
        if self.drop_path is not None:
            y = self.drop_path(y)
        return self.act(y + (self.shortcut(x) if self.shortcut is not None else x))


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck: 1x1 -> 3x3 (stride here; grouped for ResNeXt) -> 1x1, projection
    shortcut if needed."""

    def __init__(self, p: BlockPlan):
        super().__init__()
        self.conv1 = ConvBNAct(p.cin, p.mid, 1, act=p.act)
        self.conv2 = ConvBNAct(p.mid, p.mid, 3, p.stride, groups=p.groups, act=p.act)
        self.conv3 = ConvBNAct(p.mid, p.cout, 1, act=None)
        self.shortcut = ConvBNAct(p.cin, p.cout, 1, p.stride, act=None) if p.projection else None
        self.drop_path = StochasticDepth(p.drop_path) if p.drop_path else None
        self.act = activation(p.act)

    def zero_init_residual(self) -> None:
        """Zero the last BatchNorm's gamma, so the block starts as its shortcut."""
        nn.init.zeros_(self.conv3[1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv3(self.conv2(self.conv1(x)))
        if self.drop_path is not None:
            y = self.drop_path(y)
        return self.act(y + (self.shortcut(x) if self.shortcut is not None else x))


class Classifier(nn.Module):
    """Global average pool -> flatten -> dropout -> linear."""

    def __init__(self, p: BlockPlan):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(p.dropout) if p.dropout else nn.Identity()
        self.fc = nn.Linear(p.cin, p.cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(torch.flatten(self.pool(x), 1)))

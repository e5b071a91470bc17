"""Plan -> torch.nn.Module. Each block's class is the one its kind names (scalekit.modules); the
constructor never branches on a kind."""

from __future__ import annotations

import math

import torch
from torch import nn

from . import modules
from .blocks import BlockPlan, kind
from .plan import NetworkPlan, expand
from .spec import Spec


def block_module(b: BlockPlan) -> nn.Module:
    """The torch module of one block: its kind's class, built from the block's plan."""
    return getattr(modules, kind(b.kind).module)(b)


class Network(nn.Module):
    """stem -> stage1..N -> head, each an nn.Sequential of blocks named as in the plan."""

    def __init__(self, plan: NetworkPlan):
        super().__init__()
        self.name = plan.name
        self.resolution = plan.resolution
        self.stages = nn.Sequential()
        for st in plan.stages:
            self.stages.add_module(st.name, nn.Sequential(*map(block_module, st.blocks)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(x)


def init_weights(model: nn.Module, zero_init_residual: bool = False) -> None:
    """The usual ImageNet init (torchvision's ResNet / MobileNet / EfficientNet choices):
    kaiming-normal (fan_out) convs, BN gamma 1 / beta 0, linear uniform(+-1/sqrt(out)), zero biases.
    ``zero_init_residual`` zeroes the last BN gamma of each residual branch (Goyal et al. 2017)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            r = 1.0 / math.sqrt(m.out_features)
            nn.init.uniform_(m.weight, -r, r)
            nn.init.zeros_(m.bias)
    if zero_init_residual:
        for m in model.modules():
            if hasattr(m, "zero_init_residual"):
                m.zero_init_residual()


def build_model(spec_or_plan: Spec | NetworkPlan, *, zero_init_residual: bool = False,
                device: str | torch.device | None = None) -> Network:
    """Build the network. On the 'meta' device no memory is allocated (for counting)."""
    plan = spec_or_plan if isinstance(spec_or_plan, NetworkPlan) else expand(spec_or_plan)
    if device is not None and torch.device(device).type == "meta":
        with torch.device("meta"):
            return Network(plan)
    model = Network(plan)
    init_weights(model, zero_init_residual=zero_init_residual)
    if device is not None:
        model = model.to(device)
    return model

"""The plan: the wiring of every block, computed once, in one place.

``expand(spec)`` turns a spec into stages of block plans (in/out channels, stride, kernel, and
each kind's own widths: expanded width, squeeze width, residual, ...). Each block's wiring comes
from its kind (scalekit/blocks); the analytic counter (counting.py), the memory estimate
(memory.py) and the torch builder (build.py) read these plans and nothing else, so they cannot
drift apart. No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from .blocks import BlockPlan, kind
from .blocks.classifier import KIND as CLASSIFIER
from .blocks.conv import KIND as CONV
from .blocks.maxpool import KIND as MAXPOOL
from .spec import Spec


@dataclass(frozen=True)
class StagePlan:
    name: str  # "stem", "stage1", ..., "head"
    blocks: tuple[BlockPlan, ...]

    @property
    def first(self) -> BlockPlan:
        return self.blocks[0]

    @property
    def last(self) -> BlockPlan:
        return self.blocks[-1]


@dataclass(frozen=True)
class NetworkPlan:
    name: str
    resolution: tuple[int, int]
    in_channels: int
    num_classes: int
    stages: tuple[StagePlan, ...]
    batchnorm: tuple[float, float] = (1e-5, 0.1)  # every BatchNorm's (eps, momentum)
    checkpoints: tuple[tuple[str, str], ...] = ()  # (library, family): the spec's checkpoints

    def blocks(self) -> Iterator[BlockPlan]:
        for st in self.stages:
            yield from st.blocks


def expand(spec: Spec, resolution: int | tuple[int, int] | None = None) -> NetworkPlan:
    """Compute every block's wiring for ``spec`` at ``resolution`` (default: the spec's)."""
    if resolution is None:
        resolution = spec.resolution
    h, w = (resolution, resolution) if isinstance(resolution, int) else resolution
    stages: list[StagePlan] = []

    stem = spec.stem
    b = CONV.plan(spec.in_channels, stem.out, stem.kernel, h, w, stem.stride, stem.act)
    blocks = [b]
    if stem.pool:
        blocks.append(MAXPOOL.plan(stem.out, b.ho, b.wo, stem.pool.kernel, stem.pool.stride))
    stages.append(StagePlan("stem", tuple(blocks)))
    c, h, w = blocks[-1].cout, blocks[-1].ho, blocks[-1].wo

    n_blocks = spec.depth
    idx = 0
    for i, st in enumerate(spec.stages, start=1):
        k = kind(st.block)
        blocks = []
        for r in range(st.repeats):
            # stochastic depth grows linearly with block index (torchvision / timm convention)
            dp = spec.drop_path * idx / n_blocks if n_blocks else 0.0
            idx += 1
            bp = k.wire(st, cin=c, h=h, w=w, stride=st.stride if r == 0 else 1, drop_path=dp)
            blocks.append(bp)
            c, h, w = bp.cout, bp.ho, bp.wo
        stages.append(StagePlan(st.name or f"stage{i}", tuple(blocks)))

    head = spec.head
    blocks = []
    if head.conv:
        blocks.append(CONV.plan(c, head.conv, 1, h, w, 1, head.act))
        c = head.conv
    blocks.append(CLASSIFIER.plan(c, spec.num_classes, h, w, head.dropout))
    stages.append(StagePlan("head", tuple(blocks)))
    size = (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
    return NetworkPlan(spec.name, size, spec.in_channels, spec.num_classes, tuple(stages),
                       batchnorm=(spec.batchnorm.eps, spec.batchnorm.momentum),
                       checkpoints=tuple(sorted(spec.checkpoints.items())))

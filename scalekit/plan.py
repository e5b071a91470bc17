"""The plan: the wiring of every block, computed once, in one place.

``expand(spec)`` turns a spec into stages of :class:`BlockPlan` records (in/out channels, stride,
kernel, expanded width, SE width, residual, input size). The analytic counter (counting.py) and the
torch builder (build.py) both read these records and nothing else, so they cannot drift apart.
No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass

from .spec import Spec

# Every block kind a plan can contain. counting.COUNTERS and blocks.MODULES must cover each one
# (tests/test_registry.py fails when a kind lacks its complexity function or its torch class).
KINDS = ("conv", "maxpool", "dwsep", "mbconv", "bottleneck", "classifier")


def out_size(size: int, kernel: int, stride: int) -> int:
    """Output size of a conv or pool with padding kernel // 2 (odd kernel): (H - 1) // s + 1."""
    pad = kernel // 2
    return (size + 2 * pad - kernel) // stride + 1


@dataclass(frozen=True)
class BlockPlan:
    kind: str
    cin: int
    cout: int
    h: int  # input height
    w: int  # input width
    kernel: int = 1
    stride: int = 1
    act: str = "relu"
    mid: int = 0  # mbconv: expanded width (== cin when expand is 1); bottleneck: 3x3 width
    se: int = 0  # mbconv: squeeze width; 0 = no squeeze-excitation
    residual: bool = False  # mbconv / bottleneck: identity shortcut; bottleneck with a projection
    drop_path: float = 0.0  # stochastic depth rate of this block (training only)
    dropout: float = 0.0  # classifier: dropout before the linear layer

    @property
    def ho(self) -> int:
        return 1 if self.kind == "classifier" else out_size(self.h, self.kernel, self.stride)

    @property
    def wo(self) -> int:
        return 1 if self.kind == "classifier" else out_size(self.w, self.kernel, self.stride)

    @property
    def projection(self) -> bool:
        """bottleneck: a 1x1 conv + BN shortcut, because the shape changes."""
        return self.kind == "bottleneck" and (self.stride != 1 or self.cin != self.cout)


@dataclass(frozen=True)
class StagePlan:
    name: str  # "stem", "stage1", ..., "head"
    label: str  # what the block is, for tables: "MBConv6 k5x5 SE0.25"
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

    def blocks(self):
        for st in self.stages:
            yield from st.blocks


def _label(st) -> str:
    if st.block == "mbconv":
        e = f"{st.expand:g}"
        s = f" SE{st.se:g}" if st.se > 0 else ""
        return f"MBConv{e} k{st.kernel}x{st.kernel}{s}"
    if st.block == "bottleneck":
        return "Bottleneck 1x1-3x3-1x1"
    if st.block == "dwsep":
        return f"DWSep k{st.kernel}x{st.kernel}"
    return f"Conv k{st.kernel}x{st.kernel}"


def expand(spec: Spec, resolution: int | tuple[int, int] | None = None) -> NetworkPlan:
    """Compute every block's wiring for ``spec`` at ``resolution`` (default: the spec's)."""
    if resolution is None:
        resolution = spec.resolution
    h, w = (resolution, resolution) if isinstance(resolution, int) else resolution
    stages: list[StagePlan] = []

    stem = spec.stem
    b = BlockPlan("conv", spec.in_channels, stem.out, h, w, kernel=stem.kernel, stride=stem.stride,
                  act=stem.act)
    blocks = [b]
    if stem.pool:
        blocks.append(BlockPlan("maxpool", stem.out, stem.out, b.ho, b.wo, kernel=stem.pool.kernel,
                                stride=stem.pool.stride))
    label = f"Conv k{stem.kernel}x{stem.kernel}" + (
        f" + MaxPool k{stem.pool.kernel}x{stem.pool.kernel}" if stem.pool else "")
    stages.append(StagePlan("stem", label, tuple(blocks)))
    c, h, w = blocks[-1].cout, blocks[-1].ho, blocks[-1].wo

    n_blocks = spec.depth
    idx = 0
    for i, st in enumerate(spec.stages, start=1):
        blocks = []
        for r in range(st.repeats):
            stride = st.stride if r == 0 else 1
            # stochastic depth grows linearly with block index (torchvision / timm convention)
            dp = spec.drop_path * idx / n_blocks if n_blocks else 0.0
            idx += 1
            if st.block == "mbconv":
                # expanded width: TF/torchvision adjust_channels(cin, expand) is exact for the
                # integer ratios (1, 3, 4, 6) every published spec uses; int() otherwise.
                mid = c if st.expand == 1 else int(c * st.expand)
                se = max(1, int(c * st.se)) if st.se > 0 else 0
                bp = BlockPlan("mbconv", c, st.out, h, w, kernel=st.kernel, stride=stride,
                               act=st.act, mid=mid, se=se,
                               residual=(stride == 1 and c == st.out), drop_path=dp)
            elif st.block == "bottleneck":
                bp = BlockPlan("bottleneck", c, st.out, h, w, kernel=3, stride=stride, act=st.act,
                               mid=st.mid, residual=True, drop_path=dp)
            else:  # conv, dwsep
                bp = BlockPlan(st.block, c, st.out, h, w, kernel=st.kernel, stride=stride,
                               act=st.act)
            blocks.append(bp)
            c, h, w = bp.cout, bp.ho, bp.wo
        stages.append(StagePlan(st.name or f"stage{i}", _label(st), tuple(blocks)))

    head = spec.head
    blocks = []
    if head.conv:
        blocks.append(BlockPlan("conv", c, head.conv, h, w, kernel=1, stride=1, act=head.act))
        c = head.conv
    blocks.append(BlockPlan("classifier", c, spec.num_classes, h, w, dropout=head.dropout))
    label = ("Conv1x1 + " if head.conv else "") + "Pool + FC"
    stages.append(StagePlan("head", label, tuple(blocks)))
    return NetworkPlan(spec.name, (resolution, resolution) if isinstance(resolution, int)
                       else tuple(resolution), spec.in_channels, spec.num_classes, tuple(stages))

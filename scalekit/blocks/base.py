"""What a block kind is: its stage fields, its wiring, its forward pass as ops, its report columns.

A kind is one subclass of :class:`BlockKind` in one module of this package, registered in
``blocks/__init__.py``; its torch class lives in scalekit/modules.py (imported lazily, only when a
model is built). Nothing outside a kind's module tests a kind by name. No torch here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterator

from ..ops import Op, out_size


@dataclass(frozen=True, kw_only=True)
class StageSpec:
    """The fields every stage has: ``repeats`` blocks of one kind, of which only the first has
    ``stride`` and changes the channel count to ``out``. Each kind subclasses it with its own
    fields (kernel, expansion, ...)."""

    block: str
    out: int
    repeats: int = 1
    stride: int = 1
    act: str = "relu"
    name: str = ""


@dataclass(frozen=True, kw_only=True)
class BlockPlan:
    """One block's wiring: what every kind has. Kinds subclass it with their own widths."""

    kind: str
    cin: int
    cout: int
    h: int  # input height
    w: int  # input width
    kernel: int = 1  # the kernel of the conv that carries the stride (the output size follows it)
    stride: int = 1
    act: str = "relu"
    drop_path: float = 0.0  # stochastic depth rate of this block (training only)

    @property
    def ho(self) -> int:
        return out_size(self.h, self.kernel, self.stride)

    @property
    def wo(self) -> int:
        return out_size(self.w, self.kernel, self.stride)


ScaleChannels = Callable[[int], int]


@dataclass(frozen=True)
class Weights:
    """One layer's tensors as a state_dict holds them: a conv (weight, and bias if ``bias``), a
    BatchNorm (weight, bias, running_mean, running_var, num_batches_tracked) or a linear layer
    (weight, bias). ``role`` names the layer in its block in the kind's own words (``dw.conv``,
    ``project.bn``); ``path`` is where the kind's torch module holds it, relative to the block."""

    role: str
    path: str
    layer: str  # "conv" | "bn" | "linear"
    shape: tuple[int, ...]  # conv: (out, in / groups, k, k); bn: (channels,); linear: (out, in)
    bias: bool = False


def conv_weights(role: str, path: str, cin: int, cout: int, kernel: int, groups: int = 1,
                 bias: bool = False) -> Weights:
    return Weights(role, path, "conv", (cout, cin // groups, kernel, kernel), bias)


def bn_weights(role: str, path: str, c: int) -> Weights:
    return Weights(role, path, "bn", (c,))


class BlockKind:
    """A block kind. Subclasses set the class attributes and implement the methods that raise
    here; tests/test_registry.py checks every registered kind against torch."""

    name: ClassVar[str]  # the spec's ``block:`` value and the plan's ``kind``
    about: ClassVar[str] = ""  # one line for docs: what the block is, and whose it is
    stage: ClassVar[type[StageSpec] | None] = None  # its stage dataclass; None: stem/head only
    module: ClassVar[str]  # its torch class in scalekit.modules
    width_fields: ClassVar[tuple[str, ...]] = ("out",)  # stage fields width scaling multiplies
    # the fields of its inner width (a bottleneck's mid): what width scaling touches under the
    # spec's ``scaling.width_channels: inner`` (torchvision's Wide ResNet convention)
    inner_fields: ClassVar[tuple[str, ...]] = ()
    columns: ClassVar[dict[str, str]] = {}  # report columns it fills: key -> table header
    example: ClassVar[dict[str, Any]] = {}  # a stage of this kind as YAML data (docs, tests)

    # --- the stage: fields, validation, scaling ----------------------------------------------

    def parse(self, data: dict, path: str) -> dict[str, Any]:
        """The kind's own stage fields from a YAML mapping (the common ones are parsed by the
        spec loader), validated one by one (raise SpecError naming the field)."""
        raise NotImplementedError(f"{type(self).__name__}.parse")

    def check(self, stage: StageSpec, cin: int, path: str) -> None:
        """Rules across fields and across stages (``cin``: the stage's input channels), for
        loaded and scaled specs alike; raise SpecError naming the field. Default: none."""


    def scale_width(self, stage: StageSpec, scale: ScaleChannels, rules: Any) -> dict[str, Any]:
        """The stage's fields after width scaling (``scale`` applies the spec's rounding rule to
        one count; ``rules`` are the spec's ``scaling:`` rules): each of :attr:`width_fields`
        that is set, or only the :attr:`inner_fields` under ``width_channels: inner``."""
        fields = self.width_fields if rules.width_channels == "all" else self.inner_fields
        return {f: scale(getattr(stage, f)) for f in fields if getattr(stage, f)}

    def channels(self, stage: StageSpec) -> dict[str, int]:
        """The stage's channel counts by field, for the spec's size limits."""
        return {f: getattr(stage, f) for f in self.width_fields}

    # --- one block: wiring, forward pass, label and report columns --------------------------

    def wire(self, stage: StageSpec, *, cin: int, h: int, w: int, stride: int,
             drop_path: float) -> BlockPlan:
        """The plan of one block of ``stage`` taking ``cin`` x h x w with ``stride``."""
        raise NotImplementedError(f"{type(self).__name__}.wire")

    def ops(self, b: BlockPlan) -> Iterator[Op]:
        """The block's forward pass as primitive ops, in the order its torch module runs them."""
        raise NotImplementedError(f"{type(self).__name__}.ops")

    def label(self, b: BlockPlan) -> str:
        """What the block is, in a few words for reports: ``MBConv6 k5x5 SE``."""
        raise NotImplementedError(f"{type(self).__name__}.label")

    def report(self, b: BlockPlan) -> dict[str, Any]:
        """Values of :attr:`columns` for a stage whose first block is ``b``."""
        return {}

    # --- checkpoints: the block's tensors and what torchvision / timm call them --------------

    def weights(self, b: BlockPlan) -> list[Weights]:
        """The block's layers that hold tensors, in the order its torch module registers them
        (so, in state_dict order). Default: none (pooling)."""
        return []

    def checkpoint_names(self, b: BlockPlan, family: str) -> dict[str, str] | None:
        """role -> path relative to the block, as the checkpoints of ``family`` name the layers
        of this block (``family``: one of scalekit.layouts.FAMILIES, e.g. ``torchvision.resnet``).
        None: that family has no such block. Default: None."""
        return None


def stage_fields(cls: type[StageSpec]) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]

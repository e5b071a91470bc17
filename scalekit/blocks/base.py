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


class BlockKind:
    """A block kind. Subclasses set the class attributes and implement the methods that raise
    here; tests/test_registry.py checks every registered kind against torch."""

    name: ClassVar[str]  # the spec's ``block:`` value and the plan's ``kind``
    about: ClassVar[str] = ""  # one line for docs: what the block is, and whose it is
    stage: ClassVar[type[StageSpec] | None] = None  # its stage dataclass; None: stem/head only
    module: ClassVar[str]  # its torch class in scalekit.modules
    width_fields: ClassVar[tuple[str, ...]] = ("out",)  # stage fields width scaling multiplies
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


    def scale_width(self, stage: StageSpec, scale: ScaleChannels) -> dict[str, int]:
        """The stage's channel fields after width scaling (``scale`` applies the spec's rounding
        rule to one count): each of :attr:`width_fields` that is set."""
        return {f: scale(getattr(stage, f)) for f in self.width_fields if getattr(stage, f)}

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


def stage_fields(cls: type[StageSpec]) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]

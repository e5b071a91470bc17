"""The block registry: every kind of block a network can contain, one module each.

A kind (see :class:`BlockKind`) owns, in its module: its stage fields and their validation, the
channel fields width scaling touches, its wiring (what one block computes from its input), its
forward pass as primitive ops (from which every count follows), its report columns, its tensors
and what torchvision's and timm's checkpoints call them (scalekit/layouts.py), and the name of
its torch class in scalekit/modules.py. The spec loader, the planner, the counters, the
builder, the memory estimate and the reports loop over this registry; none of them tests a kind
by name, and an unknown kind is an error, never a fallthrough.

Adding a kind: a module here, a torch class in scalekit/modules.py, one entry in :data:`KINDS`.
No torch here.
"""

from __future__ import annotations

from ..errors import ScalekitError
from . import basic, bottleneck, classifier, conv, dwsep, fused_mbconv, maxpool, mbconv
from .base import BlockKind, BlockPlan, StageSpec

KINDS: dict[str, BlockKind] = {k.name: k for k in (
    conv.KIND, dwsep.KIND, mbconv.KIND, fused_mbconv.KIND, basic.KIND, bottleneck.KIND,
    maxpool.KIND, classifier.KIND)}



def stage_kinds() -> tuple[str, ...]:
    """The kinds a spec's stage may use (``block:``), in registry order."""
    return tuple(n for n, k in KINDS.items() if k.stage is not None)


class UnknownKind(ScalekitError):
    """A block kind that no module registers."""


def kind(name: str) -> BlockKind:
    """The registered kind ``name``; :class:`UnknownKind` otherwise."""
    try:
        return KINDS[name]
    except (KeyError, TypeError):
        raise UnknownKind(f"unknown block kind {name!r} (registered: {', '.join(KINDS)})") from None


__all__ = ["KINDS", "BlockKind", "BlockPlan", "StageSpec", "UnknownKind", "kind", "stage_kinds"]

"""Checkpoint layouts: what the state_dicts of torchvision's and timm's models call each tensor of
a scalekit network, so that a built model loads their official checkpoints by name. No torch.

Three layers of naming, each where it belongs:

- a block kind lists its layers that hold tensors, in registration order, each named by its role
  in the block (``BlockKind.weights``: ``dw.conv``, ``se.reduce``, ``project.bn``, with the path
  its torch module has), and says what each checkpoint *family* calls those roles inside the
  block (``BlockKind.checkpoint_names``: timm's InvertedResidual calls ``dw.conv`` ``conv_dw``);
- a family (:data:`FAMILY_NAMES`) names where the blocks sit in the network (torchvision's
  EfficientNet: stage s, block i -> ``features.{s}.{i}``; MobileNetV2 numbers blocks over all
  stages; ResNet: ``layer{s}.{i}``) and the stem's, head's and classifier's layers;
- a spec says which family of each library its checkpoints are (``checkpoints:
  {torchvision: efficientnet, timm: efficientnet}``): that is data, like the rounding rules.

:func:`key_map` joins them into one list of keys, in state_dict order: scalekit's own key, the
layout's key and the tensor's shape. The torch side (build.py) renames state_dicts with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .blocks import kind
from .blocks.base import Weights
from .errors import ScalekitError

if TYPE_CHECKING:
    from .plan import NetworkPlan

LAYOUTS = ("scalekit", "torchvision", "timm")
"""``scalekit``: the module's own names (``stages.stage1.0.block.0.0.weight``); ``torchvision``
and ``timm``: the names of that library's model of the spec's family."""

BN_TENSORS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


@dataclass(frozen=True)
class Family:
    """Where one library's model of a family keeps the network-level layers. Names are format
    strings over ``s`` (stage, from 1), ``s0`` (stage, from 0), ``i`` (block in its stage, from
    0), ``n`` (block over all stages, from 1), ``after_stages`` (stages + 1) and
    ``after_blocks`` (blocks + 1)."""

    block: str  # a stage block's prefix
    stem: dict[str, str]  # the stem conv's roles (conv, bn) -> names
    head: dict[str, str]  # the head conv's roles -> names; empty: the family has no head conv
    classifier: str  # the linear classifier


FAMILY_NAMES: dict[str, Family] = {
    # torchvision/models/efficientnet.py: features = [stem, stage 1..S, head], classifier =
    # [Dropout, Linear] (B0-B7 and V2)
    "torchvision.efficientnet": Family(
        block="features.{s}.{i}", stem={"conv": "features.0.0", "bn": "features.0.1"},
        head={"conv": "features.{after_stages}.0", "bn": "features.{after_stages}.1"},
        classifier="classifier.1"),
    # torchvision/models/mobilenetv2.py: features = [stem, every block, head], numbered flat
    "torchvision.mobilenet_v2": Family(
        block="features.{n}", stem={"conv": "features.0.0", "bn": "features.0.1"},
        head={"conv": "features.{after_blocks}.0", "bn": "features.{after_blocks}.1"},
        classifier="classifier.1"),
    # torchvision/models/resnet.py (ResNet, ResNeXt, Wide ResNet)
    "torchvision.resnet": Family(block="layer{s}.{i}", stem={"conv": "conv1", "bn": "bn1"},
                                 head={}, classifier="fc"),
    # timm/models/efficientnet.py's EfficientNet class (efficientnet_*, mobilenetv1_*,
    # mobilenetv2_*): conv_stem, bn1, blocks.{stage}.{block}, conv_head, bn2, classifier
    "timm.efficientnet": Family(block="blocks.{s0}.{i}", stem={"conv": "conv_stem", "bn": "bn1"},
                                head={"conv": "conv_head", "bn": "bn2"}, classifier="classifier"),
    # timm/models/resnet.py: the same names as torchvision's
    "timm.resnet": Family(block="layer{s}.{i}", stem={"conv": "conv1", "bn": "bn1"}, head={},
                          classifier="fc"),
}

FAMILIES: dict[str, tuple[str, ...]] = {}
"""library -> the families a spec's ``checkpoints:`` may name for it."""
for _name in FAMILY_NAMES:
    _lib, _family = _name.split(".", 1)
    FAMILIES[_lib] = FAMILIES.get(_lib, ()) + (_family,)


class LayoutError(ScalekitError):
    """A network that a layout cannot name (no such family for the spec, or a block the family
    has no name for)."""


@dataclass(frozen=True)
class Key:
    """One tensor of a state_dict: scalekit's key, the layout's key, the shape."""

    native: str
    name: str
    shape: tuple[int, ...]


def tensors(prefix: str, w: Weights) -> list[tuple[str, tuple[int, ...]]]:
    """(key, shape) of each tensor of layer ``w`` at module path ``prefix``, in state_dict order."""
    if w.layer == "bn":
        c = w.shape
        return [(f"{prefix}.{t}", () if t == "num_batches_tracked" else c) for t in BN_TENSORS]
    out = [(f"{prefix}.weight", w.shape)]
    if w.bias or w.layer == "linear":
        out.append((f"{prefix}.bias", (w.shape[0],)))
    return out


def family_of(plan: NetworkPlan, layout: str) -> str | None:
    """The checkpoint family (``torchvision.efficientnet``) the spec names for ``layout``; None
    for ``scalekit``. Raises :class:`LayoutError` if the spec names none."""
    if layout not in LAYOUTS:
        raise LayoutError(f"unknown layout {layout!r} (valid: {', '.join(LAYOUTS)})")
    if layout == "scalekit":
        return None
    named = dict(plan.checkpoints)
    if layout not in named:
        have = ", ".join(f"{lib} ({fam})" for lib, fam in named.items()) or "none"
        raise LayoutError(f"{plan.name} names no {layout} checkpoint layout (its spec's "
                          f"checkpoints: {have}; layouts: scalekit"
                          f"{''.join(', ' + lib for lib in named)})")
    return f"{layout}.{named[layout]}"


def key_map(plan: NetworkPlan, layout: str = "scalekit") -> list[Key]:
    """Every tensor of the network ``plan`` builds, in state_dict order: its key in scalekit's
    module, its key in ``layout`` (see :data:`LAYOUTS`) and its shape. Raises
    :class:`LayoutError` where the layout cannot name the network."""
    family = family_of(plan, layout)
    names = FAMILY_NAMES[family] if family else None
    stages = plan.stages[1:-1]
    where = {"after_stages": len(stages) + 1,
             "after_blocks": sum(len(s.blocks) for s in stages) + 1}
    out: list[Key] = []
    n = 0
    last = len(plan.stages) - 1
    for si, st in enumerate(plan.stages):
        for i, b in enumerate(st.blocks):
            k = kind(b.kind)
            layers = k.weights(b)
            if not layers:
                continue
            if names is None:
                rename = {w.role: f"stages.{st.name}.{i}.{w.path}" for w in layers}
            elif si == 0:  # the stem conv (a max-pool holds no tensors)
                rename = names.stem
            elif si == last and i == len(st.blocks) - 1:
                rename = {"fc": names.classifier}
            elif si == last:  # the head conv
                if not names.head:
                    raise LayoutError(f"{family}'s layout has no head conv; {plan.name} has one "
                                      f"({b.cout} channels)")
                rename = names.head
            else:
                n += 1
                inner = k.checkpoint_names(b, family)
                if inner is None:
                    raise LayoutError(f"{family}'s layout has no name for {st.name}'s block {i} "
                                      f"of {plan.name} ({k.label(b)})")
                prefix = names.block.format(s=si, s0=si - 1, i=i, n=n, **where)
                rename = {r: f"{prefix}.{p}" for r, p in inner.items()}
            for w in layers:
                if w.role not in rename:
                    raise LayoutError(f"{family or 'scalekit'}'s layout has no name for the "
                                      f"{w.role} of {st.name}'s block {i} of {plan.name}")
                new = rename[w.role].format(**where)
                for (native, shape), (name, _) in zip(tensors(f"stages.{st.name}.{i}.{w.path}", w),
                                                      tensors(new, w)):
                    out.append(Key(native, name, shape))
    seen: set[str] = set()
    for key in out:
        if key.name in seen:
            raise LayoutError(f"{family}'s layout names two tensors of {plan.name} {key.name}")
        seen.add(key.name)
    return out


__all__ = ["BN_TENSORS", "FAMILIES", "FAMILY_NAMES", "Family", "Key", "LAYOUTS", "LayoutError",
           "family_of", "key_map", "tensors"]

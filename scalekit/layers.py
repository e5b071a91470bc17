"""A network layer by layer: every conv, linear and pool, from the ops the counts are made of.

``scalekit info SPEC --layers`` lists these rows (torchinfo's habit, without torch). Each block's
forward pass is its kind's ops (:meth:`scalekit.blocks.BlockKind.ops`, the ops
:func:`scalekit.counting.count_ops` counts); a row is one *layer* op (a conv, a linear layer, a
pool) together with the ops that follow it in its block up to the next layer op: its BatchNorm,
its activation, the squeeze-excitation gate's multiply, the residual add (``folded``). A row's
params, MACs and acts are :func:`~scalekit.counting.count_ops` of exactly those ops, so the rows of
a block sum to the block's counts, the rows of a stage to the stage row, and all rows to the
network's totals, by construction:

- params: the layer's weights and bias, plus the parameters of a BatchNorm folded into it
  (``bn_params``: a conv row's BatchNorm gamma and beta; ``model.parameters()`` counts them);
- MACs: the conv or linear layer's weight multiply-accumulates (the paper's convention); under
  another convention (scalekit/conventions.py) the cost of every op of the row, its folded ones
  included;
- acts: the elements the conv, linear or spatial (max) pooling outputs; a global average pool
  outputs none that count (pycls).

Ops before a block's first layer op (none of today's kinds has any) fold into that first row; a
block without a layer op is one row of layer ``other``. Nothing here names a block kind; no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from . import conventions
from .blocks import kind
from .counting import count_ops
from .ops import Activation, BatchNorm, Conv, Elementwise, Linear, Op, Pool
from .plan import NetworkPlan


@dataclass(frozen=True)
class LayerRecord:
    """One row of the per-layer view.

    ``stage`` and ``block`` (1-based, within the stage) say where it is and ``kind`` what block it
    is in; ``layer`` is ``conv``, ``linear``, ``maxpool`` or ``avgpool`` (``other``: see the module
    docstring); ``output`` its output shape per image, (C, H, W), or (C,) for a linear layer;
    ``kernel`` (k of a k x k conv or pool; None: a linear layer or global pooling), ``stride``
    and ``groups`` (None where the layer has none); ``bias`` whether the layer has one;
    ``folded`` the ops counted with it (``bn``, an activation's name, ``se-gate``, ``add``)."""

    stage: str
    block: int
    kind: str
    layer: str
    output: tuple[int, ...]
    kernel: int | None
    stride: int | None
    groups: int | None
    bias: bool
    folded: tuple[str, ...]
    params: int
    bn_params: int
    macs: int
    acts: int
    unit: str = "MACs"  # of ``macs``: the convention's

    @property
    def flops(self) -> int:
        return 2 * self.macs if self.unit == "MACs" else self.macs

    @property
    def shape(self) -> str:
        """``32x112x112``; ``1000`` for a linear layer."""
        return "x".join(str(n) for n in self.output)

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "block": self.block, "kind": self.kind, "layer": self.layer,
                "output": list(self.output), "kernel": self.kernel, "stride": self.stride,
                "groups": self.groups, "bias": self.bias, "folded": list(self.folded),
                "params": self.params, "bn_params": self.bn_params, "macs": self.macs,
                "flops": self.flops, "acts": self.acts}


def is_layer(op: Op) -> bool:
    """A conv, a linear layer or a pool: what gets a row of its own."""
    return isinstance(op, (Conv, Linear, Pool))


def _tag(op: Op) -> str:
    """How a folded op is named in a row's ``folded``."""
    if isinstance(op, BatchNorm):
        return "bn"
    if isinstance(op, Activation):
        return op.name
    if isinstance(op, Elementwise):
        return "se-gate" if op.op == "mul" else op.op
    return type(op).__name__.lower()


def _groups(ops: Sequence[Op]) -> Iterator[list[Op]]:
    """A block's ops cut into rows: each layer op with the non-layer ops after it (ops before
    the first layer op go with it; no layer op at all: one group)."""
    rows: list[list[Op]] = []
    lead: list[Op] = []
    for op in ops:
        if is_layer(op):
            rows.append([*lead, op])
            lead = []
        elif rows:
            rows[-1].append(op)
        else:
            lead.append(op)
    if lead:
        rows.append(lead)
    yield from rows


def _row(stage: str, block: int, kind_name: str, ops: list[Op],
         convention: conventions.Convention) -> LayerRecord:
    layer = next((op for op in ops if is_layer(op)), None)
    c = count_ops(ops)
    bn = count_ops([op for op in ops if isinstance(op, BatchNorm)]).params
    macs = sum(map(convention.cost, ops))  # the paper's: c.macs (conv and linear weights)
    folded = tuple(_tag(op) for op in ops if op is not layer)
    common = dict(stage=stage, block=block, kind=kind_name, folded=folded, params=c.params,
                  bn_params=bn, macs=macs, acts=c.acts, unit=convention.unit)
    if isinstance(layer, Conv):
        return LayerRecord(layer="conv", output=(layer.cout, layer.ho, layer.wo),
                           kernel=layer.kernel, stride=layer.stride, groups=layer.groups,
                           bias=layer.bias, **common)
    if isinstance(layer, Linear):
        return LayerRecord(layer="linear", output=(layer.cout,), kernel=None, stride=None,
                           groups=None, bias=layer.bias, **common)
    if isinstance(layer, Pool):
        return LayerRecord(layer=f"{layer.op}pool", output=(layer.c, layer.ho, layer.wo),
                           kernel=None if layer.is_global else layer.kernel,
                           stride=None if layer.is_global else layer.stride, groups=None,
                           bias=False, **common)
    return LayerRecord(layer="other", output=(), kernel=None, stride=None, groups=None,
                       bias=False, **common)


def layer_records(plan: NetworkPlan, convention: str = conventions.DEFAULT) -> list[LayerRecord]:
    """Every layer of ``plan``, in the order its torch module runs them, its MACs counted under
    ``convention`` (scalekit/conventions.py)."""
    conv = conventions.get(convention)
    out = []
    for st in plan.stages:
        for i, b in enumerate(st.blocks, start=1):
            for ops in _groups(list(kind(b.kind).ops(b))):
                out.append(_row(st.name, i, b.kind, ops, conv))
    return out


__all__ = ["LayerRecord", "is_layer", "layer_records"]

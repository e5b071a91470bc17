"""Spec (+ coefficients) -> a :class:`ModelRecord`: the numbers every report is made of.

A record carries its network three ways: the (scaled) spec, its plan and its analytic counts, so
that whatever a record flows into (latency, the memory guard, a fit, a sweep) never expands or
counts the network again. :class:`Networks` shares that work between the records of one study:
each distinct network is expanded once and counted once per counter.

A record's ``macs`` follow a counting convention (scalekit/conventions.py; ``convention``, in
``unit``): the paper's conv + linear multiply-accumulates unless :func:`with_convention` recounts
it under another. Its ``analytic`` counts stay the paper's, whatever the convention (latency's
GFLOP/s and the memory guard read them).

Records are plain data; report/ turns them into tables, JSON, CSV or Markdown. The analytic
counter needs no torch; ``counter="torch"`` / ``"thop"`` import it lazily.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

from . import conventions
from .blocks import kind
from .bundled import load_named
from .counting import Counts, NetworkCount, count_plan
from .layers import LayerRecord, layer_records
from .memory import MemoryEstimate, estimate_memory
from .plan import NetworkPlan, StagePlan, expand
from .scaling import Coefficients
from .strategies import scale_by
from .spec import Spec

COUNTER_NAMES = ("analytic", "torch", "thop")
# the convention a cross-check counter's MACs follow (it measures, so it cannot count another);
# the analytic counter counts any convention
COUNTER_CONVENTIONS = {"torch": "paper", "thop": "thop"}


def counter_convention(counter: str, convention: str | None = None) -> str:
    """The convention records counted by ``counter`` follow: ``convention`` (default: the
    counter's own, else paper). ValueError when a cross-check counter cannot count it."""
    own = COUNTER_CONVENTIONS.get(counter)
    if convention is None:
        return own or conventions.DEFAULT
    conventions.get(convention)
    if own is not None and convention != own:
        raise ValueError(f"--counter {counter} measures the {own} convention only, not "
                         f"{convention}; --counter analytic counts every convention exactly")
    return convention


@dataclass(frozen=True)
class StageRecord:
    name: str
    block: str
    kernel: int
    stride: int
    cin: int
    cout: int
    repeats: int
    resolution: int  # input resolution (height) of the stage
    params: int
    macs: int
    acts: int
    label: str = ""  # what the blocks are: "MBConv6 k5x5 SE", "Conv k7x7 + MaxPool k3x3"
    columns: Mapping[str, Any] = field(default_factory=dict)  # the block kind's own (report())
    unit: str = "MACs"  # of ``macs``: the record's convention's

    @property
    def flops(self) -> int:
        return 2 * self.macs if self.unit == "MACs" else self.macs

    def to_dict(self) -> dict[str, Any]:
        # expand and se (the squeeze-excitation width) are schema-1 fields of every stage
        return {"name": self.name, "block": self.block, "kernel": self.kernel, "stride": self.stride,
                "expand": self.columns.get("expand"), "se": self.columns.get("squeeze"),
                "cin": self.cin, "cout": self.cout, "repeats": self.repeats,
                "resolution": self.resolution, "params": self.params, "macs": self.macs,
                "flops": self.flops, "acts": self.acts, "label": self.label,
                "columns": dict(self.columns)}


@dataclass(frozen=True)
class ModelRecord:
    name: str
    spec_path: str | None
    base: str  # name of the baseline network
    resolution: int
    params: int
    macs: int
    acts: int
    stages: tuple[StageRecord, ...]
    counter: str = "analytic"
    convention: str = conventions.DEFAULT  # what ``macs`` count (scalekit/conventions.py)
    coefficients: Coefficients | None = None
    mode: str | None = None  # compare: baseline / depth / width / resolution / compound
    latency: dict[str, Any] | None = None
    reference: dict[str, Any] | None = None  # published figures (paper, torchvision), labelled
    notes: tuple[str, ...] = field(default_factory=tuple)
    # every conv / linear / pool (scalekit/layers.py), when asked for (info --layers); None: not
    layers: tuple[LayerRecord, ...] | None = None
    # the (scaled) spec the counts are of, its plan and its analytic counts, so that the network
    # can be built, timed and guarded without expanding it again; not reported
    network: Spec | None = field(default=None, compare=False, repr=False)
    plan: NetworkPlan | None = field(default=None, compare=False, repr=False)
    analytic: NetworkCount | None = field(default=None, compare=False, repr=False)
    memory_batch: int = field(default=1, compare=False, repr=False)  # the batch memory is for

    @property
    def unit(self) -> str:
        """What ``macs`` are counted in: MACs, or FLOPs (the ``full`` convention)."""
        return conventions.get(self.convention).unit

    @property
    def convention_label(self) -> str:
        """How reports name ``macs``: ``MACs``, ``MACs (fvcore)``, ``FLOPs (full)``."""
        return conventions.get(self.convention).label

    @property
    def flops(self) -> int:
        """FLOPs: 2 x MACs, or the count itself under a convention counted in FLOPs."""
        return 2 * self.macs if self.unit == "MACs" else self.macs

    @property
    def memory(self) -> MemoryEstimate | None:
        """Parameters, the inference peak and training memory at ``memory_batch``, from the
        plan (:func:`scalekit.memory.estimate_memory`, the memory guard's estimate)."""
        if self.plan is None:
            return None
        return estimate_memory(self.plan, self.memory_batch, self.analytic)

    def to_dict(self) -> dict[str, Any]:
        c = self.coefficients
        return {
            "name": self.name,
            "spec": self.spec_path,
            "base": self.base,
            "mode": self.mode,
            "counter": self.counter,
            "convention": self.convention,
            "unit": self.unit,
            "coefficients": None if c is None else {
                "phi": c.phi, "depth": c.depth, "width": c.width,
                "resolution": None if c.size else c.resolution, "size": c.size,
                "preset": c.preset},
            "resolution": self.resolution,
            "params": self.params,
            "macs": self.macs,
            "flops": self.flops,
            "acts": self.acts,
            "latency": self.latency,
            "memory": None if (m := self.memory) is None else m.to_dict(),
            "reference": self.reference,
            "notes": list(self.notes),
            "stages": [s.to_dict() for s in self.stages],
            **({} if self.layers is None else {"layers": [x.to_dict() for x in self.layers]}),
        }


def network_key(spec: Spec) -> tuple:
    """All that a spec's plan depends on but its name: two specs with the same key are the same
    network (scaled by different coefficients that round alike, say)."""
    return (spec.resolution, spec.in_channels, spec.num_classes, spec.drop_path, spec.stem,
            spec.stages, spec.head)


class Networks:
    """The plans and analytic counts of a study's networks, each expanded and counted once however
    often the study reaches it (a fit's bisection, ``compare --match``'s rows, a baseline row)."""

    def __init__(self) -> None:
        self._known: dict[tuple, tuple[NetworkPlan, NetworkCount]] = {}

    def __len__(self) -> int:
        return len(self._known)

    def get(self, spec: Spec) -> tuple[NetworkPlan, NetworkCount]:
        """``spec``'s plan (named as ``spec``) and its analytic counts."""
        key = network_key(spec)
        if key not in self._known:
            plan = expand(spec)
            self._known[key] = (plan, count_plan(plan))
        plan, counts = self._known[key]
        return (plan if plan.name == spec.name else replace(plan, name=spec.name)), counts


def _stage_record(st: StagePlan, counts: Counts) -> StageRecord:
    b = st.first
    block = b.kind
    if st.name in ("stem", "head"):  # conv, conv+maxpool, classifier, conv+classifier
        block = "+".join(blk.kind for blk in st.blocks)
    stride = 1
    for blk in st.blocks:
        stride *= blk.stride
    return StageRecord(
        name=st.name, block=block, kernel=b.kernel, stride=stride,
        cin=b.cin, cout=st.last.cout if st.name != "head" else st.blocks[0].cout,
        repeats=len(st.blocks) if st.name not in ("stem", "head") else 1,
        resolution=b.h, params=counts.params, macs=counts.macs, acts=counts.acts,
        label=" + ".join(dict.fromkeys(kind(blk.kind).label(blk) for blk in st.blocks)),
        columns=kind(b.kind).report(b))


def count_network(plan: NetworkPlan, counter: str = "analytic", *, force: bool = False,
                  analytic: NetworkCount | None = None) -> NetworkCount:
    """Count with ``counter``; ``force`` builds a real module (thop) even past the memory guard.
    ``analytic``: the plan's analytic counts, when the caller has them (returned as they are)."""
    if counter == "analytic":
        return analytic or count_plan(plan)
    if counter == "torch":
        from .crosscheck import torch_count
        return torch_count(plan)
    if counter == "thop":
        from .crosscheck import thop_count
        return thop_count(plan, force=force, counts=analytic)
    raise ValueError(f"unknown counter {counter!r} (valid: {', '.join(COUNTER_NAMES)})")


def make_record(spec: Spec, *, counter: str = "analytic", coefficients: Coefficients | None = None,
                mode: str | None = None, base: str | None = None, reference: dict | None = None,
                notes: tuple[str, ...] = (), force: bool = False,
                networks: Networks | None = None) -> ModelRecord:
    """Count ``spec`` (already scaled, if it is) and wrap the result in a record. ``force``: see
    :func:`count_network`; ``networks``: the study's shared plans (a fresh one otherwise)."""
    plan, analytic = (networks if networks is not None else Networks()).get(spec)
    nc = count_network(plan, counter, force=force, analytic=analytic)
    stages = tuple(_stage_record(st, sc.counts) for st, sc in zip(plan.stages, nc.stages))
    return ModelRecord(
        name=spec.name, spec_path=spec.path, base=base or (spec.origin.spec if spec.origin else spec.name),
        resolution=spec.resolution, params=nc.total.params, macs=nc.total.macs, acts=nc.total.acts,
        stages=stages, counter=counter, convention=counter_convention(counter),
        coefficients=coefficients, mode=mode, reference=reference, notes=notes, network=spec,
        plan=plan, analytic=analytic)


def with_convention(rec: ModelRecord, convention: str) -> ModelRecord:
    """``rec`` with its MACs (total and per stage) counted under ``convention``, from its plan.
    A record counted by a cross-check counter keeps its own (ValueError if asked another)."""
    if rec.convention == convention:
        return rec
    counter_convention(rec.counter, convention)
    if rec.plan is None:
        raise ValueError(f"{rec.name}: no plan to count under {convention}")
    cc = conventions.count_convention(rec.plan, convention)
    stages = tuple(replace(s, macs=macs, unit=cc.unit) for s, (_, macs) in zip(rec.stages, cc.stages))
    return replace(rec, macs=cc.total, stages=stages, convention=convention)


def with_layers(rec: ModelRecord) -> ModelRecord:
    """``rec`` with its layers (:func:`scalekit.layers.layer_records` of its plan, under its
    convention): they sum to its stages' counts and to its totals."""
    if rec.plan is None:
        raise ValueError(f"{rec.name}: no plan to list the layers of")
    return replace(rec, layers=tuple(layer_records(rec.plan, rec.convention)))


def spec_records(specs: Sequence[str], counter: str = "analytic",
                 scaling: dict[str, Any] | None = None,
                 convention: str | None = None) -> list[ModelRecord]:
    """One record per SPEC, counted like ``scalekit info``; with scaling flags (``phi``,
    ``width``, ``preset``, ..., or ``strategy`` and ``factor``: see
    :func:`scalekit.strategies.scale_by`) each spec is scaled first (mode ``scaled``);
    ``convention``: see :func:`with_convention` (default: the counter's own)."""
    flags = {k: v for k, v in (scaling or {}).items() if v is not None}
    out = []
    for s in specs:
        spec = load_named(s)
        if flags:
            scaled, coef = scale_by(spec, **flags)
            out.append(make_record(scaled, counter=counter, coefficients=coef, mode="scaled",
                                   base=spec.name))
        else:
            out.append(make_record(spec, counter=counter))
    if convention is not None:
        out = [with_convention(r, convention) for r in out]
    return out

"""Spec (+ coefficients) -> a :class:`ModelRecord`: the numbers every report is made of.

Records are plain data; report.py turns them into tables, JSON, CSV or Markdown. The analytic
counter needs no torch; ``counter="torch"`` / ``"thop"`` import it lazily.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from .bundled import load_named
from .counting import NetworkCount, count_plan
from .plan import NetworkPlan, StagePlan, expand
from .scaling import Coefficients, scale_spec
from .spec import Spec

COUNTERS = ("analytic", "torch", "thop")


@dataclass(frozen=True)
class StageRecord:
    name: str
    block: str
    kernel: int
    stride: int
    expand: float | None
    se: int | None
    cin: int
    cout: int
    repeats: int
    resolution: int  # input resolution (height) of the stage
    params: int
    macs: int
    acts: int

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "block": self.block, "kernel": self.kernel, "stride": self.stride,
                "expand": self.expand, "se": self.se, "cin": self.cin, "cout": self.cout,
                "repeats": self.repeats, "resolution": self.resolution, "params": self.params,
                "macs": self.macs, "flops": self.flops, "acts": self.acts}


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
    coefficients: Coefficients | None = None
    mode: str | None = None  # compare: baseline / depth / width / resolution / compound
    latency: dict[str, Any] | None = None
    reference: dict[str, Any] | None = None  # published figures (paper, torchvision), labelled
    notes: tuple[str, ...] = field(default_factory=tuple)
    # the (scaled) spec the counts are of, so the network can be built and timed; not reported
    network: Spec | None = field(default=None, compare=False, repr=False)

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def to_dict(self) -> dict[str, Any]:
        c = self.coefficients
        return {
            "name": self.name,
            "spec": self.spec_path,
            "base": self.base,
            "mode": self.mode,
            "counter": self.counter,
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
            "reference": self.reference,
            "notes": list(self.notes),
            "stages": [s.to_dict() for s in self.stages],
        }


def _stage_record(st: StagePlan, counts) -> StageRecord:
    b = st.first
    block = b.kind
    if st.name == "stem":
        block = "conv+maxpool" if len(st.blocks) > 1 else "conv"
    elif st.name == "head":
        block = "conv+classifier" if len(st.blocks) > 1 else "classifier"
    expand_ratio = round(b.mid / b.cin, 4) if b.kind == "mbconv" else None
    stride = 1
    for blk in st.blocks:
        stride *= blk.stride
    return StageRecord(
        name=st.name, block=block, kernel=b.kernel, stride=stride,
        expand=expand_ratio, se=b.se if b.kind == "mbconv" else None,
        cin=b.cin, cout=st.last.cout if st.name != "head" else st.blocks[0].cout,
        repeats=len(st.blocks) if st.name not in ("stem", "head") else 1,
        resolution=b.h, params=counts.params, macs=counts.macs, acts=counts.acts)


def count_network(plan: NetworkPlan, counter: str = "analytic", *,
                  force: bool = False) -> NetworkCount:
    """Count with ``counter``; ``force`` builds a real module (thop) even past the memory guard."""
    if counter == "analytic":
        return count_plan(plan)
    if counter == "torch":
        from .crosscheck import torch_count
        return torch_count(plan)
    if counter == "thop":
        from .crosscheck import thop_count
        return thop_count(plan, force=force)
    raise ValueError(f"unknown counter {counter!r} (valid: {', '.join(COUNTERS)})")


def analyze(spec: Spec, *, counter: str = "analytic", coefficients: Coefficients | None = None,
            mode: str | None = None, base: str | None = None, reference: dict | None = None,
            notes: tuple[str, ...] = (), force: bool = False) -> ModelRecord:
    """Count ``spec`` (already scaled, if it is) and wrap the result in a record. ``force``:
    see :func:`count_network`."""
    plan = expand(spec)
    nc = count_network(plan, counter, force=force)
    stages = tuple(_stage_record(st, sc.counts) for st, sc in zip(plan.stages, nc.stages))
    return ModelRecord(
        name=spec.name, spec_path=spec.path, base=base or (spec.origin.spec if spec.origin else spec.name),
        resolution=spec.resolution, params=nc.total.params, macs=nc.total.macs, acts=nc.total.acts,
        stages=stages, counter=counter, coefficients=coefficients, mode=mode, reference=reference,
        notes=notes, network=spec)


def spec_records(specs: Sequence[str], counter: str = "analytic",
                 scaling: dict[str, Any] | None = None) -> list[ModelRecord]:
    """One record per SPEC, counted like ``scalekit info``; with scaling flags (``--phi``,
    ``--width``, ``--preset``, ...) each spec is scaled first (mode ``scaled``)."""
    flags = {k: v for k, v in (scaling or {}).items() if v is not None}
    out = []
    for s in specs:
        spec = load_named(s)
        if flags:
            scaled, coef = scale_spec(spec, **flags)
            out.append(analyze(scaled, counter=counter, coefficients=coef, mode="scaled",
                               base=spec.name))
        else:
            out.append(analyze(spec, counter=counter))
    return out

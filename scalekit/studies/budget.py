"""Scale a network to a budget: the largest coefficient whose rounded, realised network fits.

Rounding (channels to a multiple of 8, repeats rounded up, pixels to an integer) makes every cost
a step function of the coefficient, so no smooth formula answers "how wide can I go for 2 GMACs?".
The search here works on realised networks instead:

1. Bracket: from the neutral coefficient (w = 1, phi = 0, ...) step outwards, doubling the step,
   until one realised network is within the target and another is over it.
2. Bisect the dial (in log space for multipliers, linearly for phi). A probe whose realised network
   equals one end's replaces that end without being counted again; the others are counted (or, for
   latency, measured) and replace the end on their side of the target. The bisection runs until
   the two ends are as close as floating point allows, so no coefficient between them realises a
   third network.
3. Snap to the coefficients people type, :data:`SIG_DIGITS` significant digits (rounding
   tolerances leave slivers narrower than that, e.g. depth a hair past an integer, that no typed
   flag realises): ``best`` is the network of the largest such coefficient within the target;
   ``above``, the *next realisable step up*, is the network of the next such coefficient, and is
   over the target. No coefficient on that grid gives a network between the two.

``best`` is reported with the shortest decimal that realises it (``w=2.12``), so that
``scalekit scale --width 2.12`` gives exactly that network; ``above`` with the coefficient where
its step starts. Every dial is non-decreasing in each
of depth, width and resolution, and every cost is non-decreasing in each rounded quantity, so the
network found is the largest within the target. Latency is measured, not counted: noisy and not
strictly monotone, so a latency fit is "largest within the target as measured", with a modest
number of measurements (``max_measurements``).

Latency is measured by a cost function the caller passes (scalekit.latency.networks.latency_cost),
so this module never imports latency code, and no torch.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext
from typing import Any, Callable, Dict, Optional, Tuple

from ..counting import NetworkCount
from ..errors import ScalekitError, ScalingError
from ..memory import estimate_memory, format_bytes
from ..plan import NetworkPlan
from ..records import Networks, network_key
from ..scaling import Coefficients, scale
from ..spec import Spec
from ..strategies import Dial, dial
from ..text import plural

METRICS = ("macs", "params", "acts", "latency", "memory")
COUNTED = ("macs", "params", "acts")
EXACT = COUNTED + ("memory",)  # deterministic and non-decreasing in every dial: snapped to the grid

# How far a dial may go from neutral: multipliers within [1e-4, 1e4], phi within [-100, 100].
LOG_LIMIT = math.log(1e4)
PHI_LIMIT = 100.0
# Counted fits are resolved on the grid of coefficients with this many significant digits.
SIG_DIGITS = 6


# ---------------------------------------------------------------------------------------------
# budgets as the user types them


_NUMBER = re.compile(r"^\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z\u00b5]*)\s*$")
_COUNT_SUFFIXES = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "b": 1e9, "t": 1e12}
_TIME_SUFFIXES = {"ms": 1.0, "s": 1e3, "us": 1e-3, "\u00b5s": 1e-3}


def _split(text: str) -> tuple[float, str]:
    m = _NUMBER.match(text)
    if not m:
        raise ValueError(f"not a number: {text!r}")
    value = float(m.group(1))
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"must be a finite number > 0, got {text!r}")
    return value, m.group(2).lower()


def parse_count(text: str) -> float:
    """``2G``, ``2e9``, ``300M``, ``20m``, ``1.5k``, ``2B`` (billion) -> a count."""
    value, suffix = _split(text)
    if suffix not in _COUNT_SUFFIXES:
        raise ValueError(f"unknown suffix in {text!r} (use k, M, G or B, T, or none: 2G, 2e9, 300M)")
    return value * _COUNT_SUFFIXES[suffix]


_BYTE_SUFFIXES = {"b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "kib": 1024,
                  "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}


def parse_bytes(text: str) -> float:
    """``512MiB``, ``1.5GiB``, ``100MB`` (10^6), ``2e9B`` -> bytes. A unit is required."""
    value, suffix = _split(text)
    if suffix not in _BYTE_SUFFIXES:
        raise ValueError(f"give a size with its unit, e.g. 512MiB, 1.5GiB or 100MB (got {text!r})")
    return value * _BYTE_SUFFIXES[suffix]


def parse_duration_ms(text: str) -> float:
    """``40ms``, ``0.04s``, ``500us`` -> milliseconds. A unit is required."""
    value, suffix = _split(text)
    if suffix not in _TIME_SUFFIXES:
        raise ValueError(f"give a time with its unit, e.g. 40ms or 0.04s (got {text!r})")
    return value * _TIME_SUFFIXES[suffix]


def amount(metric: str, value: float) -> str:
    """A cost in the unit people read it in: ``1.8 G MACs``, ``20.1 M params``, ``40.00 ms``."""
    if metric == "latency":
        return f"{value:.2f} ms"
    if metric == "memory":
        return format_bytes(int(value))
    label = "MACs" if metric == "macs" else metric
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.4g} {unit} {label}"
    return f"{value:.4g} {label}"


# ---------------------------------------------------------------------------------------------
# costs


Cost = Callable[[Spec, NetworkPlan, NetworkCount], Tuple[float, Optional[Dict[str, Any]]]]
"""``cost(spec, plan, counts) -> (cost, measurement or None)`` of one realised network."""


def memory_cost(kind: str = "inference", batch: int = 1) -> Cost:
    """Bytes a realised network needs at ``batch`` (:func:`scalekit.memory.estimate_memory`,
    the memory guard's estimate): ``inference`` = parameters + the activation peak of a forward
    pass, ``training`` = parameters + gradients + optimizer state + saved activations."""
    if kind not in ("inference", "training"):
        raise ScalekitError(f"unknown memory {kind!r} (valid: inference, training)")

    def cost(spec: Spec, plan: NetworkPlan, counts: NetworkCount) -> tuple[float, None]:
        est = estimate_memory(plan, batch, counts)
        return float(est.total_bytes if kind == "inference" else est.training_bytes), None
    return cost


def count_cost(metric: str) -> Cost:
    """params, MACs or acts of a realised network, counted exactly."""
    def cost(spec: Spec, plan: NetworkPlan, counts: NetworkCount) -> tuple[float, None]:
        return float(getattr(counts.total, metric)), None
    return cost


# ---------------------------------------------------------------------------------------------
# the search


@dataclass(frozen=True)
class Candidate:
    """One realised network on the dial."""

    value: float  # the dial's value: the shortest decimal that realises this network
    coefficients: Coefficients
    spec: Spec  # the realised (scaled) network
    cost: float  # in the metric's unit: a count, or the median latency in ms
    plan: NetworkPlan  # the network's plan and analytic counts, from the search
    counts: NetworkCount
    latency: dict[str, Any] | None = None  # the measurement, when the metric is latency


@dataclass(frozen=True)
class FitResult:
    mode: str
    symbol: str  # the dial: w, d, r, phi or s
    metric: str
    target: float
    baseline: Candidate  # the network at the neutral coefficient (the spec as it is)
    best: Candidate  # the largest coefficient whose network is within the target
    above: Candidate  # the next realisable step up: over the target
    evaluations: int  # distinct networks counted or measured
    resolved: bool  # best and above are adjacent (always, unless a latency search ran out)

    @property
    def measured(self) -> bool:
        return self.metric == "latency"

    @property
    def closest(self) -> Candidate:
        """Whichever of ``best`` and ``above`` is nearer the target (``best`` on a tie)."""
        if abs(self.above.cost - self.target) < abs(self.target - self.best.cost):
            return self.above
        return self.best


@dataclass(frozen=True)
class _Point:
    u: float  # where the bisection stands: the dial's value, in log space for multiplicative dials
    value: float  # the dial's value
    spec: Spec
    key: tuple


class _Search:
    """The dial, the baseline and a cache of costs by realised network (plans and counts come
    from ``networks``: each network is expanded and counted once)."""

    def __init__(self, base: Spec, d: Dial, cost: Cost, networks: Networks):
        self.base, self.dial, self._cost, self.networks = base, d, cost, networks
        self.costs: dict[tuple, tuple[float, dict[str, Any] | None]] = {}

    def realise(self, value: float) -> Spec:
        return scale(self.base, self.dial.coefficients(value))

    def at_value(self, value: float) -> _Point:
        spec = self.realise(value)
        return _Point(math.log(value) if self.dial.log else value, value, spec, network_key(spec))

    def at(self, u: float) -> _Point:
        return self.at_value(math.exp(u) if self.dial.log else u)

    def cost(self, p: _Point) -> float:
        """The metric of ``p``'s network, counted (or measured) once per network."""
        if p.key not in self.costs:
            self.costs[p.key] = self._cost(p.spec, *self.networks.get(p.spec))
        return self.costs[p.key][0]

    def snap(self, lo: _Point, hi: _Point, target: float) -> tuple[_Point, _Point]:
        """Move the ends of an exact bisection onto the grid of coefficients people type
        (:data:`SIG_DIGITS` significant digits): ``lo`` to the largest grid value whose network is
        within the target, ``hi`` to the grid value just above it, whose network is over it.
        (Rounding tolerances can leave steps narrower than that grid, e.g. depth just past an
        integer; no typed flag realises those.)"""
        v = _round(lo.value, SIG_DIGITS, ROUND_FLOOR)
        p = self.at_value(v)
        if self.cost(p) > target:  # only if a rounding rule were not monotone: keep the exact end
            v, p = lo.value, lo
        while True:
            with localcontext() as ctx:
                ctx.prec = SIG_DIGITS
                n = float(ctx.next_plus(Decimal(repr(v))))
            q = self.at_value(n)
            if q.key != p.key and self.cost(q) > target:
                return p, q
            v, p = n, q

    def candidate(self, p: _Point, rounding: str) -> Candidate:
        """``p``'s network at the shortest decimal that realises it, rounding ``p``'s value down
        (ROUND_FLOOR) or up (ROUND_CEILING)."""
        value = p.value
        for digits in range(1, 18):
            v = _round(p.value, digits, rounding)
            try:
                if network_key(self.realise(v)) == p.key:
                    value = v
                    break
            except ScalingError:
                continue
        cost, latency = self.costs[p.key]
        spec = self.realise(value)
        plan, counts = self.networks.get(spec)
        return Candidate(value, self.dial.coefficients(value), spec, cost, plan, counts, latency)


def _round(x: float, digits: int, rounding: str) -> float:
    with localcontext() as ctx:
        ctx.prec, ctx.rounding = digits, rounding
        return float(+Decimal(repr(x)))  # the float as people read it, not its binary expansion


def _limit(d: Dial) -> float:
    return LOG_LIMIT if d.log else PHI_LIMIT


def _edge(d: Dial, u: float) -> float:
    return math.exp(u) if d.log else u


def fit(spec: Spec, mode: str, metric: str, target: float, *, cost: Cost | None = None,
        max_measurements: int = 12, networks: Networks | None = None) -> FitResult:
    """The largest coefficient of ``mode`` whose realised network costs at most ``target``.

    ``metric`` is macs, params or acts (counted exactly) or latency: median ms as ``cost``
    measures it (:func:`scalekit.latency.networks.latency_cost`), at most ``max_measurements``
    networks. ``networks`` shares plans and counts with the rest of a study. Raises
    :class:`ScalingError` when no network of this mode meets the target, or when the metric does
    not change with the mode (params under resolution scaling).
    """
    if metric not in METRICS:
        raise ScalekitError(f"unknown metric {metric!r} (valid: {', '.join(METRICS)})")
    if not (isinstance(target, (int, float)) and math.isfinite(target) and target > 0):
        raise ScalekitError(f"the target must be a finite number > 0, got {target!r}")
    d = dial(spec, mode)
    if metric in COUNTED:
        cost = count_cost(metric)
    elif metric == "memory":
        cost = cost or memory_cost()
    elif cost is None:
        raise ScalekitError("a latency fit needs a cost that measures (latency_cost)")
    search = _Search(spec, d, cost, networks if networks is not None else Networks())
    max_evals = max_measurements if metric == "latency" else None
    p0, lo, hi = _bracket(search, metric, target, max_evals)
    resolved = True
    while True:
        u = (lo.u + hi.u) / 2
        if not lo.u < u < hi.u or hi.u - lo.u <= 1e-12 * max(1.0, abs(hi.u)):
            break
        p = search.at(u)
        if p.key == lo.key:
            lo = p
        elif p.key == hi.key:
            hi = p
        elif max_evals is not None and len(search.costs) >= max_evals:
            resolved = False
            break
        elif search.cost(p) <= target:
            lo = p
        else:
            hi = p
    if metric in EXACT:
        lo, hi = search.snap(lo, hi, target)
        above = search.candidate(hi, ROUND_FLOOR)  # the smallest grid value giving it
    else:
        above = search.candidate(hi, ROUND_CEILING)
    return FitResult(mode, d.symbol, metric, target, search.candidate(p0, ROUND_FLOOR),
                     search.candidate(lo, ROUND_FLOOR), above, len(search.costs), resolved)


def cost_curve(result: FitResult, *, points: int = 60,
               networks: Networks | None = None) -> list[tuple[float, float]]:
    """(dial value, cost) of the realised networks at ``points`` evenly spaced dial values (in
    log space for a multiplier) around ``result``'s baseline, fit and next step up (a margin of
    15% of their span on each side): the step function its search walked, for a plot. Counted
    metrics only (params, MACs, acts); another fit's curve is its three networks (latency: timing
    more is slow; memory: its estimate's options are the query's). Values that realise no
    network (under 1 px, too many blocks) are left out."""
    marks = (result.baseline, result.best, result.above)
    if result.metric not in COUNTED:
        return sorted({(c.value, c.cost) for c in marks})
    base = result.baseline.spec
    d = dial(base, result.mode)
    to_u = (lambda v: math.log(v)) if d.log else (lambda v: v)
    ends = [to_u(c.value) for c in marks]
    lo, hi = min(ends), max(ends)
    margin = 0.15 * (hi - lo) if hi > lo else 0.1
    cost = count_cost(result.metric)
    networks = networks if networks is not None else Networks()
    out = []
    for i in range(points):
        u = lo - margin + (hi - lo + 2 * margin) * i / (points - 1)
        value = math.exp(u) if d.log else u
        try:
            spec = scale(base, d.coefficients(value))
        except ScalingError:
            continue
        out.append((value, cost(spec, *networks.get(spec))[0]))
    return sorted(out + [(c.value, c.cost) for c in marks])


def _bracket(search: _Search, metric: str, target: float,
             max_evals: int | None) -> tuple[_Point, _Point, _Point]:
    """(neutral, lo, hi): the spec as it is, a network within the target and one over it.
    From the neutral coefficient, step towards the target, halving the step when the coefficient
    makes no network (too many blocks, less than 1 px), up to the dial's limit. Counted metrics
    double the step each time; a measured one (``max_evals`` networks at most) keeps it, so no
    network far past the target is ever timed."""
    d = search.dial
    p0 = search.at(math.log(d.neutral) if d.log else d.neutral)
    up = search.cost(p0) <= target
    edge = _limit(d) if up else -_limit(d)
    step = math.log(2.0) if d.log else 1.0
    last, why = p0, f"{d.symbol} stops at {_edge(d, edge):g}"
    while step >= 1e-3:
        if max_evals is not None and len(search.costs) >= max_evals:
            why = f"stopped after measuring {plural(max_evals, 'network')}"
            break
        u = min(last.u + step, edge) if up else max(last.u - step, edge)
        try:
            p = search.at(u)
        except ScalingError as e:
            why, step = str(e).rstrip("."), step / 2
            continue
        if (search.cost(p) <= target) != up:
            return (p0, last, p) if up else (p0, p, last)
        last, step = p, step * 2 if max_evals is None else step
        if u == edge:
            break
    what = f"{metric} target of {amount(metric, target)}"
    if last is not p0 and search.cost(last) == search.cost(p0):
        raise ScalingError(f"{metric} does not change under {d.mode} scaling: no {d.symbol} "
                           f"reaches a {what}")
    reached = f"{amount(metric, search.cost(last))} at {d.label(last.value)}"
    cap = search.base.scaling.max_resolution
    if up and cap and last.spec.resolution == cap:
        reached += (f" ({cap} px: the spec's scaling rules cap the resolution there, "
                    "max_resolution)")
    if up:
        raise ScalingError(f"{d.mode} scaling did not reach a {what} ({why}); the largest "
                           f"network tried has {reached}")
    raise ScalingError(f"a {what} is below the smallest network {d.mode} scaling reaches "
                       f"({why}; the smallest tried has {reached})")

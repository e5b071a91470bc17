"""Step 1's candidates: the grid of (alpha, beta, gamma) at phi = 1 under the cost constraint.

The paper (section 3.3) fixes phi = 1 and searches alpha, beta, gamma >= 1 under
alpha * beta^2 * gamma^2 ~ 2. Here:

- each axis is a range LO:HI walked in steps of S, in decimal arithmetic (1.0, 1.05, ..., 1.15 are
  the decimals typed, not 1.1500000000000001), and the constraint |alpha * beta^2 * gamma^2 -
  target| <= tolerance is tested exactly on those decimals (``nominal``);
- every kept point is scaled by d = alpha, w = beta, r = gamma with the spec's rounding rules and
  counted exactly: its ``achieved`` cost is the rounded network's MACs over the baseline's MACs
  (``constrain="achieved"`` filters on that instead, which counts every point of the box);
- ``cost="latency"`` replaces MACs by this machine's *predicted* latency (the calibrated sum of
  the network's blocks from the per-machine latency table, scalekit/latency): a point is kept when
  its rounded network's predicted latency over the baseline's is within the tolerance of the
  target. A latency has no closed form before rounding, so the constraint is always on the
  achieved ratio; the caller passes the predictor (this module imports no latency code);
- points that round to the same network (``scalekit.records.network_key``: channels, repeats,
  resolution, ...) are one candidate: it is evaluated once. Its coefficients are the point whose
  nominal cost is nearest the target (the first in grid order on a tie); the others are its
  ``aliases``. They give the same network at phi = 1 but not at larger phi, which is why they
  are listed.

Torch-free and instant: counting is analytic.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Mapping, Sequence

from ..errors import ArgumentError
from ..records import ModelRecord, Networks, make_record, network_key
from ..scaling import coefficients, scale
from ..spec import Spec, spec_to_yaml
from ..text import safe_text

CONSTRAINTS = ("nominal", "achieved")
COSTS = ("macs", "latency")  # what the target ratio is of
MAX_POINTS = 200_000  # grid points in the box: past this the ranges are a typo
MAX_AXIS = 10_000  # values on one axis
DEFAULT_RANGES = {"alpha": "1.0:2.0", "beta": "1.0:1.5", "gamma": "1.0:1.5"}
DEFAULT_STEP = "0.05"  # the paper's 1.2 / 1.1 / 1.15 lie on this grid
DEFAULT_TARGET = 2.0
DEFAULT_TOLERANCE = 0.1


class SearchUsageError(ArgumentError):
    """Search settings that cannot make a search: impossible ranges, a step of 0, a tolerance that
    leaves no candidate, an evaluator template without {spec}. A usage error (exit 2); from the
    Python API an :class:`~scalekit.errors.ArgumentError` (so also a ``ValueError``)."""


def _decimal(v: object, what: str) -> Decimal:
    if isinstance(v, bool):
        raise SearchUsageError(f"{what}: expected a number, got {v!r}")
    try:
        d = Decimal(repr(v)) if isinstance(v, float) else Decimal(str(v).strip())
    except (InvalidOperation, ValueError):
        raise SearchUsageError(f"{what}: expected a number, got {str(v)!r}") from None
    if not d.is_finite():
        raise SearchUsageError(f"{what}: must be a finite number, got {str(v)!r}")
    return d


@dataclass(frozen=True)
class Axis:
    """One coefficient's range: LO to HI (both included when on the step)."""

    name: str
    lo: Decimal
    hi: Decimal

    def values(self, step: Decimal) -> tuple[Decimal, ...]:
        n = int((self.hi - self.lo) / step)
        return tuple(self.lo + i * step for i in range(n + 1))

    def text(self) -> str:
        return f"{self.lo}:{self.hi}"


def parse_axis(name: str, value: object) -> Axis:
    """``"1.0:1.4"``, ``"1.2"`` (one value), or a (lo, hi) pair, for --alpha/--beta/--gamma."""
    flag = f"--{name}"
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise SearchUsageError(f"{flag}: expected (LO, HI), got {value!r}")
        lo_v, hi_v = value
    else:
        text = str(value).strip()
        lo_v, sep, hi_v = text.partition(":")
        if not sep:
            hi_v = lo_v
        if not lo_v.strip() or not str(hi_v).strip():
            raise SearchUsageError(f"{flag} {text!r}: expected LO:HI, e.g. 1.0:1.4")
    lo, hi = _decimal(lo_v, flag), _decimal(hi_v, flag)
    if lo < 1:
        raise SearchUsageError(f"{flag} {lo}:{hi}: the coefficients must be >= 1 (at phi = 1 "
                               "every dimension scales up, as in the paper)")
    if hi < lo:
        raise SearchUsageError(f"{flag} {lo}:{hi}: LO is above HI")
    if hi > 100:
        raise SearchUsageError(f"{flag} {lo}:{hi}: HI must be <= 100")
    return Axis(name, lo, hi)


@dataclass(frozen=True)
class GridSettings:
    """What to search: three axes, a step, and the constraint on the cost ratio."""

    alpha: Axis
    beta: Axis
    gamma: Axis
    step: Decimal
    target: Decimal
    tolerance: Decimal
    constrain: str = "nominal"
    cost: str = "macs"

    @property
    def axes(self) -> tuple[Axis, Axis, Axis]:
        return self.alpha, self.beta, self.gamma

    def describe(self) -> str:
        what = ("predicted latency ratio" if self.cost == "latency"
                else "alpha*beta^2*gamma^2")
        return (f"alpha {self.alpha.text()}, beta {self.beta.text()}, gamma {self.gamma.text()} "
                f"in steps of {self.step}; {what} = {self.target} +- "
                f"{self.tolerance} ({self.constrain})")

    def to_dict(self) -> dict:
        return {"alpha": [float(self.alpha.lo), float(self.alpha.hi)],
                "beta": [float(self.beta.lo), float(self.beta.hi)],
                "gamma": [float(self.gamma.lo), float(self.gamma.hi)],
                "step": float(self.step), "target": float(self.target),
                "tolerance": float(self.tolerance), "constrain": self.constrain,
                "cost": self.cost}


def grid_settings(*, alpha: object = DEFAULT_RANGES["alpha"], beta: object = DEFAULT_RANGES["beta"],
                  gamma: object = DEFAULT_RANGES["gamma"], step: object = DEFAULT_STEP,
                  target: object = DEFAULT_TARGET, tolerance: object = DEFAULT_TOLERANCE,
                  constrain: str | None = None, cost: str = "macs") -> GridSettings:
    """Check the grid's settings (:class:`SearchUsageError` naming the flag). ``constrain``
    defaults to ``nominal`` for ``cost="macs"`` and is ``achieved`` for ``cost="latency"``."""
    if cost not in COSTS:
        raise SearchUsageError(f"--cost {cost!r}: expected one of {', '.join(COSTS)}")
    if constrain is None:
        constrain = "achieved" if cost == "latency" else "nominal"
    if cost == "latency" and constrain == "nominal":
        raise SearchUsageError("--cost latency --constrain nominal: a latency has no nominal "
                               "form (alpha*beta^2*gamma^2 is the MACs'); a latency search "
                               "constrains the achieved ratio: drop --constrain")
    axes = [parse_axis(n, v) for n, v in (("alpha", alpha), ("beta", beta), ("gamma", gamma))]
    s = _decimal(step, "--step")
    if s <= 0:
        raise SearchUsageError(f"--step {s}: must be > 0")
    t = _decimal(target, "--target")
    if t <= 0:
        raise SearchUsageError(f"--target {t}: must be > 0 (the cost ratio over the baseline)")
    tol = _decimal(tolerance, "--tolerance")
    if tol < 0:
        raise SearchUsageError(f"--tolerance {tol}: must be >= 0")
    if constrain not in CONSTRAINTS:
        raise SearchUsageError(f"--constrain {constrain!r}: expected one of "
                               f"{', '.join(CONSTRAINTS)}")
    sizes = [int((a.hi - a.lo) / s) + 1 for a in axes]
    for a, n in zip(axes, sizes):
        if n > MAX_AXIS:
            raise SearchUsageError(f"--{a.name} {a.text()} in steps of {s} is {n:,} values (at "
                                   f"most {MAX_AXIS:,}): raise --step or narrow the range")
    if sizes[0] * sizes[1] * sizes[2] > MAX_POINTS:
        raise SearchUsageError(f"the grid has {sizes[0] * sizes[1] * sizes[2]:,} points (at most "
                               f"{MAX_POINTS:,}): raise --step or narrow the ranges")
    return GridSettings(*axes, step=s, target=t, tolerance=tol, constrain=constrain, cost=cost)


def nominal_cost(alpha: Decimal, beta: Decimal, gamma: Decimal) -> Decimal:
    """alpha * beta^2 * gamma^2, exactly (the paper's FLOPS growth at phi = 1 before rounding)."""
    return alpha * beta * beta * gamma * gamma


def grid_points(g: GridSettings) -> list[tuple[Decimal, Decimal, Decimal]]:
    """Every point of the box, in grid order (alpha, then beta, then gamma, ascending)."""
    return [(a, b, c) for a in g.alpha.values(g.step) for b in g.beta.values(g.step)
            for c in g.gamma.values(g.step)]


def _as_decimal(v: Decimal | float) -> Decimal:
    return v if isinstance(v, Decimal) else Decimal(repr(float(v)))


def canonical(obj: Any) -> Any:
    """``obj`` (a spec or a part of one) as plain JSON data with every field that holds its
    default left out, so that a later scalekit adding a field (with a default) to a spec's
    dataclasses names the same network, and the same spec, as before."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {}
        for f in dataclasses.fields(obj):
            if f.name == "path" or not f.compare:
                continue
            v = getattr(obj, f.name)
            if f.default is not dataclasses.MISSING and v == f.default:
                continue
            if f.default_factory is not dataclasses.MISSING and v == f.default_factory():
                continue
            out[f.name] = canonical(v)
        return {"": type(obj).__name__, **out}
    if isinstance(obj, (list, tuple)):
        return [canonical(x) for x in obj]
    if isinstance(obj, Mapping):
        return {str(k): canonical(v) for k, v in obj.items()}
    if isinstance(obj, float):
        return repr(obj)  # exact
    return obj


def _digest(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def network_digest(spec: Spec) -> str:
    """A short, stable name of the realised network (what :func:`network_key` holds: every
    channel, repeat and the resolution, not the name): the journal's key. Specs that scale to
    the same network under different coefficients share it."""
    return _digest(canonical(list(network_key(spec))))


def spec_digest(spec: Spec) -> str:
    """The baseline spec as data (comments and layout aside; fields at their defaults left
    out): the journal's spec identity."""
    return _digest(canonical(spec))


@dataclass(frozen=True)
class Point:
    """One grid point: its coefficients (the decimals of the grid) and nominal cost."""

    alpha: Decimal
    beta: Decimal
    gamma: Decimal
    nominal: Decimal

    def floats(self) -> tuple[float, float, float]:
        return float(self.alpha), float(self.beta), float(self.gamma)

    def label(self) -> str:
        a, b, c = self.floats()
        return f"alpha={a:g} beta={b:g} gamma={c:g}"


@dataclass(frozen=True)
class Candidate:
    """A distinct phi = 1 network of the grid: the point that names it, the other points that
    round to the same network (``aliases``), its exact counts and its cost ratios."""

    point: Point
    record: ModelRecord  # the rounded network, counted (``record.network`` is its spec)
    achieved: float  # its MACs / the baseline's MACs
    key: str  # network_digest of the realised network
    aliases: tuple[Point, ...] = field(default_factory=tuple)
    latency: dict[str, Any] | None = None  # its predicted latency (a cost="latency" grid)
    latency_ratio: float | None = None  # predicted ms / the baseline's predicted ms

    @property
    def cost_ratio(self) -> float:
        """The achieved ratio the grid constrains: predicted latency's, or the MACs'."""
        return self.achieved if self.latency_ratio is None else self.latency_ratio

    @property
    def alpha(self) -> float:
        return float(self.point.alpha)

    @property
    def beta(self) -> float:
        return float(self.point.beta)

    @property
    def gamma(self) -> float:
        return float(self.point.gamma)

    @property
    def nominal(self) -> float:
        return float(self.point.nominal)

    @property
    def spec(self) -> Spec:
        assert self.record.network is not None
        return self.record.network

    def spec_yaml(self) -> str:
        """The candidate's scaled network as a plain spec (what an evaluator's {spec} reads)."""
        r = self.record
        header = (f"# {safe_text(self.spec.name)}: a phi = 1 candidate of scalekit search "
                  f"({self.point.label()}; alpha*beta^2*gamma^2 = {self.nominal:.6g}, "
                  f"achieved {self.achieved:.4f}x the baseline's MACs).\n"
                  f"# Plain spec: {r.params:,} params, {r.macs:,} MACs at {r.resolution} px.\n")
        return spec_to_yaml(self.spec, header=header)


@dataclass(frozen=True)
class CandidateGrid:
    """The grid's outcome: the baseline, the settings, how many points were kept, and one
    :class:`Candidate` per distinct network (in grid order of the points that name them)."""

    base: Spec
    baseline: ModelRecord
    settings: GridSettings
    box: int  # points in the box
    kept: int  # points satisfying the constraint
    candidates: tuple[Candidate, ...]
    baseline_latency: dict[str, Any] | None = None  # the baseline's prediction (cost latency)

    @property
    def merged(self) -> int:
        """Kept points that round to a network another point already gives."""
        return self.kept - len(self.candidates)


Predict = Callable[[Sequence[ModelRecord]], Sequence[dict[str, Any]]]


def candidates(base: Spec, g: GridSettings, *, networks: Networks | None = None,
               predict: Predict | None = None) -> CandidateGrid:
    """Scale ``base`` to every grid point the constraint keeps (phi = 1: d = alpha, w = beta,
    r = gamma), count each network once, and merge the points that round alike.
    ``predict(records)`` gives each record's predicted latency (a dict with ``predicted_ms``):
    needed by a ``cost="latency"`` grid, called once, on the baseline and every distinct network
    of the box. :class:`SearchUsageError` if no point is kept."""
    nets = networks if networks is not None else Networks()
    baseline = make_record(base, mode="baseline", networks=nets)
    points = grid_points(g)
    scored: list[tuple[Point, ModelRecord, float, str]] = []  # every point the nominal rule keeps
    for a, b, c in points:
        nominal = nominal_cost(a, b, c)
        if g.constrain == "nominal" and abs(nominal - g.target) > g.tolerance:
            continue
        coef = coefficients(base, phi=1.0, alpha=float(a), beta=float(b), gamma=float(c))
        scaled = scale(base, coef)
        rec = make_record(scaled, coefficients=coef, mode="candidate", base=base.name,
                          networks=nets)
        scored.append((Point(a, b, c, nominal), rec, rec.macs / baseline.macs,
                       network_digest(scaled)))
    latency: dict[str, dict[str, Any]] = {}  # network digest -> its prediction
    ratios: dict[str, float] = {}  # network digest -> its predicted ms / the baseline's
    base_latency = None
    if g.cost == "latency":
        if predict is None:
            raise ValueError("a cost='latency' grid needs predict (records -> predictions)")
        distinct = {key: rec for _, rec, _, key in scored}
        preds = list(predict([baseline, *distinct.values()]))
        base_latency = preds[0]
        latency = dict(zip(distinct, preds[1:]))
        ratios = {k: p["predicted_ms"] / base_latency["predicted_ms"] for k, p in latency.items()}
    by_key: dict[str, list[tuple[Point, ModelRecord, float]]] = {}
    kept = 0
    nearest: float | None = None  # the achieved cost nearest the target (constrain achieved)
    for point, rec, achieved, key in scored:
        ratio = ratios.get(key, achieved)
        if g.constrain == "achieved":
            if nearest is None or abs(ratio - float(g.target)) < abs(nearest - float(g.target)):
                nearest = ratio
            if abs(_as_decimal(ratio) - g.target) > g.tolerance:
                continue
        kept += 1
        by_key.setdefault(key, []).append((point, rec, achieved))
    if not by_key:
        if g.cost == "latency":
            what = (f"a rounded network whose predicted latency is within {g.tolerance} of "
                    f"{g.target}x the baseline's ({len(points):,} points in the box; the nearest "
                    f"predicted ratio is {nearest:.4g})")
        elif g.constrain == "achieved":
            what = (f"a rounded network whose MACs are within {g.tolerance} of {g.target}x the "
                    f"baseline's (achieved; {len(points):,} points in the box; the nearest "
                    f"achieved cost is {nearest:.4g})")
        else:
            what = (f"alpha*beta^2*gamma^2 within {g.tolerance} of {g.target} (nominal; "
                    f"{len(points):,} points in the box{_nearest(g, points)})")
        raise SearchUsageError(f"no grid point has {what}: widen --tolerance or the ranges, or "
                               "use a finer --step")
    out = []
    for key, members in by_key.items():
        best = min(range(len(members)),
                   key=lambda i: (abs(members[i][0].nominal - g.target), i))
        point, rec, achieved = members[best]
        aliases = tuple(m[0] for i, m in enumerate(members) if i != best)
        out.append(Candidate(point, rec, achieved, key, aliases, latency=latency.get(key),
                             latency_ratio=ratios.get(key)))
    order = {p: i for i, p in enumerate(points)}
    out.sort(key=lambda cand: order[(cand.point.alpha, cand.point.beta, cand.point.gamma)])
    return CandidateGrid(base, baseline, g, len(points), kept, tuple(out),
                         baseline_latency=base_latency)


def _nearest(g: GridSettings, points: Sequence[tuple[Decimal, Decimal, Decimal]]) -> str:
    """', the nearest nominal cost is X' for the error message (nominal costs only: instant)."""
    if not points:
        return ""
    near = min((nominal_cost(*p) for p in points), key=lambda v: abs(v - g.target))
    return f"; the nearest nominal cost is {near.normalize():f}"

"""Scaling strategies as data, and the one number ("dial") that picks coefficients for a mode.

A strategy says how a FLOPs factor ``s`` is shared between depth, width and resolution. MACs grow
as ``d * w^2 * r^2`` (before rounding), so a strategy is three FLOPs *shares* ``(f_d, f_w, f_r)``
that sum to 1, and the multipliers are

    d = s^e_d,  w = s^e_w,  r = s^e_r   with  e_d = f_d,  e_w = f_w / 2,  e_r = f_r / 2,

so that ``e_d + 2 e_w + 2 e_r = 1`` and ``d * w^2 * r^2 == s`` exactly. This is the bookkeeping of
Dollar, Singh & Girshick, "Fast and Accurate Model Scaling" (CVPR 2021) and of its code
(pycls ``scaler.scaling_factors``: ``d = s^(f_d)``, ``w = s^(f_w / 2)``, ``r = s^(f_r / 2)``).

Activations (outputs of every layer) grow as ``d * w * r^2``, i.e. as ``s^(e_d + e_w + 2 e_r)``:
exponent 1 for depth or resolution scaling alone, 1/2 for width alone. That is why the strategies
differ in runtime at equal FLOPs, and why every report here shows activations.

- ``compound`` (Tan & Le 2019): d = alpha^phi, w = beta^phi, r = gamma^phi with the spec's bases;
  for a FLOPs factor s, ``phi = log(s) / log(alpha * beta^2 * gamma^2)``, so the shares are
  ``(log alpha, 2 log beta, 2 log gamma) / log(alpha * beta^2 * gamma^2)``.
- ``uniform``: an equal third of the FLOPs exponent per dimension: d = s^(1/3), w = r = s^(1/6)
  (Dollar et al.'s "dwr").
- ``dWr`` (Dollar et al.'s fast compound scaling, alpha = 0.8): shares ``((1-a)/2, a, (1-a)/2)``,
  i.e. d = s^0.1, w = s^0.4, r = s^0.05; activations grow as s^0.6, close to width's sqrt(s).
- ``depth``, ``width``, ``resolution``: the whole factor on one dimension (d = s, w = sqrt(s),
  r = sqrt(s)).

No torch here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from .errors import FlagError, ScalingError
from .scaling import Coefficients, coefficients, scale, scale_spec
from .spec import Compound, Spec

DWR_ALPHA = 0.8  # Dollar et al. 2021: the width share of fast compound scaling


@dataclass(frozen=True)
class Strategy:
    """How a FLOPs factor s is shared between depth, width and resolution."""

    name: str
    shares: tuple[float, float, float]  # FLOPs shares (depth, width, resolution); they sum to 1
    about: str  # one line: where the strategy comes from

    @property
    def exponents(self) -> tuple[float, float, float]:
        """(e_d, e_w, e_r): d = s^e_d, w = s^e_w, r = s^e_r, with e_d + 2 e_w + 2 e_r = 1."""
        f_d, f_w, f_r = self.shares
        return f_d, f_w / 2, f_r / 2

    @property
    def acts_exponent(self) -> float:
        """Activations grow as d * w * r^2 = s^(e_d + e_w + 2 e_r) before rounding."""
        e_d, e_w, e_r = self.exponents
        return e_d + e_w + 2 * e_r

    def multipliers(self, s: float) -> tuple[float, float, float]:
        """(d, w, r) for FLOPs factor ``s`` (before any rounding)."""
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s) or s <= 0:
            raise FlagError(f"the FLOPs factor must be a finite number > 0, got {s!r}")
        e_d, e_w, e_r = self.exponents
        try:
            return s ** e_d, s ** e_w, s ** e_r
        except OverflowError:
            raise FlagError(f"factor {s:g} overflows: the multipliers are astronomically "
                               "large") from None

    def describe(self) -> str:
        e_d, e_w, e_r = self.exponents
        return f"{self.name}: d = s^{e_d:.4g}, w = s^{e_w:.4g}, r = s^{e_r:.4g} ({self.about})"


STRATEGIES: dict[str, Strategy] = {s.name: s for s in (
    Strategy("uniform", (1 / 3, 1 / 3, 1 / 3),
             "an equal share of the FLOPs per dimension; Dollar et al.'s dwr"),
    Strategy("dWr", ((1 - DWR_ALPHA) / 2, DWR_ALPHA, (1 - DWR_ALPHA) / 2),
             f"Dollar et al. 2021 fast compound scaling, alpha={DWR_ALPHA:g}"),
    Strategy("depth", (1.0, 0.0, 0.0), "depth only"),
    Strategy("width", (0.0, 1.0, 0.0), "width only"),
    Strategy("resolution", (0.0, 0.0, 1.0), "resolution only"),
)}
STRATEGY_NAMES = ("compound",) + tuple(STRATEGIES)


def compound_strategy(c: Compound) -> Strategy:
    """The paper's rule as a strategy: phi = log(s) / log(alpha * beta^2 * gamma^2)."""
    k = math.log(c.alpha) + 2 * math.log(c.beta) + 2 * math.log(c.gamma)
    if k <= 0 or min(c.alpha, c.beta, c.gamma) < 1:
        raise ScalingError(f"compound bases alpha={c.alpha:g}, beta={c.beta:g}, gamma={c.gamma:g} "
                           "do not scale up (each must be >= 1, and alpha*beta^2*gamma^2 > 1)")
    return Strategy("compound", (math.log(c.alpha) / k, 2 * math.log(c.beta) / k,
                                 2 * math.log(c.gamma) / k),
                    f"Tan & Le 2019, alpha={c.alpha:g} beta={c.beta:g} gamma={c.gamma:g}")


def _unknown(name: str, valid: tuple[str, ...]) -> FlagError:
    lower = {v.lower(): v for v in valid}  # names are case-sensitive (dWr), suggestions not
    import difflib  # only for a misspelt name

    close = difflib.get_close_matches(name.lower(), list(lower), n=1, cutoff=0.5)
    hint = f"did you mean {lower[close[0]]!r}? " if close else ""
    if name == "dwr":  # Dollar et al. write uniform scaling "dwr" and fast scaling "dWr"
        hint = "did you mean 'uniform' (Dollar et al.'s dwr) or 'dWr' (fast compound)? "
    return FlagError(f"unknown strategy {name!r} ({hint}valid: {', '.join(valid)})")


def get_strategy(name: str, spec: Spec) -> Strategy:
    """A strategy by name; ``compound`` takes the spec's alpha/beta/gamma."""
    if name == "compound":
        return compound_strategy(spec.scaling.compound)
    if name not in STRATEGIES:
        raise _unknown(name, STRATEGY_NAMES)
    return STRATEGIES[name]


def strategy_coefficients(spec: Spec, name: str, factor: float) -> Coefficients:
    """Coefficients for FLOPs factor ``factor`` under strategy ``name`` (compound: with phi)."""
    st = get_strategy(name, spec)
    d, w, r = st.multipliers(factor)
    if name == "compound":
        c = spec.scaling.compound
        phi = math.log(factor) / math.log(c.alpha * c.beta ** 2 * c.gamma ** 2)
        return Coefficients(depth=d, width=w, resolution=r, phi=phi)
    return Coefficients(depth=d, width=w, resolution=r)


def scale_by(spec: Spec, *, strategy: str | None = None, factor: float | None = None,
             **flags) -> tuple[Spec, Coefficients]:
    """Scale ``spec`` as ``scalekit scale`` does: by a strategy and a FLOPs factor (``--strategy
    NAME --factor S``: d, w, r = s^e_d, s^e_w, s^e_r, and nothing else may set them), or by the
    flags of :func:`scalekit.scaling.coefficients` (``phi``, ``width``, ``preset``, ...; a flag
    that is None is not given). Returns (scaled spec, coefficients)."""
    given = {k: v for k, v in flags.items() if v is not None}
    if strategy is None and factor is None:
        return scale_spec(spec, **given)
    if strategy is None or factor is None:
        raise FlagError("--strategy and --factor go together: --strategy NAME --factor S")
    if given:
        raise FlagError("--strategy sets width, depth and resolution itself; it cannot be "
                           f"combined with {', '.join(f'--{k}' for k in given)}")
    coef = strategy_coefficients(spec, strategy, factor)
    return scale(spec, coef), coef


# ---------------------------------------------------------------------------------------------
# dials: one number per mode, what `fit` searches and `sweep` steps through


@dataclass(frozen=True)
class Dial:
    """The single number that picks the coefficients of a mode: the multiplier itself for
    width / depth / resolution, phi for compound, the FLOPs factor s for another strategy.
    Every dial is non-decreasing in all three multipliers, so the realised network grows with it."""

    mode: str
    symbol: str  # "w", "d", "r", "phi" or "s"
    neutral: float  # the value that leaves the network as it is
    log: bool  # multiplicative (search in log space) or additive (phi)
    make: Callable[[float], Coefficients]

    def coefficients(self, value: float) -> Coefficients:
        return self.make(value)

    def label(self, value: float) -> str:
        return f"{self.symbol}={value:.6g}"

    def flags(self, value: float) -> str:
        """The `scalekit scale` flags that give the same network."""
        option = {"w": "--width", "d": "--depth", "r": "--resolution", "phi": "--phi"}
        if self.symbol in option:
            return f"{option[self.symbol]} {value!r}"
        return f"--strategy {self.mode} --factor {value!r}"


DIAL_MODES = ("compound", "width", "depth", "resolution") + tuple(
    n for n in STRATEGIES if n not in ("depth", "width", "resolution"))


def dial(spec: Spec, mode: str) -> Dial:
    """The dial of ``mode`` (one of :data:`DIAL_MODES`) for ``spec``."""
    if mode == "width":
        return Dial(mode, "w", 1.0, True, lambda v: Coefficients(width=v))
    if mode == "depth":
        return Dial(mode, "d", 1.0, True, lambda v: Coefficients(depth=v))
    if mode == "resolution":
        return Dial(mode, "r", 1.0, True, lambda v: Coefficients(resolution=v))
    if mode == "compound":
        compound_strategy(spec.scaling.compound)  # refuse bases that cannot scale up
        return Dial(mode, "phi", 0.0, False, lambda v: coefficients(spec, phi=v))
    if mode not in STRATEGIES:
        raise _unknown(mode, DIAL_MODES)
    return Dial(mode, "s", 1.0, True, lambda v: strategy_coefficients(spec, mode, v))

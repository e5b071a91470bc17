"""Scaling: pure functions Spec -> Spec. No torch, and the input spec is never mutated.

The rounding rules are data in each spec (``scaling:``); the functions here only apply them:

- channels (each stage's kind says which of its fields width scales: ``out``, a bottleneck's
  ``mid``): ``max(min, int(c*w + d/2) // d * d)``, plus d if that fell below ``round_limit`` of c*w
  (TF round_filters, Keras, torchvision _make_divisible, timm), or ``floor`` for TF-slim/Keras
  MobileNetV1's ``max(int(c*w), min)``.
- depth: ``ceil(repeats * d)`` per stage (TF round_repeats, torchvision adjust_depth), or ``round``.
- resolution: ``r * base`` rounded half-up to an integer, or to a multiple of ``resolution_divisor``.
- stem scales with width (or is fixed); head conv: ``width`` (TF / timm EfficientNet:
  round(1280*w)), ``width_at_least_1`` (MobileNetV2: never below 1280), ``last_stage_multiple``
  (torchvision EfficientNet: 4 x the last stage's scaled width), or ``fixed``.
- which channels: ``width_channels: all`` (every one above) or ``inner`` (only the kinds' inner
  widths, a bottleneck's mid: torchvision's Wide ResNet); grouped convs stay divisible by their
  groups (``groups:``, pycls's compatibility adjustment, in blocks/bottleneck.py).
- ``max_resolution`` caps a scaled resolution (EfficientNetV2's 480 px); ``--size`` is exact.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from .blocks import StageSpec, kind
from .errors import FlagError, ScalingError, SpecError
from .fields import MAX_NAME_CHARS, short_repr
from .spec import (MAX_BLOCKS, MAX_RESOLUTION, BatchNormSpec, Compound, HeadSpec, Origin,
                   ScalingRules, Spec, StemSpec, check_network)

MODES = ("baseline", "depth", "width", "resolution", "compound")
# Any multiplier (or alpha**phi) past this is a typo; below it every scaled count stays an exact
# int and c * w a finite float. The spec's limits (spec.MAX_*) then apply to the scaled network.
MAX_MULTIPLIER = 1e6
MIN_MULTIPLIER = 1e-6  # below it d * w^2 * r^2 underflows towards 0 and means nothing


def round_channels(c: int, w: float, rules: ScalingRules) -> int:
    """Scale a channel count by ``w`` under the spec's rule. ``w == 1`` leaves ``c`` as written."""
    if w == 1.0:
        return c
    x = c * w
    d = rules.channel_divisor
    if rules.channel_rounding == "floor":
        new = max(rules.min_channels, int(x) // d * d)
    else:
        new = max(rules.min_channels, int(x + d / 2) // d * d)
    if new < rules.round_limit * x:  # never lose more than (1 - round_limit) of the width
        new += d
    return new


def round_depth(repeats: int, d: float, rules: ScalingRules) -> int:
    """Scale a stage's repeats by ``d``; never below 1."""
    if d == 1.0:
        return repeats
    x = repeats * d
    n = math.ceil(x - 1e-9) if rules.depth_rounding == "ceil" else int(x + 0.5)
    return max(1, n)


def round_resolution(base: int, r: float, rules: ScalingRules) -> int:
    """``r * base`` rounded half-up to a multiple of the spec's resolution divisor."""
    if r == 1.0:
        return base
    div = rules.resolution_divisor
    px = int(base * r / div + 0.5) * div
    if px < 1:
        raise ScalingError(f"resolution multiplier {r:g} gives {base * r:.3g} px from {base} px; "
                           "a network needs at least 1 px")
    return min(px, rules.max_resolution) if rules.max_resolution else px


def compound_coefficients(phi: float, c: Compound) -> tuple[float, float, float]:
    """(depth, width, resolution) multipliers = (alpha**phi, beta**phi, gamma**phi)."""
    try:
        return c.alpha ** phi, c.beta ** phi, c.gamma ** phi
    except OverflowError:
        raise FlagError(f"phi={phi:g} overflows: the multipliers are astronomically large") from None


@dataclass(frozen=True)
class Coefficients:
    """What to scale by. ``size`` (pixels) wins over the ``resolution`` multiplier."""

    depth: float = 1.0
    width: float = 1.0
    resolution: float = 1.0
    size: int | None = None
    phi: float | None = None
    preset: str | None = None
    dropout: float | None = None
    batchnorm: BatchNormSpec | None = None  # a preset's BatchNorm settings

    def ideal_flops_factor(self, base_resolution: int) -> float:
        """d * w^2 * r^2 before any rounding (the paper's FLOPS ~ d w^2 r^2)."""
        r = self.size / base_resolution if self.size else self.resolution
        return self.depth * self.width ** 2 * r ** 2

    def describe(self) -> str:
        if self.preset:
            return f"preset {self.preset}"
        parts = []
        if self.phi is not None:
            parts.append(f"phi={self.phi:g}")
        parts.append(f"d={self.depth:.4g}")
        parts.append(f"w={self.width:.4g}")
        parts.append(f"{self.size}px" if self.size else f"r={self.resolution:.4g}")
        return " ".join(parts)


def _check(name: str, v: float | None, hi: float = MAX_MULTIPLIER,
           lo: float = MIN_MULTIPLIER) -> None:
    if v is None:
        return
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:  # NaN fails
        raise FlagError(f"{name} must be a number from {lo:,g} to {hi:,g}, got {short_repr(v)}")


def _finite(name: str, v: object) -> float:
    """``v`` as a finite float, or :class:`ScalingError` (an int too large for a float too)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise FlagError(f"{name} must be a finite number, got {short_repr(v)}")
    try:
        x = float(v)
    except OverflowError:
        x = math.inf
    if not math.isfinite(x):
        raise FlagError(f"{name} must be a finite number, got {short_repr(v)}")
    return x


def coefficients(spec: Spec, *, phi: float | None = None, width: float | None = None,
                 depth: float | None = None, resolution: float | None = None,
                 size: int | None = None, preset: str | None = None,
                 alpha: float | None = None, beta: float | None = None,
                 gamma: float | None = None) -> Coefficients:
    """Resolve the user's flags into multipliers, refusing contradictions."""
    for n, v in (("width", width), ("depth", depth), ("resolution", resolution),
                 ("alpha", alpha), ("beta", beta), ("gamma", gamma)):
        _check(n, v)
    if size is not None:
        if isinstance(size, float) and size.is_integer():
            size = int(size)
        if isinstance(size, bool) or not isinstance(size, int):
            raise FlagError(f"size must be a whole number of pixels, got {short_repr(size)}")
        _check("size", size, hi=MAX_RESOLUTION, lo=1)
    if preset is not None and not isinstance(preset, str):
        raise FlagError(f"preset must be a preset's name (a string), got {short_repr(preset)}")
    if size is not None and resolution is not None:
        raise FlagError("give either --resolution (a multiplier) or --size (pixels), not both")
    if preset is not None:
        if phi is not None or any(v is not None for v in (width, depth, resolution, size)):
            raise FlagError("--preset sets width, depth and resolution itself; it cannot be "
                               "combined with --phi, --width, --depth, --resolution or --size")
        if preset not in spec.presets:
            have = ", ".join(spec.presets) if spec.presets else "none"
            raise FlagError(f"{spec.name} has no preset {preset!r} (presets: {have})")
        p = spec.presets[preset]
        return Coefficients(depth=p.depth, width=p.width, size=p.resolution, preset=preset,
                            dropout=p.dropout, batchnorm=p.batchnorm)
    if phi is not None:
        phi = _finite("phi", phi)
        if any(v is not None for v in (width, depth, resolution, size)):
            raise FlagError("--phi sets width, depth and resolution itself; it cannot be "
                               "combined with --width, --depth, --resolution or --size")
        base = spec.scaling.compound
        c = Compound(alpha if alpha is not None else base.alpha,
                     beta if beta is not None else base.beta,
                     gamma if gamma is not None else base.gamma)
        d, w, r = compound_coefficients(phi, c)
        for n, v in (("depth", d), ("width", w), ("resolution", r)):
            if not MIN_MULTIPLIER <= v <= MAX_MULTIPLIER:
                raise FlagError(f"phi={phi:g} gives a {n} multiplier of {v:.3g}; it must be "
                                   f"from {MIN_MULTIPLIER:g} to {MAX_MULTIPLIER:g}")
        return Coefficients(depth=d, width=w, resolution=r, phi=phi)
    if any(v is not None for v in (alpha, beta, gamma)):
        raise FlagError("--alpha, --beta and --gamma only apply with --phi")
    return Coefficients(depth=depth or 1.0, width=width or 1.0,
                        resolution=resolution or 1.0, size=size)


def scale(spec: Spec, coef: Coefficients) -> Spec:
    """A new, plain spec with every channel count, repeat count and the resolution scaled."""
    rules = spec.scaling
    if coef.size is None and coef.depth == coef.width == coef.resolution == 1.0 \
            and coef.dropout is None and coef.batchnorm is None:
        return spec
    w, d = coef.width, coef.depth
    for n, v in (("width", w), ("depth", d), ("resolution", coef.resolution)):
        _check(n, v)
    px = coef.size if coef.size is not None else round_resolution(spec.resolution, coef.resolution, rules)
    every = rules.width_channels == "all"  # else only the kinds' inner widths
    if w != 1.0 and not every and not any(kind(st.block).inner_fields for st in spec.stages):
        raise ScalingError(f"{spec.name}: scaling.width_channels is inner, but no stage has an "
                           "inner width to scale (a bottleneck's mid); use width_channels: all")
    stem = dataclasses.replace(spec.stem, out=round_channels(spec.stem.out, w, rules)
                               if rules.stem == "width" and every else spec.stem.out)
    stages = tuple(
        dataclasses.replace(st, repeats=round_depth(st.repeats, d, rules),
                            **kind(st.block).scale_width(st, lambda c: round_channels(c, w, rules),
                                                         rules))
        for st in spec.stages)
    n_blocks = sum(s.repeats for s in stages)
    if n_blocks > MAX_BLOCKS:
        raise ScalingError(f"depth multiplier {d:g} gives {n_blocks:,} blocks; scalekit refuses "
                           f"networks of more than {MAX_BLOCKS:,} blocks")
    head_conv = spec.head.conv
    if head_conv and every and rules.head == "width":
        head_conv = round_channels(head_conv, w, rules)
    elif head_conv and every and rules.head == "width_at_least_1":
        head_conv = round_channels(head_conv, max(1.0, w), rules)
    elif head_conv and every and rules.head == "last_stage_multiple":  # checked: a whole multiple
        head_conv = head_conv // spec.stages[-1].out * stages[-1].out
    head = HeadSpec(conv=head_conv, act=spec.head.act,
                    dropout=coef.dropout if coef.dropout is not None else spec.head.dropout)
    base = spec.origin
    origin = Origin(
        spec=base.spec if base else spec.name,
        width=(base.width if base else 1.0) * w,
        depth=(base.depth if base else 1.0) * d,
        resolution=px,
        phi=coef.phi if base is None else None,
        preset=coef.preset if base is None else None,
    )
    scaled = dataclasses.replace(spec, name=scaled_name(spec, coef, px), resolution=px, stem=stem,
                                 stages=stages, head=head, origin=origin, presets={}, path=None,
                                 batchnorm=coef.batchnorm or spec.batchnorm)
    try:
        check_network(scaled)
    except SpecError as e:
        raise ScalingError(f"{spec.name} scaled by {coef.describe()}: {e.field}: {e.reason}") from None
    return scaled


def scaled_name(spec: Spec, coef: Coefficients, px: int) -> str:
    """The scaled network's name: the baseline's and how it was scaled, within the name limit of
    a spec (fields.MAX_NAME_CHARS: a long baseline name is shortened, so that ``scale --out``
    writes a spec that loads again)."""
    base = spec.name
    if coef.preset:
        # EfficientNet-B0 + preset b3 -> EfficientNet-B3 (the presets are named after the models)
        stem, _, tail = base.rpartition("-")
        if stem and tail.lower() == "b0" and coef.preset.lower().startswith("b"):
            return _within_limit(stem, f"-{coef.preset.upper()}")
        return _within_limit(base, f" ({coef.preset})")
    return _within_limit(base, f" (d={coef.depth:.6g}, w={coef.width:.6g}, {px}px)")


def _within_limit(base: str, suffix: str) -> str:
    room = MAX_NAME_CHARS - len(suffix)
    if len(base) > room:
        base = base[:max(0, room - 3)] + "..."
    return (base + suffix)[:MAX_NAME_CHARS]


def scale_spec(spec: Spec, **flags) -> tuple[Spec, Coefficients]:
    """Resolve flags (see :func:`coefficients`) and scale. Returns (scaled spec, coefficients)."""
    coef = coefficients(spec, **flags)
    return scale(spec, coef), coef


# StemSpec / StageSpec are re-exported for callers building specs by hand
__all__ = ["Coefficients", "MODES", "coefficients", "compound_coefficients", "round_channels",
           "round_depth", "round_resolution", "scale", "scale_spec", "StageSpec", "StemSpec"]

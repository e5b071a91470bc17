"""The Python API: load a spec, scale it, count it, build it, time it.

Thin, typed wrappers over the library, re-exported by the package::

    from scalekit import load_spec, scale, count, build_model, load_weights, measure_latency

Every function that takes a spec also takes a path to a YAML spec or the name of a bundled one
(``"efficientnet_b0"``). Specs are frozen dataclasses: :func:`scale` returns a new one and never
changes its input. Only :func:`build_model` and :func:`measure_latency` import torch, and only
when they are called (and :func:`load_weights`), so ``import scalekit`` and :func:`count` stay
torch-free.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Union

from .bundled import load_named
from .counting import Counts, count_plan
from .errors import ScalekitError, ScalingError
from .plan import expand
from .scaling import scale_spec
from .spec import Spec

if TYPE_CHECKING:
    from torch import nn

    from .latency.harness import Latency

SpecLike = Union[Spec, str, os.PathLike]
"""A :class:`Spec`, a path to a YAML spec, or the name of a bundled spec."""


def load_spec(spec: str | os.PathLike[str]) -> Spec:
    """Read and validate a spec: a YAML file, or a bundled name such as ``"resnet50"``.

    Raises :class:`scalekit.SpecError` naming the file and the field when it is not a valid spec.
    """
    return load_named(spec)


def _as_spec(spec: SpecLike) -> Spec:
    return spec if isinstance(spec, Spec) else load_spec(spec)


def scale(spec: SpecLike, *, phi: float | None = None, width: float | None = None,
          depth: float | None = None, resolution: float | None = None, size: int | None = None,
          preset: str | None = None, alpha: float | None = None, beta: float | None = None,
          gamma: float | None = None) -> Spec:
    """Return ``spec`` scaled, as a new plain spec (channels, repeats and resolution final).

    Give one of:

    - ``phi``: compound scaling, d = alpha**phi, w = beta**phi, r = gamma**phi (the bases default
      to the spec's ``scaling.compound``; ``alpha``/``beta``/``gamma`` override them). ``phi`` may
      be fractional or negative.
    - ``width``, ``depth`` and ``resolution`` multipliers (any subset), or ``size`` in pixels
      instead of the ``resolution`` multiplier.
    - ``preset``: official coefficients stored in the spec (EfficientNet ``"b0"`` .. ``"b7"``),
      including the preset's dropout rate.

    With none of them the spec is returned unchanged. Rounding follows the spec's ``scaling:``
    rules. Raises :class:`scalekit.ScalingError` for contradictory or invalid values.
    """
    scaled, _ = scale_spec(_as_spec(spec), phi=phi, width=width, depth=depth,
                           resolution=resolution, size=size, preset=preset, alpha=alpha,
                           beta=beta, gamma=gamma)
    return scaled


def count(spec: SpecLike, resolution: int | tuple[int, int] | None = None) -> Counts:
    """Exact params, MACs and activations of the network, without torch.

    ``resolution`` (pixels, or ``(height, width)``) defaults to the spec's own. The result has
    ``params``, ``macs`` (multiply-accumulates: the paper's "FLOPS"), ``flops`` (2 x MACs) and
    ``acts`` (conv/linear/max-pool output elements); see the README's conventions.
    """
    if resolution is not None:
        sides = (resolution, resolution) if isinstance(resolution, int) else resolution
        if not (isinstance(sides, (tuple, list)) and len(sides) == 2 and all(
                isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in sides)):
            raise ScalingError(f"resolution must be a pixel count >= 1 or (height, width), "
                               f"got {resolution!r}")
        resolution = (sides[0], sides[1])
    return count_plan(expand(_as_spec(spec), resolution)).total


def build_model(spec: SpecLike, *, zero_init_residual: bool = False,
                layout: str = "scalekit") -> nn.Module:
    """A freshly initialised ``torch.nn.Module`` for ``spec``, in training mode.

    Init: kaiming-normal (fan_out) convs, BatchNorm gamma 1 / beta 0, uniform(+-1/sqrt(out))
    linear weights, zero biases (torchvision's EfficientNet / ResNet / MobileNet choices).
    ``zero_init_residual`` zeroes the last BatchNorm gamma of every residual branch, so each
    residual block starts as the identity (Goyal et al. 2017). Dropout before the classifier
    (``head.dropout``) and stochastic depth (``drop_path``, growing linearly to the last block)
    come from the spec and act in training mode only. The module accepts any input size; its
    ``resolution`` attribute is the spec's. Its parameter count equals ``count(spec).params``.
    Every BatchNorm has the spec's ``batchnorm`` eps and momentum.

    ``layout`` names the keys of its ``state_dict()`` and what ``load_state_dict()`` expects:
    ``"scalekit"`` (its own module names), or ``"torchvision"`` / ``"timm"``: the names of that
    library's model of the spec's family (the spec's ``checkpoints:``), so that the official
    checkpoint loads with ``model.load_state_dict(sd)`` (strict) and gives the same outputs.
    Raises :class:`scalekit.ScalekitError` if the spec names no such family.
    """
    from .build import build_model as _build

    return _build(_as_spec(spec), zero_init_residual=zero_init_residual, layout=layout)


def load_weights(model: nn.Module, weights: str | os.PathLike[str] | Any, *,
                 layout: str | None = None) -> nn.Module:
    """Load ``weights`` (a checkpoint file saved with ``torch.save``, or a state_dict) into
    ``model`` (made by :func:`build_model`) by name, and return the model.

    ``layout`` says whose names the checkpoint uses: ``"scalekit"``, ``"torchvision"`` or
    ``"timm"`` (default: the model's own). Every tensor must be there with the model's shape,
    and nothing else: otherwise one :class:`scalekit.ScalekitError` names the first missing and
    unexpected keys and wrong shapes, before anything is copied. Files are read with
    ``torch.load(weights_only=True)``: tensors only, no code runs.
    """
    from .build import load_weights as _load

    return _load(model, weights, layout=layout)


def measure_latency(model_or_spec: nn.Module | SpecLike,
                    resolution: int | tuple[int, int] | None = None, *, batch: int = 1,
                    threads: int = 1, **options: Any) -> Latency:
    """CPU inference latency of one forward pass (median and spread over repeated runs).

    ``model_or_spec`` is a built module (timed as it is) or a spec (built with
    :func:`build_model` first). ``resolution`` defaults to the spec's, or to the ``resolution``
    attribute of a module made by :func:`build_model`. Further ``options`` (``in_channels``,
    ``warmup``, ``min_runs``, ``max_runs``, ``budget_s``, ``target_rel_spread``,
    ``flush_denormal``, ``progress``) go to :func:`scalekit.latency.measure_latency`, which
    documents the method. Returns a
    :class:`scalekit.latency.Latency` (``median_ms``, ``iqr_ms``, ``throughput``, ...).
    """
    from .latency.harness import measure_latency as _measure

    if isinstance(model_or_spec, (Spec, str, os.PathLike)):
        spec = _as_spec(model_or_spec)
        model = build_model(spec)
        options.setdefault("in_channels", spec.in_channels)
        default_resolution = spec.resolution
    else:
        model = model_or_spec
        default_resolution = getattr(model, "resolution", None)
    if resolution is None:
        if default_resolution is None:
            raise ScalekitError("give the input resolution: this module does not record one")
        resolution = default_resolution
    return _measure(model, resolution, batch=batch, threads=threads, **options)


__all__ = ["SpecLike", "build_model", "count", "load_spec", "load_weights", "measure_latency",
           "scale"]

"""The Python API: load a spec, scale it, count it, build it, time it.

Thin, typed wrappers over the library, re-exported by the package::

    from scalekit import load_spec, scale, count, build_model, load_weights, measure_latency

Every function that takes a spec also takes a path to a YAML spec or the name of a bundled one
(``"efficientnet_b0"``). Specs are frozen dataclasses: :func:`scale` returns a new one and never
changes its input. Only :func:`build_model` and :func:`measure_latency` import torch, and only
when they are called (and :func:`load_weights`), so ``import scalekit`` and :func:`count` stay
torch-free.

Every function checks its arguments and raises a :class:`scalekit.ScalekitError` subclass, never
a raw TypeError / OverflowError / OSError from deep inside: :class:`scalekit.SpecError` (a spec
that cannot be read or is invalid, a bad file name), :class:`scalekit.ScalingError` (scaling
arguments), :class:`scalekit.ArgumentError` (any other argument; also a ValueError), and
:class:`scalekit.ScalekitError` itself when a model will not fit in memory (``force=True``
builds it anyway, as ``--force`` does on the command line).
"""

from __future__ import annotations

import math
import os
import weakref
from typing import TYPE_CHECKING, Any, Callable, Union

from .bundled import load_named
from .counting import Counts, count_plan
from .errors import ArgumentError, ScalekitError, ScalingError
from .files import check_input_file
from .host import check_threads
from .memory import HEADROOM, available_memory, check_memory, format_bytes
from .extras import require_torch
from .plan import expand
from .scaling import scale_spec
from .spec import MAX_RESOLUTION, Spec

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


MAX_BATCH = 1_000_000  # images per forward pass (the command line's --batch allows as many)
_SPECS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # module -> its spec


def _int_arg(name: str, v: Any, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ArgumentError(f"{name} must be an integer, got {type(v).__name__}")
    if not lo <= v <= hi:
        raise ArgumentError(f"{name} must be from {lo:,} to {hi:,}, got {v:,}")
    return v


def _float_arg(name: str, v: Any, lo: float, lo_open: bool = False,
               hi: float = math.inf) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ArgumentError(f"{name} must be a number, got {type(v).__name__}")
    try:
        x = float(v)
    except OverflowError:
        x = math.inf
    if not math.isfinite(x) or x < lo or (lo_open and x == lo) or x > hi:
        bound = "" if hi == math.inf else f" and <= {hi:g}"
        raise ArgumentError(f"{name} must be a finite number {'>' if lo_open else '>='} {lo:g}"
                            f"{bound}, got {x:g}")
    return x


def _bool_arg(name: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise ArgumentError(f"{name} must be True or False, got {type(v).__name__}")
    return v


def _sides(resolution: Any) -> tuple[int, int]:
    """A resolution as (height, width) in pixels, each from 1 to MAX_RESOLUTION."""
    sides = resolution if isinstance(resolution, (tuple, list)) else (resolution, resolution)
    if len(sides) != 2:
        raise ArgumentError("resolution must be a pixel count or (height, width), got "
                            f"{len(sides)} values")
    h, w = (_int_arg("resolution", x, 1, MAX_RESOLUTION) for x in sides)
    return h, w


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
    ``acts`` (conv/linear/max-pool output elements); see docs/conventions.md.
    """
    if resolution is not None:
        sides = (resolution, resolution) if isinstance(resolution, int) else resolution
        if not (isinstance(sides, (tuple, list)) and len(sides) == 2 and all(
                isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= MAX_RESOLUTION
                for s in sides)):
            raise ScalingError(f"resolution must be a pixel count >= 1 or (height, width), "
                               f"got {resolution!r}")
        resolution = (sides[0], sides[1])
    return count_plan(expand(_as_spec(spec), resolution)).total


def build_model(spec: SpecLike, *, zero_init_residual: bool = False,
                layout: str = "scalekit", force: bool = False) -> nn.Module:
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

    Like the command line, it first estimates the memory the model needs (parameters and the
    activations of a batch-1 forward pass) and raises :class:`scalekit.ScalekitError` when that
    does not fit in the memory available; ``force=True`` builds it anyway.
    """
    require_torch("build_model")
    from .build import build_model as _build

    _bool_arg("zero_init_residual", zero_init_residual)
    _bool_arg("force", force)
    spec = _as_spec(spec)
    check_memory(expand(spec), batch=1, force=force, override="force=True")
    model = _build(spec, zero_init_residual=zero_init_residual, layout=layout)
    _SPECS[model] = spec
    return model


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

    if isinstance(weights, (str, os.PathLike)):
        check_input_file(weights)  # a FIFO would block torch.load
    return _load(model, weights, layout=layout)


_OPTIONS: dict[str, Callable[[str, Any], Any]] = {
    "in_channels": lambda n, v: _int_arg(n, v, 1, 100_000),
    "warmup": lambda n, v: _int_arg(n, v, 0, 10_000),
    "min_runs": lambda n, v: _int_arg(n, v, 1, 1_000_000),
    "max_runs": lambda n, v: _int_arg(n, v, 1, 1_000_000),
    "budget_s": lambda n, v: _float_arg(n, v, 0.0, lo_open=True, hi=1e6),
    "target_rel_spread": lambda n, v: _float_arg(n, v, 0.0),
    "flush_denormal": _bool_arg,
    "progress": lambda n, v: v if v is None or callable(v) else _bool_arg(n, v),
}


def _guard_module(model: Any, batch: int, in_channels: int, sides: tuple[int, int],
                  force: bool) -> None:
    """The memory guard for a module: the full estimate for one :func:`build_model` made, else
    its parameters and buffers plus the input batch (what any forward pass needs at least)."""
    spec = _SPECS.get(model)
    if spec is not None:
        check_memory(expand(spec, sides), batch=batch, force=force,
                     override="force=True")
        return
    if force:
        return
    values = sum(t.numel() for t in (*model.parameters(), *model.buffers()))
    need = 4 * (values + batch * in_channels * sides[0] * sides[1])
    available = available_memory()
    if available is not None and need * HEADROOM > available:
        raise ScalekitError(f"timing this module needs at least {format_bytes(need)} (parameters "
                            f"and a batch-{batch} input); only {format_bytes(available)} "
                            "available; use force=True to try anyway")


def measure_latency(model_or_spec: nn.Module | SpecLike,
                    resolution: int | tuple[int, int] | None = None, *, batch: int = 1,
                    threads: int = 1, force: bool = False, **options: Any) -> Latency:
    """CPU inference latency of one forward pass (median and spread over repeated runs).

    ``model_or_spec`` is a built module (timed as it is) or a spec (built with
    :func:`build_model` first). ``resolution`` defaults to the spec's, or to the ``resolution``
    attribute of a module made by :func:`build_model`. Further ``options`` (``in_channels``,
    ``warmup``, ``min_runs``, ``max_runs``, ``budget_s``, ``target_rel_spread``,
    ``flush_denormal``, ``progress``) go to :func:`scalekit.latency.measure_latency`, which
    documents the method. Returns a
    :class:`scalekit.latency.Latency` (``median_ms``, ``iqr_ms``, ``throughput``, ...).

    ``batch`` (1 to 1,000,000), ``threads`` (1 to the cores available to this process) and
    every option are checked first (:class:`scalekit.ArgumentError`); then the memory guard, as
    on the command line (:class:`scalekit.ScalekitError`; ``force=True`` skips it).
    """
    require_torch("measure_latency")
    import torch

    from .latency.harness import measure_latency as _measure

    batch = _int_arg("batch", batch, 1, MAX_BATCH)
    try:
        threads = check_threads(threads)
    except ValueError as e:
        raise ArgumentError(str(e)) from None
    _bool_arg("force", force)
    unknown = sorted(set(options) - set(_OPTIONS), key=str)
    if unknown:
        raise ArgumentError(f"measure_latency takes no option {', '.join(map(str, unknown))} "
                            f"(options: {', '.join(_OPTIONS)})")
    options = {k: _OPTIONS[k](k, v) for k, v in options.items()}
    if options.get("max_runs", 200) < options.get("min_runs", 10):
        raise ArgumentError(f"max_runs ({options.get('max_runs', 200)}) must be >= min_runs "
                            f"({options.get('min_runs', 10)})")
    if isinstance(model_or_spec, (Spec, str, os.PathLike)):
        spec = _as_spec(model_or_spec)
        sides = _sides(spec.resolution if resolution is None else resolution)
        check_memory(expand(spec, sides), batch=batch, force=force,
                     override="force=True")
        model = build_model(spec, force=True)  # guarded just now, at this batch and size
        options.setdefault("in_channels", spec.in_channels)
    elif isinstance(model_or_spec, torch.nn.Module):
        model = model_or_spec
        if resolution is None:
            resolution = getattr(model, "resolution", None)
            if resolution is None:
                raise ArgumentError("give the input resolution: this module does not record one")
        sides = _sides(resolution)
        _guard_module(model, batch, options.get("in_channels", 3), sides, force)
    else:
        raise ArgumentError("measure_latency times a torch.nn.Module or a spec (a Spec, a path "
                            f"or a bundled name), got {type(model_or_spec).__name__}")
    try:
        return _measure(model, sides, batch=batch, threads=threads, **options)
    except ValueError as e:  # non-finite weights, a parameter off the CPU
        raise ArgumentError(str(e)) from None
    except RuntimeError as e:  # the forward pass itself failed on this input
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ArgumentError(f"the model's forward pass failed on a {batch}x"
                            f"{options.get('in_channels', 3)}x{sides[0]}x{sides[1]} input: "
                            f"{first}") from None


__all__ = ["SpecLike", "build_model", "count", "load_spec", "load_weights", "measure_latency",
           "scale"]

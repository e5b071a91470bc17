"""scalekit: scale convolutional networks (EfficientNet's compound scaling) and count the cost.

Importing scalekit does not import torch; only building or timing a model does.

    from scalekit import load_spec, scale, count, build_model, measure_latency

    b3 = scale(load_spec("efficientnet_b0"), preset="b3")   # a new, frozen Spec
    count(b3).params                                         # exact, without torch
    model = build_model(b3)                                  # torch.nn.Module, ready to train
    tv = build_model(b3, layout="torchvision")               # torchvision's names: loads its file

    result = search("my.yaml", evaluate="python train.py --spec {spec} --out {out}")
    result.best.candidate.alpha                              # step 1: alpha, beta, gamma

The names below are loaded on first use (PEP 562), so that ``import scalekit.cli`` can take over
Ctrl-C before anything heavy is imported (the command line ends quietly on a signal at any
moment, also while it starts).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "build_model": "api", "count": "api", "load_spec": "api", "load_weights": "api",
    "measure_latency": "api", "scale": "api", "Counts": "counting", "ArgumentError": "errors",
    "BaselineError": "errors", "FileError": "errors", "ScalekitError": "errors",
    "ScalingError": "errors", "SpecError": "errors", "Spec": "spec",
}

if TYPE_CHECKING:  # what a type checker and an IDE see
    from .api import build_model, count, load_spec, load_weights, measure_latency, scale
    from .counting import Counts
    from .errors import (ArgumentError, BaselineError, FileError, ScalekitError, ScalingError,
                         SpecError)
    from .spec import Spec
    from . import search


def __getattr__(name: str) -> Any:
    if name == "search":  # step 1 of compound scaling: a callable module, scalekit.search(...)
        return importlib.import_module(".search", __name__)
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'scalekit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | {"search"})


__all__ = ["ArgumentError", "BaselineError", "Counts", "FileError", "ScalekitError",
           "ScalingError", "Spec", "SpecError", "__version__", "build_model", "count",
           "load_spec", "load_weights", "measure_latency", "scale", "search"]

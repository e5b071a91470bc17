"""What to install for what: the distribution's name, its optional extras, and the one helper
every lazily imported optional dependency goes through.

scalekit's base install (click, rich, pyyaml) counts, scales, compares, fits, sweeps and checks;
building, timing and exporting models need the ``torch`` extra, and so on (pyproject.toml's
``[project.optional-dependencies]`` says the same). A feature that needs a missing package
calls :func:`require`, which raises :class:`MissingDependency` with one line saying what to
install, e.g. ``--counter thop needs thop: pip install 'scalekit-cnn[torch]'``.

No torch here, and nothing imported until :func:`require` is called.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import ScalekitError

DISTRIBUTION = "scalekit-cnn"
"""The name to ``pip install`` (``scalekit`` on the registry is an unrelated package). The import
package and the command are both ``scalekit``."""

EXTRA_OF = {
    "torch": "torch", "thop": "torch", "numpy": "torch",
    "matplotlib": "plot",
    "onnx": "onnx", "onnxscript": "onnx", "onnxruntime": "onnx",
    "safetensors": "safetensors",
    "fvcore": "reconcile", "ptflops": "reconcile", "torchinfo": "reconcile",
    "ray": "ray",
}
"""Importable module -> the extra of pyproject.toml that installs it."""


class MissingDependency(ScalekitError):
    """An optional package that a feature needs is not installed (one line: what to install)."""

    def __init__(self, purpose: str, modules: list[str], extra: str, alternative: str = ""):
        self.purpose, self.modules, self.extra = purpose, modules, extra
        self.alternative = alternative
        super().__init__(f"{purpose} needs {', '.join(modules)}: {install_hint(extra)}"
                         + (f", or {alternative}" if alternative else ""))


def install_hint(extra: str) -> str:
    """``pip install 'scalekit-cnn[EXTRA]'``."""
    return f"pip install '{DISTRIBUTION}[{extra}]'"


def require(*modules: str, purpose: str, alternative: str = "") -> ModuleType:
    """Import ``modules`` (in order) and return the first; if any cannot be imported, raise
    :class:`MissingDependency`: ``PURPOSE needs MODULE: pip install 'scalekit-cnn[EXTRA]'``
    (``, or ALTERNATIVE`` appended when given, e.g. ``count only with --no-latency``)."""
    loaded, missing = [], []
    for name in modules:
        try:
            loaded.append(importlib.import_module(name))
        except ImportError:
            missing.append(name)
    if missing:
        raise MissingDependency(purpose, missing, EXTRA_OF.get(missing[0].split(".")[0], "all"),
                                alternative)
    return loaded[0]


def missing_extra(error: ImportError) -> MissingDependency | None:
    """The one-line error for an optional package that turned out to be missing somewhere no
    :func:`require` was called (the command line's last resort); None for anything else."""
    name = (getattr(error, "name", None) or "").split(".")[0]
    if name not in EXTRA_OF:
        return None
    return MissingDependency("this command", [name], EXTRA_OF[name])


def installed_version(package: str) -> str | None:
    """The installed version of ``package`` without importing it (importing torch takes
    seconds): its ``version.py`` where it writes one (torch does), else its distribution's
    metadata (importlib.metadata: imported only then). None if it is not installed."""
    import importlib.util
    import os
    import re

    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    for where in spec.submodule_search_locations or ():
        try:
            with open(os.path.join(where, "version.py"), encoding="utf-8") as f:
                found = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", f.read(), re.M)
        except OSError:
            continue
        if found:
            return found.group(1)
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


TORCH = ("torch",)
"""What building a model imports (the ``torch`` extra)."""


def require_torch(purpose: str, alternative: str = "") -> ModuleType:
    """:func:`require` torch for ``purpose`` (building, timing, exporting a model)."""
    return require(*TORCH, purpose=purpose, alternative=alternative)


__all__ = ["DISTRIBUTION", "EXTRA_OF", "MissingDependency", "install_hint", "installed_version",
           "missing_extra", "require", "require_torch"]

"""Where the bundled baseline specs live, and name -> path resolution (``resnet50`` works too)."""

from __future__ import annotations

import os
from pathlib import Path

_PKG = Path(__file__).resolve().parent


def specs_dir() -> Path:
    """``scalekit/specs`` in an installed wheel, ``<repo>/specs`` in a source checkout."""
    for d in (_PKG / "specs", _PKG.parent / "specs"):
        if d.is_dir() and any(d.glob("*.yaml")):
            return d
    return _PKG.parent / "specs"


def bundled_specs() -> list[Path]:
    return sorted(specs_dir().glob("*.yaml"))


def resolve_spec(name: str | os.PathLike) -> str:
    """A path that exists is used as is; otherwise a bare bundled name (``resnet50`` or
    ``resnet50.yaml``) finds the bundled spec; otherwise the name is returned unchanged, so the
    loader reports the missing file by the name the user gave."""
    s = os.fspath(name)
    if os.path.exists(s) or os.sep in s or "/" in s:
        return s
    stem = s[:-5] if s.endswith(".yaml") else s
    candidate = specs_dir() / f"{stem}.yaml"
    try:
        return str(candidate) if candidate.is_file() else s
    except (OSError, ValueError):  # a name too long for a file name: the loader says so
        return s


def load_named(name: str | os.PathLike):
    """Load a spec by path or bundled name; a missing file's error lists the bundled names."""
    from .errors import FileError
    from .files import path_name
    from .spec import SpecError, load_spec

    try:
        name = path_name(name)
    except FileError as e:
        raise SpecError(e.reason, file=e.path) from None
    try:
        return load_spec(resolve_spec(name))
    except SpecError as e:
        s = os.fspath(name)
        if e.reason == "no such file" and "/" not in s and os.sep not in s:
            names = ", ".join(p.stem for p in bundled_specs())
            raise SpecError(f"no such file, and not a bundled spec ({names})", file=e.file) from None
        raise

"""Files scalekit writes: atomically, and only where the output policy allows.

The policy, in one place (the README's table of output options says the same):

- reports (``--output``, ``--plot``) are replaced atomically: readers see the old file or the new
  one, never half of one;
- artefacts a person may have edited (a scaled spec, ``scale --out``; an exported model,
  ``export --to``) are never replaced unless ``--overwrite`` is given;
- ``--force`` only lets a model past the memory guard; it never overwrites anything.

No torch here, and no click.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterator

from .errors import ScalekitError


def check_output_path(path: str | None) -> None:
    """Refuse, before any work is done, an output whose directory is missing or that is a
    directory."""
    if path is None:
        return
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise ScalekitError(f"{path}: directory {d} does not exist")
    if os.path.isdir(path):
        raise ScalekitError(f"{path}: is a directory")


def check_artefact_path(path: str | None, *, overwrite: bool = False,
                        flag: str = "--overwrite") -> None:
    """:func:`check_output_path`, and an artefact that exists is replaced only with ``overwrite``
    (``flag`` names the option that says so)."""
    check_output_path(path)
    if path is not None and os.path.exists(path) and not overwrite:
        raise ScalekitError(f"{path}: exists; use {flag} to replace it")


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = ".tmp") -> Iterator[str]:
    """Yield a temporary file name in ``path``'s directory for the caller to write; when the block
    ends without error the file atomically replaces ``path`` (``os.replace``), otherwise it is
    removed. Readers see the old file or the new one, never half of one. The new file gets the
    permissions ``open()`` would give it (mkstemp's are owner-only)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".scalekit-", suffix=suffix, dir=directory)
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`). A failure (no space, no
    permission, a read-only directory) leaves ``path`` as it was and raises an OSError that names
    ``path`` (not the temporary file)."""
    try:
        with atomic_path(path) as tmp:
            with open(tmp, "w", encoding="utf-8", newline="") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
    except OSError as e:
        raise OSError(e.errno, f"cannot write: {e.strerror or e}", path) from None

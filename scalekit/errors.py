"""Typed errors. Anything a user's YAML or flags can trigger is raised as one of these, never `assert`.

The CLI turns each into one line on stderr and exit code 1; click's own usage errors exit 2, and
so do :class:`FlagError` (scaling flags that contradict each other or cannot be used as given).
"""

from __future__ import annotations


class ScalekitError(Exception):
    """Base class: a problem with the user's input that deserves one clear line, not a traceback."""


class SpecError(ScalekitError):
    """A spec file that cannot be read or does not describe a valid network.

    Carries the file, the dotted field path (``stages[2].kernel``) and the reason, so that the
    message always names what to fix.
    """

    def __init__(self, reason: str, *, file: str | None = None, field: str | None = None):
        self.reason = reason
        self.file = file
        self.field = field
        super().__init__(self.message)

    @property
    def message(self) -> str:
        parts = [p for p in (self.file, self.field) if p]
        return ": ".join(parts + [self.reason])

    def with_file(self, file: str) -> "SpecError":
        return SpecError(self.reason, file=file, field=self.field)


class ScalingError(ScalekitError):
    """Coefficients or flags that cannot produce a network (non-finite, <= 0, conflicting)."""


class FlagError(ScalingError):
    """Scaling flags that cannot be used as given: contradictory (``--phi`` with ``--width``),
    one without the flag it needs (``--alpha`` without ``--phi``), an unknown name (``--strategy
    dwr``, ``--preset b9``) or a value out of range. The command line's usage error: exit 2.
    Also a :class:`ScalingError`."""


class BaselineError(ScalekitError):
    """The baseline file cannot be used: missing, not JSON, or not a scalekit document
    (``scalekit check`` exits 2: the check itself could not be made)."""


class ArgumentError(ScalekitError, ValueError):
    """An argument of a Python API function of the wrong type or out of range (``batch=0``,
    ``budget_s=nan``, an unknown option). Also a ``ValueError``."""


class FileError(ScalekitError):
    """A file scalekit was asked to read or write and will not: missing, not a regular file (a
    FIFO, a device, a socket), too large, read-only, or the same file as another input or
    output. ``path`` is the file as given, ``reason`` what is wrong with it."""

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP reached the command line (cli.py turns each into this), so the
    command unwinds like Ctrl-C: temporary files are removed, nothing is written half-way, and
    it exits 128 + the signal number. ``signum`` says which."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"signal {signum}")

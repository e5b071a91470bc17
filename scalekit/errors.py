"""Typed errors. Anything a user's YAML or flags can trigger is raised as one of these, never `assert`.

The CLI turns each into one line on stderr and exit code 1; click's own usage errors exit 2.
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


class BaselineError(ScalekitError):
    """The baseline file cannot be used: missing, not JSON, or not a scalekit document
    (``scalekit check`` exits 2: the check itself could not be made)."""

"""The search journal: every finished evaluation, one JSON line each, appended as it finishes.

    {"journal": "scalekit search", "version": 1, "spec": ..., "spec_sha256": ..., "evaluator": ...}
    {"key": "3f2a...", "seed": 0, "status": "ok", "metric": 0.874, "seconds": 16.5, ...}
    {"key": "91c0...", "seed": 0, "status": "failed", "reason": "exit status 1", "stderr_tail": ...}

- The first line says what the journal is for: the baseline spec (as data: comments and layout
  do not matter) and the evaluator (its command template or built-in, and the metric). A search
  of another spec or evaluator refuses the journal with one line.
- An entry is keyed by the realised network (``grid.network_digest``), not by float
  coefficients, and the seed; a later entry for the same key and seed supersedes an earlier one
  (``--retry-failed``).
- Each entry is one ``write`` of one whole line on a file opened for appending, then flushed to
  disk (fsync): Ctrl-C or a killed process leaves every finished evaluation readable. A line
  torn by a crash (no newline at the end) is dropped, with a warning, when the journal is next
  opened; nothing else is ever rewritten.
- One search at a time: the journal is locked (``flock``) while a search holds it open.

No torch here.
"""

from __future__ import annotations

import json
import os
import stat
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from .. import __version__
from ..errors import ScalekitError
from .evaluators import Evaluation

JOURNAL_VERSION = 1
MAX_LINE = 64_000  # bytes of one entry (a stderr tail is capped well below this)

try:  # POSIX; elsewhere the journal is simply not locked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]


class JournalError(ScalekitError):
    """A journal that cannot be used: another search's, damaged, locked, unreadable."""


@dataclass(frozen=True)
class Header:
    spec: str  # the baseline's name
    spec_sha256: str
    evaluator: str  # the evaluator's identity (template or built-in, and metric)

    def to_dict(self) -> dict[str, Any]:
        return {"journal": "scalekit search", "version": JOURNAL_VERSION, "spec": self.spec,
                "spec_sha256": self.spec_sha256, "evaluator": self.evaluator,
                "scalekit_version": __version__,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


@dataclass
class Journal:
    """An open journal: its entries so far, and :meth:`append` for new ones. ``path=None``: an
    in-memory journal (the Python API without ``journal=``)."""

    path: str | None
    header: Header
    entries: dict[tuple[str, int], Evaluation] = field(default_factory=dict)
    extra: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    _fd: int | None = None

    def get(self, key: str, seed: int) -> Evaluation | None:
        return self.entries.get((key, seed))

    def append(self, ev: Evaluation, about: Mapping[str, Any] | None = None) -> None:
        """Record ``ev`` (``about``: the candidate's coefficients and counts, for readers)."""
        entry = {**ev.to_dict(), **(about or {}),
                 "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        if self._fd is not None:
            line = json.dumps(entry, sort_keys=False, allow_nan=False) + "\n"
            data = line.encode("utf-8")
            if len(data) > MAX_LINE:  # a huge stderr tail: keep the entry, shorten the tail
                entry["stderr_tail"] = (entry.get("stderr_tail") or "")[-2000:]
                data = (json.dumps(entry, allow_nan=False) + "\n").encode("utf-8")
            _write_all(self._fd, data)
            os.fsync(self._fd)
        self.entries[(ev.key, ev.seed)] = ev
        self.extra[(ev.key, ev.seed)] = dict(about or {})

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock
            self._fd = None

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def memory_journal(header: Header) -> Journal:
    return Journal(None, header)


def open_journal(path: str, header: Header, *, say: Callable[[str], None] | None = None) -> Journal:
    """Open (or create) the journal at ``path`` for a search described by ``header``: the
    entries it already holds are read, and new ones will be appended. Raises
    :class:`JournalError` (one line) for another search's journal, a damaged one, or one that
    another search holds."""
    if os.path.isdir(path):
        raise JournalError(f"{path}: is a directory, not a journal")
    if os.path.lexists(path) and not stat.S_ISREG(os.stat(path).st_mode):
        raise JournalError(f"{path}: not a regular file (a FIFO, a socket or a device is never "
                           "a journal)")
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise JournalError(f"{path}: directory {d} does not exist")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError as e:
        raise JournalError(f"{path}: cannot open the journal: {e.strerror or e}") from None
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise JournalError(f"{path}: another search is using this journal (wait for it, "
                                   "or give another --journal)") from None
        journal = Journal(path, header, _fd=fd)
        _load(journal, fd, path)
    except BaseException:
        os.close(fd)
        raise
    for w in journal.warnings:
        if say is not None:
            say(f"scalekit: warning: {w}")
    return journal


def _load(journal: Journal, fd: int, path: str) -> None:
    size = os.fstat(fd).st_size
    raw = os.pread(fd, size, 0) if size else b""
    if raw and not raw.endswith(b"\n"):  # an append torn by a crash: drop the partial line
        keep = raw.rfind(b"\n") + 1
        os.ftruncate(fd, keep)
        journal.warnings.append(f"{path}: dropped an unfinished last line (a write cut short)")
        raw = raw[:keep]
    lines = raw.decode("utf-8", errors="replace").splitlines()
    if not lines:
        _write_all(fd, (json.dumps(journal.header.to_dict()) + "\n").encode("utf-8"))
        os.fsync(fd)
        return
    try:
        head = json.loads(lines[0])
    except ValueError:
        head = None
    if not isinstance(head, dict) or head.get("journal") != "scalekit search":
        raise JournalError(f"{path}: not a scalekit search journal (give a new file, or the "
                           "journal of this search)")
    if head.get("version") != JOURNAL_VERSION:
        raise JournalError(f"{path}: journal version {head.get('version')!r} is not one this "
                           f"scalekit reads ({JOURNAL_VERSION})")
    mine = journal.header
    if head.get("spec_sha256") != mine.spec_sha256:
        raise JournalError(f"{path}: this journal is of another spec ({head.get('spec')!r}, "
                           f"which differs from {mine.spec!r} as data); give another --journal")
    if head.get("evaluator") != mine.evaluator:
        raise JournalError(f"{path}: this journal is of another evaluator "
                           f"({_short(head.get('evaluator'))}, not {_short(mine.evaluator)}); "
                           "give another --journal")
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            ev = Evaluation.from_dict(d)
        except (ValueError, KeyError, TypeError):
            raise JournalError(f"{path}: line {n} is not a journal entry (the journal is damaged; "
                               "move it aside to start afresh)") from None
        journal.entries[(ev.key, ev.seed)] = ev
        journal.extra[(ev.key, ev.seed)] = {k: v for k, v in d.items()
                                             if k in ("alpha", "beta", "gamma")}


def _short(s: Any, n: int = 70) -> str:
    t = str(s)
    return repr(t if len(t) <= n else t[:n - 3] + "...")


def pending(journal: Journal, wanted: Iterable[tuple[str, int]], *,
            retry_failed: bool) -> list[tuple[str, int]]:
    """The (key, seed) pairs still to evaluate: not in the journal, or failed there and
    ``retry_failed``."""
    out = []
    for k in wanted:
        ev = journal.entries.get(k)
        if ev is None or (not ev.ok and retry_failed):
            out.append(k)
    return out

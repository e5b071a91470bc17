"""Files scalekit reads and writes: only regular files, atomically, and only where the output
policy allows.

The output policy, in one place (docs/commands.md's table of output options says the same):

- reports (``--output``, ``--plot``) are replaced atomically: readers see the old file or the new
  one, never half of one; ``--output -`` is standard output;
- artefacts a person may have edited (a scaled spec, ``scale --out``; an exported model,
  ``export --to``) are never replaced unless ``--overwrite`` is given;
- ``--force`` only lets a model past the memory guard; it never overwrites anything;
- only a regular file is ever replaced: a FIFO, a socket or a device (``/dev/null``,
  ``/dev/stdout``) is refused, and so is a read-only file (mode without any write bit, or one
  this user may not write), also as root;
- a symlink is written through: the file it points to is replaced, the link stays a link;
- a replaced file keeps its permission bits (0600 stays 0600); a new one gets what ``open()``
  would give it;
- no output may be (the same file as) an input or another output of the same command
  (:class:`Files`: each command declares what it reads and writes before it does any work);
- no temporary file survives: it is removed on any error and on SIGINT, SIGTERM or SIGHUP (cli.py
  turns those into an exception that unwinds; creating, renaming and removing the temporary file
  happen with those signals held, so none lands in between).

Inputs (specs, baselines) are read by :func:`read_input`: regular files only (a FIFO or
``/dev/zero`` is refused before anything blocks or grows), at most a given number of bytes, with
file names of at most :data:`MAX_PATH` characters and no NUL.

No torch here, and no click.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import signal
import stat
import threading
from typing import Any, Iterator

from .errors import FileError

MAX_PATH = 4096  # characters in a file name (Linux's PATH_MAX); a longer one is not a file name
STDOUT = "-"  # --output -: the report goes to standard output
_HELD = tuple(getattr(signal, s) for s in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, s))
_LIVE: set[str] = set()  # temporary files not yet renamed into place or removed
_ABANDONED: set[str] = set()  # removed after a failure; removed again at exit
_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISDIR, "a directory"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def path_name(path: Any) -> str:
    """``path`` as a file name (str or os.PathLike), or :class:`FileError`: not a name, a NUL
    in it, or longer than :data:`MAX_PATH` characters."""
    try:
        p = os.fspath(path)
    except TypeError:
        raise FileError(type(path).__name__, "expected a file name (str or os.PathLike), got "
                                             f"a {type(path).__name__}") from None
    if isinstance(p, bytes):
        p = os.fsdecode(p)
    if len(p) > MAX_PATH:
        raise FileError(f"{p[:40]}...", f"a file name of {len(p):,} characters; longer than "
                                        f"{MAX_PATH:,} is not a file name")
    if "\0" in p:
        raise FileError(p, "a file name cannot contain a NUL character")
    return p


# ---------------------------------------------------------------------------------------------
# inputs


def check_input_file(path: Any) -> str:
    """Refuse (:class:`FileError`) an input that exists but is not a regular file (a FIFO would
    block its reader, ``/dev/zero`` never ends), before anything opens it; a missing file is
    left to its reader to report. Returns the name."""
    p = path_name(path)
    try:
        st = os.stat(p)
    except OSError:
        return p
    if stat.S_ISDIR(st.st_mode):
        raise FileError(p, "is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise FileError(p, f"is {_kind(st.st_mode)}, not a regular file; scalekit reads only "
                           "regular files")
    return p


def read_input(path: Any, limit: int, what: str = "files") -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them (``what`` names such
    files in the message: "specs"). Refuses, with :class:`FileError`, a missing file, a
    directory, a FIFO, a device or a socket (checked before and after opening, which never
    blocks: ``O_NONBLOCK``), and a file over ``limit`` bytes."""
    p = path_name(path)

    def fail(e: OSError) -> FileError:
        if isinstance(e, FileNotFoundError):
            return FileError(p, "no such file")
        if isinstance(e, PermissionError):
            return FileError(p, "permission denied")
        return FileError(p, f"cannot read: {e.strerror or e}")

    try:
        st = os.stat(p)
    except OSError as e:
        raise fail(e) from None
    if not stat.S_ISREG(st.st_mode):
        what_it_is = _kind(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            raise FileError(p, "is a directory, not a file")
        raise FileError(p, f"is {what_it_is}, not a regular file; scalekit reads only regular "
                           "files")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(p, flags)
    except OSError as e:
        raise fail(e) from None
    try:
        st = os.fstat(fd)  # what was opened, not what was there a moment ago
        if not stat.S_ISREG(st.st_mode):
            raise FileError(p, f"is {_kind(st.st_mode)}, not a regular file; scalekit reads only "
                               "regular files")
        if st.st_size > limit:
            raise FileError(p, f"file is {st.st_size:,} bytes; {what} larger than {limit:,} "
                               "bytes are refused")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise FileError(p, f"more than {limit:,} bytes; {what} larger than that are refused")
        return b"".join(chunks)
    except OSError as e:
        raise fail(e) from None
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# outputs


_FD_LINK = re.compile(r"^/(dev/(std(in|out|err)|fd/\d+)|proc/(self|thread-self|\d+)/fd/\d+)$")


def _a_descriptor(path: str) -> bool:
    """Whether ``path`` (or a symlink on the way) is /dev/stdout, /dev/fd/N or /proc/PID/fd/N:
    a stream of this process, whatever file it happens to be now."""
    p = os.path.abspath(path)
    for _ in range(40):
        if _FD_LINK.match(p):
            return True
        try:
            p = os.path.join(os.path.dirname(p), os.readlink(p))
        except OSError:
            return False
        p = os.path.normpath(p)
    return False


def _writable_target(path: str) -> None:
    """An existing output must be a regular file that may be written (following symlinks)."""
    if _a_descriptor(path):
        raise FileError(path, "is a stream of this process, not a file; scalekit replaces only "
                              "regular files (use --output - for standard output)")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise FileError(path, f"cannot write: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise FileError(path, "is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise FileError(path, f"is {_kind(st.st_mode)}; scalekit replaces only regular files "
                              "(use --output - for standard output)")
    if not st.st_mode & 0o222 or not os.access(path, os.W_OK):
        raise FileError(path, "is read-only; scalekit does not replace a read-only file (make "
                              "it writable first)")


def check_output_path(path: str | None, *, stream: bool = False) -> None:
    """Refuse, before any work is done, an output that cannot be written: its directory is
    missing, it is a directory, a FIFO, socket or device, or read-only. ``stream``: ``-`` means
    standard output (``--output -``) and is fine; otherwise ``-`` is refused."""
    if path is None:
        return
    p = path_name(path)
    if p == STDOUT:
        if stream:
            return
        raise FileError(p, "this output cannot go to standard output; give a file name")
    if not p.strip():
        raise FileError(repr(p), "no file name given")
    d = os.path.dirname(os.path.abspath(os.path.realpath(p)))
    if not os.path.isdir(d):
        raise FileError(p, f"directory {d} does not exist")
    _writable_target(p)


def check_artefact_path(path: str | None, *, overwrite: bool = False,
                        flag: str = "--overwrite") -> None:
    """:func:`check_output_path`, and an artefact that exists is replaced only with ``overwrite``
    (``flag`` names the option that says so)."""
    check_output_path(path)
    if path is not None and os.path.lexists(path) and not overwrite:
        raise FileError(path, f"exists; use {flag} to replace it")


def same_file(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` name one file (the same inode, or the same path once symlinks are
    resolved, for a file that does not exist yet)."""
    try:
        if os.path.samefile(a, b):
            return True
    except (OSError, ValueError):
        pass
    return os.path.realpath(a) == os.path.realpath(b)


class Files:
    """What one command reads and writes, declared before it does any work, so that no output
    is (the same file as) an input or another output, and every output is writable::

        Files().reads("SPEC", spec_path).writes("--output", output, stream=True).check()

    ``None`` paths (an option not given) are skipped, and so is ``--output -``.
    """

    def __init__(self) -> None:
        self.inputs: list[tuple[str, str]] = []
        self.outputs: list[tuple[str, str, dict[str, Any]]] = []

    def reads(self, label: str, *paths: str | None) -> Files:
        self.inputs += [(label, p) for p in paths if p is not None]
        return self

    def writes(self, label: str, path: str | None, *, stream: bool = False,
               artefact: bool = False, overwrite: bool = False,
               flag: str = "--overwrite") -> Files:
        """``artefact``: replaced only with ``overwrite`` (``flag`` says how); ``stream``:
        ``-`` is standard output."""
        if path is not None:
            self.outputs.append((label, path, {"stream": stream, "artefact": artefact,
                                               "overwrite": overwrite, "flag": flag}))
        return self

    def check(self) -> None:
        """Raise :class:`FileError` for the first input that is not a regular file, or output
        that cannot or must not be written."""
        for _, inp in self.inputs:
            check_input_file(inp)
        files = []
        for label, path, how in self.outputs:
            if how["artefact"]:
                check_artefact_path(path, overwrite=how["overwrite"], flag=how["flag"])
            else:
                check_output_path(path, stream=how["stream"])
            if path != STDOUT:
                files.append((label, path))
        for i, (label, path) in enumerate(files):
            for other, inp in self.inputs:
                if same_file(path, inp):
                    where = "" if inp == path else f" ({inp})"
                    raise FileError(path, f"{label} is the same file as {other}{where}: "
                                          "scalekit never writes over its input")
            for other, out in files[:i]:
                if same_file(path, out):
                    raise FileError(path, f"{label} is the same file as {other}: give each "
                                          "output its own file")


# ---------------------------------------------------------------------------------------------
# writing atomically


_critical: list[int] = []  # depth of the critical sections running now (main thread)
_deferred: list[BaseException] = []  # what a signal handler raised inside one, raised after it


def in_critical_section() -> bool:
    """Whether a temporary file is being created, renamed or removed right now. A signal
    handler that would raise (the command line's) calls :func:`defer` instead: blocking the
    signal in the main thread alone is not enough, because the kernel may hand a process's
    signal to any other thread (torch's), and Python then runs the handler in the main thread
    at once."""
    return bool(_critical)


def defer(exc: BaseException) -> None:
    """Raise ``exc`` when the running critical section ends (see :func:`in_critical_section`)."""
    if not _deferred:
        _deferred.append(exc)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP wait while the block runs: a temporary file is created,
    renamed or removed whole, never interrupted half-way. They are blocked in this thread, and
    a handler that runs anyway defers what it raises to the end of the block."""
    main = threading.current_thread() is threading.main_thread()
    mask = main and bool(_HELD) and hasattr(signal, "pthread_sigmask")
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD) if mask else None
    _critical.append(1) if main else None
    try:
        yield
    finally:
        if main:
            _critical.pop()
        if mask:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)  # a pending signal runs here
        if main and not _critical and _deferred:
            raise _deferred.pop()


def _new_mode(target: str) -> int:
    """The permission bits for the file that replaces ``target``: its own if it exists, else
    what ``open()`` gives a new file (0666 less the umask)."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = ".tmp") -> Iterator[str]:
    """Yield a temporary file name beside ``path`` for the caller to write; when the block ends
    without error the file atomically replaces ``path`` (``os.replace``), otherwise it is
    removed. Readers see the old file or the new one, never half of one.

    ``path`` must be a regular file or not exist (:class:`FileError` otherwise, also if that
    changed while the caller wrote); through a symlink the file it points to is replaced. The new
    file keeps the old one's permission bits. Creating, renaming and removing the temporary file
    happen with SIGINT, SIGTERM and SIGHUP held, so none of them can leave it behind."""
    import tempfile  # here, not at import: a command that writes nothing needs none of it

    target = os.path.realpath(path_name(path))  # write through a symlink; the link stays
    _writable_target(path)
    tmp = None
    try:
        with _signals_held():
            fd, tmp = tempfile.mkstemp(prefix=".scalekit-", suffix=suffix,
                                       dir=os.path.dirname(target))
            _LIVE.add(tmp)
            os.close(fd)
        yield tmp
        with _signals_held():
            _writable_target(path)  # still a regular, writable file (or still none)
            os.chmod(tmp, _new_mode(target))
            os.replace(tmp, target)
            _LIVE.discard(tmp)
            tmp = None
    finally:
        if tmp is not None:
            with _signals_held():
                _remove(tmp)


def _remove(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except OSError:
        pass
    _LIVE.discard(tmp)
    _ABANDONED.add(tmp)


def _remove_abandoned() -> None:
    """At exit, after the interpreter has joined the threads a library left running: remove any
    abandoned temporary file that such a thread wrote again after it was removed (torch's ONNX
    exporter, interrupted, can)."""
    for tmp in list(_ABANDONED):
        try:
            os.unlink(tmp)
        except OSError:
            pass


atexit.register(_remove_abandoned)


def remove_temporary_files() -> None:
    """Remove every temporary file :func:`atomic_path` made and has not yet renamed or removed
    (the command line calls it on its way out, whatever stopped it)."""
    with _signals_held():
        for tmp in list(_LIVE):
            _remove(tmp)


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`). A failure (no space, no
    permission, a read-only directory) leaves ``path`` as it was and raises an OSError that names
    ``path`` (not the temporary file)."""
    try:
        with atomic_path(path) as tmp:
            with open(tmp, "w", encoding="utf-8", errors="backslashreplace", newline="") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
    except OSError as e:
        raise OSError(e.errno, f"cannot write: {e.strerror or e}", path) from None

"""The ``scalekit`` command: a thin click layer over the library.

Each command lives in scalekit/commands/<name>.py, listed in ``scalekit.commands.COMMANDS`` and
imported only when it runs (:class:`LazyGroup`): start-up pays for click and little else, so
``scalekit --version`` and the count-only commands start fast. Exit codes: 0 ok,
1 error (or a regression found by ``check``), 2 usage error, 128 + N on signal N: 130 on SIGINT
(Ctrl-C), 143 on SIGTERM, 129 on SIGHUP, each with one line on stderr.

Signals: from the first line of this module, SIGINT, SIGTERM and SIGHUP end the process quietly
(one line, no traceback) while the rest of scalekit is imported; while :func:`main` runs, each is
raised as :class:`scalekit.errors.Interrupted` (a KeyboardInterrupt), which unwinds the command
like Ctrl-C: partial measurements are reported, temporary files are removed (files.py), and
nothing is written half-way.
"""

from __future__ import annotations

import os
import signal
import sys

_SIGNALS = tuple(getattr(signal, s) for s in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, s))
_received: list[int] = []  # the signals that arrived while main() ran, first first
_finishing: list[bool] = []  # main() is on its way out: later signals change nothing


def _message(signum: int) -> str:
    if signum == signal.SIGINT:
        return "scalekit: interrupted"
    return f"scalekit: terminated by {signal.Signals(signum).name}"


def _exit_now(signum: int, frame: object) -> None:
    """While scalekit is still being imported: nothing to clean up, so one line and exit."""
    try:
        os.write(2, (_message(signum) + "\n").encode())
    finally:
        os._exit(128 + signum)


def _install(handler) -> dict[int, object]:
    previous = {}
    for s in _SIGNALS:
        try:
            previous[s] = signal.signal(s, handler)
        except (ValueError, OSError):  # not the main thread, or not allowed here
            pass
    return previous


def _restore(previous: dict[int, object]) -> None:
    for s, h in previous.items():
        try:
            signal.signal(s, h)  # type: ignore[arg-type]
        except (ValueError, OSError, TypeError):
            pass


# Ctrl-C in the first moments (while click, rich and scalekit load) ends quietly too; the
# handlers are given back once this module is loaded, so importing it changes nothing for a
# program that uses scalekit as a library.
_before_import = _install(_exit_now)

import click  # noqa: E402

from . import __version__  # noqa: E402
from .commands import COMMANDS, QUIET_KEY, QUIET_OUTSIDE, load  # noqa: E402
from .errors import Interrupted, ScalekitError  # noqa: E402
from .extras import missing_extra  # noqa: E402
from .files import defer, in_critical_section, remove_temporary_files  # noqa: E402
from .text import safe_text  # noqa: E402

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class LazyGroup(click.Group):
    """A group whose commands are the rows of :data:`scalekit.commands.COMMANDS`, each imported
    when it is first asked for. ``scalekit --help`` and shell completion of a command's name
    read the table alone."""

    def list_commands(self, ctx: click.Context | None) -> list[str]:
        return list(COMMANDS) + [n for n in self.commands if n not in COMMANDS]

    def get_command(self, ctx: click.Context | None, name: str) -> click.Command | None:
        if name not in self.commands and name in COMMANDS:
            self.commands[name] = load(name)
        return self.commands.get(name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name].short_help if name in COMMANDS
                 else self.commands[name].get_short_help_str()) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list:
        """Command names with their short help, from the table (completing a name imports no
        command), then the group's own options."""
        from click.shell_completion import CompletionItem

        items = [CompletionItem(name, help=COMMANDS[name].short_help) for name in COMMANDS
                 if name.startswith(incomplete)]
        return items + click.Command.shell_complete(self, ctx, incomplete)


def _quiet(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    ctx.meta[QUIET_KEY] = QUIET_OUTSIDE[0] = bool(value)  # each run starts from its own flag


@click.group(cls=LazyGroup, context_settings=CONTEXT)
@click.version_option(__version__, "--version", "-V", prog_name="scalekit")
@click.option("--quiet", "-q", is_flag=True, expose_value=False, callback=_quiet,
              help="No progress or informational lines on stderr (timing ..., wrote FILE); "
                   "errors and warnings are still shown. Every command takes it too.")
def cli() -> None:
    """Scale convolutional networks by width, depth, resolution or all three (EfficientNet's
    compound scaling), and count exactly what it costs: parameters, multiply-adds (MACs; the
    paper's "FLOPS"), activations and CPU latency.

    \b
    Examples:
      scalekit list
      scalekit info specs/efficientnet_b0.yaml
      scalekit scale specs/resnet50.yaml --phi 2
      scalekit compare --mode width,depth,resolution,compound --no-latency
      scalekit compare --table 2 --no-latency --format markdown
      scalekit compare --table 4
      scalekit bench efficientnet_b0 mobilenet_v2 resnet50 --optimize
      scalekit reconcile resnet50          # why fvcore, ptflops, thop, torchinfo disagree

    info, scale and compare also time each model on this CPU (median latency, GFLOP/s against
    the fp32 matmul peak); --no-latency counts only, without torch.

    A SPEC is a YAML file, or the name of a bundled spec (efficientnet_b0, resnet50, ...).

    Options that contradict each other, or that would have no effect together (--threads with
    --no-latency), are refused before any work: exit 2, one line saying why. Exit codes: 0 ok,
    1 error or a regression found by check, 2 usage error. Shell completion: eval
    "$(_SCALEKIT_COMPLETE=bash_source scalekit)" (zsh_source, fish_source).
    """


def _raise_interrupted(signum: int, frame: object) -> None:
    _received.append(signum)
    if _finishing:
        return
    if in_critical_section():  # a temporary file is being made, renamed or removed
        defer(Interrupted(signum))
        return
    raise Interrupted(signum)


class _ClosedStream:
    """Standard output when the process was started with it closed (``scalekit ... >&-``):
    writing to it is an error that says so, not an AttributeError on None."""

    encoding = "utf-8"
    errors = "strict"

    def write(self, text: str) -> int:
        raise OSError(9, "standard output is closed", "<stdout>")

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        raise OSError(9, "standard output is closed", "<stdout>")


def _prepare_streams() -> None:
    """Text that stdout's encoding cannot hold (``PYTHONIOENCODING=ascii``, a latin-1 terminal)
    is written escaped instead of failing; a closed stdout or stderr is a stream that says so."""
    if sys.stdout is None:
        sys.stdout = _ClosedStream()  # type: ignore[assignment]
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # nowhere to say anything
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and (getattr(stream, "encoding", "") or "").lower().replace(
                "-", "") not in ("utf8",):
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):
                pass


def _error(message: str) -> None:
    click.echo(f"Error: {safe_text(message)}", err=True)


def _show_click_error(e: click.ClickException) -> None:
    """click's own message (``--threads '1e11' is not a valid integer``), with what the user
    typed escaped. (Help shown for a bare ``scalekit`` is click's own text of several lines.)"""
    if isinstance(e, getattr(click.exceptions, "NoArgsIsHelpError", ())):
        e.message = "\n".join(safe_text(line) for line in e.message.split("\n"))
    elif isinstance(e, click.UsageError):  # one line, like every other error, with where to look
        where = f" (see {e.ctx.command_path} --help)" if e.ctx is not None else ""
        message = e.format_message()  # with the option it is about: Invalid value for '--x': ...
        message = message[:-1] if message.endswith(".") and not message.endswith("..") \
            else message
        click.echo(f"Error: {safe_text(message)}{safe_text(where)}", err=True)
        return
    else:
        e.message = safe_text(e.message)
    if isinstance(e, click.FileError):
        e.ui_filename = safe_text(e.ui_filename)
    e.show()


def main(argv: list[str] | None = None) -> None:
    """Entry point: one clear line for every error, never a traceback (unless SCALEKIT_DEBUG=1).

    Called without ``argv`` (the console script: the process ends with this call), a signal
    after the command is done changes nothing: the exit code is the command's. Called with
    ``argv`` (from a program or a test, in-process), the previous signal handlers are given
    back when it returns."""
    previous = _install(_raise_interrupted)
    del _received[:], _finishing[:]
    try:
        _main(argv)
    finally:
        _finishing.append(True)
        remove_temporary_files()
        if argv is not None:
            _restore(previous)
        else:  # the process ends with this call: a later signal must not make the interpreter,
            _install(signal.SIG_IGN)  # which restores default handlers as it finalises, die by it



def _interrupted() -> None:
    """Exit 128 + the first signal, with one line (temporary files removed first)."""
    _finishing.append(True)
    remove_temporary_files()
    signum = _received[0] if _received else signal.SIGINT
    try:
        click.echo(_message(signum), err=True)
    except Exception:  # pragma: no cover - stderr gone as well
        pass
    sys.exit(128 + signum)


def _main(argv: list[str] | None) -> None:
    try:
        _prepare_streams()
        code = cli.main(args=argv, prog_name="scalekit", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _interrupted()
    except Exception:
        if _received:  # a library (torch's exporter) turned the interrupt into its own error
            _interrupted()
        _report(sys.exc_info()[1])
    sys.exit(code if isinstance(code, int) else 0)


def _report(e: BaseException | None) -> None:
    """One line for an error, and the exit code it deserves."""
    if isinstance(e, click.ClickException):
        _show_click_error(e)
        sys.exit(e.exit_code)
    if isinstance(e, ScalekitError):
        _error(str(e))
        sys.exit(1)
    if isinstance(e, BrokenPipeError):
        # the reader went away (``scalekit ... | head``): not an error, and no traceback
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        sys.exit(0)
    if isinstance(e, OSError):  # a file that could not be read or written: the system's reason
        where = f"{e.filename}: " if e.filename else ""
        _error(f"{where}{e.strerror or e}")
        sys.exit(1)
    if isinstance(e, MemoryError):
        _error("out of memory (counting needs none: try --no-latency, or a smaller model)")
        sys.exit(1)
    if isinstance(e, RecursionError):
        _error("input nested too deeply to process")
        sys.exit(1)
    # a bug in scalekit: say so in one line, traceback on request
    if os.environ.get("SCALEKIT_DEBUG"):
        raise e  # type: ignore[misc]
    missing = missing_extra(e) if isinstance(e, ImportError) else None
    if missing is not None:  # an optional package, missing where nothing asked for it first
        _error(str(missing))
        sys.exit(1)
    _error(f"internal error: {type(e).__name__}: {e} (set SCALEKIT_DEBUG=1 for the traceback)")
    sys.exit(1)


_restore(_before_import)

if __name__ == "__main__":  # pragma: no cover
    main()

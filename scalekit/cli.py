"""The ``scalekit`` command: a thin click layer over the library.

Each command lives in scalekit/commands/<name>.py and is registered below. Exit codes: 0 ok,
1 error (or a regression found by ``check``), 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import os
import sys

import click

from . import __version__
from .commands import COMMANDS
from .errors import ScalekitError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "--version", "-V", prog_name="scalekit")
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
    """


for _cmd in COMMANDS:
    cli.add_command(_cmd)


def main(argv: list[str] | None = None) -> None:
    """Entry point: one clear line for every error, never a traceback (unless SCALEKIT_DEBUG=1)."""
    try:
        code = cli.main(args=argv, prog_name="scalekit", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("scalekit: interrupted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("scalekit: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except ScalekitError as e:
        click.echo(f"Error: {e}", err=True)
        sys.exit(1)
    except BrokenPipeError:
        # the reader went away (``scalekit ... | head``): not an error, and no traceback
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        sys.exit(0)
    except OSError as e:  # a file that could not be read or written: the system's reason
        where = f"{e.filename}: " if e.filename else ""
        click.echo(f"Error: {where}{e.strerror or e}", err=True)
        sys.exit(1)
    except MemoryError:
        click.echo("Error: out of memory (counting needs none: try --no-latency, or a smaller "
                   "model)", err=True)
        sys.exit(1)
    except Exception as e:  # a bug in scalekit: say so in one line, traceback on request
        if os.environ.get("SCALEKIT_DEBUG"):
            raise
        click.echo(f"Error: internal error: {type(e).__name__}: {e} "
                   "(set SCALEKIT_DEBUG=1 for the traceback)", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()

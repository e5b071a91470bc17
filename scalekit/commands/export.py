"""``scalekit export``: build a (scaled) spec and write it to a file (a torch.export program,
TorchScript, ONNX, or its weights as a state_dict or safetensors), verified."""

from __future__ import annotations

import click

from .. import exporters
from ..bundled import load_named, resolve_spec
from ..errors import ScalekitError
from ..files import Files
from ..layouts import LAYOUTS
from ..strategies import scale_by
from ..text import safe_text
from .common import (force_option, handle_errors, overwrite_option, pop_scaling, scaling_options,
                     strategy_options)
from .common import complete_spec, quiet_option


def _format(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        exporters.export_format(value)
    except ScalekitError as e:
        raise click.BadParameter(str(e)) from None
    return value


@click.command()
@click.argument("spec", metavar="SPEC", shell_complete=complete_spec)
@scaling_options
@strategy_options
@click.option("--to", "target", required=True, type=click.Path(dir_okay=False), metavar="FILE",
              callback=_format,
              help="Where to write the model; its suffix says how: FILE.pt2 (torch.export), "
                   "FILE.pt or FILE.ts (TorchScript), FILE.onnx (ONNX; pip install "
                   "'scalekit-cnn[onnx]'), FILE.pth (the state_dict: weights only), "
                   "FILE.safetensors (weights only; pip install 'scalekit-cnn[safetensors]'). "
                   "An existing FILE is kept unless --overwrite is given.")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True,
              help="Batch size of the example input (fixed in the ONNX graph and the torch.export "
                   "program; TorchScript and weights files take any).")
@click.option("--weights", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Load these weights first: a state_dict saved with torch.save (an official "
                   "torchvision or timm checkpoint, or a scalekit model's), loaded by name; "
                   "every tensor must fit.")
@click.option("--layout", type=click.Choice(LAYOUTS), default=None,
              help="Whose names the --weights file uses: scalekit's own (the default), or "
                   "torchvision's or timm's model of the spec's family (the spec's checkpoints).")
@overwrite_option("--to FILE")
@force_option
@quiet_option
@handle_errors
def export(spec: str, target: str, batch: int, weights: str | None, layout: str | None,
           overwrite: bool, force: bool, **kwargs) -> None:
    """Build SPEC (scaled by the same flags as `scalekit scale`) and export it.

    \b
    scalekit export efficientnet_b0 --preset b3 --to b3.pt2          torch.export
    scalekit export mobilenet_v2 --strategy dWr --factor 2 --to m.pth  state_dict (weights only)
    scalekit export resnet50 --phi 1 --to r50.onnx                   ONNX (torch.onnx, dynamo)
    scalekit export efficientnet_b0 --to b0.pt                       TorchScript (deprecated)
    scalekit export resnet50 --weights resnet50-11ad3fa6.pth --layout torchvision --to r50.pt2

    The input is batch x channels x the scaled spec's resolution. The model is exported in eval
    mode with freshly initialised weights, or with those of --weights FILE (a checkpoint whose
    names are --layout's: an official torchvision or timm one loads into the bundled spec of its
    family). The file is loaded back (torch.export.load, torch.jit.load or onnxruntime; a
    weights file into a freshly built model of the same spec) and its outputs are checked
    against the eager model on a random input before it is moved into place; the line printed
    says what was written and the largest absolute difference.
    """
    if layout is not None and weights is None:
        raise click.UsageError("--layout names whose keys the --weights FILE has: give --weights")
    hint = " (--force only passes the memory guard)" if force else ""
    Files().reads("SPEC", resolve_spec(spec)).reads("--weights", weights).writes(
        "--to", target, artefact=True, overwrite=overwrite, flag=f"--overwrite{hint}").check()
    scaling = pop_scaling(kwargs)
    scale_by(load_named(spec), **scaling)  # flags that cannot be used: a usage error, before torch
    r = exporters.export_spec(spec, target, batch=batch, overwrite=overwrite, force=force,
                              scaling=scaling, weights=weights,
                              layout=layout or "scalekit")
    shape = "x".join(str(n) for n in r.input_shape)
    source = f", weights from {r.weights} ({layout or 'scalekit'} layout)" if r.weights else ""
    click.echo(safe_text(f"wrote {r.path}: {r.name} as {r.format}, input {shape}, {r.params:,} "
                         f"params{source}; max |diff| vs eager {r.max_abs_diff:.3g} (outputs up "
                         f"to {r.output_scale:.3g})"))

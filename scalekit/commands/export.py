"""``scalekit export``: build a (scaled) spec and write it as TorchScript or ONNX, verified."""

from __future__ import annotations

import click

from .. import api, export as exporting
from ..cliutil import handle_errors, pop_scaling, scaling_options
from ..errors import ScalekitError
from ..guard import check_memory
from ..plan import expand


def _format(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        exporting.export_format(value)
    except ScalekitError as e:
        raise click.BadParameter(str(e)) from None
    return value


@click.command()
@click.argument("spec", metavar="SPEC")
@scaling_options
@click.option("--to", "target", required=True, type=click.Path(dir_okay=False), metavar="FILE",
              callback=_format,
              help="Where to write the model: FILE.pt or FILE.ts for TorchScript, FILE.onnx for "
                   "ONNX (needs: pip install 'scalekit[onnx]').")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True,
              help="Batch size of the example input (fixed in the ONNX graph; TorchScript takes "
                   "any).")
@click.option("--force", is_flag=True,
              help="Overwrite FILE if it exists, and build the model even when its estimated "
                   "memory exceeds what is available.")
@handle_errors
def export(spec: str, target: str, batch: int, force: bool, **kwargs) -> None:
    """Build SPEC (scaled by the same flags as `scalekit scale`) and export it.

    \b
    scalekit export efficientnet_b0 --preset b3 --to b3.pt       TorchScript (torch.jit.script)
    scalekit export resnet50 --phi 1 --to r50.onnx               ONNX (torch.onnx, dynamo)

    The input is batch x channels x the scaled spec's resolution. The model is exported in eval
    mode with freshly initialised weights (load a state dict into `build_model` for trained
    ones). The file is loaded back (torch.jit.load or onnxruntime) and its outputs are checked
    against the eager model on a random input before it is moved into place; the line printed
    says what was written and the largest absolute difference.
    """
    fmt = exporting.export_format(target)
    if fmt == "onnx":
        exporting.require_onnx()
    exporting.check_target(target, force=force)
    scaled = api.scale(spec, **pop_scaling(kwargs))
    check_memory(expand(scaled), batch=batch, force=force)
    model = api.build_model(scaled)
    example = exporting.example_input(batch, scaled.in_channels, scaled.resolution)
    r = exporting.export_model(model, target, example, force=force)
    shape = "x".join(str(n) for n in r.input_shape)
    click.echo(f"wrote {r.path}: {scaled.name} as {r.format}, input {shape}, "
               f"{api.count(scaled).params:,} params; max |diff| vs eager {r.max_abs_diff:.3g} "
               f"(outputs up to {r.output_scale:.3g})")

"""``scalekit scale``: apply compound, single-dimension or preset scaling to a spec."""

from __future__ import annotations

import os

import click

from .. import report
from ..analysis import analyze
from ..bundled import resolve_spec
from ..cliutil import (check_output_path, command_line, counter_option, emit, format_options,
                       handle_errors, pop_scaling, scaling_options)
from ..errors import ScalekitError
from ..scaling import scale_spec
from ..spec import load_spec, spec_to_yaml


@click.command()
@click.argument("spec", metavar="SPEC")
@scaling_options
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Write the scaled network as a plain spec (no multipliers left to apply).")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@counter_option
@format_options
@handle_errors
def scale(spec: str, out: str | None, force: bool, counter: str, fmt: str, output: str | None,
          **kwargs) -> None:
    """Scale SPEC and show it stage by stage next to the baseline.

    \b
    Compound (paper eq. 3):   --phi 2            d = alpha^phi, w = beta^phi, r = gamma^phi
    By hand:                  --width 2 --depth 1.5 --resolution 1.3 (or --size 300)
    Official EfficientNet:    --preset b3        (hand-rounded coefficients stored in the spec)

    Rounding follows the rules in the spec's `scaling:` section (channels to a multiple of 8,
    depth rounded up per stage, resolution rounded to an integer).
    """
    check_output_path(output)
    check_output_path(out)
    if out and os.path.exists(out) and not force:
        raise ScalekitError(f"{out}: exists; use --force to overwrite it")
    base = load_spec(resolve_spec(spec))
    scaled, coef = scale_spec(base, **pop_scaling(kwargs))
    rb = analyze(base, counter=counter, mode="baseline")
    rs = analyze(scaled, counter=counter, coefficients=coef, mode="scaled", base=base.name)
    ideal = coef.ideal_flops_factor(base.resolution)
    if out:
        header = (f"# {scaled.name}: {base.name} scaled by scalekit ({coef.describe()}).\n"
                  f"# Plain spec: channels, repeats and resolution are final. "
                  f"{rs.params:,} params, {rs.macs:,} MACs at {scaled.resolution} px.\n")
        report.write_atomic(out, spec_to_yaml(scaled, header=header))
        click.echo(f"wrote {out}", err=True)

    def table():
        return [report.scale_table(rb, rs, ideal), report.growth_table(rb, rs, ideal),
                report.totals_line(rs)]

    emit([rb, rs], fmt=fmt, output=output, command=command_line(), table=table,
         extra={"ideal_macs_factor": ideal})

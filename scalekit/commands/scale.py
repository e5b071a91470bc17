"""``scalekit scale``: apply compound, single-dimension or preset scaling to a spec."""

from __future__ import annotations

import os

import click

from .. import report
from ..analysis import analyze
from ..bundled import load_named
from ..cliutil import (check_output_path, command_line, counter_option, emit, finite_number,
                       format_options, handle_errors, latency_options, measure, pop_scaling,
                       pop_timing, scaling_options)
from ..errors import ScalekitError, ScalingError
from ..scaling import Coefficients, scale as scale_by, scale_spec
from ..spec import Spec, spec_to_yaml
from ..strategies import STRATEGY_NAMES, get_strategy, strategy_coefficients


def _by_strategy(base: Spec, name: str | None, factor: float | None,
                 flags: dict) -> tuple[Spec, Coefficients]:
    """--strategy NAME --factor S: d, w, r = s^e_d, s^e_w, s^e_r; nothing else may set them."""
    if name is None or factor is None:
        raise ScalingError("--strategy and --factor go together: --strategy NAME --factor S")
    given = [f"--{k}" for k, v in flags.items() if v is not None]
    if given:
        raise ScalingError("--strategy sets width, depth and resolution itself; it cannot be "
                           f"combined with {', '.join(given)}")
    coef = strategy_coefficients(base, name, factor)
    return scale_by(base, coef), coef


@click.command()
@click.argument("spec", metavar="SPEC")
@scaling_options
@click.option("--strategy", default=None, metavar="NAME",
              help=f"Pick d, w, r by a strategy ({', '.join(STRATEGY_NAMES)}) and a FLOPs factor "
                   "(--factor): d = s^e_d, w = s^e_w, r = s^e_r with d*w^2*r^2 = s.")
@click.option("--factor", type=float, default=None, metavar="S", callback=finite_number,
              help="--strategy: the FLOPs factor (4 = about 4x the baseline's MACs).")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Write the scaled network as a plain spec (no multipliers left to apply).")
@click.option("--force", is_flag=True,
              help="Overwrite --out if it exists, and build the models (latency, --counter thop) "
                   "even when their estimated memory exceeds the memory available.")
@counter_option
@latency_options()
@format_options
@handle_errors
def scale(spec: str, strategy: str | None, factor: float | None, out: str | None, force: bool,
          counter: str, fmt: str, output: str | None, **kwargs) -> None:
    """Scale SPEC and show it stage by stage next to the baseline.

    \b
    Compound (paper eq. 3):   --phi 2            d = alpha^phi, w = beta^phi, r = gamma^phi
    By hand:                  --width 2 --depth 1.5 --resolution 1.3 (or --size 300)
    Official EfficientNet:    --preset b3        (hand-rounded coefficients stored in the spec)
    A strategy:               --strategy dWr --factor 4   (Dollar et al. 2021; also uniform,
                              compound, width, depth, resolution)

    Rounding follows the rules in the spec's `scaling:` section (channels to a multiple of 8,
    depth rounded up per stage, resolution rounded to an integer). Both networks are then timed
    on this CPU, baseline and scaled side by side (--no-latency: counts only, instant).
    """
    check_output_path(output)
    timing = pop_timing(kwargs, force=force)
    check_output_path(out)
    if out and os.path.exists(out) and not force:
        raise ScalekitError(f"{out}: exists; use --force to overwrite it")
    base = load_named(spec)
    flags = pop_scaling(kwargs)
    if strategy is not None or factor is not None:
        scaled, coef = _by_strategy(base, strategy, factor, flags)
    else:
        scaled, coef = scale_spec(base, **flags)
    # the scaled model first: with --counter thop its memory guard should refuse before the
    # baseline's forward pass is paid for
    rs = analyze(scaled, counter=counter, coefficients=coef, mode="scaled", base=base.name,
                 force=force)
    rb = analyze(base, counter=counter, mode="baseline", force=force)
    ideal = coef.ideal_flops_factor(base.resolution)
    extra: dict = {"ideal_macs_factor": ideal}
    if timing is not None:  # before --out is written: Ctrl-C while timing leaves no file
        [rb, rs], timing_extra = measure([rb, rs], timing)
        extra.update(timing_extra)
    if out:
        header = (f"# {scaled.name}: {base.name} scaled by scalekit ({coef.describe()}).\n"
                  f"# Plain spec: channels, repeats and resolution are final. "
                  f"{rs.params:,} params, {rs.macs:,} MACs at {scaled.resolution} px.\n")
        report.write_atomic(out, spec_to_yaml(scaled, header=header))
        click.echo(f"wrote {out}", err=True)

    lines = [report.totals_line(rs)]
    if strategy is not None:
        st = get_strategy(strategy, base)
        ideal_acts = factor ** st.acts_exponent
        extra["strategy"] = {"name": st.name, "factor": factor, "exponents": list(st.exponents),
                             "acts_exponent": st.acts_exponent, "ideal_acts_factor": ideal_acts}
        lines.insert(0, f"strategy {st.describe()}. At s={factor:g}: acts ideally grow "
                        f"s^{st.acts_exponent:.3g} = {ideal_acts:.3f}x (rounded network: "
                        f"{rs.acts / rb.acts:.3f}x).")

    if timing is not None:
        lines.append(report.timing_line(extra["timing"], [rb, rs]))

    def table():
        return [report.scale_table(rb, rs, ideal), report.growth_table(rb, rs, ideal),
                "\n".join(lines)]

    emit([rb, rs], fmt=fmt, output=output, command=command_line(), table=table, extra=extra)

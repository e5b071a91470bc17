"""``scalekit scale``: apply compound, single-dimension or preset scaling to a spec."""

from __future__ import annotations

import click

from ..files import Files, write_atomic
from ..report import tables
from .common import (convention_option, counter_option, echo_err, force_option, format_options,
                     handle_errors, latency_options, overwrite_option, pop_latency, pop_scaling,
                     refuse_unused, refuse_unused_force, report_query, scaling_options,
                     strategy_options)
from .common import complete_spec, quiet_option


def _table(outcome):
    s = outcome.view
    lines = [tables.totals_line(s.scaled)]
    if s.strategy is not None:
        rb, rs = s.base, s.scaled
        lines.insert(0, f"strategy {s.strategy['about']}. At s={s.strategy['factor']:g}: acts "
                        f"ideally grow s^{s.strategy['acts_exponent']:.3g} = "
                        f"{s.strategy['ideal_acts_factor']:.3f}x (rounded network: "
                        f"{rs.acts / rb.acts:.3f}x).")
    if s.scaled.latency:
        lines += tables.timing_lines(outcome.extra["timing"], [s.base, s.scaled])
    return [tables.scale_table(s.base, s.scaled, s.ideal),
            tables.growth_table(s.base, s.scaled, s.ideal), tables.lines(*lines, highlight=True)]


@click.command()
@click.argument("spec", metavar="SPEC", shell_complete=complete_spec)
@scaling_options
@strategy_options
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Write the scaled network as a plain spec (no multipliers left to apply). An "
                   "existing FILE is kept unless --overwrite is given.")
@overwrite_option("--out FILE")
@force_option
@counter_option
@convention_option
@latency_options()
@format_options
@quiet_option
@handle_errors
def scale(spec: str, out: str | None, overwrite: bool, force: bool, counter: str,
          convention: str | None, fmt: str, output: str | None, **kwargs) -> None:
    """Scale SPEC and show it stage by stage next to the baseline.

    \b
    Compound (paper eq. 3):   --phi 2            d = alpha^phi, w = beta^phi, r = gamma^phi
    By hand:                  --width 2 --depth 1.5 --resolution 1.3 (or --size 300)
    Official EfficientNet:    --preset b3        (hand-rounded coefficients stored in the spec)
    A strategy:               --strategy dWr --factor 4   (Dollar et al. 2021; also uniform,
                              compound, width, depth, resolution)

    Rounding follows the rules in the spec's `scaling:` section (channels to a multiple of 8,
    depth rounded up per stage, resolution rounded to an integer). Both networks' latency on
    this CPU follows, baseline and scaled side by side: predicted from this machine's latency
    table by default (--latency measured: built and timed; --no-latency: counts only, instant),
    with their memory.
    """
    if out is None:
        refuse_unused({"overwrite": "without --out (it lets --out replace an existing file)"})
    hint = " (--force only passes the memory guard)" if force else ""
    files = Files().writes("--out", out, artefact=True, overwrite=overwrite,
                           flag=f"--overwrite{hint}")

    def write_spec(outcome):  # after timing: Ctrl-C while timing leaves no file
        write_atomic(out, outcome.view.spec_text())
        echo_err(f"wrote {out}")

    params = {"spec": spec, **pop_scaling(kwargs), "counter": counter, "convention": convention,
              **pop_latency(kwargs)}
    refuse_unused_force(params.get("latency"), counter)
    report_query("scale", params, fmt=fmt, output=output, force=force, draw=_table,
                 after=write_spec if out else None, files=files)

"""``scalekit fit``: the largest network a scaling mode gives within a budget."""

from __future__ import annotations

import click
from rich.text import Text

from ..files import Files
from ..host import cpu_model
from ..report import tables
from ..strategies import DIAL_MODES, dial, get_strategy
from ..studies.budget import SIG_DIGITS, FitResult, amount, cost_curve
from .common import (Budget, echo_err, format_options, handle_errors, plot_option,
                     refuse_unused, report_query, runtime_option, threads_option)
from ..text import plural
from .common import complete_spec, quiet_option

MACS_NOTE = "MACs = conv + linear multiply-accumulates (the paper's FLOPS)."


def _threads(lat: dict) -> str:
    n = lat.get("threads")
    return "? threads" if n is None else plural(n, "thread")


def _caption(res: FitResult, spec_arg: str, base, fit: dict) -> Text:
    d = dial(base, res.mode)
    best, above = res.best, res.above
    metric = res.metric
    best_cost, above_cost = best.cost, above.cost
    lines = [
        f"{d.label(best.value)} gives {amount(metric, best_cost)}"
        f"{' (predicted)' if fit.get('latency') == 'predicted' else ''}, "
        f"{best_cost / res.target * 100:.1f}% of the target; the next realisable step up, "
        f"{d.label(above.value)}, gives {amount(metric, above_cost)} "
        f"({(above_cost / res.target - 1) * 100:+.1f}%).",
        f"the same network: scalekit scale {spec_arg} {d.flags(best.value)}",
        f"strategy {get_strategy(res.mode, base).describe()}.",
    ]
    if metric == "latency" and fit.get("latency") == "predicted":
        conf = fit.get("confirmed") or {}
        lat = best.latency or {}
        verdict = ("CONFIRMED" if conf.get("within_target") else "NOT CONFIRMED: over the target "
                   "as measured; try a slightly lower target")
        lines.append(f"LATENCY IS PREDICTED from this machine's latency table (the calibrated sum "
                     f"of each network's blocks), {_threads(lat)}, runtime "
                     f"{fit.get('runtime', 'eager')}, on {cpu_model()}; "
                     f"{plural(res.evaluations, 'network')} predicted. The pick and the next "
                     "step up were then measured whole, "
                     f"interleaved: the pick {conf.get('measured_ms', 0):.2f} ms, the next step "
                     f"{conf.get('next_measured_ms', 0):.2f} ms measured: {verdict}.")
        if conf.get("reason"):
            lines.append(f"! the measurement is not to be trusted: {conf['reason']}")
    elif res.measured:
        lat = best.latency or {}
        lines.append(f"LATENCY IS MEASURED, NOT COUNTED: noisy, and the search trusts each "
                     f"measurement. Median of batch-1 forwards, {_threads(lat)}, "
                     f"on {cpu_model()}; {plural(res.evaluations, 'network')} measured.")
    elif metric == "memory":
        what = ("parameters + the peak activations of an inference forward pass"
                if fit.get("memory") == "inference" else
                "parameters + gradients + SGD-momentum state + the activations saved for "
                "backward")
        lines.append(f"memory = {what}, fp32, batch {fit.get('batch', 1)}, from the plan (the "
                     f"memory guard's estimate); {plural(res.evaluations, 'network')} estimated, "
                     f"searched over coefficients of up to {SIG_DIGITS} significant digits.")
    else:
        lines.append(f"exact counts of the rounded networks, searched over coefficients of up to "
                     f"{SIG_DIGITS} significant digits; {plural(res.evaluations, 'network')} "
                     "counted. "
                     + MACS_NOTE)
    if metric == "latency" and not res.resolved:
        lines.append(f"stopped at the evaluation limit: networks between "
                     f"{d.label(best.value)} and {d.label(above.value)} were not tried.")
    return tables.lines(*lines)


def _drawer(spec_arg: str):
    def draw(outcome):
        res, rows = outcome.view.result, outcome.view.rows
        base = res.baseline.spec
        d = dial(base, res.mode)
        fit = outcome.extra["fit"]
        return [tables.fit_table(
            [(label, d.label(c.value), r) for label, c, r in rows], res.metric, res.target,
            f"{base.name}: the largest {res.mode} scaling within {amount(res.metric, res.target)}",
            _caption(res, spec_arg, base, fit), memory=fit.get("memory", "inference"))]
    return draw


@click.command()
@click.argument("spec", metavar="SPEC", shell_complete=complete_spec)
@click.option("--target-macs", type=Budget(), default=None, metavar="N",
              help="MACs budget (the paper's FLOPS): 2G, 2e9, 300M.")
@click.option("--target-params", type=Budget(), default=None, metavar="N",
              help="Parameter budget: 20M, 2e7.")
@click.option("--target-acts", type=Budget(), default=None, metavar="N",
              help="Activation budget (conv/linear/pool outputs): 50M.")
@click.option("--target-latency", type=Budget(duration=True), default=None, metavar="TIME",
              help="Latency budget on this CPU: 40ms, 0.04s. Searched on PREDICTED latency (this "
                   "machine's latency table; new blocks are timed once), then the pick and the "
                   "next step up are measured whole to confirm it (--latency measured: search "
                   "on measurements, slow and noisy).")
@click.option("--target-memory", type=Budget(size=True), default=None, metavar="SIZE",
              help="Memory budget (fp32, at --batch): 512MiB, 1.5GiB, 100MB. What --memory "
                   "says: inference (params + peak activations, the memory guard's estimate) or "
                   "training (+ gradients, SGD-momentum state, saved activations).")
@click.option("--memory", type=click.Choice(("inference", "training")), default="inference",
              show_default=True, help="--target-memory: the memory of what.")
@click.option("--mode", type=click.Choice(DIAL_MODES), default="compound", show_default=True,
              help="What to scale: compound (phi, the spec's alpha/beta/gamma), width, depth, "
                   "resolution, or a strategy (uniform, dWr) by its FLOPs factor s.")
@click.option("--latency", type=click.Choice(("predicted", "measured")), default="predicted",
              show_default=True, help="--target-latency: search on predictions (then measure "
                                      "the pick) or on measurements.")
@runtime_option
@threads_option
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True,
              help="--target-latency and --target-memory: images per forward pass.")
@click.option("--max-measurements", type=click.IntRange(min=2), default=12, show_default=True,
              help="--target-latency: at most this many networks measured (--latency measured)"
                   ", or 4x as many predicted.")
@plot_option("the cost of the realised network against the coefficient (sampled around the "
             "answer; a latency fit: its three networks), with the budget as a line")
@format_options
@quiet_option
@handle_errors
def fit(spec: str, fmt: str, output: str | None, plot_path: str | None, **params) -> None:
    """Find the largest coefficient whose rounded, realised network stays within a budget.

    \b
    scalekit fit efficientnet_b0 --target-macs 2G                 (compound: phi)
    scalekit fit resnet50 --target-params 40M --mode width
    scalekit fit mobilenet_v2 --target-macs 1G --mode dWr         (a strategy: factor s)
    scalekit fit mobilenet_v2 --target-latency 20ms --mode width  (predicted, then measured)
    scalekit fit resnet50 --target-memory 1GiB --memory training --batch 32

    Rounding makes cost a step function of the coefficient, so the search is over realised
    networks: the answer is within the budget, and the next realisable step up (the network just
    past the answer's coefficient) is over it. Both are shown, with how close they are, and the
    `scalekit scale` flags that give the same network.
    """
    if params.get("target_latency") is None:
        why = "without --target-latency (only a latency target is timed)"
        refuse_unused({"latency": why, "runtime": why, "threads": why, "max_measurements": why})
    if params.get("target_memory") is None:
        refuse_unused({"memory": "without --target-memory"})
    report_query("fit", {"spec": spec, **params}, fmt=fmt, output=output, draw=_drawer(spec),
                 after=_plot_writer(plot_path) if plot_path else None,
                 files=Files().writes("--plot", plot_path))


def _plot_writer(path: str):
    def write(outcome) -> None:
        from ..report import plot

        res = outcome.view.result
        marks = [("baseline", res.baseline.value, res.baseline.cost),
                 ("fit", res.best.value, res.best.cost),
                 ("next step up" if res.resolved else "over target", res.above.value,
                  res.above.cost)]
        plot.write_fit(cost_curve(res), marks, path, symbol=res.symbol, metric=res.metric,
                       target=res.target, budget_label=f"budget: {amount(res.metric, res.target)}",
                       title=f"{res.baseline.spec.name}: the largest {res.mode} scaling within "
                             f"{amount(res.metric, res.target)}")
        echo_err(f"wrote {path}")
    return write

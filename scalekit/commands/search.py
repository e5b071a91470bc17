"""``scalekit search``: step 1 of compound scaling, finding alpha, beta, gamma for SPEC.

Not a query: its numbers come from training, so a report of it is never re-run by
``scalekit check`` (a baseline is data and never runs an evaluator command).
"""

from __future__ import annotations

import hashlib
import os

import click

from .. import __version__
from .. import search as searching
from ..bundled import load_named, resolve_spec
from ..errors import ScalekitError
from ..extras import install_hint, installed_version
from ..files import Files, write_atomic
from ..report import search as report
from ..report.document import REPORT_FORMATS
from ..search.backends import BACKENDS, SearchInterrupted
from ..search.grid import (CONSTRAINTS, COSTS, DEFAULT_RANGES, DEFAULT_STEP, DEFAULT_TARGET,
                           DEFAULT_TOLERANCE, SearchUsageError, spec_digest)
from ..search.results import SearchResult
from ..search.specfile import spec_text
from ..text import plural, safe_text
from .common import (command_line, echo_err, handle_errors, plot_option, put, refuse_unused,
                     require_pending,
                     say, show, threads_option, wide_option)
from .common import complete_spec, quiet_option


def _versions() -> dict[str, str | None]:
    """This scalekit's version (the scalekit-cnn distribution's) and the installed torch's, read
    without importing it."""
    return {"scalekit_version": __version__, "torch_version": installed_version("torch")}


def default_journal(spec_arg: str, spec_sha: str, identity: str) -> str:
    """``<spec stem>.search-<hash>.jsonl`` in the current directory: the same search (spec and
    evaluator) finds the same journal again, another search another one."""
    stem = os.path.basename(spec_arg)
    stem = stem[:-5] if stem.endswith(".yaml") else stem
    stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in stem) or "spec"
    digest = hashlib.sha256(f"{spec_sha}\n{identity}".encode("utf-8")).hexdigest()[:8]
    return f"{stem}.search-{digest}.jsonl"


def _emit(res: SearchResult, spec_arg: str, fmt: str, output: str | None) -> None:
    if fmt == "json":
        text = report.to_json(report.document(res, command_line(), _versions()))
    elif fmt == "csv":
        text = report.to_csv(res)
    elif fmt == "markdown":
        text = report.to_markdown(res)
    else:
        show(report.renderables(res, spec_arg), output)
        return
    put(text, output)


def _write_spec(res: SearchResult, path: str) -> None:
    best = res.best
    assert best is not None
    c = best.candidate
    where = "PROXY TASK (not ImageNet) " if res.proxy else ""
    seeds = f" over {len(best.values)} seeds" if len(best.values) > 1 else ""
    header = (f"# {safe_text(res.grid.base.name)} with the compound coefficients found by "
              f"scalekit search "
              f"(step 1, phi = 1): alpha={c.alpha:g} beta={c.beta:g} gamma={c.gamma:g},\n"
              f"# best of {plural(len(res.results), 'candidate')} by "
              f"{where}{safe_text(res.metric)} "
              f"{report.metric_text(best)}{seeds} ({safe_text(res.evaluator)}).\n"
              f"# Step 2: scalekit scale {safe_text(os.path.basename(path))} --phi N\n")
    why = (f"scalekit search: best of {plural(len(res.results), 'candidate')}"
           + (" on the proxy task" if res.proxy else f" by {safe_text(res.metric)}"))
    text, kept = spec_text(res.grid.base, c.alpha, c.beta, c.gamma, why=why, header=header)
    write_atomic(path, text)
    echo_err(f"wrote {path} (compound: alpha={c.alpha:g} beta={c.beta:g} gamma={c.gamma:g}"
             + ("" if kept else "; written out as data, the spec's comments were not kept") + ")")


@click.command()
@click.argument("spec", metavar="SPEC", shell_complete=complete_spec)
@click.option("--evaluate", "evaluate", default=None, metavar="CMD|builtin:proxy",
              help="How a candidate is trained and scored: a command template with {spec} (the "
                   "candidate's scaled YAML), {out} (where it writes a JSON object with the "
                   "metric) and {seed}, e.g. \"python train.py --spec {spec} --out {out} --seed "
                   "{seed}\"; or builtin:proxy, scalekit's proxy task (procedurally generated "
                   "images: a PROXY, not ImageNet; for trying the method).")
@click.option("--alpha", default=DEFAULT_RANGES["alpha"], show_default=True, metavar="LO:HI",
              help="Depth coefficient range (d = alpha at phi = 1).")
@click.option("--beta", default=DEFAULT_RANGES["beta"], show_default=True, metavar="LO:HI",
              help="Width coefficient range (w = beta).")
@click.option("--gamma", default=DEFAULT_RANGES["gamma"], show_default=True, metavar="LO:HI",
              help="Resolution coefficient range (r = gamma).")
@click.option("--step", default=DEFAULT_STEP, show_default=True, metavar="S",
              help="Grid step on every axis (decimal: 0.05 gives 1.0, 1.05, ..., 1.15, ...).")
@click.option("--target", default=str(DEFAULT_TARGET), show_default=True, metavar="X",
              help="Cost ratio alpha*beta^2*gamma^2 aimed at (the paper: 2, doubling FLOPS per "
                   "unit of phi).")
@click.option("--tolerance", default=str(DEFAULT_TOLERANCE), show_default=True, metavar="T",
              help="Keep grid points whose cost ratio is within T of --target.")
@click.option("--constrain", type=click.Choice(CONSTRAINTS), default=None,
              help="nominal (the default with --cost macs): alpha*beta^2*gamma^2 before rounding "
                   "(the paper's); achieved: the rounded network's exact MACs / the baseline's "
                   "(always, with --cost latency).")
@click.option("--cost", type=click.Choice(COSTS), default="macs", show_default=True,
              help="What --target is a ratio of: macs (the paper's FLOPS), or latency: each "
                   "rounded network's PREDICTED latency on this CPU (this machine's latency "
                   "table; blocks it lacks are timed once) over the baseline's; the pick is then "
                   "measured whole against the baseline to confirm it.")
@click.option("--force", is_flag=True,
              help="--cost latency: time networks the memory guard would refuse.")
@click.option("--dry-run", is_flag=True,
              help="List the candidates and their exact costs, evaluate nothing (torch-free, "
                   "instant).")
@click.option("--metric", default="accuracy", show_default=True, metavar="NAME",
              help="The key of the evaluator's JSON that scores a candidate.")
@click.option("--minimize", is_flag=True, help="Lower is better (a loss, an error rate).")
@click.option("--seeds", type=click.IntRange(1, 1000), default=1, show_default=True,
              metavar="K", help="Evaluate each candidate K times (seeds 0..K-1): mean and spread, "
                                "and whether the best is distinguishable from the next.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="S", help="Per evaluation: kill a command (its whole process group) after "
                                "S seconds; it is recorded as failed.")
@click.option("--journal", type=click.Path(dir_okay=False), default=None, metavar="PATH",
              help="Append every finished evaluation here (JSON lines); the same command again "
                   "resumes from it. Default: SPEC.search-HASH.jsonl in the current directory "
                   "(HASH names the spec and the evaluator).")
@click.option("--retry-failed", is_flag=True,
              help="Re-run evaluations the journal holds as failed (done ones never re-run).")
@click.option("--backend", type=click.Choice(BACKENDS), default="local", show_default=True,
              help="local: --workers evaluations at a time on this machine. ray: each "
                   f"evaluation a Ray task ({install_hint('ray')}).")
@click.option("--address", default=None, metavar="ADDR",
              help="--backend ray: an existing cluster (auto, or ray://HOST:PORT); default: "
                   "start a local Ray instance for this search.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              metavar="N", help="--backend local: evaluations at a time. --backend ray without "
                                "--address: the local instance gets N x --cpus-per-trial CPUs.")
@click.option("--cpus-per-trial", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, metavar="C",
              help="CPUs per evaluation (Ray reserves them; SCALEKIT_THREADS tells the command, "
                   "and builtin:proxy uses that many torch threads).")
@click.option("--gpus-per-trial", type=click.FloatRange(min=0), default=0.0, show_default=True,
              metavar="G", help="--backend ray: GPUs reserved per evaluation (Ray sets "
                                "CUDA_VISIBLE_DEVICES for it).")
@click.option("--write-spec", "write_spec", type=click.Path(dir_okay=False), default=None,
              metavar="OUT.yaml",
              help="Write SPEC with the best coefficients in its compound: block (its other text "
                   "kept); `scalekit scale OUT.yaml --phi N` is then step 2. An existing file is "
                   "kept unless --overwrite.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --write-spec file.")
@threads_option
@plot_option("the metric against the achieved cost, one point per candidate, the best marked")
@click.option("--format", "fmt", type=click.Choice(REPORT_FORMATS), default="table",
              show_default=True, help="table for people; json (one document with `best` and "
                                      "`candidates`), csv or markdown (one row per candidate).")
@click.option("--output", "-o", "output", type=click.Path(dir_okay=False), default=None,
              metavar="FILE", help="Write the report to FILE (atomically) instead of stdout.")
@wide_option
@quiet_option
@handle_errors
def search(spec: str, evaluate: str | None, alpha: str, beta: str, gamma: str, step: str,
           target: str, tolerance: str, constrain: str | None, cost: str, force: bool,
           threads: int, dry_run: bool, metric: str,
           minimize: bool, seeds: int, timeout: float | None, journal: str | None,
           retry_failed: bool, backend: str, address: str | None, workers: int,
           cpus_per_trial: float, gpus_per_trial: float, write_spec: str | None,
           overwrite: bool, plot_path: str | None, fmt: str, output: str | None) -> None:
    """Step 1 of compound scaling: find alpha, beta, gamma for SPEC at phi = 1 by training every
    candidate of a small grid under alpha * beta^2 * gamma^2 ~ 2 (the paper's section 3.3).

    \b
    scalekit search proxy_mbconv --evaluate builtin:proxy --alpha 1.1:1.4 --step 0.1
    scalekit search my.yaml --dry-run                      (the candidates, exact costs)
    scalekit search my.yaml --cost latency --dry-run       (2x the PREDICTED latency instead)
    scalekit search my.yaml --evaluate "python train.py --spec {spec} --out {out} --seed {seed}"
                            --seeds 3 --timeout 3600 --write-spec my_found.yaml
    scalekit search my.yaml --evaluate "..." --backend ray --address auto --gpus-per-trial 1

    Each candidate is SPEC scaled by d = alpha, w = beta, r = gamma with the spec's rounding
    rules; grid points that round to the same network are evaluated once. Every finished
    evaluation is appended to a journal: run the same command again to resume (failed ones are
    re-run only with --retry-failed). A command that fails or times out is recorded as failed,
    with the tail of its stderr; the search goes on. Results: a ranked table, the best
    coefficients, and --write-spec for step 2 (`scalekit scale OUT.yaml --phi 3`).
    """
    if dry_run:
        why = "with --dry-run (nothing is evaluated)"
        refuse_unused({k: why for k in ("metric", "minimize", "seeds", "timeout", "backend",
                                        "address", "workers", "cpus_per_trial",
                                        "gpus_per_trial")})
    if backend == "local":
        why = "with --backend local (it is for --backend ray)"
        refuse_unused({"address": why, "gpus_per_trial": why})
    elif address is not None:
        refuse_unused({"workers": "with --backend ray --address (the cluster decides how many "
                                  "run at a time)"})
    if write_spec is None:
        refuse_unused({"overwrite": "without --write-spec (it lets --write-spec replace an "
                                    "existing file)"})
    if cost != "latency":
        why = f"with --cost {cost} (only --cost latency times networks)"
        refuse_unused({"force": why, "threads": why})
    # every file it reads and writes, checked before any work: none may be another
    Files().reads("SPEC", resolve_spec(spec)).writes("--output", output, stream=True) \
        .writes("--plot", plot_path).writes("--write-spec", write_spec, artefact=True,
                                            overwrite=overwrite) \
        .writes("--journal", journal).check()
    if dry_run and (write_spec or plot_path or retry_failed):
        flag = "--write-spec" if write_spec else "--plot" if plot_path else "--retry-failed"
        raise click.UsageError(f"{flag} needs an evaluated search: drop --dry-run")
    if journal is not None and dry_run:
        raise click.UsageError("--dry-run evaluates nothing and writes no journal: drop --journal")
    ray_cpus = None  # a local Ray instance: all CPUs, or --workers trials' worth
    if backend == "ray" and address is None and workers > 1:
        ray_cpus = max(1, round(workers * cpus_per_trial + 0.499))
    try:
        searching.grid_settings(alpha=alpha, beta=beta, gamma=gamma, step=step, target=target,
                                tolerance=tolerance, constrain=constrain,
                                cost=cost)  # usage errors first
        require_pending()  # then --plot's matplotlib, before any work
        base = load_named(spec)
        evaluator = None
        if not dry_run or evaluate is not None:
            evaluator = searching.resolve_evaluator(evaluate, metric=metric, timeout=timeout)
        if evaluator is not None and not dry_run and journal is None:
            journal = default_journal(spec, spec_digest(base), evaluator.identity())
        res = searching.search(
            base, evaluator, alpha=alpha, beta=beta, gamma=gamma, step=step, target=target,
            tolerance=tolerance, constrain=constrain, metric=metric, minimize=minimize,
            seeds=seeds, timeout=timeout, journal=journal, retry_failed=retry_failed,
            backend=backend, workers=workers, address=address, cpus_per_trial=cpus_per_trial,
            gpus_per_trial=gpus_per_trial, dry_run=dry_run, say=say, ray_num_cpus=ray_cpus,
            cost=cost, threads=threads, force=force)
    except SearchUsageError as e:
        raise click.UsageError(str(e)) from None
    except SearchInterrupted as e:
        echo_err(f"scalekit: search interrupted: {e}", essential=True)
        raise
    if not dry_run and res.best is None:
        first = next((r for r in res.results if r.failures), None)
        detail = ""
        if first is not None:
            e = first.failures[0]
            detail = f"; the first: {first.candidate.point.label()} seed {e.seed}: {e.reason}"
        n = sum(len(r.evaluations) for r in res.results)
        raise ScalekitError(f"every evaluation failed ({n} of {n}){detail}")
    if write_spec:
        _write_spec(res, write_spec)
    if plot_path:
        report.write_plot(res, plot_path)
        echo_err(f"wrote {plot_path}")
    _emit(res, spec, fmt, output)

"""Running a search: the grid, the evaluator, the journal and a backend, put together.

:func:`search` is the Python API (``scalekit.search(...)``) and what ``scalekit search`` calls.
No torch here (the built-in proxy imports it in its own process), no click.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable

from ..bundled import load_named
from ..spec import Spec
from .backends import BACKENDS, LocalBackend, RayBackend, SearchInterrupted
from .evaluators import CallableEvaluator, CommandEvaluator, Evaluation, Task, check_template
from .grid import (DEFAULT_RANGES, DEFAULT_STEP, DEFAULT_TARGET, DEFAULT_TOLERANCE, CandidateGrid,
                   SearchUsageError, candidates, grid_settings, spec_digest)
from .journal import Header, Journal, memory_journal, open_journal, pending
from .results import SearchResult, rank

MAX_SEEDS = 1000
Say = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def resolve_evaluator(evaluate: Any, *, metric: str = "accuracy", timeout: float | None = None,
                      cwd: str | None = None) -> CommandEvaluator | CallableEvaluator:
    """``evaluate`` as an evaluator: a command template, ``"builtin:proxy"`` (optionally
    ``"builtin:proxy:epochs=2,train=2000"``), a :class:`~scalekit.search.proxy.ProxyConfig`, a
    Python callable ``f(spec, seed)``, or an evaluator object."""
    from . import proxy

    if not isinstance(metric, str) or not metric.strip():
        raise SearchUsageError("--metric: give the name of the key the evaluator reports")
    if timeout is not None and not timeout > 0:
        raise SearchUsageError(f"--timeout {timeout}: must be > 0 seconds")
    if evaluate is None:
        raise SearchUsageError("give an evaluator: --evaluate \"python train.py --spec {spec} "
                               "--out {out} --seed {seed}\", or --evaluate builtin:proxy (or "
                               "--dry-run to list the candidates)")
    if isinstance(evaluate, (CommandEvaluator, CallableEvaluator)):
        return evaluate
    if isinstance(evaluate, proxy.ProxyConfig):
        return proxy.proxy_evaluator(evaluate, timeout=timeout)
    if isinstance(evaluate, str):
        if evaluate.startswith("builtin:"):
            name, _, options = evaluate[len("builtin:"):].partition(":")
            if name != "proxy":
                raise SearchUsageError(f"--evaluate {evaluate}: unknown built-in evaluator "
                                       f"{name!r} (built-ins: builtin:proxy)")
            if metric != "accuracy":
                raise SearchUsageError("--metric: builtin:proxy reports accuracy (held-out, "
                                       "on its proxy task); leave --metric out")
            return proxy.proxy_evaluator(proxy.parse_options(options), timeout=timeout)
        check_template(evaluate)
        return CommandEvaluator(evaluate, metric=metric, timeout=timeout,
                                cwd=cwd or os.getcwd())
    if callable(evaluate):
        return CallableEvaluator(evaluate, metric=metric, timeout=timeout)
    raise SearchUsageError(f"evaluate: expected a command template, 'builtin:proxy' or a "
                           f"callable, got {type(evaluate).__name__}")


def make_backend(backend: str, *, workers: int = 1, address: str | None = None,
                 cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0,
                 ray_num_cpus: int | None = None, ray_temp_dir: str | None = None):
    if backend not in BACKENDS:
        raise SearchUsageError(f"--backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise SearchUsageError(f"--workers {workers!r}: must be a whole number >= 1")
    if not cpus_per_trial > 0 or gpus_per_trial < 0:
        raise SearchUsageError("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
    if backend == "local":
        if address is not None:
            raise SearchUsageError("--address is where a Ray cluster is: it needs --backend ray")
        if gpus_per_trial:
            raise SearchUsageError("--gpus-per-trial is Ray's (it reserves GPUs per trial): it "
                                   "needs --backend ray")
        return LocalBackend(workers)
    return RayBackend(address=address, cpus_per_trial=cpus_per_trial,
                      gpus_per_trial=gpus_per_trial, num_cpus=ray_num_cpus,
                      temp_dir=ray_temp_dir)


def _about(grid: CandidateGrid) -> dict[str, dict[str, Any]]:
    """What a journal entry records besides the evaluation, for a person reading it."""
    return {c.key: {"alpha": c.alpha, "beta": c.beta, "gamma": c.gamma,
                    "resolution": c.record.resolution, "params": c.record.params,
                    "macs": c.record.macs} for c in grid.candidates}


def _line(ev: Evaluation, label: str, metric: str, i: int, n: int) -> str:
    head = f"scalekit: [{i}/{n}] {label} seed {ev.seed}"
    if ev.ok:
        value = f"{ev.metric:.4f}" if abs(ev.metric) < 10 else f"{ev.metric:.4g}"
        return f"{head}: {metric} {value} ({ev.seconds:.1f} s)"
    return f"{head}: FAILED, {ev.reason} ({ev.seconds:.1f} s)"


def search(spec: Spec | str | os.PathLike, evaluate: Any = None, *,
           alpha: Any = DEFAULT_RANGES["alpha"], beta: Any = DEFAULT_RANGES["beta"],
           gamma: Any = DEFAULT_RANGES["gamma"], step: Any = DEFAULT_STEP,
           target: Any = DEFAULT_TARGET, tolerance: Any = DEFAULT_TOLERANCE,
           constrain: str | None = None, metric: str = "accuracy", minimize: bool = False,
           seeds: int = 1, timeout: float | None = None, journal: str | os.PathLike | None = None,
           retry_failed: bool = False, backend: str = "local", workers: int = 1,
           address: str | None = None, cpus_per_trial: float = 1.0,
           gpus_per_trial: float = 0.0, dry_run: bool = False, say: Say | None = None,
           ray_num_cpus: int | None = None, ray_temp_dir: str | None = None,
           cost: str = "macs", threads: int = 1, force: bool = False) -> SearchResult:
    """Step 1 of compound scaling: find alpha, beta, gamma for ``spec`` at phi = 1.

    Every grid point (``alpha``, ``beta``, ``gamma``: ``"LO:HI"`` or ``(lo, hi)``, walked in
    ``step``) whose alpha * beta^2 * gamma^2 is within ``tolerance`` of ``target`` (``constrain``
    ``"nominal"``, or ``"achieved"``: the rounded network's exact MACs over the baseline's) is
    scaled by d = alpha, w = beta, r = gamma; points that round to the same network are one
    candidate, evaluated ``seeds`` times by ``evaluate`` (a command template with {spec}, {out},
    {seed}; ``"builtin:proxy"``; or a callable ``f(spec, seed) -> float | dict``), which reports
    ``metric`` (maximised unless ``minimize``). Finished evaluations go to ``journal`` (a path:
    resumed when it exists; None: kept in memory only). ``backend`` ``"local"`` runs ``workers``
    evaluations at a time; ``"ray"`` runs each as a Ray task (``address``: an existing cluster;
    none: a local instance of ``ray_num_cpus`` CPUs). ``say`` receives progress lines.

    ``cost="latency"`` constrains the candidates' *predicted* latency on this machine (batch 1,
    ``threads`` threads; this machine's latency table, its missing blocks timed once) instead of
    their MACs: a point is kept when its rounded network's predicted latency is within
    ``tolerance`` of ``target`` x the baseline's. After an evaluated search the best candidate
    and the baseline are measured whole, interleaved, to confirm the pick's ratio
    (``SearchResult.confirmed``). ``force`` passes the memory guard for what is timed.

    Returns a :class:`~scalekit.search.results.SearchResult`: candidates ranked, ``best``, and
    which are ``not_distinguishable`` from the best within the seeds' spread. ``dry_run`` lists
    the candidates and their exact costs without evaluating anything. Raises
    :class:`~scalekit.search.grid.SearchUsageError` for settings that cannot make a search, and
    :class:`~scalekit.search.backends.SearchInterrupted` on Ctrl-C (what finished is journaled).
    """
    say = say or _quiet
    base = spec if isinstance(spec, Spec) else load_named(spec)
    settings = grid_settings(alpha=alpha, beta=beta, gamma=gamma, step=step, target=target,
                             tolerance=tolerance, constrain=constrain, cost=cost)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= MAX_SEEDS:
        raise SearchUsageError(f"--seeds {seeds!r}: must be a whole number from 1 to {MAX_SEEDS}")
    evaluator = None if dry_run and evaluate is None else resolve_evaluator(
        evaluate, metric=metric, timeout=timeout)
    runner = make_backend(backend, workers=workers, address=address,
                          cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial,
                          ray_num_cpus=ray_num_cpus, ray_temp_dir=ray_temp_dir)
    timing: dict[str, Any] = {}
    predict = _predictor(threads, say, force, timing) if settings.cost == "latency" else None
    grid = candidates(base, settings, predict=predict)
    proxy = bool(getattr(evaluator, "proxy", False))
    notes = _notes(base, grid, evaluator)
    if proxy:
        from .proxy import WARNING

        say(f"scalekit: {WARNING}")
    for note in notes:
        say(f"scalekit: {note}")
    common = dict(metric=metric, minimize=minimize, seeds=seeds,
                  evaluator=evaluator.describe() if evaluator else "none (dry run)", proxy=proxy,
                  backend=runner.describe(), notes=notes, timing=timing.get("facts"))
    if dry_run:
        return SearchResult(grid, rank(grid, {}, seeds=seeds, minimize=minimize),
                            journal=None if journal is None else os.fspath(journal),
                            dry_run=True, **common)
    assert evaluator is not None
    if seeds > 1 and isinstance(evaluator, CommandEvaluator) and evaluator.argv is None \
            and "{seed}" not in evaluator.template:
        say(f"scalekit: warning: --seeds {seeds}, but the command has no {{seed}}: each seed "
            "runs the same command (SCALEKIT_SEED in its environment holds the seed)")
    header = Header(base.name, spec_digest(base), evaluator.identity())
    jpath = None if journal is None else os.fspath(journal)
    book: Journal = memory_journal(header) if jpath is None else open_journal(jpath, header,
                                                                              say=say)
    with book:
        wanted = [(c.key, s) for s in range(seeds) for c in grid.candidates]  # seed by seed
        todo = pending(book, wanted, retry_failed=retry_failed)
        reused = len(wanted) - len(todo)
        by_key = {c.key: c for c in grid.candidates}
        threads = max(1, int(cpus_per_trial))
        tasks = [Task(k, s, by_key[k].spec_yaml(), by_key[k].point.label(), threads)
                 for k, s in todo]
        about = _about(grid)
        labels = {k: by_key[k].point.label() for k, _ in todo}
        done = 0
        if jpath is not None:
            say(f"scalekit: journal {jpath}: {reused} of {len(wanted)} evaluations already there"
                + (f", {len(todo)} to run" if todo else ""))

        def on_result(ev: Evaluation) -> None:
            nonlocal done
            book.append(ev, about.get(ev.key))
            done += 1
            say(_line(ev, labels.get(ev.key, ev.key), metric, done, len(tasks)))

        try:
            runner.run(tasks, evaluator, on_result)
        except SearchInterrupted:
            where = f" in {jpath}" if jpath else ""
            raise SearchInterrupted(
                f"{reused + done} of {len(wanted)} evaluations finished{where}"
                + ("; run the same command again to resume" if jpath else "")) from None
        evaluations = {k: book.entries[k] for k in wanted if k in book.entries}
    results = rank(grid, evaluations, seeds=seeds, minimize=minimize)
    out = SearchResult(grid, results, journal=jpath, evaluated_now=done, reused=reused,
                       **common)
    if settings.cost == "latency" and out.best is not None:
        out = dataclasses.replace(out, confirmed=confirm(out, threads, say, force))
    return out


def _predictor(threads: int, say: Say, force: bool, timing: dict[str, Any]):
    """``records -> predictions`` on this machine's latency table (latency code loaded here
    only: a MACs search never loads it); the table's facts go to ``timing["facts"]``."""
    from ..latency.networks import TimingOptions
    from ..latency.prediction import predict_records

    options = TimingOptions(threads=threads, kind="predicted", force=force)

    def predict(records):
        say(f"scalekit: predicting the latency of {len(records)} networks on this machine "
            f"({threads} thread{'s' if threads != 1 else ''}; blocks the latency table lacks "
            "are timed once)")
        out, facts = predict_records(records, options, say=say)
        timing["facts"] = facts
        return [r.latency for r in out]
    return predict


def confirm(result: SearchResult, threads: int, say: Say, force: bool = False) -> dict[str, Any]:
    """A latency search's pick measured: the best candidate and the baseline built and timed
    whole, interleaved (both see the same machine), their measured ratio beside the predicted
    one, and whether it is within the tolerance of the target."""
    from ..latency.networks import measure_records_plans
    from ..latency.prediction import CONFIRM_HARNESS

    grid, best = result.grid, result.best
    assert best is not None and grid.baseline_latency is not None
    c = best.candidate
    say(f"scalekit: confirming the pick by measurement: {c.point.label()} and the baseline, "
        "measured whole, interleaved")
    base, pick = measure_records_plans(
        [(grid.baseline.plan, grid.baseline.analytic), (c.record.plan, c.record.analytic)],
        threads=threads, force=force, **CONFIRM_HARNESS)
    ratio = pick["median_ms"] / base["median_ms"]
    g = grid.settings
    return {"baseline_ms": base["median_ms"], "baseline_iqr_ms": base["iqr_ms"],
            "measured_ms": pick["median_ms"], "iqr_ms": pick["iqr_ms"],
            "measured_ratio": ratio, "predicted_ratio": c.latency_ratio,
            "within_tolerance": abs(ratio - float(g.target)) <= float(g.tolerance),
            "trusted": bool(base["trusted"] and pick["trusted"]),
            "reason": pick["reason"] or base["reason"], "threads": threads}


def _notes(base: Spec, grid: CandidateGrid, evaluator: Any) -> tuple[str, ...]:
    from . import proxy

    if not getattr(evaluator, "proxy", False):
        return ()
    return proxy.notes(base, grid.baseline)

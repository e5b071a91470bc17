"""A search's outcome: every candidate with its evaluations, ranked, and the best.

A candidate's score is the mean of its metric over the seeds that succeeded; its spread is the
sample standard deviation over those seeds (none with one seed). Candidates with at least one
successful seed are ranked by mean (highest first, or lowest with ``minimize``); the rest follow,
failed or not evaluated. Two candidates are *not distinguishable* when their mean +- spread
intervals overlap: the ranking between them is within the seeds' noise.

No torch here.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from .evaluators import Evaluation
from .grid import Candidate, CandidateGrid


@dataclass(frozen=True)
class CandidateResult:
    """One candidate and its evaluations (one per seed asked for; missing = not run)."""

    candidate: Candidate
    evaluations: tuple[Evaluation, ...]
    seeds: int  # seeds asked for
    rank: int | None = None  # 1 = best; None: no successful seed
    tied_with_best: bool | None = None  # None: unknown (one seed) or this is the best

    @property
    def ok(self) -> tuple[Evaluation, ...]:
        return tuple(e for e in self.evaluations if e.ok)

    @property
    def failures(self) -> tuple[Evaluation, ...]:
        return tuple(e for e in self.evaluations if not e.ok)

    @property
    def values(self) -> tuple[float, ...]:
        return tuple(e.metric for e in self.ok if e.metric is not None)

    @property
    def mean(self) -> float | None:
        v = self.values
        return statistics.fmean(v) if v else None

    @property
    def spread(self) -> float | None:
        """Sample standard deviation over the successful seeds (None below two)."""
        v = self.values
        return statistics.stdev(v) if len(v) >= 2 else None

    @property
    def seconds(self) -> float:
        """Wall time of its evaluations, all seeds, failures included."""
        return sum(e.seconds for e in self.evaluations)

    @property
    def status(self) -> str:
        if not self.evaluations:
            return "not run"
        if not self.ok:
            return "failed"
        if len(self.ok) < self.seeds:
            return f"{len(self.ok)}/{self.seeds} seeds"
        return "ok"

    def to_dict(self, metric: str) -> dict[str, Any]:
        c = self.candidate
        r = c.record
        return {
            "rank": self.rank, "alpha": c.alpha, "beta": c.beta, "gamma": c.gamma,
            "coefficients": {"alpha": c.alpha, "beta": c.beta, "gamma": c.gamma},
            "nominal_cost": c.nominal, "achieved_cost": c.achieved,
            "predicted_latency_ms": c.latency["predicted_ms"] if c.latency else None,
            "latency_ratio": c.latency_ratio,
            "network": c.key, "name": r.name, "resolution": r.resolution,
            "depth": r.coefficients.depth if r.coefficients else None,
            "width": r.coefficients.width if r.coefficients else None,
            "params": r.params, "macs": r.macs, "flops": r.flops, "acts": r.acts,
            "metric": {"name": metric, "mean": self.mean, "spread": self.spread,
                       "values": list(self.values), "seeds": self.seeds,
                       "succeeded": len(self.ok)},
            "seconds": round(self.seconds, 3), "status": self.status,
            "not_distinguishable_from_best": self.tied_with_best,
            "aliases": [{"alpha": float(p.alpha), "beta": float(p.beta), "gamma": float(p.gamma),
                         "nominal_cost": float(p.nominal)} for p in c.aliases],
            "evaluations": [{"seed": e.seed, "status": "ok" if e.ok else "failed",
                             "metric": e.metric, "seconds": round(e.seconds, 3),
                             "reason": e.reason, "stderr_tail": e.stderr_tail,
                             "values": dict(e.values), "host": e.host}
                            for e in self.evaluations],
        }


def overlap(a: CandidateResult, b: CandidateResult) -> bool | None:
    """Do the mean +- spread intervals of ``a`` and ``b`` overlap? None if either lacks a
    spread (one successful seed)."""
    if a.mean is None or b.mean is None or a.spread is None or b.spread is None:
        return None
    return abs(a.mean - b.mean) <= a.spread + b.spread


@dataclass(frozen=True)
class SearchResult:
    """The whole search: the grid, settings, every candidate (ranked first, then the rest)."""

    grid: CandidateGrid
    results: tuple[CandidateResult, ...]
    metric: str
    minimize: bool
    seeds: int
    evaluator: str  # what evaluated (its description)
    proxy: bool  # the built-in proxy task (not ImageNet)
    backend: str
    journal: str | None
    evaluated_now: int = 0  # evaluations run by this search (the rest came from the journal)
    reused: int = 0  # evaluations found in the journal
    dry_run: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)
    timing: dict[str, Any] | None = None  # the latency table's facts (a cost="latency" search)
    confirmed: dict[str, Any] | None = None  # the pick measured (run.confirm)

    @property
    def candidates(self) -> tuple[CandidateResult, ...]:
        return self.results

    @property
    def ranked(self) -> tuple[CandidateResult, ...]:
        return tuple(r for r in self.results if r.rank is not None)

    @property
    def best(self) -> CandidateResult | None:
        ranked = self.ranked
        return ranked[0] if ranked else None

    @property
    def not_distinguishable(self) -> tuple[CandidateResult, ...]:
        """The ranked candidates after the best whose interval overlaps the best's."""
        return tuple(r for r in self.ranked[1:] if r.tied_with_best)

    @property
    def failed(self) -> tuple[CandidateResult, ...]:
        return tuple(r for r in self.results if r.status == "failed")


def rank(grid: CandidateGrid, evaluations: dict[tuple[str, int], Evaluation], *, seeds: int,
         minimize: bool) -> tuple[CandidateResult, ...]:
    """Each candidate with its evaluations for seeds 0..seeds-1, ranked."""
    rows = [CandidateResult(c, tuple(evaluations[(c.key, s)] for s in range(seeds)
                                     if (c.key, s) in evaluations), seeds)
            for c in grid.candidates]
    sign = 1.0 if minimize else -1.0
    scored = sorted((r for r in rows if r.mean is not None),
                    key=lambda r: (sign * r.mean, r.candidate.cost_ratio))  # type: ignore[operator]
    rest = [r for r in rows if r.mean is None]
    out: list[CandidateResult] = []
    best = scored[0] if scored else None
    for i, r in enumerate(scored):
        tied = None if i == 0 else overlap(best, r)  # type: ignore[arg-type]
        out.append(CandidateResult(r.candidate, r.evaluations, seeds, rank=i + 1,
                                   tied_with_best=tied))
    return tuple(out + rest)


__all__ = ["CandidateResult", "SearchResult", "overlap", "rank"]

"""``scalekit search``: step 1 of compound scaling, finding alpha, beta, gamma for a network.

The paper (Tan & Le 2019, section 3.3) scales in two steps: step 1 fixes phi = 1 and grid-searches
alpha, beta, gamma >= 1 under alpha * beta^2 * gamma^2 ~ 2, keeping the most accurate candidate;
step 2 fixes them and scales up with phi (``scalekit scale SPEC --phi N``). This package is step 1:

- :mod:`.grid`: the candidates: grid points under the constraint, each scaled and counted
  exactly, points that round to the same network merged (torch-free, instant);
- :mod:`.evaluators`: the user's command template, the built-in proxy task (:mod:`.proxy`), or a
  Python callable;
- :mod:`.journal`: every finished evaluation appended to a JSON-lines file; a search resumes;
- :mod:`.backends`: evaluations run here, N at a time, or as Ray tasks on a cluster;
- :mod:`.results`: ranked candidates, the best, mean +- spread over seeds;
- :mod:`.specfile`: the found coefficients written into a spec's ``compound:`` block.

The module is callable: ``scalekit.search(spec, evaluate=...)`` is :func:`search`. Importing it
imports neither torch nor Ray.
"""

from __future__ import annotations

import sys
import types

from .backends import BackendError, LocalBackend, RayBackend, SearchInterrupted
from .evaluators import CallableEvaluator, CommandEvaluator, Evaluation, Task
from .grid import Candidate, CandidateGrid, GridSettings, SearchUsageError, candidates, grid_settings
from .journal import JournalError
from .results import CandidateResult, SearchResult
from .run import resolve_evaluator, search


class _CallableModule(types.ModuleType):
    """``scalekit.search(...)`` calls :func:`search`; ``scalekit.search.grid`` etc. still work."""

    def __call__(self, *args, **kwargs) -> SearchResult:
        return search(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["BackendError", "CallableEvaluator", "Candidate", "CandidateGrid", "CandidateResult",
           "CommandEvaluator", "Evaluation", "GridSettings", "JournalError", "LocalBackend",
           "RayBackend", "SearchInterrupted", "SearchResult", "SearchUsageError", "Task",
           "candidates", "grid_settings", "resolve_evaluator", "search"]

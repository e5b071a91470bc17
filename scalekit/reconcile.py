"""Reconcile: each installed FLOP counter's total on the built model, beside scalekit's count of
that tool's convention (scalekit/conventions.py), and the per-op-type breakdown that explains
why any two of them differ.

Each tool runs on a fresh model in eval mode, at batch 1, with no gradients, its prints, warnings
and log lines kept off the terminal. Tools that only need shapes run on the meta device (no
memory, instant at any size); fvcore (a jit trace) and ptflops' pytorch backend (its meta run
double-counts a biased Linear) need a real CPU forward, so they pass the memory guard first
(``force`` skips it). A tool that is not installed, or that the guard keeps from running, is
reported as such and the others still run.

This is not a stored query (scalekit/queries.py): it builds real modules past a guard that only
``--force`` lifts, and its answer depends on which tools, at which versions, are installed. torch
and the tools are imported lazily.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import warnings
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable, Iterator, Sequence

from .conventions import ConventionCount, count_all, get
from .errors import ScalekitError
from .extras import install_hint, require_torch
from .memory import check_memory
from .plan import NetworkPlan
from .records import ModelRecord

EXTRA = "reconcile"
INSTALL = install_hint(EXTRA)


@dataclass(frozen=True)
class Tool:
    """A FLOP counter: the convention it counts by, the distribution that provides it, where it
    runs (``meta``: shapes only; ``cpu``: a real forward), and how it is called."""

    name: str
    convention: str
    package: str  # the distribution (for its version, and the install hint)
    module: str  # what is imported
    device: str
    call: str  # the call, in a few words, for reports
    count: Callable[[NetworkPlan, str], int]


def _model(plan: NetworkPlan, device: str):
    from .build import build_model

    return build_model(plan, device=device).eval()


def _input(plan: NetworkPlan, device: str):
    import torch

    return torch.zeros(1, plan.in_channels, *plan.resolution, device=device)


def _torch(plan: NetworkPlan, device: str) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    fc = FlopCounterMode(display=False)
    with torch.no_grad(), fc:
        _model(plan, device)(_input(plan, device))
    flops = fc.get_total_flops()
    if flops % 2:
        raise ScalekitError(f"FlopCounterMode counted an odd number of FLOPs ({flops})")
    return flops // 2


def _fvcore(plan: NetworkPlan, device: str) -> int:
    import torch
    from fvcore.nn import FlopCountAnalysis

    with torch.no_grad():
        fa = FlopCountAnalysis(_model(plan, device), (_input(plan, device),))
        fa.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return int(fa.total())


def _ptflops(backend: str) -> Callable[[NetworkPlan, str], int]:
    def count(plan: NetworkPlan, device: str) -> int:
        import torch
        from ptflops import get_model_complexity_info

        with torch.no_grad():
            macs, _ = get_model_complexity_info(
                _model(plan, device), (plan.in_channels, *plan.resolution), as_strings=False,
                print_per_layer_stat=False, verbose=False, backend=backend)
        if macs is None:  # it prints the exception and returns None
            raise ScalekitError(f"ptflops (backend={backend!r}) failed")
        return int(macs)
    return count


def _thop(plan: NetworkPlan, device: str) -> int:
    import thop
    import torch

    with torch.no_grad():
        macs, _ = thop.profile(_model(plan, device), inputs=(_input(plan, device),),
                               verbose=False)
    return int(macs)  # a float64 sum: exact below 2**53


def _torchinfo(plan: NetworkPlan, device: str) -> int:
    from torchinfo import summary

    stats = summary(_model(plan, device), input_size=(1, plan.in_channels, *plan.resolution),
                    device=device, verbose=0)
    return int(stats.total_mult_adds)


TOOLS: dict[str, Tool] = {t.name: t for t in (
    Tool("torch", "paper", "torch", "torch", "meta", "FlopCounterMode FLOPs / 2", _torch),
    Tool("fvcore", "fvcore", "fvcore", "fvcore", "cpu", "FlopCountAnalysis(...).total()",
         _fvcore),
    Tool("ptflops", "ptflops", "ptflops", "ptflops", "cpu", "backend='pytorch'",
         _ptflops("pytorch")),
    Tool("ptflops-aten", "ptflops-aten", "ptflops", "ptflops", "meta", "backend='aten'",
         _ptflops("aten")),
    Tool("thop", "thop", "thop", "thop", "meta", "thop.profile(...)[0]", _thop),
    Tool("torchinfo", "torchinfo", "torchinfo", "torchinfo", "meta",
         "summary(...).total_mult_adds", _torchinfo),
)}
TOOL_NAMES = tuple(TOOLS)


def installed(tool: Tool) -> bool:
    """Can ``tool`` be imported (without importing it)?"""
    try:
        return importlib.util.find_spec(tool.module) is not None
    except (ImportError, ValueError):
        return False


def version(tool: Tool) -> str | None:
    try:
        return metadata.version(tool.package)
    except metadata.PackageNotFoundError:
        return None


@contextlib.contextmanager
def _quiet() -> Iterator[io.StringIO]:
    """Keep a tool's prints, warnings and log lines (fvcore's unsupported-op notes, thop's
    deprecation warnings, a jit tracer's) off the terminal."""
    buf = io.StringIO()
    root = logging.getLogger()
    level = root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(buf), \
                contextlib.redirect_stderr(buf):
            warnings.simplefilter("ignore")
            yield buf
    finally:
        logging.disable(level)


@dataclass(frozen=True)
class ToolResult:
    """One tool's run: ``status`` is ``exact`` (its total is scalekit's count of its
    convention), ``differs``, ``not installed``, ``not run`` (the memory guard), ``failed``, or
    ``skipped`` (not among the tools asked for)."""

    tool: str
    convention: str
    package: str
    version: str | None
    device: str
    call: str
    status: str
    expected: int  # scalekit's count of the tool's convention
    total: int | None = None  # the tool's
    reason: str | None = None

    @property
    def difference(self) -> int | None:
        return None if self.total is None else self.total - self.expected

    def to_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "convention": self.convention, "package": self.package,
                "version": self.version,
                "device": self.device, "call": self.call, "status": self.status,
                "total": self.total, "scalekit": self.expected, "difference": self.difference,
                "reason": self.reason}


def run_tool(tool: Tool, plan: NetworkPlan, expected: int, *, guard: str | None = None,
             skip: bool = False) -> ToolResult:
    """Run ``tool`` on ``plan``'s model. ``guard``: why a real forward may not run (the memory
    guard's refusal), for tools that need one; ``skip``: only report it as not asked for."""
    base = dict(tool=tool.name, convention=tool.convention, package=tool.package,
                device=tool.device, call=tool.call, expected=expected)
    if skip:
        return ToolResult(**base, version=None, status="skipped", reason="not in --tools")
    if not installed(tool):
        return ToolResult(**base, version=None, status="not installed", reason=INSTALL)
    ver = version(tool)
    if tool.device != "meta" and guard is not None:
        return ToolResult(**base, version=ver, status="not run", reason=guard)
    try:
        with _quiet():
            total = tool.count(plan, tool.device)
    except Exception as e:  # noqa: BLE001 - a third-party tool failing is reported, not raised
        return ToolResult(**base, version=ver, status="failed",
                          reason=f"{type(e).__name__}: {e}".strip())
    return ToolResult(**base, version=ver, total=total,
                      status="exact" if total == expected else "differs")


@dataclass(frozen=True)
class Reconciliation:
    """A network under every convention (``counts``, by name) and each tool's run."""

    record: ModelRecord
    counts: dict[str, ConventionCount]
    results: tuple[ToolResult, ...]

    @property
    def resolution(self) -> tuple[int, int]:
        return self.record.plan.resolution if self.record.plan else (self.record.resolution,) * 2

    def to_dict(self) -> dict[str, Any]:
        h, w = self.resolution
        return {"resolution": [h, w], "batch": 1,
                "conventions": [{"name": c.convention, "unit": c.unit, "about": get(n).about,
                                 "total": c.total, "terms": dict(c.terms)}
                                for n, c in self.counts.items()],
                "tools": [r.to_dict() for r in self.results]}


def reconcile(record: ModelRecord, tools: Sequence[str] = TOOL_NAMES, *,
              force: bool = False) -> Reconciliation:
    """Count ``record``'s network under every convention and run ``tools`` on it (the others
    are reported as skipped). Tools that need a real forward run only past the memory guard (or
    with ``force``)."""
    require_torch("reconcile")  # every tool runs on the built torch module
    plan = record.plan
    if plan is None:
        raise ScalekitError(f"no network to reconcile for {record.name}")
    unknown = [t for t in tools if t not in TOOLS]
    if unknown:
        raise ScalekitError(f"unknown tool {', '.join(unknown)} (known: {', '.join(TOOL_NAMES)})")
    counts = count_all(plan)
    guard = None
    if any(TOOLS[t].device != "meta" and installed(TOOLS[t]) for t in tools):
        try:
            check_memory(plan, force=force, counts=record.analytic)
        except ScalekitError as e:
            guard = str(e)
    results = tuple(run_tool(tool, plan, counts[tool.convention].total, guard=guard,
                             skip=name not in tools) for name, tool in TOOLS.items())
    return Reconciliation(record, counts, results)

"""Reporting commands as data, and running them.

Every command that reports on networks (``list``, ``info``, ``scale``, ``compare``, ``fit``,
``sweep``, ``bench``, and ``check SPEC...``) is a *query*: its name and named parameters. The
command line turns its options into a query and runs it here; a JSON report stores the query it
answers, and ``scalekit check`` runs that stored query again, the same way, without a command line.

A stored query is data, never a command to run:

- it is versioned (``version``; reports of scalekit 0.1.0 carry none and are read as version 1,
  whose parameter names were click's);
- every parameter is checked against its command's allow-list (type, range, choices); an unknown
  key, an unknown command, NaN or infinity is refused with :class:`QueryError`;
- no query has a parameter for where anything is written (``--output``, ``--out``, ``--to``,
  ``--plot``), for ``--force`` (the memory guard) or ``--overwrite``, and none exports a model:
  a baseline can change what is counted, never what is written or what is built past the guard.

Counting needs no torch; latency code is imported only when a query is timed. No click here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from .bundled import bundled_specs, load_named, resolve_spec
from .conventions import DEFAULT as DEFAULT_CONVENTION
from .conventions import NAMES as CONVENTION_NAMES
from .errors import ScalekitError, SpecError
from .extras import require_torch
from .files import MAX_PATH
from .host import check_threads
from .records import (COUNTER_NAMES, ModelRecord, Networks, counter_convention, make_record,
                      spec_records, with_convention, with_layers)
from .scaling import MODES, Coefficients
from .spec import load_spec, spec_to_yaml
from .text import safe_text
from .strategies import DIAL_MODES, dial, get_strategy, scale_by
from .studies import budget, sweeps, tables

if TYPE_CHECKING:
    from .latency.networks import TimingOptions

QUERY_VERSION = 2
MAX_NAME = MAX_PATH  # characters in a spec name or path; longer is not a name
MAX_LIST = 1000  # items in a list parameter (specs, values)


class QueryError(ScalekitError):
    """A query that cannot be run: an unknown command or parameter, a value of the wrong type or
    out of range, or parameters that contradict each other. A usage error (exit 2)."""


# ---------------------------------------------------------------------------------------------
# parameter checks: a JSON value in, the normalised value out, ValueError(reason) otherwise


Check = Callable[[Any], Any]


def _name(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError("expected a spec name or path")
    if len(v) > MAX_NAME:
        raise ValueError(f"a name of {len(v):,} characters; longer than {MAX_NAME:,} is not a "
                         "spec name or path")
    if "\0" in v:
        raise ValueError("a spec name or path cannot contain a NUL character")
    return v


def _names(v: Any) -> list[str]:
    if not isinstance(v, (list, tuple)) or len(v) > MAX_LIST:
        raise ValueError(f"expected a list of at most {MAX_LIST:,} spec names")
    return [_name(x) for x in v]


def _some_names(v: Any) -> list[str]:
    out = _names(v)
    if not out:
        raise ValueError("expected at least one spec")
    return out


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError("expected true or false")
    return v


def _number(lo: float | None = None, lo_open: bool = True, hi: float | None = None) -> Check:
    def check(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError("expected a number")
        try:
            x = float(v)
        except OverflowError:
            raise ValueError("too large") from None
        if not math.isfinite(x):
            raise ValueError("must be finite")
        if lo is not None and (x < lo or (lo_open and x == lo)):
            raise ValueError(f"must be {'>' if lo_open else '>='} {lo:g}")
        if hi is not None and x > hi:
            raise ValueError(f"must be <= {hi:g}")
        return x
    return check


def _int(lo: int, hi: int) -> Check:
    def check(v: Any) -> int:
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError("expected an integer")
        if not lo <= v <= hi:
            raise ValueError(f"must be between {lo:,} and {hi:,}")
        return v
    return check


def _choice(*choices: str) -> Check:
    def check(v: Any) -> str:
        if v not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return v
    return check


def _text(v: Any) -> str:
    if not isinstance(v, str) or len(v) > MAX_NAME:
        raise ValueError("expected a short string")
    return v


def _list_of(valid: Sequence[str]) -> Check:
    """A comma-separated string or a list, of names in ``valid``."""
    def check(v: Any) -> list[str]:
        items = v.split(",") if isinstance(v, str) else v
        if not isinstance(items, (list, tuple)) or len(items) > MAX_LIST:
            raise ValueError(f"expected a list of {', '.join(valid)}")
        out = [str(x).strip() for x in items if str(x).strip()]
        bad = [x for x in out if x not in valid]
        if bad or not out:
            raise ValueError(f"unknown {', '.join(bad) or 'nothing'} (valid: {', '.join(valid)})")
        return out
    return check


def _tables(v: Any) -> list[int]:
    items = v if isinstance(v, (list, tuple)) else [v]
    out = []
    for x in items:
        if isinstance(x, str) and x.strip().isdigit():
            x = int(x)
        if isinstance(x, bool) or x not in (2, 3, 4, 7):
            raise ValueError("expected paper tables among 2, 3, 4, 7")
        out.append(int(x))
    return out


def _numbers(v: Any) -> list[float]:
    if not isinstance(v, (list, tuple)) or not v or len(v) > MAX_LIST:
        raise ValueError(f"expected a list of 1 to {MAX_LIST:,} numbers")
    finite = _number()  # phi may be 0 or negative
    return [finite(x) for x in v]


def _optional(check: Check) -> Check:
    return lambda v: None if v is None else check(v)


# types and finiteness here; the ranges are the scaling rules' own (a ScalingError names them)
_FINITE = _optional(_number())
SCALING: dict[str, tuple[Check, Any]] = {
    "phi": (_FINITE, None), "alpha": (_FINITE, None), "beta": (_FINITE, None),
    "gamma": (_FINITE, None), "width": (_FINITE, None), "depth": (_FINITE, None),
    "resolution": (_FINITE, None), "size": (_optional(_int(1, 10**9)), None),
    "preset": (_optional(_text), None),
}
# --strategy NAME --factor S (scale, bench, check, export): instead of the flags above
STRATEGY: dict[str, tuple[Check, Any]] = {"strategy": (_optional(_text), None),
                                          "factor": (_FINITE, None)}
_COUNTER = {"counter": (_choice(*COUNTER_NAMES), "analytic")}
# what the records' MACs count (scalekit/conventions.py); not given: the counter's own (thop's
# for --counter thop, so that baselines stored before conventions existed read as they were)
_CONVENTION = {"convention": (_choice(*CONVENTION_NAMES), DEFAULT_CONVENTION)}
MAX_THREADS = 4096
MAX_BATCH = 1_000_000


LATENCY_KINDS = ("predicted", "measured", "both")
RUNTIMES = ("eager", "optimized", "onnxruntime")  # scalekit.latency.runtimes.RUNTIMES


def _latency(v: Any) -> str | bool:
    """``false`` (no latency) or a kind of latency. ``true`` is what version-2 reports stored
    when latency was on, which was always measured: it reads as ``measured``."""
    if v is True:
        return "measured"
    if v is False or v in LATENCY_KINDS:
        return v
    raise ValueError(f"expected false or one of {', '.join(LATENCY_KINDS)}")


def _timing(on: str | bool, budget_s: float) -> dict[str, tuple[Check, Any]]:
    return {"latency": (_latency, on), "runtime": (_choice(*RUNTIMES), "eager"),
            "threads": (_int(1, MAX_THREADS), 1), "batch": (_int(1, MAX_BATCH), 1),
            "optimize": (_bool, False), "time_budget": (_number(0.0), budget_s)}


_HARNESS = {"warmup": (_int(0, 10_000), 3), "min_runs": (_int(1, 1_000_000), 10),
            "max_runs": (_int(1, 1_000_000), 200)}
_TARGETS = {f"target_{m}": (_optional(_number(0.0)), None)
            for m in ("macs", "params", "acts", "latency", "memory")}
MEMORY_KINDS = ("inference", "training")

PARAMS: dict[str, dict[str, tuple[Check, Any]]] = {
    "list": {},
    "info": {"spec": (_name, None), **SCALING, **STRATEGY, **_COUNTER, **_CONVENTION,
             "layers": (_bool, False), **_timing("predicted", 2.0)},
    "scale": {"spec": (_name, None), **SCALING, **STRATEGY, **_COUNTER, **_CONVENTION,
              **_timing("predicted", 2.0)},
    "compare": {"specs": (_names, []), "mode": (_optional(_list_of(MODES)), None),
                "table": (_optional(_tables), None), "match": (_optional(_choice("macs")), None),
                "budget": (_optional(_number(0.0)), None), **_COUNTER, **_CONVENTION,
                **_timing("predicted", 2.0)},
    "fit": {"spec": (_name, None), **_TARGETS, "mode": (_choice(*DIAL_MODES), "compound"),
            "threads": (_int(1, MAX_THREADS), 1), "max_measurements": (_int(2, 10_000), 12),
            "latency": (_choice("predicted", "measured"), "predicted"),
            "runtime": (_choice(*RUNTIMES), "eager"), "batch": (_int(1, MAX_BATCH), 1),
            "memory": (_choice(*MEMORY_KINDS), "inference")},
    "sweep": {"spec": (_name, None), "mode": (_list_of(DIAL_MODES), list(sweeps.DEFAULT_MODES)),
              "values": (_optional(_numbers), None), "y": (_choice("params", "acts", "latency"),
                                                          "params"),
              **_COUNTER, **_timing(False, 1.0)},
    "bench": {"specs": (_some_names, None), **SCALING, **STRATEGY, **_timing("measured", 5.0),
              **_HARNESS},
    "check": {"specs": (_some_names, None), **_COUNTER, **_CONVENTION, **SCALING, **STRATEGY},
}
REQUIRED = {"info": ("spec",), "scale": ("spec",), "fit": ("spec",), "sweep": ("spec",),
            "bench": ("specs",), "check": ("specs",)}
# what version-1 reports (scalekit 0.1.0) stored that is not a parameter: where the report went,
# and the memory guard. They are dropped, never used.
_V1_IGNORED = {"fmt", "output", "out", "force", "plot_path"}
_V1_RENAMED = {"tables": "table"}


@dataclass(frozen=True)
class Query:
    """A reporting command and its parameters, checked and complete (defaults filled in)."""

    command: str
    params: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"command": self.command, "version": QUERY_VERSION, "params": dict(self.params)}


def make_query(command: str, params: Mapping[str, Any]) -> Query:
    """Check ``params`` against ``command``'s allow-list (:class:`QueryError` naming the first
    problem) and fill in the defaults."""
    if command not in PARAMS:
        raise QueryError(f"`{command}` is not a reporting command of this scalekit (queries: "
                         f"{', '.join(PARAMS)})")
    allowed = PARAMS[command]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise QueryError(f"`{command}` takes no parameter {', '.join(map(str, unknown))}")
    out: dict[str, Any] = {}
    for key, (check, default) in allowed.items():
        if key not in params or (params[key] is None and default is not None):
            if key in REQUIRED.get(command, ()):
                raise QueryError(f"`{command}` needs {key}")
            out[key] = default
            continue
        try:
            out[key] = check(params[key])
        except ValueError as e:
            raise QueryError(f"`{command}` parameter {key}: {e}") from None
    if "convention" in allowed:
        try:
            out["convention"] = counter_convention(out["counter"], params.get("convention"))
        except ValueError as e:
            raise QueryError(str(e)) from None
    return Query(command, out)


def query_from_dict(data: Any) -> Query:
    """A stored query (the ``query`` of a report), checked. Version 1 (no ``version``): the
    parameter names of scalekit 0.1.0, with what it stored about outputs dropped."""
    if not isinstance(data, dict) or not isinstance(data.get("command"), str) \
            or not isinstance(data.get("params"), dict):
        raise QueryError("records no query to run again; name the models to check: scalekit "
                         "check --baseline FILE SPEC...")
    unknown = sorted(set(data) - {"command", "params", "version"})
    if unknown:
        raise QueryError(f"the query has unknown fields: {', '.join(map(str, unknown))}")
    version = data.get("version", 1)
    if type(version) is not int or version not in (1, QUERY_VERSION):
        raise QueryError(f"query version {version!r} is not one this scalekit reads "
                         f"(1 or {QUERY_VERSION})")
    params = dict(data["params"])
    if version == 1:
        params = {_V1_RENAMED.get(k, k): v for k, v in params.items() if k not in _V1_IGNORED}
    command = data["command"]
    try:
        return make_query(command, params)
    except QueryError as e:
        if command == "check":
            raise QueryError(f"malformed query of `check` ({e})") from None
        raise


# ---------------------------------------------------------------------------------------------
# running a query


MeasureFn = Callable[[Sequence[ModelRecord], "TimingOptions"],
                     "tuple[list[ModelRecord], dict[str, Any]]"]


def quiet(message: str) -> None:
    pass


@dataclass(frozen=True)
class Run:
    """How to run a query: ``measure`` times records (None: counts only, even if the query timed
    them), ``say`` takes progress and warning lines, ``force`` lets models past the memory guard
    (never from a stored query)."""

    measure: MeasureFn | None = None
    say: Callable[[str], None] = quiet
    force: bool = False


@dataclass(frozen=True)
class Outcome:
    """What a query computed: its records, the report's extra fields, and what its table needs."""

    records: list[ModelRecord]
    extra: dict[str, Any] = field(default_factory=dict)
    view: Any = None


def _check_timing(p: Mapping[str, Any]) -> None:
    """Timing parameters that contradict each other (a usage error, before anything runs)."""
    if not p.get("latency") or p.get("optimize") is None:
        return
    if p["optimize"] and p["latency"] == "predicted":
        raise QueryError("--optimize times an optimised copy beside eager: it needs --latency "
                         "measured or both (or --runtime optimized, which predicts it)")
    if p["optimize"] and p["runtime"] != "eager":
        raise QueryError("--optimize times an optimised copy beside eager: it needs --runtime "
                         "eager (--runtime optimized times the optimised copy alone)")


def _timing_options(p: Mapping[str, Any], run: Run, *,
                    interleave: bool = False) -> TimingOptions | None:
    if run.measure is None or not p.get("latency", True):
        return None
    from .latency.networks import TimingOptions

    try:
        check_threads(p["threads"])
    except ValueError as e:
        raise QueryError(f"--threads: {e}") from None
    harness = {k: p[k] for k in _HARNESS if k in p}
    return TimingOptions(batch=p["batch"], threads=p["threads"], optimize=p["optimize"],
                         force=run.force, budget_s=p["time_budget"], kind=p["latency"],
                         runtime=p["runtime"], interleave=interleave, **harness)


def _timed(records: list[ModelRecord], p: Mapping[str, Any], run: Run, *,
           interleave: bool = False) -> tuple[list[ModelRecord], dict[str, Any]]:
    records = [replace(r, memory_batch=p["batch"]) for r in records]  # memory at the batch
    options = _timing_options(p, run, interleave=interleave)
    if options is None:
        return records, {}
    return run.measure(records, options)  # type: ignore[misc]


def _scaling(p: Mapping[str, Any]) -> dict[str, Any]:
    """The scaling flags of ``p`` that are given, --strategy and --factor included (the keyword
    arguments of :func:`scalekit.strategies.scale_by`)."""
    return {k: p[k] for k in (*SCALING, *STRATEGY) if p.get(k) is not None}


def query_inputs(query: Query) -> list[str]:
    """The spec files ``query`` reads (bundled names resolved to their files), for the output
    checks of files.py: no report may be written over one of them."""
    p = query.params
    names = [p["spec"]] if p.get("spec") else list(p.get("specs") or [])
    return [resolve_spec(n) for n in names]


def run_query(query: Query, run: Run = Run()) -> Outcome:
    """Compute what ``query`` asks for."""
    _check_timing(query.params)
    return _RUNNERS[query.command](query.params, run)


def _list(p: Mapping[str, Any], run: Run) -> Outcome:
    specs = bundled_specs()
    if not specs:
        raise ScalekitError("no bundled specs found (is the package installed correctly?)")
    rows = []
    for path in specs:
        try:
            spec = load_spec(path)
        except SpecError as e:  # a broken bundled spec must not hide the others
            run.say(f"Error: {e}")
            continue
        rows.append((path.stem, spec, make_record(spec)))
    return Outcome([r for _, _, r in rows], view=rows)


def _info(p: Mapping[str, Any], run: Run) -> Outcome:
    if p["layers"] and p["counter"] != "analytic":
        raise QueryError(f"--layers counts each layer from the plan (the analytic counter); "
                         f"--counter {p['counter']} counts whole networks only: leave it out")
    spec = load_named(p["spec"])
    scaling = _scaling(p)
    if scaling:  # the scaled network, as `scale` and `check SPEC...` make it
        scaled, coef = scale_by(spec, **scaling)
        rec = make_record(scaled, counter=p["counter"], coefficients=coef, mode="scaled",
                          base=spec.name, force=run.force)
    else:
        rec = make_record(spec, counter=p["counter"], force=run.force)
    rec = with_convention(rec, p["convention"])
    if p["layers"]:
        rec = with_layers(rec)
    records, extra = _timed([rec], p, run)
    return Outcome(records, extra, view=records[0])


@dataclass(frozen=True)
class Scaled:
    """``scale``'s result: the baseline's and the scaled network's records, and how."""

    base: ModelRecord
    scaled: ModelRecord
    coefficients: Coefficients
    ideal: float  # d * w^2 * r^2 before rounding
    strategy: dict[str, Any] | None  # --strategy: name, factor, exponents, acts growth

    def spec_text(self) -> str:
        """The scaled network as a plain spec file (``scale --out``)."""
        s, r = self.scaled.network, self.scaled
        # names are shown escaped (one line, no control characters: YAML refuses those raw)
        header = (f"# {safe_text(s.name)}: {safe_text(self.base.name)} scaled by scalekit "
                  f"({safe_text(self.coefficients.describe())}).\n"
                  f"# Plain spec: channels, repeats and resolution are final. "
                  f"{r.params:,} params, {r.macs:,} MACs at {s.resolution} px.\n")
        return spec_to_yaml(s, header=header)


def _scale(p: Mapping[str, Any], run: Run) -> Outcome:
    base = load_named(p["spec"])
    scaled, coef = scale_by(base, **_scaling(p))
    # the scaled model first: with --counter thop its memory guard should refuse before the
    # baseline's forward pass is paid for
    rs = make_record(scaled, counter=p["counter"], coefficients=coef, mode="scaled",
                     base=base.name, force=run.force)
    rb = make_record(base, counter=p["counter"], mode="baseline", force=run.force)
    ideal = coef.ideal_flops_factor(base.resolution)
    extra: dict[str, Any] = {"ideal_macs_factor": ideal}
    (rb, rs), timing = _timed([with_convention(r, p["convention"]) for r in (rb, rs)], p, run)
    extra.update(timing)
    strategy = None
    if p["strategy"] is not None:
        st = get_strategy(p["strategy"], base)
        strategy = {"name": st.name, "factor": p["factor"], "exponents": list(st.exponents),
                    "acts_exponent": st.acts_exponent,
                    "ideal_acts_factor": p["factor"] ** st.acts_exponent,
                    "about": st.describe()}
        extra["strategy"] = {k: v for k, v in strategy.items() if k != "about"}
    return Outcome([rb, rs], extra, view=Scaled(rb, rs, coef, ideal, strategy))


@dataclass(frozen=True)
class Group:
    """One table of ``compare``: ``kind`` table2 | scaling | matched | table4, its records, and
    for scaling tables the paper tables they come from and the --budget, if any."""

    kind: str
    records: list[ModelRecord]
    tables: tuple[int, ...] = ()
    budget: float | None = None


def _compare(p: Mapping[str, Any], run: Run) -> Outcome:
    chosen = tuple(p["table"] or tables.DEFAULT_TABLES)
    if 4 in chosen and not p["latency"]:
        raise QueryError("--table 4 is a latency table (the paper's inference latency): it "
                         "cannot be shown with --no-latency")
    specs, counter = p["specs"], p["counter"]
    modes = ["baseline"] + [m for m in (p["mode"] or MODES[1:]) if m != "baseline"]
    groups: list[Group] = []
    if 2 in chosen:
        groups.append(Group("table2", tables.table2(counter=counter)))
    rest = tuple(t for t in chosen if t not in (2, 4))
    if specs and not p["table"]:
        rest = tables.DEFAULT_TABLES  # SPEC... without --table: look the specs up in 3 and 7
    if not rest:
        typed_mode = p["mode"] is not None and p["mode"] != list(MODES[1:])
        for flag, given in (("SPEC...", bool(specs)), ("--match", p["match"] is not None),
                            ("--budget", p["budget"] is not None), ("--mode", typed_mode)):
            if given:
                raise QueryError(f"{flag} applies to the scaling tables 3 and 7 (and specs "
                                 "outside the paper); tables 2 and 4 have fixed rows")
    if rest:
        matched = p["match"] is not None or p["budget"] is not None
        if matched and p["convention"] != counter_convention(counter):
            raise QueryError(f"--match and --budget solve for equal {DEFAULT_CONVENTION} MACs "
                             f"(conv + linear); they take no --convention {p['convention']}")
        rows = tables.compare(specs, modes, rest, counter, match=matched, budget=p["budget"])
        groups.append(Group("matched" if matched else "scaling", rows, rest, p["budget"]))
    if 4 in chosen:
        groups.append(Group("table4", tables.table4(counter=counter)))
    # Table 4 compares its two networks: measured, they are timed interleaved (A, B, A, B),
    # so that both see the same machine and the speedup comes with an interval
    plain = [with_convention(r, p["convention"]) for g in groups if g.kind != "table4"
             for r in g.records]
    paired = [with_convention(r, p["convention"]) for g in groups if g.kind == "table4"
              for r in g.records]
    records, extra = _timed(plain, p, run) if plain else ([], {})
    timed4: list[ModelRecord] = []
    if paired:
        timed4, extra4 = _timed(paired, p, run, interleave=True)
        extra = extra or extra4
    by_kind = {"table4": iter(timed4)}
    rest = iter(records)
    for i, g in enumerate(groups):  # the timed records back into their tables
        source = by_kind.get(g.kind, rest)
        groups[i] = replace(g, records=[next(source) for _ in g.records])
    records = [r for g in groups for r in g.records]
    return Outcome(records, extra, view=groups)


@dataclass(frozen=True)
class Fitted:
    """``fit``'s result: the search and its three networks' records (baseline, fit, next step)."""

    result: budget.FitResult
    rows: list[tuple[str, budget.Candidate, ModelRecord]]


def _fit(p: Mapping[str, Any], run: Run) -> Outcome:
    given = {k[len("target_"):]: v for k, v in p.items() if k.startswith("target_") and v is not None}
    if len(given) != 1:
        raise QueryError("give exactly one of --target-macs, --target-params, --target-acts, "
                         "--target-latency, --target-memory")
    (metric, target), = given.items()
    cost = None
    max_evals = p["max_measurements"]
    predicted = metric == "latency" and p["latency"] == "predicted"
    if metric == "latency":
        if run.measure is None:
            raise QueryError("its `fit` searched a latency target, which only a new measurement "
                             "can recompute (and noise may move the answer): give "
                             "--latency-tolerance, or keep a fit with a MACs/params/acts target")
        try:
            check_threads(p["threads"])
        except ValueError as e:
            raise QueryError(f"--threads: {e}") from None
        say = lambda msg: run.say(f"scalekit: {msg}")  # noqa: E731
        if predicted:  # each network predicted (its missing blocks timed once, then kept)
            from .latency.prediction import predicted_cost

            cost = predicted_cost(p["threads"], p["runtime"], p["batch"], run.say,
                                  force=run.force)
            max_evals = 4 * p["max_measurements"]
        else:
            require_torch("--target-latency measured (timing on this CPU)",
                          alternative="fit a --target-macs, --target-params or --target-acts")
            from .latency.networks import latency_cost

            cost = latency_cost(p["threads"], 0.5, say, runtime=p["runtime"])
    elif metric == "memory":
        cost = budget.memory_cost(p["memory"], p["batch"])
    base = load_named(p["spec"])
    networks = Networks()
    res = budget.fit(base, p["mode"], metric, target, cost=cost, max_measurements=max_evals,
                     networks=networks)
    confirmed = None
    if predicted:  # the pick, and the step above it, confirmed by measuring them whole
        from .latency.prediction import confirm

        res, confirmed = confirm(res, p["threads"], p["runtime"], p["batch"], run.say,
                                 force=run.force)
    rows = []
    for label, c in (("baseline", res.baseline), ("fit", res.best),
                     ("next step up" if res.resolved else "over target", res.above)):
        rec = make_record(c.spec, coefficients=c.coefficients, mode=label, base=base.name,
                          networks=networks)
        rec = replace(rec, memory_batch=p["batch"])
        rows.append((label, c, replace(rec, latency=c.latency) if c.latency else rec))
    d = dial(base, p["mode"])
    extra = {"fit": {
        "mode": p["mode"], "metric": metric, "target": target, "coefficient": d.symbol,
        "value": res.best.value, "achieved": res.best.cost, "ratio": res.best.cost / target,
        "next": {"value": res.above.value, "achieved": res.above.cost,
                 "ratio": res.above.cost / target},
        "scale_flags": d.flags(res.best.value), "evaluations": res.evaluations,
        "measured": res.measured and not predicted, "resolved": res.resolved}}
    if metric == "latency":
        extra["fit"].update(latency=p["latency"], runtime=p["runtime"], confirmed=confirmed)
    if metric == "memory":
        extra["fit"].update(memory=p["memory"], batch=p["batch"])
    return Outcome([r for _, _, r in rows], extra, view=Fitted(res, rows))


@dataclass(frozen=True)
class Swept:
    """``sweep``'s result: its points and the baseline's record they grow from."""

    points: list[sweeps.SweepPoint]
    base: ModelRecord


def _sweep(p: Mapping[str, Any], run: Run) -> Outcome:
    if p["y"] == "latency" and not p["latency"]:
        raise QueryError("--y latency needs --latency (latency is measured, not counted)")
    base = load_named(p["spec"])
    networks = Networks()
    points = sweeps.sweep(base, p["mode"], p["values"], counter=p["counter"], networks=networks)
    if not points:
        raise ScalekitError("nothing to sweep: no values")
    records, extra = _timed([pt.record for pt in points], p, run)
    points = [replace(pt, record=r) for pt, r in zip(points, records)]
    rb = make_record(base, counter=p["counter"], mode="baseline", networks=networks)
    extra["sweep"] = [{"mode": pt.mode, "coefficient": pt.symbol, "value": pt.value}
                      for pt in points]
    return Outcome(records, extra, view=Swept(points, rb))


def _bench(p: Mapping[str, Any], run: Run) -> Outcome:
    if p["max_runs"] < p["min_runs"]:
        raise QueryError(f"--max-runs ({p['max_runs']}) is below --min-runs ({p['min_runs']})")
    records, extra = _timed(spec_records(p["specs"], scaling=_scaling(p)), p, run)
    return Outcome(records, extra, view=records)


def _check(p: Mapping[str, Any], run: Run) -> Outcome:
    records = spec_records(p["specs"], p["counter"], _scaling(p), p["convention"])
    return Outcome(records, view=records)


_RUNNERS: dict[str, Callable[[Mapping[str, Any], Run], Outcome]] = {
    "list": _list, "info": _info, "scale": _scale, "compare": _compare, "fit": _fit,
    "sweep": _sweep, "bench": _bench, "check": _check,
}
__all__ = ["Group", "Fitted", "Outcome", "Query", "QueryError", "Run", "Scaled", "Swept",
           "make_query", "query_from_dict", "query_inputs", "run_query"]

"""``scalekit search``'s reports: the ranked table, the JSON document, CSV and Markdown rows, and
the plot of the metric against the achieved cost. Results in, renderables and strings out
(formatting only: the search itself is scalekit/search/). No torch here.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from rich.table import Table
from rich.text import Text

from ..errors import ScalekitError
from ..host import machine
from ..search.grid import CandidateGrid
from ..search.proxy import WARNING
from ..search.results import CandidateResult, SearchResult
from ..text import plural, safe_text
from . import plot
from .document import md_cell
from .tables import lines, new_table

SEARCH_SCHEMA_VERSION = 1
PROXY_WARNING = WARNING  # said in every report that comes from builtin:proxy


def _macs_unit(grid: CandidateGrid) -> tuple[str, float]:
    return ("G", 1e9) if grid.baseline.macs >= 1e8 else ("M", 1e6)


def _coef(v: float) -> str:
    return f"{v:g}"


def metric_text(r: CandidateResult) -> str:
    """``0.874 ± 0.012`` (mean ± sample std over seeds), ``0.874`` (one seed), or the status."""
    if r.mean is None:
        return r.status
    digits = 4 if abs(r.mean) < 10 else 2
    text = f"{r.mean:.{digits}f}"
    if r.spread is not None:
        text += f" ± {r.spread:.{digits}f}"
    if r.status not in ("ok",):
        text += f" ({r.status})"
    return text


def _metric_header(res: SearchResult) -> str:
    arrow = "↓" if res.minimize else "↑"
    spread = " ± sd" if res.seeds > 1 else ""
    return f"{res.metric}{spread} {arrow}"


def results_table(res: SearchResult, title: str | None = None,
                  caption: str | None = None) -> Table:
    """One row per candidate: ranked ones first (best on top), then failed and not run. Narrow
    enough for 80 columns (one space between columns, units in two-line headers)."""
    unit, div = _macs_unit(res.grid)
    t = new_table(None if title is None else safe_text(title),
                  caption=None if caption is None else lines(caption))
    t.padding = (0, 0)  # the box's column divider is a space: one between columns
    latency = res.grid.settings.cost == "latency"
    cols = ["#", "α", "β", "γ", "nominal", "achieved"] + (["latency\nratio"] if latency else [])
    cols += ["params\n(M)", f"MACs\n({unit})", "acts\n(M)"]
    cols += ["alike"] if res.dry_run else [_metric_header(res), "s"]
    for c in cols:  # a header of two lines is built line by line (a str is one line)
        t.add_column(lines(*c.split("\n")), justify="left" if c == "alike" else "right",
                     no_wrap=True)
    for i, r in enumerate(res.results):
        c, rec = r.candidate, r.candidate.record
        row = [str(r.rank) if r.rank else str(i + 1) if res.dry_run else "-",
               _coef(c.alpha), _coef(c.beta), _coef(c.gamma), f"{c.nominal:.3f}",
               f"{c.achieved:.3f}"]
        if latency:
            row += [f"{c.latency_ratio:.3f}" if c.latency_ratio is not None else ""]
        row += [f"{rec.params / 1e6:.3f}", f"{rec.macs / div:.3f}", f"{rec.acts / 1e6:.3f}"]
        if res.dry_run:
            row += [f"+{len(c.aliases)}" if c.aliases else ""]
        else:
            row += [metric_text(r) + (" ~" if r.tied_with_best else ""),
                    _seconds(r.seconds) if r.evaluations else ""]
        t.add_row(*row)  # numbers only: nothing here comes from the user
    return t


def _seconds(s: float) -> str:
    return f"{s:.1f}" if s < 10 else f"{s:,.0f}"


def _settings_line(res: SearchResult) -> str:
    g = res.grid
    s = g.settings
    return (f"grid: {s.describe()}: {g.box:,} points, {g.kept:,} kept, "
            f"{plural(len(g.candidates), 'distinct network')} "
            f"(points that round to the same network are evaluated once)")


def caption(res: SearchResult) -> str:
    """What the table shows, in a few plain lines."""
    parts = [
        "phi = 1: d = alpha, w = beta, r = gamma, rounded by the spec's rules. nominal = "
        "alpha*beta^2*gamma^2; achieved = the rounded network's exact MACs / the baseline's "
        f"({res.grid.baseline.macs:,} MACs at {res.grid.baseline.resolution} px). MACs = conv + "
        "linear multiply-accumulates.",
        _settings_line(res),
    ]
    if res.grid.settings.cost == "latency":
        parts.append(latency_line(res))
    if res.dry_run:
        parts.append("alike: other grid points that round to the same phi = 1 network (they "
                     "differ at larger phi). Dry run: nothing evaluated.")
    else:
        better = "↓ lower" if res.minimize else "↑ higher"
        parts.append(f"evaluator: {res.evaluator}; {res.seeds} seed{'s' if res.seeds > 1 else ''}"
                     f" per candidate; backend {res.backend}. {better} is better; s = seconds of "
                     "its evaluations."
                     + (" ~ = not distinguishable from the best (mean ± sd intervals overlap)."
                        if res.seeds > 1 else ""))
    if res.proxy:
        parts.append(PROXY_WARNING + ".")
    return "\n".join(parts)


def latency_line(res: SearchResult) -> str:
    """What a latency search's ratio is: PREDICTED, on which machine, how."""
    base = res.grid.baseline_latency or {}
    t = res.timing or {}
    threads = t.get("threads", base.get("threads", 1))
    return (f"latency ratio = the rounded network's PREDICTED latency / the baseline's "
            f"({base.get('predicted_ms', 0):.2f} ms predicted): batch 1, {threads} "
            f"thread{'s' if threads != 1 else ''}, runtime {t.get('runtime', 'eager')}, on "
            f"{t.get('cpu', 'this CPU')}; the calibrated sum of each network's blocks from this "
            "machine's latency table. The grid constrains this ratio (--cost latency).")


def confirmed_line(res: SearchResult) -> str | None:
    """The pick measured whole against the baseline (a latency search)."""
    conf = res.confirmed
    if not conf:
        return None
    s = res.grid.settings
    verdict = ("CONFIRMED: within" if conf["within_tolerance"] else
               "NOT CONFIRMED: outside")
    line = (f"measured whole, interleaved: the pick {conf['measured_ms']:.2f} ms, the baseline "
            f"{conf['baseline_ms']:.2f} ms: ratio {conf['measured_ratio']:.3f} (predicted "
            f"{conf['predicted_ratio']:.3f}); {verdict} {s.target} ± {s.tolerance}.")
    if not conf["trusted"]:
        line += f" ! the measurement is not to be trusted: {conf['reason']}"
    return line


def _aliases(c: Any) -> str:
    shown = ", ".join(f"({float(p.alpha):g}, {float(p.beta):g}, {float(p.gamma):g})"
                      for p in c.aliases[:3])
    more = f" and {len(c.aliases) - 3} more" if len(c.aliases) > 3 else ""
    return shown + more


def summary_lines(res: SearchResult, spec_arg: str = "SPEC") -> list[str]:
    """The verdict under the table: best, how sure, failures, the next steps."""
    out: list[str] = []
    n_eval = sum(len(r.evaluations) for r in res.results)
    if res.dry_run:
        n = len(res.grid.candidates)
        out.append(f"{plural(n, 'candidate network')} x {plural(res.seeds, 'seed')} = "
                   f"{plural(n * res.seeds, 'evaluation')} to run (--dry-run: none run).")
        return out
    out.append(f"{plural(n_eval, 'evaluation')}: {res.evaluated_now} run now, {res.reused} from "
               "the journal"
               + (f" {res.journal}" if res.journal else "") + ".")
    best = res.best
    if best is None:
        out.append("no candidate was evaluated successfully.")
    else:
        c = best.candidate
        where = "PROXY TASK " if res.proxy else ""
        out.append(f"best: alpha={_coef(c.alpha)} beta={_coef(c.beta)} gamma={_coef(c.gamma)} "
                   f"({where}{res.metric} {metric_text(best)}"
                   f"{f' over {len(best.values)} seeds' if len(best.values) > 1 else ''}; "
                   f"achieved cost {c.achieved:.3f}x"
                   + (f", predicted latency {c.latency_ratio:.3f}x"
                      if c.latency_ratio is not None else "") + ")"
                   + (f"; the same phi = 1 network as {_aliases(c)}" if c.aliases else ""))
        conf = confirmed_line(res)
        if conf:
            out.append(conf)
        ties = res.not_distinguishable
        if res.seeds == 1:
            out.append("one seed per candidate: no spread measured, so small differences may be "
                       "noise (--seeds 3 measures it).")
        elif ties:
            names = ", ".join(f"#{r.rank} ({_coef(r.candidate.alpha)}, {_coef(r.candidate.beta)}, "
                              f"{_coef(r.candidate.gamma)})" for r in ties[:5])
            more = f" and {len(ties) - 5} more" if len(ties) > 5 else ""
            out.append(f"NOT DISTINGUISHABLE: the best's mean ± sd overlaps {len(ties)} other "
                       f"candidate{'s' if len(ties) > 1 else ''}: {names}{more}; more seeds or a "
                       "longer training would separate them.")
        else:
            out.append(f"the best is distinguishable from every other candidate (no mean ± sd "
                       f"interval over {res.seeds} seeds overlaps its own).")
    for r in res.failed[:5]:
        c = r.candidate
        e = r.failures[-1]
        last = (e.stderr_tail or "").strip().splitlines()[-1:] or [""]
        out.append(f"failed: alpha={_coef(c.alpha)} beta={_coef(c.beta)} gamma={_coef(c.gamma)} "
                   f"seed {e.seed}: {e.reason}" + (f" | {last[0][:120]}" if last[0] else ""))
    if len(res.failed) > 5:
        out.append(f"... {len(res.failed) - 5} more failed (see the JSON report or the journal)")
    if res.failed:
        out.append("failed candidates are re-run only with --retry-failed.")
    if best is not None:
        out.append("next: the same command with --write-spec OUT.yaml writes these coefficients "
                   "into the spec's compound: block (nothing is evaluated again); then `scalekit "
                   "scale OUT.yaml --phi 3` is step 2.")
    return out


def renderables(res: SearchResult, spec_arg: str) -> list[Any]:
    base = res.grid.base
    what = "(dry run)" if res.dry_run else f"ranked by {res.metric}"
    title = (f"{base.name}: compound scaling step 1 at phi = 1, "
             f"{plural(len(res.results), 'candidate')} {what}")
    if res.proxy:
        title += " on the PROXY TASK (not ImageNet)"
    below = caption(res).split("\n") + [""] + list(res.notes) + summary_lines(res, spec_arg)
    # title and caption outside the table: in it they would wrap at the (narrow) table's width;
    # every line escaped (a spec name, a template, a failure's stderr can hold anything)
    return [Text(safe_text(title), style="bold"), results_table(res), lines(*below)]


# ---------------------------------------------------------------------------------------------
# machine formats


def document(res: SearchResult, command: str, versions: dict[str, Any]) -> dict[str, Any]:
    """The JSON document: settings, baseline, ``best`` and every candidate. It holds no query:
    its numbers come from training, which ``scalekit check`` never runs."""
    g = res.grid
    b = g.baseline
    best = res.best
    return {
        "kind": "search",
        "search_schema_version": SEARCH_SCHEMA_VERSION,
        **versions,
        "command": command,
        "machine": machine(),
        "search": {
            "spec": g.base.name, "spec_path": g.base.path, "phi": 1, **g.settings.to_dict(),
            "points": g.box, "kept": g.kept, "networks": len(g.candidates),
            "evaluator": res.evaluator, "proxy_task": res.proxy,
            "metric": res.metric, "minimize": res.minimize, "seeds": res.seeds,
            "backend": res.backend, "journal": res.journal, "dry_run": res.dry_run,
            "evaluated_now": res.evaluated_now, "from_journal": res.reused,
            "notes": list(res.notes) + ([PROXY_WARNING] if res.proxy else []),
        },
        "baseline": {"name": b.name, "resolution": b.resolution, "params": b.params,
                     "macs": b.macs, "flops": b.flops, "acts": b.acts,
                     "predicted_latency_ms": (g.baseline_latency or {}).get("predicted_ms")},
        "timing": res.timing,
        "confirmed": res.confirmed,
        "best": None if best is None else best.to_dict(res.metric),
        "not_distinguishable_from_best": [r.rank for r in res.not_distinguishable],
        "candidates": [r.to_dict(res.metric) for r in res.results],
    }


def to_json(doc: dict) -> str:
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"


ROW = ("rank", "alpha", "beta", "gamma", "nominal_cost", "achieved_cost", "latency_ratio",
       "resolution", "params", "macs", "acts", "metric", "mean", "spread", "seeds_ok", "seconds",
       "status", "aliases")


def rows(res: SearchResult) -> list[dict[str, Any]]:
    out = []
    for r in res.results:
        c, rec = r.candidate, r.candidate.record
        out.append({"rank": r.rank or "", "alpha": c.alpha, "beta": c.beta, "gamma": c.gamma,
                    "nominal_cost": round(c.nominal, 6), "achieved_cost": round(c.achieved, 6),
                    "latency_ratio": ("" if c.latency_ratio is None
                                      else round(c.latency_ratio, 6)),
                    "resolution": rec.resolution, "params": rec.params, "macs": rec.macs,
                    "acts": rec.acts, "metric": safe_text(res.metric),
                    "mean": "" if r.mean is None else round(r.mean, 6),
                    "spread": "" if r.spread is None else round(r.spread, 6),
                    "seeds_ok": len(r.ok), "seconds": round(r.seconds, 2), "status": r.status,
                    "aliases": len(c.aliases)})
    return out


def _columns(res: SearchResult) -> list[str]:
    """ROW, the latency ratio only in a latency search."""
    return [c for c in ROW if c != "latency_ratio" or res.grid.settings.cost == "latency"]


def to_csv(res: SearchResult) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=_columns(res), lineterminator="\n",
                       extrasaction="ignore")
    w.writeheader()
    w.writerows(rows(res))
    return buf.getvalue()


def to_markdown(res: SearchResult) -> str:
    head = {"nominal_cost": "alpha*beta^2*gamma^2", "achieved_cost": "achieved (MACs ratio)",
            "latency_ratio": "predicted latency ratio",
            "macs": "MACs", "mean": f"{res.metric} mean", "spread": "sd"}
    cols = [c for c in _columns(res) if c != "metric"]
    out = ["| " + " | ".join(head.get(c, c) for c in cols) + " |",
           "|" + "|".join("---" if c == "status" else "---:" for c in cols) + "|"]
    for row in rows(res):
        out.append("| " + " | ".join(md_cell(row[c]) for c in cols) + " |")
    if res.proxy:
        out.append("")
        out.append(f"*{PROXY_WARNING}.*")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# the plot


def write_plot(res: SearchResult, path: str) -> None:
    """The metric (mean, with its spread as error bars) against the achieved cost, one point
    per evaluated candidate, the best marked, the target band shaded: into ``path`` (.png, .svg
    or .pdf, as its suffix says), atomically, in the plots' common style (report/plot.py)."""
    pts = [r for r in res.results if r.mean is not None]
    if not pts:
        raise ScalekitError("--plot: no candidate has a metric to plot")
    plot.plot_format(path)

    def draw(ax) -> None:
        xs = [r.candidate.cost_ratio for r in pts]
        ys = [r.mean for r in pts]
        err = [r.spread or 0.0 for r in pts]
        ax.errorbar(xs, ys, yerr=err if any(err) else None, fmt="o", ms=5, capsize=2, alpha=0.8,
                    label="candidate" + (" (mean ± sd)" if any(err) else ""))
        best = res.best
        if best is not None:
            c = best.candidate
            ax.plot([c.cost_ratio], [best.mean], marker="*", ms=14, ls="none", color="tab:red",
                    label=f"best: alpha={c.alpha:g}, beta={c.beta:g}, gamma={c.gamma:g}")
        s = res.grid.settings
        lo, hi = float(s.target - s.tolerance), float(s.target + s.tolerance)
        ax.axvspan(lo, hi, color="tab:green", alpha=0.1, label=f"target {s.target} ± {s.tolerance}")
        plot.ticks(ax.xaxis, [], log=False)
        plot.ticks(ax.yaxis, [], log=False)
        ax.set_xlabel("predicted latency of the rounded network / the baseline's"
                      if s.cost == "latency" else
                      "achieved cost (MACs of the rounded network / the baseline's MACs)")
        ax.set_ylabel(f"{res.metric}" + (" (PROXY TASK, not ImageNet)" if res.proxy else ""))
        ax.set_title(f"{res.grid.base.name}: step 1 (phi = 1), {plural(len(pts), 'candidate')}")
        plot.legend_beside(ax)

    plot.save(plot.figure(draw), path)


write_png = write_plot  # its name before it wrote SVG and PDF too


__all__ = ["caption", "document", "renderables", "results_table", "rows", "to_csv", "to_json",
           "to_markdown", "write_plot", "write_png"]


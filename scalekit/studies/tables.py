"""The paper's comparison tables (2, 3, 4 and 7) as data + our counts beside the published figures.

Row definitions and published figures live in scalekit/data/reference.yaml. Where the paper states
no coefficient for a row (the compound rows of MobileNetV2 and ResNet-50), its own compound setting
d=1.4, w=1.2, r=1.3 is used and the row says so. Where the paper's figure does not follow from
its stated coefficients under the standard rounding rules, both numbers are shown as they are.
Table 4 is latency: its records are counted here and timed by the caller (scalekit.timing).
No torch here.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from ..bundled import resolve_spec
from ..counting import count_plan
from ..errors import ScalekitError
from ..plan import expand
from ..records import ModelRecord, Networks, make_record
from ..scaling import MODES, Coefficients, coefficients, scale
from ..spec import Spec, load_spec, parse_yaml
from ..strategies import dial
from .budget import fit

DEFAULT_TABLES = (3, 7)
# The paper's single-dimension coefficients, used for specs that are not in its tables.
GENERIC_ROWS = {"baseline": {}, "depth": {"d": 4}, "width": {"w": 2}, "resolution": {"r": 2},
                "compound": {}}


@functools.lru_cache(maxsize=1)
def reference() -> dict[str, Any]:
    path = Path(__file__).parent.parent / "data" / "reference.yaml"
    return parse_yaml(path.read_text(encoding="utf-8"), path=str(path), fast=True)  # our file


@functools.lru_cache(maxsize=32)
def _load(path: str) -> Spec:
    return load_spec(path)


@dataclass(frozen=True)
class Row:
    spec: Spec
    mode: str
    coef: Coefficients
    reference: dict[str, Any] | None
    notes: tuple[str, ...]


def _coef(row: dict[str, Any]) -> Coefficients:
    return Coefficients(depth=float(row.get("d", 1.0)), width=float(row.get("w", 1.0)),
                        resolution=float(row.get("r", 1.0)))


def _mode_rows(spec: Spec, rows: dict[str, Any], modes: Sequence[str], table: int | None) -> list[Row]:
    out = []
    default = reference()["default_compound"]
    for mode in MODES:
        if mode not in modes or mode not in rows:
            continue
        row = dict(rows[mode])
        notes = []
        if mode == "compound" and not any(k in row for k in ("d", "w", "r")):
            row.update(default)
            notes.append("paper states no coefficients here; using its compound setting "
                         f"d={default['d']}, w={default['w']}, r={default['r']}")
        ref = None
        if "flops_b" in row or "top1" in row:
            ref = {"source": f"EfficientNet paper, Table {table}", **paper_flops(row.get("flops_b")),
                   "paper_top1": row.get("top1")}
        out.append(Row(spec, mode, _coef(row), ref, tuple(notes)))
    return out


def table_rows(table: int, modes: Sequence[str] = MODES, specs: Sequence[str] = ()) -> list[Row]:
    """The rows of paper table 3 or 7 (optionally only for ``specs``), or generic rows for specs
    that the paper does not cover."""
    ref = reference()
    entries = ref[f"table{table}"]
    wanted = [os.path.abspath(resolve_spec(s)) for s in specs]
    rows: list[Row] = []
    for _, entry in entries.items():
        path = resolve_spec(entry["spec"])
        if wanted and os.path.abspath(path) not in wanted:
            continue
        rows += _mode_rows(_load(path), entry["rows"], modes, table)
    return rows


def generic_rows(path: str, modes: Sequence[str]) -> list[Row]:
    spec = _load(path)
    rows = dict(GENERIC_ROWS)
    rows["compound"] = dict(reference()["default_compound"])
    return [Row(r.spec, r.mode, r.coef, None, ("not in the paper's tables: its standard coefficients",))
            for r in _mode_rows(spec, rows, modes, None)]


def paper_rows(specs: Sequence[str] = (), modes: Sequence[str] = MODES,
               tables: Sequence[int] = DEFAULT_TABLES) -> list[Row]:
    """Rows for ``scalekit compare``: the paper's tables 3 and 7 by default; specs that are in
    neither get the paper's standard coefficients (d=4, w=2, r=2, compound 1.4/1.2/1.3)."""
    rows: list[Row] = []
    for t in tables:
        rows += table_rows(t, modes, specs)
    covered = {os.path.abspath(r.spec.path) for r in rows if r.spec.path}
    for s in specs:
        path = resolve_spec(s)
        if os.path.abspath(path) not in covered and not _in_tables(path, tables):
            rows += generic_rows(path, modes)
    return rows


def _in_tables(path: str, tables: Sequence[int]) -> bool:
    p = os.path.abspath(path)
    ref = reference()
    return any(os.path.abspath(resolve_spec(e["spec"])) == p
               for t in tables for e in ref[f"table{t}"].values())


def paper_flops(printed: str | float | None) -> dict[str, Any]:
    """A paper FLOPS figure as a number and as printed: reference.yaml quotes figures whose
    trailing zeros carry precision ("0.70", "1.0"), which a YAML float would drop."""
    if printed is None:
        return {"paper_flops_b": None}
    return {"paper_flops_b": float(printed), "paper_flops_b_text": str(printed)}


def paper_consistent(macs: int, printed: str) -> bool:
    """Does our count, rounded as the paper rounds its figure, give the paper's figure?
    (0.6 is consistent with 0.569; 2.3 is not with 2.445; 0.70 is not with 0.687.)"""
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    return round(macs / 1e9, decimals) == round(float(printed), decimals)


def evaluate(row: Row, counter: str = "analytic", networks: Networks | None = None) -> ModelRecord:
    scaled = scale(row.spec, row.coef)
    rec = make_record(scaled, counter=counter, coefficients=row.coef, mode=row.mode,
                      base=row.spec.name, reference=row.reference, notes=row.notes,
                      networks=networks)
    printed = (row.reference or {}).get("paper_flops_b_text")
    if printed and not paper_consistent(rec.macs, printed):
        rec = replace(rec, notes=rec.notes + (
            "the paper's FLOPS figure is not what these coefficients give under the standard "
            "rounding rules; both are shown as they are",))
    return rec


def _stated(coef: Coefficients) -> str:
    """A row's coefficient as the paper states it: ``w=2``, or ``d=1.4 w=1.2 r=1.3``."""
    parts = [f"{k}={v:g}" for k, v in (("d", coef.depth), ("w", coef.width),
                                        ("r", coef.resolution)) if v != 1.0]
    return " ".join(parts) or "-"


def match_rows(rows: Sequence[Row], budget: float | None = None,
               networks: Networks | None = None) -> list[Row]:
    """The rows at truly equal cost: every single-dimension row's coefficient is solved so that
    its rounded network's MACs are as close as they can be to the compound row's of the same
    baseline (or to ``budget``, which also re-solves the compound row, by phi). Rounding makes
    MACs a step function of the coefficient; of the two realisable networks around the target
    (the largest within it and the next step up) the nearer one is taken, whichever side.
    ``networks`` shares plans and counts between the rows' searches."""
    networks = networks if networks is not None else Networks()
    targets = {}
    for r in rows:
        if r.mode == "compound":
            targets[r.spec.path or r.spec.name] = networks.get(scale(r.spec, r.coef))[1].total.macs
    out = []
    for r in rows:
        target = budget if budget is not None else targets.get(r.spec.path or r.spec.name)
        if target is None:
            raise ScalekitError(f"{r.spec.name}: no compound row to match the MACs of; give "
                                "--budget")
        stated = _stated(r.coef)
        if r.mode == "baseline" or (r.mode == "compound" and budget is None):
            ref = {**(r.reference or {}), "paper_coefficient": stated}
            if r.mode == "compound":
                ref["target_macs"] = target
            out.append(replace(r, reference=ref))
            continue
        res = fit(r.spec, r.mode, "macs", target, networks=networks)
        best = res.closest
        paper = r.reference or {}
        ref = {"source": f"{paper.get('source', 'the paper')}: figures at the paper's coefficient",
               "paper_coefficient": stated,
               "paper_flops_b_at_paper_coefficient": paper.get("paper_flops_b"),
               "solved_coefficient": dial(r.spec, r.mode).label(best.value),
               "target_macs": target}
        out.append(Row(r.spec, r.mode, best.coefficients, ref, r.notes))
    return out


def compare(specs: Sequence[str] = (), modes: Sequence[str] = MODES,
            tables: Sequence[int] = DEFAULT_TABLES, counter: str = "analytic", *,
            match: bool = False, budget: float | None = None) -> list[ModelRecord]:
    """The paper's rows, counted. ``match`` (or a ``budget``): at equal MACs, see
    :func:`match_rows` (the compound row is solved for even when not shown)."""
    match = match or budget is not None
    networks = Networks()  # each network expanded and counted once, across rows and searches
    rows = paper_rows(specs, MODES if match else modes, tables)
    if match:
        rows = [r for r in match_rows(rows, budget, networks) if r.mode in modes]
    if not rows:
        raise ScalekitError("nothing to compare: no rows for the chosen specs, modes and tables")
    return [evaluate(r, counter, networks) for r in rows]


def _preset_row(row: dict[str, Any]) -> tuple[Spec, Coefficients]:
    """A reference row's network: its ``spec`` at its official ``preset`` (if any)."""
    spec = _load(resolve_spec(row["spec"]))
    coef = coefficients(spec, preset=row.get("preset"))
    return scale(spec, coef), coef


def table2(counter: str = "analytic") -> list[ModelRecord]:
    """EfficientNet-B0..B7 with the official presets (plus the paper's ResNet rows), next to the
    paper's and torchvision's figures."""
    out = []
    for row in reference()["table2"]["rows"]:
        preset = row.get("preset")
        scaled, coef = _preset_row(row)
        paper, tv = row["paper"], row.get("torchvision")
        ref = {"source": "EfficientNet paper, Table 2; torchvision weight metadata",
               "paper_params_m": paper["params_m"], **paper_flops(paper["flops_b"]),
               "paper_top1": paper["top1"],
               "torchvision_params": tv["params"] if tv else None,
               "torchvision_gmacs": tv["gmacs"] if tv else None,
               "torchvision_resolution": tv["resolution"] if tv else None}
        notes: list[str] = []
        rec = make_record(scaled, counter=counter, coefficients=coef, mode=preset or "baseline",
                      base=row["model"], reference=ref)
        if tv and tv["resolution"] != scaled.resolution:
            at = count_plan(expand(scaled, tv["resolution"])).total.macs
            ref["macs_at_torchvision_resolution"] = at
            notes.append(f"torchvision's GMACs are at {tv['resolution']} px: ours there "
                         f"{at / 1e9:.3f} G")
        if not paper_consistent(rec.macs, str(paper["flops_b"])):
            side = "below" if rec.macs / 1e9 > float(paper["flops_b"]) else "above"
            notes.append(f"the paper's FLOPS figure is {side} the exact count at the official "
                         "resolution")
        if not paper_consistent(rec.params * 1000, str(paper["params_m"])):  # M, as G of MACs
            side = "below" if rec.params / 1e6 > float(paper["params_m"]) else "above"
            notes.append(f"the paper's params figure is {side} the exact count "
                         f"({rec.params / 1e6:.2f} M)")
        out.append(replace(rec, name=row["model"], notes=tuple(notes)))
    return out


def table4(counter: str = "analytic") -> list[ModelRecord]:
    """The paper's Table 4 rows, counted: ResNet-152 (the 1x row) and EfficientNet-B1 (preset
    b1, 240 px), with the paper's reported top-1, latency and speedup. The caller times them."""
    t4 = reference()["table4"]
    out = []
    for i, row in enumerate(t4["rows"]):
        scaled, coef = _preset_row(row)
        ref = {"source": "EfficientNet paper, Table 4 (batch 1, one core of an Intel Xeon "
                         "E5-2690, mean of 20 runs)",
               "paper_top1": row["top1"], "paper_latency_s": row["latency_s"],
               "paper_speedup": 1.0 if i == 0 else t4["speedup"]}
        rec = make_record(scaled, counter=counter, coefficients=coef,
                      mode=row.get("preset") or "baseline", base=row["model"], reference=ref)
        out.append(replace(rec, name=row["model"]))
    return out

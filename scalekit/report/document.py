"""Reports for machines: the JSON document (schema in scalekit/data/report.schema.json), and CSV
and Markdown with one row per model. Records in, strings out; no torch here."""

from __future__ import annotations

import csv
import io
import json
from importlib import metadata
from typing import Any, Sequence

from ..errors import BaselineError
from ..host import machine
from ..records import ModelRecord

REPORT_FORMATS = ("table", "json", "csv", "markdown")
SCHEMA_VERSION = 1


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def document(records: Sequence[ModelRecord], command: str, extra: dict | None = None) -> dict:
    """The JSON document: versions, machine, and one record per model. No timestamps, so a
    count-only command run twice gives byte-identical output."""
    doc = {
        "schema_version": SCHEMA_VERSION,
        "scalekit_version": _version("scalekit"),
        "torch_version": _version("torch"),
        "command": command,
        "machine": machine(),
        "records": [r.to_dict() for r in records],
    }
    if extra:
        doc.update(extra)
    return doc


# ---------------------------------------------------------------------------------------------
# reading a document back (a baseline of ``scalekit check``)


def parse_document(text: str, source: str) -> dict[str, Any]:
    """Parse and sanity-check a report document (``source`` names it in errors)."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise BaselineError(f"{source}: not valid JSON ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("records"), list) \
            or not isinstance(doc.get("schema_version"), int):
        raise BaselineError(f"{source}: not a scalekit report (expected the JSON document of "
                            "--format json, with schema_version and records)")
    if doc["schema_version"] > SCHEMA_VERSION:
        raise BaselineError(f"{source}: schema_version {doc['schema_version']} is newer than this "
                            f"scalekit understands ({SCHEMA_VERSION}); upgrade scalekit")
    for i, r in enumerate(doc["records"]):
        if not isinstance(r, dict) or not isinstance(r.get("name"), str) or not all(
                type(r.get(k)) is int for k in ("params", "macs", "acts", "resolution")):
            raise BaselineError(f"{source}: records[{i}] lacks a name or integer resolution, "
                                "params, macs and acts")
    return doc


def load_document(path: str) -> dict[str, Any]:
    """Read a baseline file; any problem is a :class:`BaselineError` naming the file."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise BaselineError(f"{path}: no such baseline file (create it with --update, or with "
                            f"a reporting command's --format json --output {path})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BaselineError(f"{path}: cannot read the baseline ({e})") from None
    return parse_document(text, path)


# ---------------------------------------------------------------------------------------------


def to_json(doc: dict) -> str:
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"


# ---------------------------------------------------------------------------------------------
# flat rows (CSV, Markdown): one row per model

ROW_COLUMNS = ("name", "base", "mode", "phi", "depth", "width", "resolution", "params", "macs",
               "flops", "acts", "convention", "latency_ms", "latency_iqr_ms", "gflops_per_s", "peak_fraction",
               "optimized_latency_ms", "optimized_speedup", "paper_flops_b", "paper_params_m",
               "paper_top1", "paper_latency_s")


def _rounded(d: dict[str, Any] | None, key: str) -> Any:
    return "" if not d or d.get(key) is None else round(d[key], 4)


def flat_row(r: ModelRecord) -> dict[str, Any]:
    c = r.coefficients
    lat = r.latency or {}
    opt = lat.get("optimized")
    ref = r.reference or {}
    return {
        "name": r.name, "base": r.base, "mode": r.mode or "",
        "phi": "" if c is None or c.phi is None else round(c.phi, 6),
        "depth": "" if c is None else round(c.depth, 6),
        "width": "" if c is None else round(c.width, 6),
        "resolution": r.resolution, "params": r.params, "macs": r.macs, "flops": r.flops,
        "acts": r.acts, "convention": r.convention,
        "latency_ms": _rounded(lat, "median_ms"), "latency_iqr_ms": _rounded(lat, "iqr_ms"),
        "gflops_per_s": _rounded(lat, "gflops_per_s"), "peak_fraction": _rounded(lat, "peak_fraction"),
        "optimized_latency_ms": _rounded(opt, "median_ms"),
        "optimized_speedup": _rounded(opt, "speedup"),
        "paper_flops_b": ref.get("paper_flops_b", ""),
        "paper_params_m": ref.get("paper_params_m", ""),
        "paper_top1": ref.get("paper_top1", ""),
        "paper_latency_s": ref.get("paper_latency_s", ""),
    }


def _used_columns(rows: list[dict]) -> list[str]:
    return [k for k in ROW_COLUMNS if any(row.get(k) not in ("", None) for row in rows)
            or k in ("name", "params", "macs", "flops", "acts", "convention", "resolution")]


def to_csv(records: Sequence[ModelRecord]) -> str:
    rows = [flat_row(r) for r in records]
    cols = _used_columns(rows)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def to_markdown(records: Sequence[ModelRecord]) -> str:
    rows = [flat_row(r) for r in records]
    cols = _used_columns(rows)
    unit = records[0].unit if records else "MACs"
    head = {"macs": records[0].convention_label if records else "MACs",
            "flops": "FLOPs (2xMACs)" if unit == "MACs" else "FLOPs",
            "acts": "acts", "paper_top1": "paper top-1 % (reported)",
            "paper_flops_b": "paper FLOPS (B)", "paper_params_m": "paper params (M)",
            "paper_latency_s": "paper latency (s)"}
    out = ["| " + " | ".join(head.get(c, c) for c in cols) + " |",
           "|" + "|".join("---:" if c not in ("name", "base", "mode", "convention") else "---"
                          for c in cols) + "|"]
    for row in rows:
        out.append("| " + " | ".join(md_cell(row.get(c, "")) for c in cols) + " |")
    return "\n".join(out) + "\n"


def md_cell(v: Any) -> str:
    """A Markdown table cell: integers with thousands separators, ``|`` escaped."""
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v).replace("|", "\\|")


# ---------------------------------------------------------------------------------------------
# scalekit reconcile: one row per (convention, tool)


def reconcile_rows(r: Any) -> list[dict[str, Any]]:
    """``scalekit reconcile`` as flat rows: one per convention and tool that counts by it (a
    convention no tool counts by: one row without a tool), with the count per op type. ``r``:
    a :class:`scalekit.reconcile.Reconciliation`."""
    by_convention: dict[str, list[Any]] = {}
    for t in r.results:
        by_convention.setdefault(t.convention, []).append(t)
    rows = []
    for name, c in r.counts.items():
        for t in by_convention.get(name) or [None]:
            rows.append({"convention": name, "unit": c.unit, "scalekit": c.total,
                         "tool": "" if t is None else t.tool,
                         "tool_version": "" if t is None or t.version is None else t.version,
                         "tool_total": "" if t is None or t.total is None else t.total,
                         "status": "no tool" if t is None else t.status,
                         **{f"{term}": v for term, v in c.terms.items()}})
    return rows


def rows_to_csv(rows: Sequence[dict[str, Any]]) -> str:
    """Rows (dicts with the same keys) as CSV, a header line first."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else [], lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def rows_to_markdown(rows: Sequence[dict[str, Any]], text_columns: Sequence[str] = ()) -> str:
    """Rows as a Markdown table; ``text_columns`` are left-aligned, the others right-aligned."""
    cols = list(rows[0]) if rows else []
    out = ["| " + " | ".join(cols) + " |",
           "|" + "|".join("---" if c in text_columns else "---:" for c in cols) + "|"]
    out += ["| " + " | ".join(md_cell(row[c]) for c in cols) + " |" for row in rows]
    return "\n".join(out) + "\n"

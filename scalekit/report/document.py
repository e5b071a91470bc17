"""Reports for machines: the JSON document (schema in scalekit/data/report.schema.json), and CSV
and Markdown with one row per model. Records in, strings out; no torch here. json and csv are
imported where they are used: a table needs neither."""

from __future__ import annotations

import math
from typing import Any, Sequence

from .. import __version__
from ..errors import BaselineError, FileError
from ..extras import installed_version
from ..fields import MAX_NAME_CHARS
from ..files import read_input
from ..host import machine
from ..records import ModelRecord
from ..text import safe_text

REPORT_FORMATS = ("table", "json", "csv", "markdown")
SCHEMA_VERSION = 1


def document(records: Sequence[ModelRecord], command: str, extra: dict | None = None) -> dict:
    """The JSON document: versions, machine, and one record per model. No timestamps, so a
    count-only command run twice gives byte-identical output."""
    doc = {
        "schema_version": SCHEMA_VERSION,
        # the package's own version: what pip's metadata for scalekit-cnn reads too (pyproject's
        # version is scalekit.__version__), and right in a source checkout that is not installed
        "scalekit_version": __version__,
        "torch_version": installed_version("torch"),  # without importing torch
        "command": command,
        "machine": machine(),
        "records": [r.to_dict() for r in records],
    }
    if extra:
        doc.update(extra)
    return doc


# ---------------------------------------------------------------------------------------------
# reading a document back (a baseline of ``scalekit check``)


MAX_BASELINE_BYTES = 16_000_000  # a report of a few hundred models is well under 1 MB
MAX_JSON_NESTING = 32  # a report nests 6 deep
MAX_INT_DIGITS = 40  # past any count: the largest network a spec allows has ~1e33 MACs
MAX_COUNT = 10 ** 40  # params, MACs, acts


class _Refused(ValueError):
    """A JSON value that a baseline never holds (NaN, Infinity, a 400-digit integer)."""


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not a number a baseline may hold (only finite numbers)")


def _float(text: str) -> float:
    x = float(text)
    if not math.isfinite(x):
        raise _Refused(f"{text[:20]} overflows to {x}; only finite numbers are allowed")
    return x


def _integer(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise _Refused(f"an integer of {digits:,} digits; a baseline's numbers have at most "
                       f"{MAX_INT_DIGITS}")
    return int(text)


def _nesting(obj: Any) -> int:
    """How deep containers nest in parsed JSON (iteratively: never a RecursionError)."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        o, d = stack.pop()
        if isinstance(o, (dict, list)):
            deepest = max(deepest, d)
            if d <= MAX_JSON_NESTING:
                stack.extend((v, d + 1) for v in (o.values() if isinstance(o, dict) else o))
    return deepest


def _is_count(v: Any) -> bool:
    return type(v) is int and 0 <= v <= MAX_COUNT


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_latency(lat: Any, where: str) -> None:
    """A record's ``latency``: null, or an object whose statistics are finite numbers > 0 (a NaN
    or a list there must never pass --latency-tolerance)."""
    if lat is None:
        return
    if not isinstance(lat, dict):
        raise ValueError(f"{where}.latency: expected an object or null")
    for key in ("median_ms", "iqr_ms", "min_ms", "max_ms", "mean_ms", "p25_ms", "p75_ms"):
        if key in lat and not (_is_number(lat[key]) and lat[key] >= 0):
            raise ValueError(f"{where}.latency.{key}: expected a finite number >= 0")
    if "median_ms" in lat and not lat["median_ms"] > 0:
        raise ValueError(f"{where}.latency.median_ms: expected a finite number > 0")
    opt = lat.get("optimized")
    if opt is not None:
        _check_latency(opt, f"{where}.latency")


def _check_record(r: Any, i: int) -> None:
    """What ``scalekit check`` reads of a record, typed: a name, integer counts, an optional
    mode, stage rows and latency."""
    where = f"records[{i}]"
    if not isinstance(r, dict) or not isinstance(r.get("name"), str) or not all(
            type(r.get(k)) is int for k in ("params", "macs", "acts", "resolution")):
        raise ValueError(f"{where} lacks a name or integer resolution, params, macs and acts")
    if len(r["name"]) > MAX_NAME_CHARS * 2:
        raise ValueError(f"{where}.name: {len(r['name']):,} characters; not a model's name")
    for k in ("params", "macs", "acts", "resolution"):
        if not _is_count(r[k]):
            raise ValueError(f"{where}.{k}: expected an integer from 0 to {MAX_COUNT:.0e}")
    if r.get("mode") is not None and not isinstance(r["mode"], str):
        raise ValueError(f"{where}.mode: expected a string or null")
    stages = r.get("stages")
    if stages is not None:
        if not isinstance(stages, list) or not all(
                isinstance(s, dict) and isinstance(s.get("name", ""), str) for s in stages):
            raise ValueError(f"{where}.stages: expected a list of stage objects with names")
        for j, st in enumerate(stages):
            for k, v in st.items():
                if isinstance(v, float) and not math.isfinite(v):  # pragma: no cover - refused
                    raise ValueError(f"{where}.stages[{j}].{k}: not a finite number")
    _check_latency(r.get("latency"), where)


def parse_document(text: str, source: str) -> dict[str, Any]:
    """Parse and check a report document (``source`` names it in errors). A baseline is data
    from a file that a pull request can edit: NaN and Infinity are refused anywhere in it, and
    so are integers of more than MAX_INT_DIGITS digits, nesting deeper than MAX_JSON_NESTING, and
    records whose counts, stages or latency are not what scalekit writes."""
    import json

    try:
        doc = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_integer)
    except _Refused as e:
        raise BaselineError(f"{source}: {e}") from None
    except RecursionError:
        raise BaselineError(f"{source}: nested deeper than {MAX_JSON_NESTING} levels; not a "
                            "scalekit report") from None
    except ValueError as e:
        raise BaselineError(f"{source}: not valid JSON ({e})") from None
    if _nesting(doc) > MAX_JSON_NESTING:
        raise BaselineError(f"{source}: nested deeper than {MAX_JSON_NESTING} levels; not a "
                            "scalekit report")
    if isinstance(doc, dict) and doc.get("kind") == "search":
        raise BaselineError(f"{source}: a `scalekit search` report: its numbers come from "
                            "training, which check never runs (check a network's cost with "
                            "scalekit check --baseline FILE SPEC...)")
    if not isinstance(doc, dict) or not isinstance(doc.get("records"), list) \
            or type(doc.get("schema_version")) is not int:
        raise BaselineError(f"{source}: not a scalekit report (expected the JSON document of "
                            "--format json, with schema_version and records)")
    if doc["schema_version"] > SCHEMA_VERSION:
        raise BaselineError(f"{source}: schema_version {doc['schema_version']} is newer than this "
                            f"scalekit understands ({SCHEMA_VERSION}); upgrade scalekit")
    for key in ("scalekit_version", "command"):
        v = doc.get(key)
        if v is not None and not (isinstance(v, str) and len(v) <= 100_000):
            raise BaselineError(f"{source}: {key}: expected a string")
    for i, r in enumerate(doc["records"]):
        try:
            _check_record(r, i)
        except ValueError as e:
            raise BaselineError(f"{source}: {e}") from None
    return doc


def load_document(path: str) -> dict[str, Any]:
    """Read a baseline file; any problem is a :class:`BaselineError` naming the file. Only a
    regular file of at most MAX_BASELINE_BYTES is read (a FIFO or /dev/zero is refused before
    anything blocks or grows)."""
    try:
        raw = read_input(path, MAX_BASELINE_BYTES, "baselines")
    except FileError as e:
        if e.reason == "no such file":
            raise BaselineError(f"{e.path}: no such baseline file (create it with --update, or "
                                f"with a reporting command's --format json --output "
                                f"{e.path})") from None
        raise BaselineError(f"{e.path}: cannot read the baseline: {e.reason}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BaselineError(f"{path}: cannot read the baseline (not UTF-8: {e.reason} at byte "
                            f"{e.start})") from None
    return parse_document(text, path)


# ---------------------------------------------------------------------------------------------


def to_json(doc: dict) -> str:
    import json

    return json.dumps(doc, indent=2, sort_keys=False) + "\n"


# ---------------------------------------------------------------------------------------------
# flat rows (CSV, Markdown): one row per model

ROW_COLUMNS = ("name", "base", "mode", "phi", "depth", "width", "resolution", "params", "macs",
               "flops", "acts", "convention", "params_bytes", "inference_peak_bytes",
               "training_bytes", "predicted_ms", "latency_ms", "latency_iqr_ms", "latency_trusted",
               "runtime", "gflops_per_s", "peak_fraction", "optimized_latency_ms",
               "optimized_speedup", "paper_flops_b", "paper_params_m", "paper_top1",
               "paper_latency_s")


def _rounded(d: dict[str, Any] | None, key: str) -> Any:
    return "" if not d or d.get(key) is None else round(d[key], 4)


def flat_row(r: ModelRecord) -> dict[str, Any]:
    """One model as a CSV / Markdown row. Text cells are :func:`safe_text`: a name's control
    characters, newline included, are shown escaped, so a row stays one line."""
    c = r.coefficients
    lat = r.latency or {}
    opt = lat.get("optimized")
    ref = r.reference or {}
    mem = r.memory
    return {
        "name": safe_text(r.name), "base": safe_text(r.base), "mode": safe_text(r.mode or ""),
        "phi": "" if c is None or c.phi is None else round(c.phi, 6),
        "depth": "" if c is None else round(c.depth, 6),
        "width": "" if c is None else round(c.width, 6),
        "resolution": r.resolution, "params": r.params, "macs": r.macs, "flops": r.flops,
        "acts": r.acts, "convention": r.convention,
        "params_bytes": "" if mem is None else mem.params_bytes,
        "inference_peak_bytes": "" if mem is None else mem.inference_peak_bytes,
        "training_bytes": "" if mem is None else mem.training_bytes,
        "predicted_ms": _rounded(lat, "predicted_ms"),
        "latency_ms": _rounded(lat, "median_ms"), "latency_iqr_ms": _rounded(lat, "iqr_ms"),
        "latency_trusted": "" if lat.get("trusted") is None else str(lat["trusted"]).lower(),
        "runtime": lat.get("runtime", ""),
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
    import csv
    import io

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
    """A Markdown table cell: integers with thousands separators; text escaped (control
    characters and newlines visible, never a new row: :func:`safe_text`), and ``\\`` and ``|``
    escaped so that nothing in it can end the cell."""
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return safe_text(v).replace("\\", "\\\\").replace("|", "\\|")


# ---------------------------------------------------------------------------------------------
# info --layers: one row per layer

LAYER_COLUMNS = ("model", "stage", "block", "kind", "layer", "output", "kernel", "stride",
                 "groups", "bias", "folded", "params", "bn_params", "macs", "flops", "acts",
                 "convention")
LAYER_TEXT_COLUMNS = ("model", "stage", "kind", "layer", "output", "bias", "folded",
                      "convention")


def layer_rows(records: Sequence[ModelRecord]) -> list[dict[str, Any]]:
    """The layers of ``records`` (those that carry them: ``info --layers``) as flat rows, in
    :data:`LAYER_COLUMNS`: ``output`` as ``CxHxW`` (``C`` for a linear layer), ``folded`` the
    ops counted in the row joined by ``+`` (``bn+silu``), a missing kernel, stride or groups
    empty. Text cells are :func:`safe_text` (a stage's name stays on one line)."""
    rows = []
    for r in records:
        for x in r.layers or ():
            rows.append({"model": safe_text(r.name), "stage": safe_text(x.stage),
                         "block": x.block, "kind": x.kind, "layer": x.layer, "output": x.shape,
                         "kernel": "" if x.kernel is None else x.kernel,
                         "stride": "" if x.stride is None else x.stride,
                         "groups": "" if x.groups is None else x.groups,
                         "bias": str(x.bias).lower(), "folded": "+".join(x.folded),
                         "params": x.params, "bn_params": x.bn_params, "macs": x.macs,
                         "flops": x.flops, "acts": x.acts, "convention": r.convention})
    return rows


def layers_to_csv(records: Sequence[ModelRecord]) -> str:
    """``info --layers --format csv``: a header line, then one line per layer."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=LAYER_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(layer_rows(records))
    return buf.getvalue()


def layers_to_markdown(records: Sequence[ModelRecord]) -> str:
    """``info --layers --format markdown``: one table row per layer (the header of ``macs``
    names the convention: ``MACs``, ``MACs (fvcore)``)."""
    head = {"macs": records[0].convention_label if records else "MACs",
            "flops": "FLOPs (2xMACs)" if not records or records[0].unit == "MACs" else "FLOPs"}
    out = ["| " + " | ".join(head.get(c, c) for c in LAYER_COLUMNS) + " |",
           "|" + "|".join("---" if c in LAYER_TEXT_COLUMNS else "---:" for c in LAYER_COLUMNS)
           + "|"]
    out += ["| " + " | ".join(md_cell(row[c]) for c in LAYER_COLUMNS) + " |"
            for row in layer_rows(records)]
    return "\n".join(out) + "\n"


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
    import csv
    import io

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

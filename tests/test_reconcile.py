"""``scalekit reconcile`` and ``--convention``: each tool beside scalekit's count of its
convention, the breakdown that explains the gaps, missing tools, the memory guard, and the
convention a report's MACs follow (stored in baselines; ``check`` refuses to mix two).

The tools' totals are proven equal to the conventions in tests/test_conventions.py (each tool
called through its own API); here the command is checked end to end."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace
from importlib import resources

import jsonschema
import pytest
from click.testing import CliRunner

from scalekit import memory
from scalekit import reconcile as reconciling
from scalekit.cli import cli
from scalekit.conventions import NAMES, TERMS, count_convention
from scalekit.plan import expand
from scalekit.spec import load_spec

from .conftest import run_cli, spec_path

SMALL = ("--size", "96")  # reconcile builds real models: keep them small


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    text = resources.files("scalekit").joinpath("data/report.schema.json").read_text("utf-8")
    return jsonschema.Draft202012Validator(json.loads(text))


@pytest.fixture(scope="module")
def b0_doc(one_thread):
    r = invoke("reconcile", "efficientnet_b0", *SMALL, "--format", "json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_every_installed_tool_agrees_exactly(b0_doc, validator):
    errors = [e.message for e in validator.iter_errors(b0_doc)]
    assert not errors, errors[:3]
    assert "query" not in b0_doc  # not a stored query: check cannot run it again
    rec = b0_doc["reconcile"]
    assert rec["resolution"] == [96, 96] and rec["batch"] == 1
    plan = expand(load_spec(spec_path("efficientnet_b0")), 96)
    counts = {c["name"]: c for c in rec["conventions"]}
    assert list(counts) == list(NAMES)
    for name, c in counts.items():
        assert c["total"] == count_convention(plan, name).total == sum(c["terms"].values())
        assert list(c["terms"]) == list(TERMS)
    tools = {t["tool"]: t for t in rec["tools"]}
    assert list(tools) == list(reconciling.TOOL_NAMES)
    assert tools["torch"]["status"] == "exact"  # torch is always there
    for t in tools.values():
        assert t["status"] == ("exact" if reconciling.installed(reconciling.TOOLS[t["tool"]])
                               else "not installed")
        assert t["scalekit"] == counts[t["convention"]]["total"]
        if t["status"] == "exact":
            assert t["total"] == t["scalekit"] and t["difference"] == 0 and t["version"]
    assert {t["convention"] for t in tools.values()} == set(NAMES) - {"full"}


def test_the_table_explains_each_difference_term_by_term(one_thread):
    r = invoke("reconcile", "resnet50", *SMALL, "--tools", "torch,thop")
    assert r.exit_code == 0, r.output
    out = r.stdout
    plan = expand(load_spec(spec_path("resnet50")), 96)
    paper, thop = (count_convention(plan, n) for n in ("paper", "thop"))
    assert f"{thop.total:,}" in out and f"{paper.total:,}" in out
    bn, pool = thop.terms["bn"], thop.terms["pooling"]
    words = " ".join(out.split())  # captions wrap
    assert f"thop (MACs) = paper + BN {bn:,} + pool {pool:,}" in words
    assert "skipped: fvcore, ptflops, ptflops-aten, torchinfo: not in --tools" in words
    assert "full (FLOPs) = 2 x paper" in words
    for label in TERMS.values():
        assert f"\n  {label} " in out


def test_tables_fit_80_columns(one_thread):
    from scalekit.commands.common import render_text
    from scalekit.records import make_record
    from scalekit.report.tables import reconcile_tables

    spec = load_spec(spec_path("resnet152"))  # the largest counts
    r = reconciling.reconcile(make_record(spec), ("torch",))
    text = render_text(reconcile_tables(r), width=80)
    assert max(map(len, text.splitlines())) <= 80
    assert "…" not in text and "11,513,626,624" in text


def test_a_missing_tool_names_the_extra_and_the_others_still_print(monkeypatch):
    real = reconciling.installed
    monkeypatch.setattr(reconciling, "installed", lambda tool: tool.name == "torch" and real(tool))
    r = invoke("reconcile", "mobilenet_v2", "--size", "64")
    assert r.exit_code == 0, r.output
    assert r.stderr.count("\n") == 1 and "pip install 'scalekit-cnn[reconcile]'" in r.stderr
    assert "fvcore, ptflops, ptflops-aten, thop, torchinfo" in r.stderr  # one line, by name
    assert "not installed: fvcore, ptflops, ptflops-aten, thop, torchinfo: pip install " \
           "'scalekit-cnn[reconcile]'" in " ".join(r.stdout.split())  # the caption wraps
    assert re.search(r"^  paper .* exact", r.stdout, flags=re.M)  # torch still ran
    assert r.stdout.count("not installed") == 6  # five rows and the caption


def test_a_tool_absent_from_the_environment_is_not_installed():
    code = ("import sys\n"
            "sys.modules['fvcore'] = None  # as if not installed\n"
            "from scalekit import reconcile as r\n"
            "print(r.installed(r.TOOLS['fvcore']), r.installed(r.TOOLS['torch']))\n")
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.stdout.split() == ["False", "True"], p.stderr


def test_the_memory_guard_keeps_real_forwards_from_running(monkeypatch, one_thread):
    monkeypatch.setattr(memory, "available_memory", lambda: 1024)  # 1 KiB left
    r = invoke("reconcile", "mobilenet_v2", "--size", "64", "--tools", "fvcore,ptflops,thop",
               "--format", "json")
    assert r.exit_code == 0, r.output
    tools = {t["tool"]: t for t in json.loads(r.stdout)["reconcile"]["tools"]}
    for name in ("fvcore", "ptflops"):
        if tools[name]["status"] != "not installed":
            assert tools[name]["status"] == "not run"
            assert "use --force" in tools[name]["reason"]
    if tools["thop"]["status"] != "not installed":
        assert tools["thop"]["status"] == "exact"  # meta device: no memory needed
    r = invoke("reconcile", "mobilenet_v2", "--size", "64", "--tools", "fvcore,ptflops",
               "--force", "--format", "json")
    assert r.exit_code == 0
    assert {t["status"] for t in json.loads(r.stdout)["reconcile"]["tools"]} \
        <= {"exact", "skipped", "not installed"}


def test_a_tool_that_disagrees_exits_1_after_the_table(monkeypatch):
    off_by_one = replace(reconciling.TOOLS["torch"], count=lambda plan, device: 1)
    monkeypatch.setitem(reconciling.TOOLS, "torch", off_by_one)
    r = invoke("reconcile", "mobilenet_v1", *SMALL, "--tools", "torch")
    assert r.exit_code == 1
    plan = expand(load_spec(spec_path("mobilenet_v1")), 96)
    want = count_convention(plan, "paper").total
    assert f"{1 - want:+,}" in r.stdout  # the table shows it
    assert "has changed since the versions in docs/conventions.md" in r.output


def test_csv_and_markdown_one_row_per_convention_and_tool():
    r = invoke("reconcile", "mobilenet_v1", *SMALL, "--tools", "torch", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [x["convention"] for x in rows] == list(NAMES)
    assert rows[0]["tool"] == "torch" and rows[0]["status"] == "exact"
    assert rows[0]["tool_total"] == rows[0]["scalekit"]
    assert rows[-1]["status"] == "no tool" and rows[-1]["unit"] == "FLOPs"
    for x in rows:
        assert sum(int(x[t]) for t in TERMS) == int(x["scalekit"])
    md = invoke("reconcile", "mobilenet_v1", *SMALL, "--tools", "torch", "--format",
                "markdown").stdout.splitlines()
    assert md[0].startswith("| convention | unit | scalekit |") and len(md) == 2 + len(NAMES)


@pytest.mark.parametrize("args,expect", [
    (["--tools", "fvcor"], "unknown tool fvcor (known: torch, fvcore"),
    (["--format", "xml"], "--format"),
])
def test_reconcile_usage_errors(args, expect):
    r = run_cli("reconcile", "mobilenet_v1", *args)
    assert r.returncode == 2 and expect in r.stderr and r.stdout == ""


def test_a_reconcile_document_is_no_baseline_to_run_again(tmp_path):
    out = tmp_path / "r.json"
    assert invoke("reconcile", "mobilenet_v1", *SMALL, "--tools", "torch", "--format", "json",
                  "--output", str(out)).exit_code == 0
    r = run_cli("check", "--baseline", str(out))
    assert r.returncode == 2 and "records no query to run again" in r.stderr


# ---------------------------------------------------------------------------------------------
# --convention in info, scale, compare and check


def doc(*args: str) -> dict:
    r = invoke(*args, "--no-latency", "--format", "json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


@pytest.mark.parametrize("name", NAMES)
def test_info_counts_under_each_convention(name, validator):
    d = doc("info", "efficientnet_b0", "--convention", name)
    assert validator.is_valid(d)
    rec = d["records"][0]
    plan = expand(load_spec(spec_path("efficientnet_b0")))
    want = count_convention(plan, name)
    assert rec["convention"] == name and rec["unit"] == want.unit
    assert rec["macs"] == want.total
    assert [s["macs"] for s in rec["stages"]] == [m for _, m in want.stages]
    assert rec["flops"] == (2 * rec["macs"] if want.unit == "MACs" else rec["macs"])
    assert d["query"]["params"]["convention"] == name
    # params and acts do not depend on how MACs are counted
    paper = doc("info", "efficientnet_b0")["records"][0]
    assert (rec["params"], rec["acts"]) == (paper["params"], paper["acts"])


def test_paper_is_the_default_and_reads_as_before():
    d = doc("info", "resnet50")
    rec = d["records"][0]
    assert rec["convention"] == "paper" and rec["unit"] == "MACs" and rec["macs"] == 4089184256
    assert d["query"]["params"]["convention"] == "paper"
    table = invoke("info", "resnet50", "--no-latency").stdout
    assert "4,089,184,256 MACs (4.089 G), 8,178,368,512 FLOPs" in table


def test_tables_label_the_convention_and_its_unit():
    out = invoke("info", "efficientnet_b0", "--no-latency", "--convention", "full").stdout
    assert "FLOPs (full)" in out and "796,168,000 FLOPs (0.796 G, full convention)" in out
    out = invoke("scale", "resnet50", "--phi", "1", "--no-latency", "--convention",
                 "fvcore").stdout
    assert "MACs (fvcore)" in out and "MACs (fvcore) = paper + 2 per BatchNorm" in out
    out = invoke("compare", "--table", "3", "--no-latency", "--convention", "full").stdout
    assert "FLOPs (G, full)" in out and "diff: none (FLOPs are not the paper's unit)" in out
    assert not re.search(r"[+-]\d+\.\d%", out)  # no diff of FLOPs against the paper's MACs
    out = invoke("compare", "--table", "2", "--no-latency", "--convention", "thop").stdout
    assert "MACs (G, thop)" in out and "--convention thop: MACs (thop) = " in out


def test_scale_and_compare_records_follow_the_convention():
    d = doc("scale", "mobilenet_v2", "--width", "1.3", "--convention", "thop")
    for rec in d["records"]:
        assert rec["convention"] == "thop"
    d = doc("compare", "mobilenet_v1", "--mode", "width", "--convention", "torchinfo")
    for rec in d["records"]:
        assert rec["convention"] == "torchinfo"
        assert rec["macs"] > 0 and sum(s["macs"] for s in rec["stages"]) == rec["macs"]


@pytest.mark.parametrize("args,expect", [
    (["info", "resnet50", "--convention", "fvcor"], "'fvcor' is not one of 'paper', 'fvcore'"),
    (["info", "resnet50", "--counter", "thop", "--convention", "fvcore"],
     "--counter thop measures the thop convention only"),
    (["info", "resnet50", "--counter", "torch", "--convention", "full"],
     "--counter torch measures the paper convention only"),
    (["compare", "--match", "macs", "--convention", "fvcore"],
     "--match and --budget solve for equal paper MACs"),
])
def test_convention_usage_errors(args, expect):
    r = run_cli(*args, "--no-latency")
    assert r.returncode == 2, r.stderr
    assert expect in r.stderr and "Traceback" not in r.stderr and r.stdout == ""


def test_counter_thop_counts_under_thop_convention(one_thread):
    d = doc("info", "mobilenet_v2", "--counter", "thop")
    rec = d["records"][0]
    assert rec["convention"] == "thop" and d["query"]["params"]["convention"] == "thop"
    assert rec["macs"] == count_convention(expand(load_spec(spec_path("mobilenet_v2"))),
                                           "thop").total


# ---------------------------------------------------------------------------------------------
# check: the convention is stored, and two are never compared


@pytest.fixture()
def fvcore_baseline(tmp_path):
    path = tmp_path / "b0.json"
    r = invoke("info", "efficientnet_b0", "--no-latency", "--convention", "fvcore", "--format",
               "json", "--output", str(path))
    assert r.exit_code == 0
    return path


def test_check_runs_the_stored_convention_again(fvcore_baseline):
    r = run_cli("check", "--baseline", str(fvcore_baseline))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("check passed")


def test_check_refuses_two_conventions_in_one_line(fvcore_baseline):
    r = run_cli("check", "--baseline", str(fvcore_baseline), "efficientnet_b0")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0
    assert "counts MACs under the fvcore convention and this run under paper" in r.stderr
    assert "--convention fvcore" in r.stderr
    r = run_cli("check", "--baseline", str(fvcore_baseline), "efficientnet_b0", "--convention",
                "fvcore")
    assert r.returncode == 0, r.stderr
    r = run_cli("check", "--baseline", str(fvcore_baseline), "--convention", "paper")
    assert r.returncode == 2 and "--convention apply to SPEC..." in r.stderr


def test_check_update_may_change_the_convention(fvcore_baseline):
    r = run_cli("check", "--baseline", str(fvcore_baseline), "--update", "efficientnet_b0",
                "--convention", "full")
    assert r.returncode == 0, r.stderr
    assert "the convention changes from fvcore to full" in r.stderr
    rec = json.loads(fvcore_baseline.read_text())["records"][0]
    assert rec["convention"] == "full" and rec["unit"] == "FLOPs"


def test_baselines_written_before_conventions_read_as_they_were(tmp_path):
    """Records and queries without a convention: paper's (thop's for --counter thop)."""
    path = tmp_path / "old.json"
    d = doc("info", "resnet50")
    for rec in d["records"]:
        del rec["convention"], rec["unit"]
    del d["query"]["params"]["convention"]
    path.write_text(json.dumps(d))
    r = run_cli("check", "--baseline", str(path))
    assert r.returncode == 0, r.stderr
    from scalekit.studies import regression

    assert regression.record_convention({"counter": "thop"}) == "thop"
    assert regression.record_convention({"counter": "analytic"}) == "paper"


def test_the_documented_reconcile_table_is_what_scalekit_counts():
    from .conftest import ROOT

    text = (ROOT / "docs" / "conventions.md").read_text(encoding="utf-8")
    block = text.split("$ scalekit reconcile efficientnet_b0\n", 1)[1].split("```", 1)[0]
    plan = expand(load_spec(spec_path("efficientnet_b0")))
    for name in NAMES:
        c = count_convention(plan, name)
        row = re.search(rf"^  {re.escape(name)} +{c.unit} +([\d,]+)", block, flags=re.M)
        assert row and row.group(1) == f"{c.total:,}", name
        if name != "full":  # the tool's own total sits beside it, and agrees
            assert re.search(rf"^  {re.escape(name)} .* {c.total:,} +exact", block, flags=re.M)


def test_the_schema_knows_every_convention_and_tool_status():
    schema = json.loads(resources.files("scalekit").joinpath("data/report.schema.json")
                        .read_text("utf-8"))
    defs = schema["$defs"]
    assert defs["record"]["properties"]["convention"]["enum"] == list(NAMES)
    assert "convention" not in defs["record"]["required"]  # older documents have none
    tool = defs["reconcile"]["properties"]["tools"]["items"]["properties"]
    assert tool["convention"]["enum"] == list(NAMES)
    assert set(tool["status"]["enum"]) == {"exact", "differs", "not installed", "not run",
                                           "failed", "skipped"}

"""``scalekit check``: a CI guard for a model's cost. Exit 0 within bounds, 1 on a regression,
2 on a usage error; deltas proven by hand counts and published figures."""

from __future__ import annotations

import json
import os
import re

import pytest
from click.testing import CliRunner

from scalekit.studies import regression as chk
from scalekit.cli import cli

from .conftest import assert_no_torch, run_cli, spec_path


pytestmark = pytest.mark.light  # count-only: CI runs it in the torch-free venv too

# One more bottleneck in ResNet-50's stage3 (1024 -> 256 -> 1024 channels at 14x14, identity
# shortcut), counted by hand: three convs, three BatchNorms (gamma, beta).
CONVS = 1024 * 256 + 3 * 3 * 256 * 256 + 256 * 1024
BLOCK_PARAMS = CONVS + 2 * (256 + 256 + 1024)  # 1,117,184
BLOCK_MACS = CONVS * 14 * 14  # 218,365,952
BLOCK_ACTS = (256 + 256 + 1024) * 14 * 14  # conv outputs: 301,056


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def edit(path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.fixture()
def resnet(tmp_path):
    """A copy of the ResNet-50 spec and an `info` baseline of it."""
    spec = tmp_path / "resnet50.yaml"
    spec.write_text(open(spec_path("resnet50"), encoding="utf-8").read())
    baseline = tmp_path / "baseline.json"
    r = invoke("info", str(spec), "--no-latency", "--format", "json", "--output", str(baseline))
    assert r.exit_code == 0, r.output
    return spec, baseline


STAGE3 = "out: 1024, repeats: 6,"


def repeats(n: int) -> str:
    return STAGE3.replace("6,", f"{n},")


def test_unchanged_spec_passes(resnet):
    spec, baseline = resnet
    r = run_cli("check", "--baseline", str(baseline))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("check passed") and "1 model compared" in r.stdout
    r = invoke("check", "--baseline", str(baseline), str(spec))  # SPEC... counts it like info
    assert r.exit_code == 0, r.output


def test_a_spec_edit_that_adds_a_block_fails_with_the_delta(resnet, published):
    spec, baseline = resnet
    edit(spec, STAGE3, repeats(7))
    r = run_cli("check", "--baseline", str(baseline))
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    p, m = published["exact_224"]["resnet50"]["params"], published["exact_224"]["resnet50"]["macs"]
    rows = {line.split()[1]: line for line in r.stdout.splitlines() if line.startswith("  ResNet-50")}
    assert f"{p:,}" in rows["params"] and f"{p + BLOCK_PARAMS:,}" in rows["params"]
    assert f"+{BLOCK_PARAMS:,}" in rows["params"] and "CHANGED" in rows["params"]
    assert "stage3 repeats 6 -> 7" in rows["params"]
    assert f"{m:,}" in rows["MACs"] and f"{m + BLOCK_MACS:,}" in rows["MACs"]
    assert f"+{BLOCK_MACS:,}" in rows["MACs"]
    assert f"+{BLOCK_ACTS:,}" in rows["acts"]
    assert "check FAILED" in r.stdout and "1 model changed" in r.stdout


def test_resnet50_edited_into_resnet152_shows_published_totals(resnet, published):
    spec, baseline = resnet
    edit(spec, "mid: 128, out: 512,  repeats: 4", "mid: 128, out: 512,  repeats: 8")
    edit(spec, STAGE3, repeats(36))
    r = invoke("check", "--baseline", str(baseline), "--format", "markdown")
    assert r.exit_code == 1
    before, after = published["exact_224"]["resnet50"], published["exact_224"]["resnet152"]
    for metric, key in (("params", "params"), ("MACs", "macs")):
        delta = after[key] - before[key]
        assert (f"| ResNet-50 | {metric} | {before[key]:,} | {after[key]:,} | +{delta:,} |"
                in r.stdout)
    assert "stage2 repeats 4 -> 8; stage3 repeats 6 -> 36" in r.stdout


def test_missing_baseline_is_one_line_exit_2(tmp_path):
    r = run_cli("check", "--baseline", str(tmp_path / "nope.json"), "resnet50")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "nope.json" in r.stderr
    assert "--update" in r.stderr and r.stdout == ""


@pytest.mark.parametrize("content,words", [
    ("{", "not valid JSON"),
    ("[]", "not a scalekit report"),
    ('{"schema_version": 99, "records": []}', "newer"),
    ('{"schema_version": 1, "records": [{"name": "x"}]}', "records[0]"),
    ('{"schema_version": 1, "records": [], "query": {"command": "nosuch", "params": {}}}', "nosuch"),
    ('{"schema_version": 1, "records": [], "query": {"command": "info", "params": {"bogus": 1}}}',
     "bogus"),
    ('{"schema_version": 1, "records": []}', "no query"),
    ('{"schema_version": 1, "records": [], "query": {"command": "check", "params": {"specs": []}}}',
     "malformed"),
])
def test_unusable_baseline_is_one_line_exit_2(tmp_path, content, words):
    baseline = tmp_path / "b.json"
    baseline.write_text(content)
    r = invoke("check", "--baseline", str(baseline))
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and str(baseline) in lines[0]


@pytest.mark.parametrize("args,words", [
    (("--tolerance", "abc"), "--tolerance"),
    (("--tolerance", "-1%"), "--tolerance"),
    (("--latency-tolerance", "nan"), "--latency-tolerance"),
    (("--phi", "2"), "--phi"),
    (("--counter", "torch"), "--counter"),
    (("--strategy", "dWr", "--factor", "2"), "--strategy, --factor apply to SPEC"),
])
def test_usage_errors_exit_2(resnet, args, words):
    _, baseline = resnet
    r = invoke("check", "--baseline", str(baseline), *args)
    assert r.exit_code == 2 and words in r.stderr


def test_check_specs_by_strategy_and_factor(tmp_path):
    """`check SPEC --strategy dWr --factor S` scales as `scale` does (d, w, r = s^0.1, s^0.4,
    s^0.05: Dollar et al.'s fast compound scaling), stores it in the baseline's query, and a
    check without SPEC re-runs it."""
    baseline = tmp_path / "dwr.json"
    args = ("mobilenet_v2", "--strategy", "dWr", "--factor", "4")
    r = invoke("check", "--baseline", str(baseline), "--update", *args)
    assert r.exit_code == 0, r.output
    doc = json.loads(baseline.read_text())
    assert doc["query"]["params"]["strategy"] == "dWr" and doc["query"]["params"]["factor"] == 4
    (rec,) = doc["records"]
    assert rec["mode"] == "scaled" and rec["base"] == "MobileNetV2"
    c = rec["coefficients"]
    assert (c["depth"], c["width"], c["resolution"]) == pytest.approx((4 ** 0.1, 4 ** 0.4,
                                                                      4 ** 0.05))
    assert invoke("check", "--baseline", str(baseline)).exit_code == 0
    r = invoke("check", "--baseline", str(baseline), *args[:3], "--factor", "4.5")
    assert r.exit_code == 1 and "1 model added, 1 model removed" in r.stdout  # another network


def test_tolerance_is_relative_per_metric(resnet):
    spec, baseline = resnet
    edit(spec, STAGE3, repeats(7))
    # one block: params +4.37%, MACs +5.34%, acts +2.66% (from the hand counts above)
    r = invoke("check", "--baseline", str(baseline), "--tolerance", "5%")
    assert r.exit_code == 1
    lines = {line.split()[1]: line for line in r.stdout.splitlines() if line.startswith("  ResNet")}
    assert "within tolerance" in lines["params"] and "CHANGED" in lines["MACs"]
    assert "within tolerance" in lines["acts"]
    r = invoke("check", "--baseline", str(baseline), "--tolerance", "6")  # the % sign is optional
    assert r.exit_code == 0 and "within 6%" in r.stdout


def test_resolution_must_match_exactly(resnet):
    spec, baseline = resnet
    edit(spec, "resolution: 224", "resolution: 225")
    r = invoke("check", "--baseline", str(baseline), "--tolerance", "50%")
    assert r.exit_code == 1 and re.search(r"resolution \(px\)\s+224\s+225\s+\+1", r.stdout)


def test_added_and_removed_models_are_regressions(tmp_path):
    baseline = tmp_path / "costs.json"
    r = invoke("check", "--update", "--baseline", str(baseline), "resnet50", "mobilenet_v2")
    assert r.exit_code == 0 and baseline.exists()
    r = invoke("check", "--baseline", str(baseline))  # re-runs the recorded SPEC list
    assert r.exit_code == 0 and "2 models compared" in r.stdout
    r = invoke("check", "--baseline", str(baseline), "resnet50")
    assert r.exit_code == 1 and "REMOVED" in r.stdout and "MobileNetV2" in r.stdout
    r = invoke("check", "--baseline", str(baseline), "resnet50", "mobilenet_v2", "efficientnet_b0")
    assert r.exit_code == 1 and "ADDED" in r.stdout and "EfficientNet-B0" in r.stdout
    assert "1 model added" in r.stdout


@pytest.mark.parametrize("args", [
    ("list",),
    ("scale", "efficientnet_b0", "--preset", "b3", "--no-latency"),
    ("compare", "--table", "2", "--table", "3", "--table", "7", "--no-latency"),
])
def test_rerunning_every_kind_of_report_passes(tmp_path, args):
    baseline = tmp_path / "b.json"
    assert invoke(*args, "--format", "json", "-o", str(baseline)).exit_code == 0
    r = invoke("check", "--baseline", str(baseline))
    assert r.exit_code == 0, r.output
    assert re.search(r"(\d+) models? compared", r.stdout).group(1) == str(
        len(json.loads(baseline.read_text())["records"]))


def test_scaled_report_catches_a_change_to_its_baseline_spec(resnet):
    spec, _ = resnet
    baseline = spec.parent / "scaled.json"
    out = spec.parent / "scaled.yaml"
    assert invoke("scale", str(spec), "--phi", "1", "--out", str(out), "--no-latency",
                  "--format", "json",
                  "-o", str(baseline)).exit_code == 0
    out.unlink()
    edit(spec, STAGE3, repeats(7))
    r = invoke("check", "--baseline", str(baseline))
    assert r.exit_code == 1
    assert "baseline" in r.stdout and "scaled" in r.stdout  # both records changed
    assert not out.exists()  # re-running `scale` wrote no --out file


def test_update_rewrites_then_passes_and_is_byte_stable(resnet):
    spec, baseline = resnet
    recorded = json.loads(baseline.read_text())["command"]
    edit(spec, STAGE3, repeats(7))
    r = invoke("check", "--baseline", str(baseline), "--update")
    assert r.exit_code == 0 and "updating" in r.stdout and "CHANGED" in r.stdout
    first = baseline.read_bytes()
    doc = json.loads(first)
    assert doc["records"][0]["params"] == 25_557_032 + BLOCK_PARAMS
    assert doc["command"] == recorded  # the command it records, not `check`
    assert invoke("check", "--baseline", str(baseline)).exit_code == 0
    assert invoke("check", "--baseline", str(baseline), "--update").exit_code == 0
    assert baseline.read_bytes() == first


def test_update_that_fails_leaves_the_baseline(resnet, monkeypatch):
    spec, baseline = resnet
    before = baseline.read_bytes()
    edit(spec, STAGE3, repeats(7))

    def fail(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", fail)
    r = CliRunner().invoke(cli, ["check", "--baseline", str(baseline), "--update"])
    assert r.exit_code != 0
    assert baseline.read_bytes() == before
    assert not [p for p in baseline.parent.iterdir() if p.name.startswith(".scalekit-")]


def test_update_without_spec_or_baseline_is_a_usage_error(tmp_path):
    r = invoke("check", "--baseline", str(tmp_path / "new.json"), "--update")
    assert r.exit_code == 2 and "SPEC" in r.stderr
    assert not (tmp_path / "new.json").exists()


def test_markdown_output_file(resnet):
    spec, baseline = resnet
    edit(spec, STAGE3, repeats(7))
    out = spec.parent / "check.md"
    r = run_cli("check", "--baseline", str(baseline), "--format", "markdown", "-o", str(out))
    assert r.returncode == 1 and r.stdout == "" and f"wrote {out}" in r.stderr
    lines = out.read_text().splitlines()
    assert lines[0].startswith("check FAILED") and lines[2].startswith("| model | metric |")
    assert len([line for line in lines if line.startswith("| ResNet-50 |")]) == 3


def test_colour_follows_no_color(resnet):
    spec, baseline = resnet
    edit(spec, STAGE3, repeats(7))
    red = "\x1b[31m"
    assert red in run_cli("check", "-b", str(baseline), env={"FORCE_COLOR": "1"}).stdout
    r = run_cli("check", "-b", str(baseline), env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert r.returncode == 1 and red not in r.stdout


# ---------------------------------------------------------------------------------------------
# latency: compared only when asked, one-sided


def _doc(median_ms: float | None) -> dict:
    lat = None if median_ms is None else {"median_ms": median_ms, "iqr_ms": 0.1, "min_ms": 1.0,
                                          "max_ms": 99.0, "runs": 20, "threads": 1, "batch": 1}
    return {"schema_version": 1, "records": [
        {"name": "Net", "mode": None, "resolution": 224, "params": 10, "macs": 100, "acts": 5,
         "latency": lat, "stages": []}]}


@pytest.mark.parametrize("before,after,status", [
    (10.0, 12.4, None),        # 24% slower: within 25%
    (10.0, 12.6, "slower"),    # 26% slower: a regression
    (10.0, 5.0, "faster"),     # faster is never a regression
    (10.0, None, "no latency"),
])
def test_latency_compare(before, after, status):
    result = chk.compare_documents(_doc(before), _doc(after), latency_tolerance=0.25)
    assert [c.status for c in result.changes] == ([status] if status else [])
    assert result.ok == (status != "slower")
    assert result.latency_compared == (0 if after is None else 1)
    # without --latency-tolerance latency is ignored
    assert chk.compare_documents(_doc(before), _doc(after)).changes == ()


def test_latency_asked_but_not_measured_says_so(resnet):
    spec, baseline = resnet
    doc = json.loads(baseline.read_text())
    r = invoke("check", "--baseline", str(baseline), "--latency-tolerance", "25%")
    assert r.exit_code == 2 and "holds no latency" in r.stderr
    doc["records"][0]["latency"] = _doc(10.0)["records"][0]["latency"]
    baseline.write_text(json.dumps(doc))
    assert invoke("check", "--baseline", str(baseline)).exit_code == 0  # not asked: ignored
    r = invoke("check", "--baseline", str(baseline), "--latency-tolerance", "25%")
    assert r.exit_code == 2 and "measured none" in r.stderr and "ResNet-50" in r.stderr
    r = invoke("check", "--baseline", str(baseline), "--latency-tolerance", "25%", str(spec))
    assert r.exit_code == 2 and "counted, not timed" in r.stderr


def test_parse_percent():
    assert chk.parse_percent("0.5%") == pytest.approx(0.005)
    assert chk.parse_percent(" 25 ") == pytest.approx(0.25)
    for bad in ("", "%", "x%", "-1", "inf%"):
        with pytest.raises(ValueError):
            chk.parse_percent(bad)


def test_duplicate_names_are_matched_in_order():
    a = {"schema_version": 1, "records": [
        {"name": "N", "mode": "baseline", "resolution": 1, "params": p, "macs": 1, "acts": 1}
        for p in (1, 2)]}
    b = {**a, "records": list(reversed(a["records"]))}
    assert chk.compare_documents(a, a).changes == ()
    assert [c.metric for c in chk.compare_documents(a, b).changes] == ["params", "params"]


def test_check_imports_no_torch(resnet):
    _, baseline = resnet
    assert_no_torch(["check", "-b", str(baseline)])


def test_a_latency_fit_is_not_recomputed_without_a_latency_tolerance(tmp_path):
    """A fit that searched a latency target can only be recomputed by measuring again, and noise
    may move its answer: a counts-only check refuses it (exit 2) rather than fail at random."""
    base = tmp_path / "fit.json"
    assert invoke("fit", "mobilenet_v2", "--target-macs", "1G", "--format", "json",
                  "--output", str(base)).exit_code == 0
    doc = json.loads(base.read_text())
    doc["query"]["params"].update(target_macs=None, target_latency=0.1)
    base.write_text(json.dumps(doc))
    r = run_cli("check", "--baseline", str(base))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "latency target" in r.stderr and "--latency-tolerance" in r.stderr


# ---------------------------------------------------------------------------------------------
# check --format json: the result as data, checked against an independently edited baseline,
# the published counts and the table's verdicts

EXACT = ("efficientnet_b0", "resnet50", "mobilenet_v2")  # published.yaml exact_224


def _table_statuses(stdout: str) -> dict[tuple[str, str], str]:
    """(model, metric label) -> status, read from the table's rows."""
    labels = {"params", "MACs", "acts", "resolution"}
    out = {}
    for line in stdout.splitlines():
        if not line.startswith("  ") or line.split()[1:2] == ["metric"]:
            continue  # not a row of the table
        words = line.split()
        for i, w in enumerate(words):
            if w in labels and i > 0:
                out[" ".join(words[:i]), w] = next(x for x in words[i + 1:] if x.isupper()
                                                   or x == "within")
                break
    return out


def test_check_json_flags_exactly_the_edited_number(tmp_path, published):
    baseline = tmp_path / "three.json"
    r = run_cli("check", "--baseline", str(baseline), "--update", *EXACT)
    assert r.returncode == 0, r.stderr
    doc = json.loads(baseline.read_text())
    names = {}
    for rec in doc["records"]:  # the baseline edited by hand: ResNet-50 had 1,000 params fewer
        names[rec["name"]] = rec
    names["ResNet-50"]["params"] -= 1000
    baseline.write_text(json.dumps(doc))

    r = run_cli("check", "--baseline", str(baseline), "--format", "json")
    assert r.returncode == 1, r.stderr
    res = json.loads(r.stdout)
    assert (res["status"], res["exit_code"], res["compared"]) == ("failed", 1, 3)
    assert "records" not in res  # a check result is not a baseline
    by_name = {m["name"]: m for m in res["models"]}
    assert set(by_name) == set(names)
    exact = published["exact_224"]
    for spec, name in zip(EXACT, ("EfficientNet-B0", "ResNet-50", "MobileNetV2")):
        m = by_name[name]
        assert m["metrics"]["params"]["current"] == exact[spec]["params"]  # independent figures
        assert m["metrics"]["macs"]["current"] == exact[spec]["macs"]
        if name != "ResNet-50":
            assert (m["status"], m["regressions"]) == ("ok", [])
            assert all(v["status"] == "same" and v["delta"] == 0 for v in m["metrics"].values())
    m = by_name["ResNet-50"]
    assert (m["status"], m["regressions"]) == ("failed", ["changed"])
    params = m["metrics"]["params"]
    assert (params["baseline"], params["current"], params["delta"], params["status"]) == (
        exact["resnet50"]["params"] - 1000, exact["resnet50"]["params"], 1000, "changed")
    assert [(c["model"], c["metric"], c["delta"]) for c in res["changes"]] == [
        ("ResNet-50", "params", 1000)]
    assert m["metrics"]["macs"]["status"] == "same" and res["bounds"]["tolerance"] == 0
    assert f"--baseline {baseline}" in res["update_hint"]

    # the table says the same: the same verdict, the same exit code, the same flagged metric
    t = run_cli("check", "--baseline", str(baseline))
    assert t.returncode == res["exit_code"]
    assert res["verdict"] in t.stdout
    assert _table_statuses(t.stdout) == {("ResNet-50", "params"): "CHANGED"}

    # within --tolerance: passed, exit 0, the metric "within tolerance"
    r = run_cli("check", "--baseline", str(baseline), "--format", "json", "--tolerance", "1%")
    res = json.loads(r.stdout)
    assert (r.returncode, res["status"], res["exit_code"], res["regressions"]) == (0, "passed", 0, 0)
    assert {m["name"]: m["metrics"]["params"]["status"] for m in res["models"]}["ResNet-50"] \
        == "within tolerance"


def test_check_json_added_removed_and_update(tmp_path):
    baseline = tmp_path / "b.json"
    assert run_cli("check", "--baseline", str(baseline), "--update", "resnet50",
                   "mobilenet_v2").returncode == 0
    r = run_cli("check", "--baseline", str(baseline), "--format", "json", "resnet50",
                "efficientnet_b0")
    res = json.loads(r.stdout)
    assert r.returncode == res["exit_code"] == 1 and res["status"] == "failed"
    status = {m["name"]: m["status"] for m in res["models"]}
    assert status == {"ResNet-50": "ok", "MobileNetV2": "removed", "EfficientNet-B0": "added"}
    t = run_cli("check", "--baseline", str(baseline), "resnet50", "efficientnet_b0")
    assert res["verdict"] in t.stdout and "1 model added, 1 model removed" in res["verdict"]
    assert f"--update resnet50 efficientnet_b0" in res["update_hint"]
    before = baseline.read_bytes()
    r = run_cli("check", "--baseline", str(baseline), "--format", "json", "--update", "resnet50")
    res = json.loads(r.stdout)
    assert (r.returncode, res["status"], res["exit_code"]) == (0, "updated", 0)
    assert baseline.read_bytes() != before and res["update_hint"] is None


def test_check_json_memory_bound(tmp_path, published):
    baseline = tmp_path / "b.json"
    assert run_cli("check", "--baseline", str(baseline), "--update", "resnet50").returncode == 0
    limit = 4 * published["exact_224"]["resnet50"]["params"]  # the weights alone do not fit
    r = run_cli("check", "--baseline", str(baseline), "--format", "json", "--max-memory",
                f"{limit}B")
    res = json.loads(r.stdout)
    assert r.returncode == res["exit_code"] == 1
    mem = res["models"][0]["metrics"]["memory_bytes"]
    assert mem["status"] == "over budget" and mem["limit"] == limit and mem["current"] > limit
    assert res["models"][0]["regressions"] == ["over budget"]


def test_update_hint_names_the_baseline_quoted(tmp_path):
    baseline = tmp_path / "my cost's.json"
    assert run_cli("check", "--baseline", str(baseline), "--update", "resnet50").returncode == 0
    r = run_cli("check", "--baseline", str(baseline), "resnet50", "--width", "2")
    assert r.returncode == 1
    hint = r.stdout.strip().splitlines()[-1]
    import shlex
    assert shlex.split(hint.split(": ", 1)[1]) == [
        "scalekit", "check", "--baseline", str(baseline), "--update", "resnet50", "--width", "2"]

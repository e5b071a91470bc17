"""`scalekit fit` (scale to a budget) and `scalekit compare --match` (rows at equal cost).

Every answer of the search is checked by scaling the spec again from the reported coefficient
and counting it: the network is within the budget, the next realisable step up is over it, and
nothing realisable lies between them; a brute-force scan of coefficients finds no larger network
within the budget. The compared rows are checked against the paper's Tables 3 and 7
(tests/data/published.yaml)."""

from __future__ import annotations

import json
from decimal import Decimal, localcontext

import pytest
from click.testing import CliRunner

from scalekit.cli import cli
from scalekit.counting import count_plan
from scalekit.errors import ScalingError
from scalekit.records import network_key
from scalekit.studies.budget import SIG_DIGITS, fit, parse_count, parse_duration_ms
from scalekit.plan import expand
from scalekit.scaling import scale
from scalekit.spec import load_spec
from scalekit.strategies import dial

from .conftest import assert_no_torch, needs_torch, run_cli, spec_path

BASELINES = ("efficientnet_b0", "mobilenet_v1", "mobilenet_v2", "resnet50")  # the paper's
MODES = ("compound", "width", "depth", "resolution")
SPEC_OF = {"EfficientNet-B0": "efficientnet_b0", "MobileNetV1": "mobilenet_v1",
           "MobileNetV2": "mobilenet_v2", "ResNet-50": "resnet50"}
TARGET_FACTORS = (0.55, 2.5, 7.0)  # x the baseline's MACs: scaling down, and up


def realise(spec, mode, value):
    return scale(spec, dial(spec, mode).coefficients(value))


def counts(spec):
    return count_plan(expand(spec)).total


def grid_below(value: float) -> float:
    """The coefficient just below ``value`` on the grid the search resolves (6 digits)."""
    with localcontext() as ctx:
        ctx.prec = SIG_DIGITS
        return float(ctx.next_minus(Decimal(repr(value))))


def check_answer(spec, mode, metric, target, res):
    """The acceptance criteria, from the reported coefficients alone."""
    got = counts(realise(spec, mode, res.best.value))
    assert getattr(got, metric) <= target, "fit returned a network over budget"
    assert getattr(got, metric) == res.best.cost
    nxt = counts(realise(spec, mode, res.above.value))
    assert getattr(nxt, metric) > target, "the next realisable step up is within budget"
    assert res.best.value < res.above.value
    # nothing realisable between them: the coefficient just below the step up gives `best`
    assert network_key(realise(spec, mode, grid_below(res.above.value))) == \
        network_key(res.best.spec) == network_key(realise(spec, mode, res.best.value))


@pytest.mark.parametrize("name", BASELINES)
@pytest.mark.parametrize("mode", MODES)
def test_fit_macs_within_budget_and_next_step_over(name, mode):
    spec = load_spec(spec_path(name))
    base = counts(spec).macs
    for f in TARGET_FACTORS:
        target = f * base
        res = fit(spec, mode, "macs", target)
        check_answer(spec, mode, "macs", target, res)
        assert res.resolved and not res.measured


@pytest.mark.parametrize("name,mode,metric,target", [
    ("resnet50", "width", "params", 40e6),
    ("efficientnet_b0", "depth", "acts", 50e6),
    ("mobilenet_v2", "dWr", "params", 10e6),
    ("mobilenet_v1", "uniform", "acts", 20e6),
    ("efficientnet_b0", "compound", "params", 30e6),
    ("resnet50", "resolution", "acts", 30e6),
])
def test_fit_params_and_acts(name, mode, metric, target):
    spec = load_spec(spec_path(name))
    check_answer(spec, mode, metric, target, fit(spec, mode, metric, target))


@pytest.mark.parametrize("name,mode,lo,hi", [
    ("efficientnet_b0", "width", 0.5, 4.0),
    ("mobilenet_v2", "depth", 0.5, 8.0),
    ("resnet50", "resolution", 0.5, 3.0),
    ("mobilenet_v1", "compound", -2.0, 5.0),
])
def test_fit_is_the_largest_on_a_scan(name, mode, lo, hi):
    """Brute force: no coefficient of a 240-point scan gives a network within the budget that
    costs more than the one found, and every coefficient past the answer is over budget."""
    spec = load_spec(spec_path(name))
    target = 3.0 * counts(spec).macs
    res = fit(spec, mode, "macs", target)
    for i in range(240):
        v = lo + (hi - lo) * i / 239
        macs = counts(realise(spec, mode, v)).macs
        if macs <= target:
            assert macs <= res.best.cost and v < res.above.value
        if v >= res.above.value:
            assert macs > target


def test_fit_reports_the_shortest_coefficient():
    spec = load_spec(spec_path("efficientnet_b0"))
    res = fit(spec, "depth", "macs", 2e9)
    # d=5 gives the same network as every d in (4.8, 5]: the answer is written as 5, not 4.99999
    assert res.best.value == 5.0
    assert network_key(realise(spec, "depth", 4.9)) == network_key(res.best.spec)


def test_fit_errors():
    b0 = load_spec(spec_path("efficientnet_b0"))
    with pytest.raises(ScalingError, match="params does not change under resolution scaling"):
        fit(b0, "resolution", "params", 20e6)
    with pytest.raises(ScalingError, match="below the smallest network"):
        fit(b0, "width", "macs", 1e3)
    with pytest.raises(ScalingError, match="did not reach"):
        fit(b0, "depth", "macs", 1e15)


def test_a_resolution_fit_past_the_specs_cap_names_the_cap():
    """EfficientNetV2 caps scaled resolutions at 480 px (torchvision's V2-M/L train at 480):
    resolution scaling cannot pass the MACs of the network at 480 px, and the error says why."""
    v2 = load_spec(spec_path("efficientnet_v2_s"))
    cap = v2.scaling.max_resolution
    assert cap == 480
    at_cap = count_plan(expand(scale(v2, dial(v2, "resolution").coefficients(cap / v2.resolution))))
    with pytest.raises(ScalingError, match=r"480 px: the spec's scaling rules cap") as e:
        fit(v2, "resolution", "macs", 2 * at_cap.total.macs)
    assert f"{at_cap.total.macs / 1e9:.2f} G MACs" in str(e.value)


@pytest.mark.parametrize("text,value", [("2G", 2e9), ("2e9", 2e9), ("300M", 3e8), ("20M", 2e7),
                                        ("20m", 2e7), ("1.5k", 1500.0), ("2B", 2e9),
                                        (" 4.1G ", 4.1e9), ("123456", 123456.0)])
def test_parse_count(text, value):
    assert parse_count(text) == pytest.approx(value)


@pytest.mark.parametrize("text,ms", [("40ms", 40.0), ("0.04s", 40.0), ("500us", 0.5),
                                     ("2S", 2000.0)])
def test_parse_duration(text, ms):
    assert parse_duration_ms(text) == pytest.approx(ms)


@pytest.mark.parametrize("text", ["2X", "-1G", "0", "abc", "", "inf", "nanG", "1e999"])
def test_parse_count_refuses(text):
    with pytest.raises(ValueError):
        parse_count(text)


@pytest.mark.parametrize("text", ["40", "40min", "-3ms", "ms"])
def test_parse_duration_refuses(text):
    with pytest.raises(ValueError):
        parse_duration_ms(text)


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_fit_cli_json_and_the_same_network_by_scale():
    r = invoke("fit", "efficientnet_b0", "--target-macs", "2G", "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    base, best, above = doc["records"]
    assert (base["mode"], best["mode"], above["mode"]) == ("baseline", "fit", "next step up")
    assert base["macs"] == 385814752  # torchvision's efficientnet_b0 (published.yaml exact_224)
    assert best["macs"] <= 2e9 < above["macs"]
    f = doc["fit"]
    assert f["coefficient"] == "phi" and f["achieved"] == best["macs"]
    assert f["ratio"] == pytest.approx(best["macs"] / 2e9)
    again = json.loads(invoke("scale", "efficientnet_b0", *f["scale_flags"].split(),
                              "--no-latency", "--format", "json").stdout)["records"][1]
    assert (again["params"], again["macs"], again["acts"]) == (best["params"], best["macs"],
                                                              best["acts"])


def test_fit_cli_table():
    r = invoke("fit", "resnet50", "--target-params", "40M", "--mode", "width")
    assert r.exit_code == 0
    assert "next step up" in r.output and "scalekit scale resnet50 --width" in r.output
    assert "vs target" in r.output


@pytest.mark.parametrize("args,words", [
    (("--target-macs", "2X"), "--target-macs"),
    (("--target-latency", "40"), "unit"),
    (("--target-params", "-3M"), "> 0"),
    ((), "exactly one"),
    (("--target-macs", "2G", "--target-params", "20M"), "exactly one"),
    (("--target-macs", "2G", "--mode", "dwr"), "--mode"),
])
def test_fit_usage_errors(args, words):
    r = run_cli("fit", "efficientnet_b0", *args)
    assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("args,words", [
    (("--target-params", "20M", "--mode", "resolution"), "does not change"),
    (("--target-macs", "1k", "--mode", "width"), "below the smallest network"),
])
def test_fit_errors_one_line(args, words):
    r = run_cli("fit", "efficientnet_b0", *args)
    assert r.returncode == 1 and words in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and r.stdout == ""


def test_fit_json_is_a_check_baseline(tmp_path):
    """The stored query re-runs (`scalekit check`): budgets are kept as numbers."""
    out = tmp_path / "fit.json"
    r = invoke("fit", "mobilenet_v2", "--target-macs", "1G", "--mode", "dWr", "--format", "json",
               "-o", str(out))
    assert r.exit_code == 0
    r = invoke("check", "--baseline", str(out))
    assert r.exit_code == 0, r.output


def test_fit_and_match_import_no_torch():
    assert_no_torch(["fit", "resnet50", "--target-macs", "8G"],
                    ["compare", "--table", "7", "--match", "macs", "--no-latency"],
                    ["scale", "resnet50", "--strategy", "dWr", "--factor", "2", "--no-latency"])


# ---------------------------------------------------------------------------------------------
# latency: measured, so only the search's own guarantees are checked (no timing assertions)

TINY = """\
name: Tiny
resolution: 32
num_classes: 10
stem: {out: 8, stride: 2}
stages:
  - {block: dwsep, out: 16, stride: 2}
  - {block: dwsep, out: 32, stride: 2}
"""


@needs_torch
def test_fit_latency_on_a_tiny_model(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    spec = load_spec(str(path))
    from scalekit.latency.networks import latency_cost, measure_spec

    target = 8 * measure_spec(spec, budget_s=0.05)["median_ms"]  # generous against noise
    res = fit(spec, "resolution", "latency", target, cost=latency_cost(1, 0.05),
              max_measurements=8)
    assert res.measured and res.best.latency and res.above.latency
    assert res.best.cost == res.best.latency["median_ms"] <= target
    assert res.above.cost == res.above.latency["median_ms"] > target
    assert res.best.latency["threads"] == 1 and res.best.latency["batch"] == 1
    assert network_key(realise(spec, "resolution", res.best.value)) == network_key(res.best.spec)
    assert res.best.spec.resolution < res.above.spec.resolution


@needs_torch
def test_fit_latency_cli_says_it_is_measured(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    r = run_cli("fit", str(path), "--target-latency", "0.5s", "--mode", "width",
                "--max-measurements", "3", "--latency", "measured")
    # either a fit or "did not reach" within 3 measurements: both say what they measured
    if r.returncode == 0:
        assert "LATENCY IS MEASURED" in r.stdout and "measured ms" in r.stdout
    else:
        assert r.returncode == 1 and "stopped after measuring 3 networks" in r.stderr
    assert "measuring Tiny" in r.stderr


# ---------------------------------------------------------------------------------------------
# compare --match macs: the paper's rows at truly equal cost


def _matched(*args):
    r = invoke("compare", *args, "--no-latency", "--format", "json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)["records"]


@pytest.mark.parametrize("table", ["7", "3"])
def test_compare_match_macs_equal_cost(table, published):
    recs = _matched("--table", table, "--match", "macs")
    paper = published["paper"][f"table{table}"]
    for base in {r["base"] for r in recs}:
        rows = {r["mode"]: r for r in recs if r["base"] == base}
        target = rows["compound"]["macs"]
        for mode, rec in rows.items():
            if mode == "baseline":
                continue
            assert rec["reference"]["target_macs"] == target
            assert abs(rec["macs"] / target - 1) <= 0.02, (base, mode, rec["macs"], target)
            stated = paper[base][mode]
            if mode != "compound":  # the paper's coefficient is shown beside the solved one
                key = {"depth": "d", "width": "w", "resolution": "r"}[mode]
                assert rec["reference"]["paper_coefficient"] == f"{key}={stated[key]:g}"
                assert rec["reference"]["solved_coefficient"].startswith(f"{key}=")
                spec = load_spec(spec_path(SPEC_OF[base]))
                value = float(rec["reference"]["solved_coefficient"].split("=")[1])
                assert counts(realise(spec, mode, value)).macs == rec["macs"]
    if table == "7":  # the target is the paper's compound model: 1.8 B FLOPS as published
        b0 = next(r for r in recs if r["mode"] == "compound")
        assert round(b0["macs"] / 1e9, 1) == paper["EfficientNet-B0"]["compound"]["flops_b"]


def test_compare_budget_solves_every_row():
    recs = _matched("--table", "7", "--budget", "3G", "--mode", "width,compound")
    assert [r["mode"] for r in recs] == ["baseline", "width", "compound"]
    for r in recs[1:]:
        assert r["reference"]["target_macs"] == 3e9
        assert abs(r["macs"] / 3e9 - 1) <= 0.02


def test_compare_match_table_shows_both_coefficients():
    r = invoke("compare", "--table", "7", "--match", "macs", "--no-latency")
    assert r.exit_code == 0
    assert "paper's coefficient" in r.output and "solved" in r.output and "w=2" in r.output
    assert "equal cost" in r.output


@pytest.mark.parametrize("args", [
    ("fit", "efficientnet_b0", "--target-macs", "2G"),
    ("fit", "mobilenet_v1", "--target-acts", "20M", "--mode", "uniform"),
    ("compare", "--match", "macs", "--no-latency"),
    ("compare", "--table", "7", "--budget", "3G", "--no-latency"),
    ("scale", "resnet50", "--strategy", "dWr", "--factor", "3", "--no-latency"),
    ("sweep", "mobilenet_v2", "--mode", "compound,dWr"),
])
def test_json_validates_against_the_schema(args):
    import jsonschema
    from importlib import resources

    schema = json.loads(resources.files("scalekit").joinpath("data/report.schema.json")
                        .read_text("utf-8"))
    doc = json.loads(invoke(*args, "--format", "json").stdout)
    errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(doc)]
    assert not errors, errors[:3]
    assert doc["query"]["command"] == args[0]

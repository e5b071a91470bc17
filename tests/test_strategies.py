"""Scaling strategies as data: the exponent bookkeeping, against the paper's equation 3 and
Dollar et al.'s own formula (pycls ``scaler.scaling_factors``), re-derived here; and
`scalekit scale --strategy`."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from scalekit.cli import cli
from scalekit.counting import count_plan
from scalekit.errors import ScalingError
from scalekit.plan import expand
from scalekit.scaling import coefficients, scale
from scalekit.spec import Compound, load_spec
from scalekit.strategies import (STRATEGIES, STRATEGY_NAMES, compound_strategy, get_strategy,
                                 strategy_coefficients)

from .conftest import run_cli, spec_path

FACTORS = (0.25, 0.5, 1.0, 1.9203, 2.0, 4.0, 8.7, 16.0, 100.0)


def pycls_factors(weights: dict[str, float], s: float) -> tuple[float, float, float]:
    """Dollar et al.'s scaling factors as pycls computes them from relative weights of d, w, r
    (fast compound scaling "dWr" is d1_w8_r1; "dwr" is d1_w1_r1): the weights are shares of
    the FLOPs exponent, and width and resolution enter the FLOPs squared."""
    total = weights["d"] + weights["w"] + weights["r"]
    return (s ** (weights["d"] / total), s ** (weights["w"] / total / 2),
            s ** (weights["r"] / total / 2))


@pytest.mark.parametrize("name", STRATEGY_NAMES)
@pytest.mark.parametrize("s", FACTORS)
def test_every_strategy_multiplies_flops_by_s_before_rounding(name, s):
    spec = load_spec(spec_path("efficientnet_b0"))
    d, w, r = get_strategy(name, spec).multipliers(s)
    assert d * w ** 2 * r ** 2 == pytest.approx(s, rel=1e-12)
    assert min(d, w, r) > 0


@pytest.mark.parametrize("bases", [(1.2, 1.1, 1.15), (1.4, 1.2, 1.1), (1.0, 1.3, 1.0)])
def test_compound_strategy_is_the_papers_rule(bases):
    c = Compound(*bases)
    st = compound_strategy(c)
    k = bases[0] * bases[1] ** 2 * bases[2] ** 2
    for phi in (-1.0, 0.5, 1.0, 2.0, 3.7):
        s = k ** phi  # paper eq. 3: FLOPS grow by (alpha beta^2 gamma^2)^phi
        d, w, r = st.multipliers(s)
        assert (d, w, r) == pytest.approx((bases[0] ** phi, bases[1] ** phi, bases[2] ** phi),
                                          rel=1e-12)
    assert sum(st.shares) == pytest.approx(1.0)


def test_compound_strategy_coefficients_match_phi():
    spec = load_spec(spec_path("resnet50"))
    c = strategy_coefficients(spec, "compound", 1.2 * 1.1 ** 2 * 1.15 ** 2)  # phi = 1
    by_phi = coefficients(spec, phi=1.0)
    assert c.phi == pytest.approx(1.0)
    assert (c.depth, c.width, c.resolution) == pytest.approx((by_phi.depth, by_phi.width,
                                                               by_phi.resolution), rel=1e-12)


@pytest.mark.parametrize("name,weights", [
    ("dWr", {"d": 1, "w": 8, "r": 1}),  # fast compound scaling, alpha = 0.8
    ("uniform", {"d": 1, "w": 1, "r": 1}),  # Dollar et al.'s "dwr"
    ("depth", {"d": 1, "w": 0, "r": 0}),
    ("width", {"d": 0, "w": 1, "r": 0}),
    ("resolution", {"d": 0, "w": 0, "r": 1}),
])
def test_strategies_match_dollar_et_al(name, weights):
    st = STRATEGIES[name]
    for s in FACTORS:
        assert st.multipliers(s) == pytest.approx(pycls_factors(weights, s), rel=1e-12)


def test_dwr_exponents_and_activation_growth():
    st = STRATEGIES["dWr"]
    assert st.exponents == pytest.approx((0.1, 0.4, 0.05))
    assert st.shares == pytest.approx((0.1, 0.8, 0.1))
    assert st.acts_exponent == pytest.approx(0.6)  # Dollar et al.: close to width's 0.5
    assert STRATEGIES["width"].acts_exponent == pytest.approx(0.5)
    assert STRATEGIES["uniform"].acts_exponent == pytest.approx(5 / 6)
    assert STRATEGIES["resolution"].acts_exponent == pytest.approx(1.0)


def test_realised_activations_follow_the_strategies():
    """Why the strategies differ at equal FLOPs: counted activations of the rounded networks grow
    with the exponent each strategy predicts (ResNet-50, s = 16)."""
    spec = load_spec(spec_path("resnet50"))
    base = count_plan(expand(spec)).total
    measured = {}
    for name in ("width", "dWr", "uniform", "compound", "resolution"):
        t = count_plan(expand(scale(spec, strategy_coefficients(spec, name, 16.0)))).total
        measured[name] = math.log(t.acts / base.acts) / math.log(16.0)
        assert measured[name] == pytest.approx(get_strategy(name, spec).acts_exponent, abs=0.05)
        assert math.log(t.macs / base.macs) / math.log(16.0) == pytest.approx(1.0, abs=0.05)
    assert measured["width"] < measured["dWr"] < measured["uniform"] < measured["resolution"]


def test_unknown_strategy_suggests():
    spec = load_spec(spec_path("resnet50"))
    with pytest.raises(ScalingError, match="did you mean 'dWr'"):
        get_strategy("dwR", spec)
    with pytest.raises(ScalingError, match="factor must be a finite number > 0"):
        strategy_coefficients(spec, "uniform", 0.0)
    with pytest.raises(ScalingError, match="do not scale up"):
        compound_strategy(Compound(1.0, 1.0, 1.0))


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_scale_strategy_cli_json():
    r = invoke("scale", "efficientnet_b0", "--strategy", "dWr", "--factor", "4", "--no-latency",
               "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    base, scaled = doc["records"]
    c = scaled["coefficients"]
    assert (c["depth"], c["width"], c["resolution"]) == pytest.approx((4 ** 0.1, 4 ** 0.4,
                                                                       4 ** 0.05))
    assert scaled["resolution"] == round(224 * 4 ** 0.05)  # 240
    assert doc["ideal_macs_factor"] == pytest.approx(4.0)
    st = doc["strategy"]
    assert st["name"] == "dWr" and st["ideal_acts_factor"] == pytest.approx(4 ** 0.6)
    # the same network as the hand-set multipliers give
    same = json.loads(invoke("scale", "efficientnet_b0", "--width", repr(4 ** 0.4), "--depth",
                             repr(4 ** 0.1), "--resolution", repr(4 ** 0.05),
                             "--no-latency", "--format", "json").stdout)["records"][1]
    assert (same["params"], same["macs"], same["acts"]) == (scaled["params"], scaled["macs"],
                                                            scaled["acts"])


def test_scale_strategy_table_reports_activations():
    r = invoke("scale", "resnet50", "--strategy", "uniform", "--factor", "2", "--no-latency")
    assert r.exit_code == 0
    assert "strategy uniform" in r.output and "acts ideally grow" in r.output


@pytest.mark.parametrize("args,words", [
    (("--strategy", "dWr", "--factor", "2", "--phi", "1"), "cannot be combined with --phi"),
    (("--strategy", "dWr", "--factor", "2", "--preset", "b1"), "--preset"),
    (("--strategy", "dWr", "--factor", "2", "--width", "2"), "--width"),
    (("--strategy", "dWr"), "go together"),
    (("--factor", "2"), "go together"),
    (("--strategy", "dwr", "--factor", "2"), "did you mean"),
])
def test_scale_strategy_conflicts_one_line(args, words):
    r = run_cli("scale", "efficientnet_b0", *args)
    assert r.returncode == 2, r.stderr  # contradictory flags are usage errors (issue 16)
    assert words in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr and r.stdout == ""


@pytest.mark.parametrize("factor", ["-1", "0", "nan", "inf"])
def test_a_bad_factor_is_a_usage_error_like_any_bad_multiplier(factor):
    r = run_cli("scale", "efficientnet_b0", "--strategy", "uniform", "--factor", factor)
    assert r.returncode == 2 and "--factor" in r.stderr and "Traceback" not in r.stderr

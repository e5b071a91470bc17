"""The scaling engine: rounding rules, presets against torchvision, the paper's figures, and
properties that must hold for any coefficients."""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scalekit.counting import count_plan
from scalekit.errors import ScalingError
from scalekit.plan import expand
from scalekit.scaling import (Coefficients, round_channels, round_depth, round_resolution, scale,
                              scale_spec)
from scalekit.spec import ScalingRules, load_spec, spec_to_yaml

from .conftest import SPEC_NAMES, needs_torch, spec_path

TF = ScalingRules()  # divisor 8, min 8, 10% guard: TF / Keras / torchvision / timm


def total(spec, res=None):
    return count_plan(expand(spec, res)).total


@pytest.mark.parametrize("c,w,expected", [
    (32, 1.1, 32),    # 35.2 -> int(39.2)//8*8 = 32 (>= 90% of 35.2)
    (40, 1.1, 48),    # 44 -> 48
    (20, 1.5, 32),    # 30 -> int(34)//8*8 = 32
    (100, 0.05, 8),   # 5 -> never below min (8)
    (17, 0.7, 16),    # 11.9 -> 8, below 90% of 11.9 -> + 8 = 16 (the guard)
    (10, 1.0, 10),    # w == 1: the baseline as written
])
def test_round_channels_tf_rule(c, w, expected):
    assert round_channels(c, w, TF) == expected


def test_round_channels_floor_rule():
    slim = ScalingRules(channel_divisor=1, min_channels=8, round_limit=0.0, channel_rounding="floor")
    assert round_channels(64, 1.2, slim) == 76  # TF-slim max(int(76.8), 8)
    assert round_channels(32, 0.1, slim) == 8


def test_round_depth_and_resolution():
    assert [round_depth(n, 1.4, TF) for n in (1, 2, 3, 4)] == [2, 3, 5, 6]  # ceil
    assert round_depth(3, 1.1, dataclasses.replace(TF, depth_rounding="round")) == 3
    assert round_depth(1, 0.01, TF) == 1
    assert round_resolution(224, 1.3, TF) == 291
    assert round_resolution(224, 1.3, dataclasses.replace(TF, resolution_divisor=32)) == 288
    with pytest.raises(ScalingError):
        round_resolution(224, 1e-4, TF)


@pytest.mark.parametrize("preset", ["b1", "b2", "b3", "b4", "b5", "b6", "b7"])
def test_presets_match_torchvision(published, preset):
    ref = published["torchvision"][f"efficientnet_{preset}"]
    spec, coef = scale_spec(load_spec(spec_path("efficientnet_b0")), preset=preset)
    assert coef.preset == preset and coef.phi is None  # hand-rounded, not alpha**phi
    c = total(spec, ref["resolution"])  # torchvision evaluates B2 at 288
    assert c.params == ref["params"]
    assert c.macs / 1e9 == pytest.approx(ref["gmacs"], rel=1e-3)


def test_presets_are_the_published_coefficients(published):
    spec = load_spec(spec_path("efficientnet_b0"))
    for name, (w, d, r, drop) in published["efficientnet_presets"].items():
        p = spec.presets[name]
        assert (p.width, p.depth, p.resolution, p.dropout) == (w, d, r, drop)


@pytest.mark.parametrize("name,flags,gmacs", [
    ("efficientnet_b0", dict(width=1.2, depth=1.4, size=291), 1.80),
    ("resnet50", dict(resolution=2), 16.35),
    ("mobilenet_v2", dict(width=2), 1.14),
    ("mobilenet_v2", dict(resolution=2), 1.20),
    ("mobilenet_v2", dict(depth=4), 1.22),
    ("mobilenet_v1", dict(width=2), 2.22),
])
def test_paper_figures_within_1_percent(name, flags, gmacs):
    spec, _ = scale_spec(load_spec(spec_path(name)), **flags)
    assert total(spec).macs / 1e9 == pytest.approx(gmacs, rel=0.01)


def test_compound_coefficients():
    spec = load_spec(spec_path("resnet50"))
    _, c = scale_spec(spec, phi=2)
    assert (c.depth, c.width, c.resolution) == pytest.approx((1.44, 1.21, 1.3225))
    _, c = scale_spec(spec, phi=1, alpha=1.0, beta=2.0, gamma=1.0)
    assert (c.depth, c.width, c.resolution) == (1.0, 2.0, 1.0)
    scaled, c = scale_spec(spec, phi=-1)  # scaling down
    assert scaled.resolution == round(224 / 1.15) and total(scaled).macs < total(spec).macs


@pytest.mark.parametrize("flags,words", [
    (dict(phi=1, width=2), "--phi"),
    (dict(preset="b1", phi=1), "--preset"),
    (dict(preset="b9"), "no preset 'b9'"),
    (dict(width=-1), "width must be"),
    (dict(depth=float("nan")), "depth must be"),
    (dict(resolution=2, size=300), "not both"),
    (dict(alpha=1.3), "only apply with --phi"),
    (dict(phi=1e6), "overflows"),
    (dict(phi=60), "blocks"),
])
def test_bad_coefficients(flags, words):
    with pytest.raises(ScalingError, match=words):
        scale_spec(load_spec(spec_path("efficientnet_b0")), **flags)


def test_preset_on_a_spec_without_presets():
    with pytest.raises(ScalingError, match="presets: none"):
        scale_spec(load_spec(spec_path("resnet50")), preset="b1")


def test_resnet_width_multiplies_every_channel():
    spec, _ = scale_spec(load_spec(spec_path("resnet50")), width=2)
    assert spec.stem.out == 128
    assert [(s.mid, s.out) for s in spec.stages] == [(128, 512), (256, 1024), (512, 2048),
                                                     (1024, 4096)]


def test_mobilenet_v2_head_never_shrinks():
    spec, _ = scale_spec(load_spec(spec_path("mobilenet_v2")), width=0.5)
    assert spec.head.conv == 1280
    spec, _ = scale_spec(load_spec(spec_path("mobilenet_v2")), width=1.4)
    assert spec.head.conv == 1792


def test_efficientnet_head_and_stem_scale():
    spec, _ = scale_spec(load_spec(spec_path("efficientnet_b0")), preset="b7")
    assert (spec.stem.out, spec.head.conv, spec.head.dropout) == (64, 2560, 0.5)


# ---------------------------------------------------------------------------------------------
# properties

coef_value = st.floats(min_value=1.0, max_value=4.0, allow_nan=False)
SPECS = {n: load_spec(spec_path(n)) for n in SPEC_NAMES}


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(SPEC_NAMES), w=st.floats(0.1, 5.0), d=st.floats(0.1, 5.0),
       r=st.floats(0.2, 3.0))
def test_scaled_channels_depth_resolution_properties(name, w, d, r):
    base = SPECS[name]
    before = copy.deepcopy(base)
    spec = scale(base, Coefficients(depth=d, width=w, resolution=r))
    rules = base.scaling
    assert base == before  # never mutates its input
    pairs = [(base.stem.out, spec.stem.out)] + [(a.out, b.out) for a, b in zip(base.stages, spec.stages)]
    pairs += [(a.mid, b.mid) for a, b in zip(base.stages, spec.stages) if getattr(a, "mid", 0)]
    for c, new in pairs:
        if w != 1.0:
            assert new % rules.channel_divisor == 0
            assert new >= rules.min_channels
            assert new >= rules.round_limit * c * w - 1e-9
    assert all(s.repeats >= 1 for s in spec.stages)
    assert all(s.repeats >= math.ceil(a.repeats * d - 1e-9) for a, s in zip(base.stages, spec.stages))
    assert spec.resolution >= 1


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(SPEC_NAMES), dim=st.sampled_from(["depth", "width", "resolution"]),
       a=coef_value, b=coef_value)
def test_macs_non_decreasing_in_each_coefficient(name, dim, a, b):
    lo, hi = sorted((a, b))
    m = [total(scale(SPECS[name], Coefficients(**{dim: v}))).macs for v in (1.0, lo, hi)]
    assert m[0] <= m[1] <= m[2]


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_phi_zero_is_the_baseline(name):
    base = SPECS[name]
    scaled, _ = scale_spec(base, phi=0)
    assert scaled == base


@needs_torch
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(SPEC_NAMES), phi=st.floats(-2.0, 3.0))
def test_out_round_trip_and_built_params(tmp_path, name, phi):
    import torch  # noqa: F401  (the builder needs it)

    from scalekit.build import build_model

    scaled, _ = scale_spec(SPECS[name], phi=phi)
    p = tmp_path / f"{name}.yaml"
    p.write_text(spec_to_yaml(scaled))
    again = load_spec(str(p))
    assert total(again) == total(scaled)
    model = build_model(scaled, device="meta")
    assert sum(x.numel() for x in model.parameters()) == total(scaled).params

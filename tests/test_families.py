"""The network families beyond the paper's four: EfficientNetV2 (Fused-MBConv), basic-block
ResNets, ResNeXt (grouped bottlenecks), Wide ResNet; and the rules they brought as spec data
(BatchNorm settings, head rules, which channels width scales, grouped widths, a resolution cap).

Golden figures come from published.yaml's ``torchvision_families`` (torchvision's exact params
and FlopCounterMode MACs), never from scalekit; the torch cross-checks count the built modules
with torch's own tools."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from scalekit.build import build_model
from scalekit.counting import count_plan
from scalekit.errors import ScalingError, SpecError
from scalekit.plan import expand
from scalekit.scaling import Coefficients, round_channels, scale, scale_spec
from scalekit.spec import load_spec, spec_from_dict, spec_to_yaml

from .conftest import FAMILY_NAMES, ROOT, assert_no_torch, run_cli, spec_path


def spec(name: str):
    return load_spec(spec_path(name))


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_exact_to_torchvision(published, name):
    ref = published["torchvision_families"][name]
    s = spec(name)
    assert s.resolution == ref["resolution"]  # each model's evaluation crop
    c = count_plan(expand(s)).total
    assert (c.params, c.macs) == (ref["params"], ref["macs"])


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_spec_round_trips_through_yaml(name):
    s = spec(name)
    assert spec_from_dict(yaml.safe_load(spec_to_yaml(s))) == s
    w = scale(s, Coefficients(width=1.3, depth=1.5, resolution=1.1))
    assert spec_from_dict(yaml.safe_load(spec_to_yaml(w))) == w


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_analytic_equals_torch_on_the_built_module(name):
    """params == sum(numel), MACs == FlopCounterMode / 2, on the meta device at a small odd size."""
    plan = expand(spec(name), 97)
    model = build_model(plan, device="meta").eval()
    fc = FlopCounterMode(display=False)
    with torch.no_grad(), fc:
        y = model(torch.empty(1, 3, 97, 97, device="meta"))
    a = count_plan(plan).total
    assert (a.params, a.macs) == (sum(p.numel() for p in model.parameters()),
                                  fc.get_total_flops() // 2)
    assert tuple(y.shape) == (1, 1000)


def test_efficientnet_b5_preset_is_exact_to_torchvision(published):
    ref = published["torchvision_families"]["efficientnet_b5"]
    b5, _ = scale_spec(spec("efficientnet_b0"), preset="b5")
    c = count_plan(expand(b5, ref["resolution"])).total
    assert (b5.resolution, c.params, c.macs) == (ref["resolution"], ref["params"], ref["macs"])


def test_real_forward_of_a_new_family_is_finite(one_thread):
    for name in ("resnet18", "efficientnet_v2_s"):
        model = build_model(spec(name)).eval()
        with torch.inference_mode():
            y = model(torch.randn(1, 3, 64, 64))
        assert tuple(y.shape) == (1, 1000) and torch.isfinite(y).all()


def test_the_list_shows_every_bundled_family():
    r = run_cli("list")
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line for line in r.stdout.splitlines() if line.strip()}
    for name in FAMILY_NAMES + ("efficientnet_b0", "resnet50", "mobilenet_v1"):
        assert name in rows and spec(name).name in rows[name], name


def test_info_of_a_new_family_needs_no_torch():
    assert_no_torch(["info", "resnext50_32x4d", "--no-latency"],
                    ["info", "efficientnet_v2_s", "--no-latency"], expect="total")


# ---------------------------------------------------------------------------------------------
# BatchNorm settings are spec data


def bn_settings(model):
    return {(m.eps, m.momentum) for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)}


def test_batchnorm_settings_come_from_the_spec(published):
    assert bn_settings(build_model(spec("efficientnet_v2_s"), device="meta")) == {(1e-3, 0.1)}
    assert bn_settings(build_model(spec("resnet50"), device="meta")) == {(1e-5, 0.1)}
    b0 = spec("efficientnet_b0")
    for preset, want in (("b4", (1e-5, 0.1)), ("b5", (1e-3, 0.01)), ("b7", (1e-3, 0.01))):
        scaled, _ = scale_spec(b0, preset=preset)
        assert bn_settings(build_model(scaled, device="meta")) == {want}, preset
        assert spec_from_dict(yaml.safe_load(spec_to_yaml(scaled))) == scaled


def test_mobilenet_v1_uses_relu6_and_keeps_its_counts(published):
    s = spec("mobilenet_v1")
    assert {s.stem.act} | {st.act for st in s.stages} == {"relu6"}
    c = count_plan(expand(s)).total
    assert (c.params, c.macs) == (published["mobilenet_v1"]["params"],
                                  published["mobilenet_v1"]["macs"])


# ---------------------------------------------------------------------------------------------
# head rules: TF / timm round_filters(1280 w) vs torchvision's 4 x the last stage


def with_rules(s, **rules):
    return dataclasses.replace(s, scaling=dataclasses.replace(s.scaling, **rules))


def test_the_two_head_rules_agree_at_the_presets_and_differ_elsewhere(published):
    b0 = spec("efficientnet_b0")
    tv = with_rules(b0, head="last_stage_multiple")
    for preset in b0.presets:
        a, _ = scale_spec(b0, preset=preset)
        b, _ = scale_spec(tv, preset=preset)
        assert a.head.conv == b.head.conv == 4 * b.stages[-1].out, preset
    # the example: w = 1.03 gives round_filters(1280 w) = 1320 and 4 x 328 = 1312
    a, b = scale(b0, Coefficients(width=1.03)), scale(tv, Coefficients(width=1.03))
    assert (a.head.conv, b.head.conv) == (1320, 1312)
    assert b.head.conv == 4 * round_channels(320, 1.03, b0.scaling)


def test_last_stage_multiple_needs_a_whole_multiple():
    d = {"name": "x", "resolution": 64, "stem": {"out": 8},
         "stages": [{"block": "conv", "out": 24, "stride": 2}], "head": {"conv": 100},
         "scaling": {"head": "last_stage_multiple"}}
    with pytest.raises(SpecError, match="scaling.head: .*not a whole multiple of 24"):
        spec_from_dict(d)


# ---------------------------------------------------------------------------------------------
# which channels width scaling touches; grouped widths


def test_inner_width_scaling_of_resnet50_is_torchvisions_wide_resnet(published):
    inner = with_rules(spec("resnet50"), width_channels="inner")
    wide = scale(inner, Coefficients(width=2.0))
    ref = published["torchvision_families"]["wide_resnet50_2"]
    c = count_plan(expand(wide)).total
    assert (c.params, c.macs) == (ref["params"], ref["macs"])
    assert [st.out for st in wide.stages] == [st.out for st in spec("resnet50").stages]
    assert wide.stem.out == 64


def test_wide_resnet_spec_widens_only_the_inner_width():
    s = spec("wide_resnet50_2")
    w = scale(s, Coefficients(width=1.5))
    assert [st.mid for st in w.stages] == [192, 384, 768, 1536]
    assert [st.out for st in w.stages] == [st.out for st in s.stages] and w.stem == s.stem
    # all channels: the same network's outer widths grow too
    a = scale(with_rules(s, width_channels="all"), Coefficients(width=1.5))
    assert [st.out for st in a.stages] == [384, 768, 1536, 3072]


def test_inner_width_scaling_needs_an_inner_width():
    with pytest.raises(ScalingError, match="no stage has an inner width"):
        scale(with_rules(spec("resnet18"), width_channels="inner"), Coefficients(width=2.0))


# (mid, groups) of ResNeXt-50 32x4d at w = 1.1 under each rule, worked out by hand: mids
# 128..1024 x 1.1 round to 144, 280, 560, 1128 (multiples of 8); then
#   fixed_groups: nearest multiple of lcm(32, 8) = 32, ties to even (144 / 32 = 4.5 -> 4);
#   fixed_group_width (4, 8, 16, 32 per group): nearest multiple of that width.
@pytest.mark.parametrize("rule,expected", [
    ("fixed_groups", [(128, 32), (288, 32), (576, 32), (1120, 32)]),
    ("fixed_group_width", [(144, 36), (280, 35), (560, 35), (1120, 35)]),
])
def test_grouped_width_scaling_keeps_the_groups_compatible(rule, expected):
    s = scale(with_rules(spec("resnext50_32x4d"), groups=rule), Coefficients(width=1.1))
    assert [(st.mid, st.groups) for st in s.stages] == expected
    assert [st.out for st in s.stages] == [280, 560, 1128, 2256]
    count_plan(expand(s))  # a valid network


@pytest.mark.parametrize("w", [0.3, 0.5, 0.77, 1.3, 2.0, 3.7])
@pytest.mark.parametrize("rule", ["fixed_groups", "fixed_group_width"])
def test_grouped_widths_always_divide(rule, w):
    for name in ("resnext50_32x4d", "resnext101_32x8d"):
        s = scale(with_rules(spec(name), groups=rule), Coefficients(width=w))
        assert all(st.mid % st.groups == 0 for st in s.stages), (name, w, s.stages)
        if rule == "fixed_groups":
            assert {st.groups for st in s.stages} == {32}


def test_ungrouped_stages_ignore_the_groups_rule():
    s = spec("resnet50")
    a = scale(with_rules(s, groups="fixed_group_width"), Coefficients(width=1.1))
    assert a.stages == scale(s, Coefficients(width=1.1)).stages


# ---------------------------------------------------------------------------------------------
# EfficientNetV2: the 480 px cap


def test_v2_resolution_is_capped_at_480_but_size_is_exact():
    s = spec("efficientnet_v2_s")
    assert scale(s, Coefficients(resolution=1.2)).resolution == 461
    assert scale(s, Coefficients(resolution=1.5)).resolution == 480
    assert scale(s, Coefficients(resolution=1.15 ** 3)).resolution == 480  # phi = 3: 584 px
    assert scale(s, Coefficients(size=600)).resolution == 600
    assert scale(spec("efficientnet_v2_m"), Coefficients(resolution=2.0)).resolution == 480


def test_the_spec_format_documents_every_field():
    """docs/spec-format.md shows every field of a spec, its rules and every kind's stage, each
    as ``field:`` in an example."""
    from scalekit.blocks import KINDS
    from scalekit.blocks.base import stage_fields
    from scalekit.spec import BatchNormSpec, Preset, ScalingRules, Spec

    text = (ROOT / "docs" / "spec-format.md").read_text(encoding="utf-8")
    fields = {f.name for cls in (Spec, ScalingRules, BatchNormSpec, Preset)
              for f in dataclasses.fields(cls)} - {"path", "stages", "presets"}
    fields |= {f for k in KINDS.values() if k.stage for f in stage_fields(k.stage)}
    missing = sorted(f for f in fields if f"{f}:" not in text)
    assert not missing, missing
    for k in KINDS.values():
        if k.stage:
            assert f"`{k.name}`" in text, k.name


@pytest.mark.parametrize("name", ["efficientnet_v2_s", "resnet18", "resnext50_32x4d"])
def test_the_tool_conventions_hold_for_the_new_kinds(name):
    """Fused-MBConv, basic blocks and grouped convs bring no new op type: thop, ptflops' aten
    backend and torchinfo, run on the built module, still give scalekit's count of their
    convention exactly (tests/test_conventions.py runs every tool on the paper's specs)."""
    from scalekit.conventions import count_convention

    from .test_conventions import ptflops_total, thop_total, torchinfo_total

    plan = expand(spec(name), (65, 97))
    tools = {"thop": (thop_total, "thop"), "ptflops": (lambda p: ptflops_total(p, "aten", "meta"),
                                                       "ptflops-aten"),
             "torchinfo": (torchinfo_total, "torchinfo")}
    for module, (run, convention) in tools.items():
        pytest.importorskip(module)
        assert run(plan) == count_convention(plan, convention).total, convention

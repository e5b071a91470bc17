"""The analytic counter against independent counts of the built torch module.

Everything torch-side is counted here, in the test, with torch's own tools: sum(p.numel()),
FlopCounterMode on the meta device, and forward hooks on Conv2d / Linear / MaxPool2d outputs.
"""

from __future__ import annotations

import math

import pytest

# the whole module needs torch: skipped where only the light install is (CI's second venv)
torch = pytest.importorskip("torch", reason="needs the torch extra")
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from scalekit.records import make_record as analyze
from scalekit.build import build_model
from scalekit.counting import count_plan
from scalekit.crosscheck import thop_count, torch_count
from scalekit.plan import expand
from scalekit.spec import load_spec

from .conftest import SPEC_NAMES, spec_path


def independent_counts(plan, device="meta"):
    model = build_model(plan, device=device).eval()
    params = sum(p.numel() for p in model.parameters())
    acts = []
    hooks = [m.register_forward_hook(lambda m, i, o: acts.append(o.numel()))
             for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.MaxPool2d))]
    x = torch.empty(1, 3, *plan.resolution, device=device) if device == "meta" \
        else torch.randn(1, 3, *plan.resolution)
    fc = FlopCounterMode(display=False)
    with torch.no_grad(), fc:
        y = model(x)
    for h in hooks:
        h.remove()
    assert fc.get_total_flops() % 2 == 0
    return params, fc.get_total_flops() // 2, sum(acts), y


@pytest.mark.parametrize("name", SPEC_NAMES)
@pytest.mark.parametrize("res", [224, 97])  # a multiple of the total stride, and not
def test_analytic_equals_torch(name, res):
    plan = expand(load_spec(spec_path(name)), res)
    a = count_plan(plan).total
    params, macs, acts, y = independent_counts(plan)
    assert (a.params, a.macs, a.acts) == (params, macs, acts)
    assert tuple(y.shape) == (1, 1000)


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_real_forward_is_finite(name):
    spec = load_spec(spec_path(name))
    model = build_model(spec).eval()
    assert sum(p.numel() for p in model.parameters()) == count_plan(expand(spec)).total.params
    for res in (224, 67):
        with torch.inference_mode():
            y = model(torch.randn(1, 3, res, res))
        assert tuple(y.shape) == (1, spec.num_classes)
        assert torch.isfinite(y).all()


def test_per_stage_counts_match_torch():
    for name in ("efficientnet_b0", "resnet50"):
        plan = expand(load_spec(spec_path(name)))
        a, t = count_plan(plan), torch_count(plan)
        assert [s.counts for s in a.stages] == [s.counts for s in t.stages]
        assert sum(s.counts.params for s in a.stages) == a.total.params


def test_counter_choice_in_analyze():
    spec = load_spec(spec_path("mobilenet_v2"))
    a, t = analyze(spec), analyze(spec, counter="torch")
    assert (a.params, a.macs, a.acts) == (t.params, t.macs, t.acts)


def test_thop_reads_above_and_params_agree():
    plan = expand(load_spec(spec_path("mobilenet_v2")), 96)
    thop_nc, a = thop_count(plan), count_plan(plan).total
    th = thop_nc.total
    assert th.params == a.params
    # per-stage figures are thop's own (not zeros) and add up to its total
    assert sum(s.counts.macs for s in thop_nc.stages) == th.macs
    assert all(s.counts.macs > 0 for s in thop_nc.stages)
    # thop counts no activations: they come from torch's forward hooks, which agree with ours
    _, _, acts, _ = independent_counts(plan)
    assert th.acts == acts == a.acts
    # thop also counts BatchNorm and global pooling: above ours, by a few percent, and exactly
    # the thop convention, stage by stage
    assert a.macs < th.macs < a.macs * 1.15
    assert not math.isnan(th.macs)
    from scalekit.conventions import count_convention

    want = count_convention(plan, "thop")
    assert th.macs == want.total
    assert [s.counts.macs for s in thop_nc.stages] == [m for _, m in want.stages]

"""The Python API (``from scalekit import ...``): names, scaling, counting against published and
independent counts, the built module's init, dropout and stochastic depth, and training.

Golden numbers come from tests/data/published.yaml or from torch's own counters on the built
module (sum(p.numel()), FlopCounterMode); models are small and inputs tiny to keep this fast.
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys

import pytest

# the whole module needs torch: skipped where only the light install is (CI's second venv)
torch = pytest.importorskip("torch", reason="needs the torch extra")
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

import scalekit
from scalekit import (Counts, ScalekitError, ScalingError, Spec, SpecError, build_model, count,
                      load_spec, measure_latency, scale)
from scalekit.modules import Bottleneck, Classifier, MBConv, StochasticDepth
from scalekit.latency.harness import Latency

from .conftest import ROOT, spec_path

API = ("load_spec", "scale", "count", "build_model", "measure_latency")
FAST = dict(warmup=1, min_runs=2, max_runs=3, budget_s=0.2)


pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------------------------------
# names


def test_every_public_name_is_importable_and_documented():
    assert set(API) <= set(scalekit.__all__)
    for name in scalekit.__all__:
        obj = getattr(scalekit, name)
        if callable(obj):
            assert obj.__doc__ and obj.__doc__.strip(), name
    assert scalekit.__version__.count(".") == 2


def test_import_scale_and_count_do_not_import_torch(published):
    code = ("import sys\n"
            "from scalekit import load_spec, scale, count, build_model, measure_latency\n"
            "c = count(scale(load_spec('efficientnet_b0'), preset='b3'))\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\nprint(c.params)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == published["torchvision"]["efficientnet_b3"]["params"]


# ---------------------------------------------------------------------------------------------
# load_spec, scale, count


def test_load_spec_takes_a_bundled_name_or_a_path(tmp_path):
    by_name = load_spec("resnet50")
    assert isinstance(by_name, Spec) and by_name == load_spec(spec_path("resnet50"))
    assert load_spec("resnet50.yaml") == by_name
    with pytest.raises(SpecError, match="no such file"):
        load_spec("no_such_network")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nresolution: 32\nstem: {out: 8}\nstages: [{block: conv, out: 8, "
                   "kernel: 2}]\n")
    with pytest.raises(SpecError, match=r"stages\[0\]\.kernel"):
        load_spec(bad)


@pytest.mark.parametrize("preset", [f"b{i}" for i in range(8)])
def test_presets_count_to_torchvision(preset, published):
    b = scale("efficientnet_b0", preset=preset)
    ref = published["torchvision"][f"efficientnet_{preset}"]
    assert b.name == f"EfficientNet-{preset.upper()}"
    assert b.head.dropout == published["efficientnet_presets"][preset][3]
    c = count(b, ref["resolution"])  # torchvision evaluates B2 at 288, not its preset's 260
    assert isinstance(c, Counts)
    assert c.params == ref["params"]
    assert round(c.macs / 1e9, 3) == ref["gmacs"]
    assert c.flops == 2 * c.macs


def test_compound_scaling_follows_the_paper_and_the_rounding_rules():
    base = load_spec("resnet50")
    s = scale(base, phi=2)
    d, w, r = 1.2 ** 2, 1.1 ** 2, 1.15 ** 2  # paper section 4: alpha, beta, gamma
    assert s.resolution == math.floor(224 * r + 0.5)
    assert [st.repeats for st in s.stages] == [math.ceil(st.repeats * d) for st in base.stages]
    for old, new in zip(base.stages, s.stages):
        want = max(8, int(old.out * w + 4) // 8 * 8)  # torchvision _make_divisible(c * w, 8)
        assert new.out == (want + 8 if want < 0.9 * old.out * w else want)
    assert base == load_spec("resnet50")  # the input is never changed
    # the same multipliers by hand give the same network
    by_hand = scale(base, width=w, depth=d, resolution=r)
    assert (by_hand.stages, by_hand.resolution, by_hand.stem) == (s.stages, s.resolution, s.stem)
    assert scale(base) is base


@pytest.mark.parametrize("kwargs,words", [
    (dict(phi=1, width=2), "cannot be combined"),
    (dict(preset="b3", phi=1), "cannot be combined"),
    (dict(preset="b9"), "no preset"),
    (dict(width=0), "width must be"),
    (dict(resolution=1.2, size=300), "not both"),
    (dict(alpha=1.3), "only apply with --phi"),
])
def test_scale_refuses_bad_flags(kwargs, words):
    with pytest.raises(ScalingError, match=words):
        scale("efficientnet_b0", **kwargs)


@pytest.mark.parametrize("resolution", [0, -3, 1.5, (32,), (1, 2, 3), True])
def test_count_refuses_bad_resolutions(resolution):
    with pytest.raises(ScalingError, match="resolution"):
        count("resnet50", resolution)


@pytest.mark.parametrize("name,kwargs,res", [
    ("efficientnet_b0", dict(phi=-1), (61, 45)),
    ("resnet50", dict(width=0.5, depth=0.5), 64),
    ("mobilenet_v1", dict(width=0.25, size=96), None),
])
def test_count_equals_torch_on_the_built_module(name, kwargs, res):
    spec = scale(name, **kwargs)
    c = count(spec, res)
    model = build_model(spec).eval()
    h, w = (res, res) if isinstance(res, int) else res or (spec.resolution, spec.resolution)
    fc = FlopCounterMode(display=False)
    with torch.no_grad(), fc:
        model(torch.randn(1, 3, h, w))
    assert c.params == sum(p.numel() for p in model.parameters())
    assert c.flops == fc.get_total_flops() == 2 * c.macs


# ---------------------------------------------------------------------------------------------
# build_model: init, dropout, stochastic depth


def small(name: str = "efficientnet_b0", **overrides) -> Spec:
    """A scaled-down bundled spec with 10 classes, for 32 px inputs."""
    spec = scale(name, width=0.5, depth=0.5, size=32)
    return dataclasses.replace(spec, num_classes=10, **overrides)


def test_init_is_the_usual_one():
    model = build_model("efficientnet_b0")
    assert isinstance(model, nn.Module) and model.training
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(bool((m.weight == 1).all()) and bool((m.bias == 0).all()) for m in bns)
    head = model.stages.head[0][0]  # 1x1 conv 320 -> 1280: kaiming normal, fan_out
    assert head.weight.shape == (1280, 320, 1, 1)
    std = math.sqrt(2 / 1280)
    assert head.weight.std().item() == pytest.approx(std, rel=0.02)
    assert abs(head.weight.mean().item()) < 0.01 * std
    fc = model.stages.head[1].fc  # uniform(+-1/sqrt(1000))
    assert fc.weight.abs().max().item() <= 1 / math.sqrt(1000)
    assert fc.weight.std().item() == pytest.approx(1 / math.sqrt(3000), rel=0.02)
    assert all(bool((m.bias == 0).all()) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None)


@pytest.mark.parametrize("name", ["efficientnet_b0", "resnet50"])
def test_zero_init_residual_makes_residual_blocks_identities(name):
    spec = small(name)
    for zero in (True, False):
        model = build_model(spec, zero_init_residual=zero).eval()
        blocks = [m for m in model.modules() if isinstance(m, (MBConv, Bottleneck))
                  and (m.residual if isinstance(m, MBConv) else m.shortcut is None)]
        assert blocks
        with torch.no_grad():
            for b in blocks:
                cin = (b.block[0][0] if isinstance(b, MBConv) else b.conv1[0]).in_channels
                x = torch.rand(2, cin, 8, 8)  # >= 0, like the output of a ResNet block
                assert torch.equal(b(x), x) == zero, (name, zero)


def test_dropout_and_stochastic_depth_come_from_the_spec(published):
    b3 = scale("efficientnet_b0", preset="b3")
    model = build_model(b3)
    (clf,) = [m for m in model.modules() if isinstance(m, Classifier)]
    assert clf.dropout.p == published["efficientnet_presets"]["b3"][3] == 0.3
    # stochastic depth grows linearly over the blocks: drop_path * i / n (torchvision, TF)
    n = sum(st.repeats for st in b3.stages)
    blocks = [m for m in model.modules() if isinstance(m, MBConv)]
    assert len(blocks) == n
    for i, blk in enumerate(blocks):
        rate = blk.drop_path.p if blk.drop_path is not None else 0.0
        assert rate == pytest.approx(0.2 * i / n if blk.residual else 0.0)


def test_stochastic_depth_drops_whole_samples_in_training_only():
    torch.manual_seed(0)
    spec = small(drop_path=0.9)
    model = build_model(spec)
    blk = [m for m in model.modules() if isinstance(m, MBConv) and m.drop_path is not None][-1]
    keep = 1 - blk.drop_path.p
    cin = blk.block[0][0].in_channels
    x = torch.randn(64, cin, 4, 4)
    with torch.no_grad():
        branch = blk.block(x)  # train-mode BN: batch statistics, the same in both calls
        y = blk(x)
    dropped = [torch.equal(y[i], x[i]) for i in range(len(x))]
    assert 0 < sum(dropped) < len(x)  # some samples skip the branch, others do not
    for i, d in enumerate(dropped):
        if not d:  # kept samples are rescaled by 1 / keep, so the expectation is unchanged
            torch.testing.assert_close(y[i], x[i] + branch[i] / keep)
    blk.eval()
    with torch.no_grad():
        torch.testing.assert_close(blk(x), x + blk.block(x))


def test_stochastic_depth_layer_expectation():
    sd = StochasticDepth(0.25)
    x = torch.ones(20000, 1)
    y = sd(x)
    assert y.unique().tolist() == pytest.approx([0.0, 1 / 0.75])
    assert y.mean().item() == pytest.approx(1.0, abs=0.03)
    assert torch.equal(sd.eval()(x), x)


def test_dropout_only_in_training():
    torch.manual_seed(0)
    model = build_model(small(drop_path=0.0))
    (clf,) = [m for m in model.modules() if isinstance(m, Classifier)]
    assert clf.dropout.p == 0.2
    feats = torch.randn(8, clf.fc.in_features, 1, 1)
    with torch.no_grad():
        assert not torch.equal(clf(feats), clf(feats))
        clf.eval()
        torch.testing.assert_close(clf(feats), clf.fc(feats.flatten(1)))


# ---------------------------------------------------------------------------------------------
# training


@pytest.mark.parametrize("name,zero_init", [("efficientnet_b0", False), ("resnet50", True)])
def test_a_scaled_model_trains(name, zero_init):
    """Overfit one batch of random images: the loss must fall well below where it started."""
    torch.manual_seed(0)
    model = build_model(small(name), zero_init_residual=zero_init)
    x, y = torch.randn(8, 3, 32, 32), torch.arange(8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(10):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-3:]) / 3 < 0.5 * losses[0], losses


# ---------------------------------------------------------------------------------------------
# measure_latency


def test_measure_latency_from_a_spec_or_a_module():
    spec = small()
    lat = measure_latency(spec, batch=2, **FAST)
    assert isinstance(lat, Latency)
    assert lat.batch == 2 and lat.threads == 1 and 2 <= lat.runs <= 3
    assert 0 < lat.min_ms <= lat.median_ms <= lat.max_ms
    model = build_model(spec)
    assert measure_latency(model, **FAST).runs >= 2  # resolution from the module
    assert model.training  # the harness restores the mode it found
    plain = nn.Sequential(nn.Conv2d(3, 4, 3))
    with pytest.raises(ScalekitError, match="resolution"):
        measure_latency(plain, **FAST)
    assert measure_latency(plain, (8, 12), **FAST).runs >= 2

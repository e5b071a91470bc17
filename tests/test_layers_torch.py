"""``info --layers`` against the built torch module, an independent counter: for every bundled
spec the layers' params sum to ``sum(p.numel())`` and their MACs to FlopCounterMode's total / 2
on the meta device, and layer by layer the module's own Conv2d / Linear / pooling modules, in the
order a forward pass runs them (forward hooks), have the rows' output shape, kernel, stride,
groups, params (a BatchNorm's folded into the conv before it), MACs (FlopCounterMode per module)
and acts (output elements of conv, linear and max pooling)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from scalekit.bundled import bundled_specs, load_named
from scalekit.cli import cli
from scalekit.queries import make_query, run_query
from scalekit.strategies import scale_by

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from scalekit.build import build_model  # noqa: E402

pytestmark = pytest.mark.torch

BUNDLED = sorted(p.stem for p in bundled_specs())
POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)


def _pair(v):
    return v if isinstance(v, int) else v[0]


def torch_layers(spec):
    """The module's layers as torch sees them, in forward order: dicts like the JSON rows, with
    each BatchNorm's parameters added to the layer before it; and the module's totals."""
    model = build_model(spec, device="meta").eval()
    rows, handles = [], []

    def hook(name):
        def record(mod, inp, out):
            own = sum(p.numel() for p in mod.parameters(recurse=False))
            if isinstance(mod, nn.BatchNorm2d):
                rows[-1]["params"] += own
                rows[-1]["bn_params"] += own
                return
            parts = name.split(".")  # stages.<stage>.<block index>.<path in the block>
            row = {"module": name, "stage": parts[1], "block": int(parts[2]) + 1,
                   "output": list(out.shape[1:]), "params": own, "bn_params": 0,
                   "acts": 0 if isinstance(mod, nn.AdaptiveAvgPool2d) else out[0].numel()}
            if isinstance(mod, nn.Conv2d):
                assert mod.kernel_size[0] == mod.kernel_size[1]
                row.update(layer="conv", kernel=mod.kernel_size[0], stride=mod.stride[0],
                           groups=mod.groups, bias=mod.bias is not None)
            elif isinstance(mod, nn.Linear):
                row.update(layer="linear", kernel=None, stride=None, groups=None,
                           bias=mod.bias is not None)
            elif isinstance(mod, nn.AdaptiveAvgPool2d):
                assert _pair(mod.output_size) == 1
                row.update(layer="avgpool", kernel=None, stride=None, groups=None, bias=False)
            else:
                row.update(layer="maxpool" if isinstance(mod, nn.MaxPool2d) else "avgpool",
                           kernel=_pair(mod.kernel_size), stride=_pair(mod.stride), groups=None,
                           bias=False)
            rows.append(row)
        return record

    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d, *POOLS)):
            handles.append(m.register_forward_hook(hook(name)))
    x = torch.empty(1, spec.in_channels, spec.resolution, spec.resolution, device="meta")
    fc = FlopCounterMode(display=False)
    with torch.no_grad(), fc:
        model(x)
    for h in handles:
        h.remove()
    per_module = fc.get_flop_counts()
    for row in rows:
        row["macs"] = sum(per_module.get(f"Network.{row['module']}", {}).values()) // 2
    return rows, sum(p.numel() for p in model.parameters()), fc.get_total_flops() // 2


def info_layers(name, **scaling):
    q = make_query("info", {"spec": name, "layers": True, "latency": False, **scaling})
    rec = run_query(q).records[0]
    return rec, [x.to_dict() for x in rec.layers]


@pytest.mark.parametrize("name", BUNDLED)
def test_layers_sum_to_the_torch_modules_params_and_macs(name):
    rec, layers = info_layers(name)
    _, params, macs = torch_layers(rec.network)
    assert sum(x["params"] for x in layers) == params == rec.params
    assert sum(x["macs"] for x in layers) == macs == rec.macs


KEYS = ("stage", "block", "layer", "output", "kernel", "stride", "groups", "bias", "params",
        "bn_params", "macs", "acts")


def _compare(rows, layers):
    assert [r["layer"] for r in rows] == [x["layer"] for x in layers]
    for i, (r, x) in enumerate(zip(rows, layers)):
        got = {k: x[k] for k in KEYS}
        want = {k: r[k] for k in KEYS}
        assert got == want, f"layer {i} ({r['module']})"


# every bundled spec, those the brief names first (EfficientNet-B0, ResNet-50, MobileNetV2, a V2
# spec, a ResNeXt spec): every row against the module's layer, in forward order
@pytest.mark.parametrize("name", ["efficientnet_b0", "resnet50", "mobilenet_v2",
                                  "efficientnet_v2_s", "resnext50_32x4d",
                                  *(n for n in BUNDLED if n not in (
                                      "efficientnet_b0", "resnet50", "mobilenet_v2",
                                      "efficientnet_v2_s", "resnext50_32x4d"))])
def test_each_layer_matches_the_built_modules_layer(name):
    rec, layers = info_layers(name)
    rows, _, _ = torch_layers(rec.network)
    _compare(rows, layers)


@pytest.mark.parametrize("name,scaling", [("efficientnet_b0", {"phi": 1.5}),
                                          ("resnext50_32x4d", {"width": 1.7, "depth": 1.3}),
                                          ("mobilenet_v2", {"strategy": "dWr", "factor": 4.0})])
def test_scaled_networks_layers_match_their_module(name, scaling):
    rec, layers = info_layers(name, **scaling)
    scaled, _ = scale_by(load_named(name), **scaling)
    rows, params, macs = torch_layers(scaled)
    _compare(rows, layers)
    assert (rec.params, rec.macs) == (params, macs)


def test_the_command_lines_json_layers_match_the_module():
    args = ["info", "efficientnet_v2_m", "--phi", "0.5", "--layers", "--no-latency", "--format",
            "json"]
    r = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    layers = json.loads(r.stdout)["records"][0]["layers"]
    scaled, _ = scale_by(load_named("efficientnet_v2_m"), phi=0.5)
    rows, params, macs = torch_layers(scaled)
    _compare(rows, layers)
    assert sum(x["params"] for x in layers) == params

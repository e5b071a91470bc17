"""Exact golden numbers at 224 px from published.yaml (torchvision, pycls, TF-slim / the paper)."""

from __future__ import annotations

import pytest

from scalekit.counting import count_plan
from scalekit.plan import expand
from scalekit.spec import load_spec

from .conftest import ROOT, spec_path


pytestmark = pytest.mark.light  # count-only: CI runs it in the torch-free venv too


def count(name: str):
    return count_plan(expand(load_spec(spec_path(name)))).total


@pytest.mark.parametrize("name", ["efficientnet_b0", "resnet50", "resnet152", "mobilenet_v2"])
def test_exact_224_params_and_macs(published, name):
    ref = published["exact_224"][name]
    c = count(name)
    assert (c.params, c.macs) == (ref["params"], ref["macs"])


@pytest.mark.parametrize("name,pycls", [("efficientnet_b0", "EN-B0"), ("resnet50", "R-50-1x64d")])
def test_pycls_params_and_acts(published, name, pycls):
    ref = published["pycls"][pycls]
    c = count(name)
    assert c.params == ref["params"]
    assert c.acts == ref["acts"]
    # pycls adds one op per bias element; ours does not (see published.yaml)
    assert c.macs < ref["macs"]


def test_pycls_macs_differ_only_by_bias_adds(published):
    # EN-B0: SE convs carry biases (sum of squeeze + expanded widths) plus the FC's 1,000
    plan = expand(load_spec(spec_path("efficientnet_b0")))
    bias_adds = sum(b.squeeze + b.mid for b in plan.blocks() if b.kind == "mbconv" and b.squeeze) + 1000
    assert count("efficientnet_b0").macs + bias_adds == published["pycls"]["EN-B0"]["macs"]
    assert count("resnet50").macs + 1000 == published["pycls"]["R-50-1x64d"]["macs"]


def test_mobilenet_v1(published):
    ref = published["mobilenet_v1"]
    c = count("mobilenet_v1")
    assert (c.params, c.macs) == (ref["params"], ref["macs"])


def test_torchvision_metadata(published):
    for name in ("efficientnet_b0", "resnet50", "mobilenet_v2"):
        ref = published["torchvision"][name]
        c = count(name)
        assert c.params == ref["params"]
        assert round(c.macs / 1e9, 3) == pytest.approx(ref["gmacs"], abs=1e-3)


@pytest.mark.parametrize("name", ["published.yaml", "torch_state_dict_layouts.json"])
def test_reference_copy_matches_shared(name):
    shared = ROOT.parent / "shared" / "reference" / name
    if not shared.exists():
        pytest.skip(f"../shared/reference/{name} not beside this checkout")
    assert shared.read_bytes() == (ROOT / "tests" / "data" / name).read_bytes()

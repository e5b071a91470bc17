"""Checkpoints by name: a built model's state_dict in torchvision's or timm's layout is, key by key
and shape by shape, in order, the state_dict of that library's model (the fixture
tests/data/torch_state_dict_layouts.json, recorded from torchvision and timm themselves); such a
state_dict loads strictly; weights round-trip between layouts with identical outputs; and a
checkpoint that does not fit gets one line naming what does not."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import pytest
import torch

from scalekit import ScalekitError, build_model, load_spec, load_weights, scale
from scalekit.build import build_model as build_plan
from scalekit.layouts import LAYOUTS, key_map
from scalekit.plan import expand

from .conftest import run_cli, spec_path

FIXTURE = json.loads((Path(__file__).parent / "data" / "torch_state_dict_layouts.json")
                     .read_text(encoding="utf-8"))

# (library, model in the fixture) -> (bundled spec, EfficientNet preset or None)
CASES = {
    **{("torchvision", f"efficientnet_b{i}"): ("efficientnet_b0", f"b{i}") for i in range(8)},
    ("torchvision", "efficientnet_v2_s"): ("efficientnet_v2_s", None),
    ("torchvision", "mobilenet_v2"): ("mobilenet_v2", None),
    ("torchvision", "resnet18"): ("resnet18", None),
    ("torchvision", "resnet34"): ("resnet34", None),
    ("torchvision", "resnet50"): ("resnet50", None),
    ("torchvision", "resnet152"): ("resnet152", None),
    ("torchvision", "resnext50_32x4d"): ("resnext50_32x4d", None),
    ("torchvision", "wide_resnet50_2"): ("wide_resnet50_2", None),
    ("timm", "efficientnet_b0"): ("efficientnet_b0", None),
    ("timm", "mobilenetv1_100"): ("mobilenet_v1", None),
    ("timm", "mobilenetv2_100"): ("mobilenet_v2", None),
    ("timm", "resnet50"): ("resnet50", None),
}
IDS = [f"{lib}-{m}" for lib, m in CASES]


def spec_of(name: str, preset: str | None):
    s = load_spec(spec_path(name))
    return scale(s, preset=preset) if preset else s


def meta(spec, layout: str = "scalekit"):
    """The network on the meta device (no memory, no init)."""
    return build_plan(load_spec(spec_path(spec)) if isinstance(spec, str) else spec,
                      layout=layout, device="meta")


def fixture(lib: str, model: str) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(shape)) for k, shape in FIXTURE[lib][model]]


def test_every_fixture_model_is_covered():
    assert {(lib, m) for lib in ("torchvision", "timm") for m in FIXTURE[lib]} == set(CASES)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_key_map_is_the_fixture_without_torch(case):
    lib, model = case
    keys = key_map(expand(spec_of(*CASES[case])), lib)
    assert [(k.name, k.shape) for k in keys] == fixture(lib, model)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_built_state_dict_is_the_fixture_and_loads_strictly(case):
    lib, model = case
    m = meta(spec_of(*CASES[case]), lib)
    sd = m.state_dict()
    assert [(k, tuple(v.shape)) for k, v in sd.items()] == fixture(lib, model)
    # a state_dict made from the fixture's names and shapes alone loads with strict=True
    given = {k: torch.empty(shape, device="meta",
                            dtype=torch.long if k.endswith("num_batches_tracked") else None)
             for k, shape in fixture(lib, model)}
    result = m.load_state_dict(given, strict=True, assign=True)
    assert not result.missing_keys and not result.unexpected_keys
    # and its own names are untouched underneath
    assert next(iter(m.named_parameters()))[0].startswith("stages.stem.0")


def randomize(model: torch.nn.Module) -> torch.nn.Module:
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for k, v in model.state_dict().items():
            if v.is_floating_point():
                v.copy_(torch.rand(v.shape, generator=g) + 0.5 if k.endswith("running_var")
                        else torch.randn(v.shape, generator=g) * 0.1)
    return model.eval()


@pytest.mark.parametrize("name", ["efficientnet_b0", "resnet18", "mobilenet_v2",
                                  "efficientnet_v2_s", "resnext50_32x4d"])
def test_weights_round_trip_between_layouts_with_identical_outputs(name, tmp_path, one_thread):
    s = load_spec(spec_path(name))
    libs = [lib for lib in LAYOUTS if lib == "scalekit" or lib in s.checkpoints]
    first = randomize(build_model(s, layout=libs[-1]))
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        want = first(x)
    path = tmp_path / "w.pt"
    torch.save(first.state_dict(), path)
    previous, layout = path, libs[-1]
    for lib in libs:  # file in one layout -> a model of another -> its state_dict -> the next
        m = load_weights(build_model(s, layout=lib), previous, layout=layout).eval()
        with torch.inference_mode():
            assert torch.equal(m(x), want), (lib, layout)
        previous, layout = m.state_dict(), lib
    direct = build_model(s, layout=libs[-1])
    direct.load_state_dict(torch.load(path, weights_only=True), strict=True)  # plain torch
    with torch.inference_mode():
        assert torch.equal(direct.eval()(x), want)


def test_a_model_in_a_layout_exports_and_copies(tmp_path, one_thread):
    import copy

    m = randomize(build_model("resnet18", layout="torchvision"))
    x = torch.randn(1, 3, 64, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(m)
    other = copy.deepcopy(m)
    with torch.inference_mode():
        assert torch.equal(scripted(x), m(x)) and torch.equal(other(x), m(x))
    assert list(other.state_dict())[0] == "conv1.weight"


# ---------------------------------------------------------------------------------------------
# what does not fit: one line


@pytest.fixture(scope="module")
def b0_sd():
    return meta("efficientnet_b0", "torchvision").state_dict()


def misfit(model, sd, **kw) -> str:
    with pytest.raises(ScalekitError) as e:
        load_weights(model, sd, **kw)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_missing_unexpected_and_misshapen_keys_are_named(b0_sd):
    m = meta("efficientnet_b0", "torchvision")
    sd = dict(b0_sd)
    del sd["features.8.0.weight"]
    sd["features.9.0.weight"] = torch.zeros(1)
    sd["features.0.0.weight"] = torch.zeros(24, 3, 3, 3)
    msg = misfit(m, sd)
    assert msg.startswith("the state_dict does not fit EfficientNet-B0 in the torchvision layout")
    assert "1 missing (first: features.8.0.weight)" in msg
    assert "1 unexpected (first: features.9.0.weight)" in msg
    assert "features.0.0.weight is [24, 3, 3, 3] in the checkpoint, [32, 3, 3, 3] in the model" in msg


def test_torchs_own_report_names_keys_as_the_layout_does():
    m = meta("resnet18", "torchvision")
    sd = m.state_dict()
    del sd["fc.bias"]
    sd["extra"] = sd["fc.weight"]
    result = m.load_state_dict(sd, strict=False, assign=True)
    assert (result.missing_keys, result.unexpected_keys) == (["fc.bias"], ["extra"])


def test_a_checkpoint_in_another_layout_says_which(b0_sd):
    m = meta("efficientnet_b0")
    msg = misfit(m, b0_sd, layout="timm")
    assert "360 missing (first: conv_stem.weight" in msg
    assert "its keys are the torchvision layout's: give layout torchvision" in msg


def test_a_wrapped_checkpoint_loads(b0_sd):
    m = meta("efficientnet_b0", "torchvision")
    load_weights(m, {"state_dict": dict(b0_sd)})


def test_a_layout_the_spec_does_not_name():
    with pytest.raises(ScalekitError, match="MobileNetV1 names no torchvision checkpoint layout"):
        build_model("mobilenet_v1", layout="torchvision")
    with pytest.raises(ScalekitError, match="unknown layout 'keras'"):
        build_model("resnet50", layout="keras")


def test_a_block_the_family_has_no_name_for():
    # torchvision's MobileNetV2 has no squeeze-excitation to name
    s = dataclasses.replace(load_spec(spec_path("efficientnet_b0")),
                            checkpoints={"torchvision": "mobilenet_v2"})
    with pytest.raises(ScalekitError, match=r"torchvision.mobilenet_v2's layout has no name for "
                                            r"stage1's block 0 of EfficientNet-B0 \(MBConv1 k3x3 SE\)"):
        key_map(expand(s), "torchvision")


def test_bad_files(tmp_path):
    m = meta("resnet18")
    assert "no such file" in misfit(m, tmp_path / "nope.pt")
    (tmp_path / "text.pt").write_text("not a checkpoint\n")
    assert "not a torch checkpoint" in misfit(m, tmp_path / "text.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    assert "holds a list, not a state_dict" in misfit(m, tmp_path / "list.pt")
    with pytest.raises(ScalekitError, match="made by scalekit's build_model"):
        load_weights(torch.nn.Linear(2, 2), {})


# ---------------------------------------------------------------------------------------------
# the command line


def test_export_with_weights_in_a_layout(tmp_path, one_thread):
    s = load_spec(spec_path("resnet18"))
    src = randomize(build_model(s, layout="torchvision"))
    torch.save(src.state_dict(), tmp_path / "r18.pth")
    target = tmp_path / "r18.pt"
    r = run_cli("export", "resnet18", "--size", "64", "--weights", str(tmp_path / "r18.pth"),
                "--layout", "torchvision", "--to", str(target))
    assert r.returncode == 0, r.stderr
    assert f"weights from {tmp_path / 'r18.pth'} (torchvision layout)" in r.stdout
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            loaded = torch.jit.load(str(target))
        assert torch.allclose(loaded(x), src(x), rtol=1e-4, atol=1e-5)
    # a layout that does not fit: one line, nothing written; an existing file is kept
    before = target.read_bytes()
    r = run_cli("export", "resnet18", "--weights", str(tmp_path / "r18.pth"),
                "--to", str(tmp_path / "third.pt"))
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "does not fit ResNet-18 in the scalekit layout" in r.stderr
    assert "give layout torchvision" in r.stderr and not (tmp_path / "third.pt").exists()
    r = run_cli("export", "resnet18", "--weights", str(tmp_path / "r18.pth"), "--layout",
                "torchvision", "--to", str(target))
    assert r.returncode == 1 and "--overwrite" in r.stderr and target.read_bytes() == before


def test_export_layout_without_weights_is_a_usage_error(tmp_path):
    r = run_cli("export", "resnet18", "--layout", "torchvision", "--to", str(tmp_path / "x.pt"))
    assert r.returncode == 2 and "give --weights" in r.stderr


def test_the_package_exports_load_weights():
    import scalekit

    assert scalekit.load_weights is load_weights and "load_weights" in scalekit.__all__

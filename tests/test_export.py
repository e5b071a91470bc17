"""``scalekit export`` and scalekit.export: files that load back and give the eager model's
outputs, written atomically, with clear errors.

The reloads happen here, in the test, with torch.jit.load and onnxruntime themselves, on inputs
the exporter never saw. ONNX tests skip (saying why) when the ``onnx`` extra is not installed.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
import warnings

import pytest

# the whole module needs torch: skipped where only the light install is (CI's second venv)
torch = pytest.importorskip("torch", reason="needs the torch extra")
from click.testing import CliRunner
from torch import nn

from scalekit import build_model, scale
from scalekit import exporters as exporting
from scalekit.cli import cli
from scalekit.errors import ScalekitError

MISSING_ONNX = [m for m in exporting.ONNX_MODULES if importlib.util.find_spec(m) is None]
needs_onnx = pytest.mark.skipif(
    bool(MISSING_ONNX), reason=f"ONNX export needs {', '.join(MISSING_ONNX)} "
                               "(pip install 'scalekit-cnn[onnx]')")


pytestmark = pytest.mark.usefixtures("one_thread")


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def trained_a_little(name: str) -> nn.Module:
    """A small scaled model whose BatchNorm running statistics have moved off their initial
    (0, 1), so that eval mode really uses them (a few train-mode forwards, no optimiser)."""
    torch.manual_seed(0)
    model = build_model(scale(name, width=0.5, depth=0.5, size=32))
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(4, 3, 32, 32) * 2 + 0.5)
    return model


def jit_load(path) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(path))


def assert_same_outputs(eager: torch.Tensor, exported: torch.Tensor) -> None:
    """fp32 tolerance, relative to the output's magnitude."""
    assert exported.shape == eager.shape
    scale_ = eager.abs().max().item()
    assert scale_ > 0
    torch.testing.assert_close(exported, eager, rtol=1e-4, atol=1e-5 * scale_)


# ---------------------------------------------------------------------------------------------
# TorchScript


@pytest.mark.parametrize("name,fmt", [("model.pt", "torchscript"), ("model.TS", "torchscript"),
                                      ("model.onnx", "onnx"), ("a.b/model.pt", "torchscript"),
                                      ("model.pt2", "torch.export"), ("model.pth", "state_dict"),
                                      ("model.SafeTensors", "safetensors")])
def test_format_from_extension(name, fmt):
    assert exporting.export_format(name) == fmt


def test_torchscript_round_trip(tmp_path):
    model = trained_a_little("efficientnet_b0")  # SE, SiLU, dropout, stochastic depth
    state = {k: v.clone() for k, v in model.state_dict().items()}
    path = tmp_path / "model.pt"
    example = exporting.example_input(1, 3, 32)
    result = exporting.export_model(model, path, example)
    assert (result.path, result.format, result.input_shape) == (str(path), "torchscript",
                                                                (1, 3, 32, 32))
    assert 0 <= result.max_abs_diff <= 1e-4 * result.output_scale
    assert model.training  # flags restored, weights untouched
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())

    loaded = jit_load(path)
    assert not loaded.training
    x = torch.randn(3, 3, 40, 48)  # another batch size and input size than the example's
    model.eval()
    with torch.no_grad():
        assert_same_outputs(model(x), loaded(x))
    # the file keeps dropout and stochastic depth: in training mode it trains like the model
    loaded.train()
    out1, out2 = loaded(x), loaded(x)
    assert not torch.equal(out1, out2)  # dropout and stochastic depth draw anew
    out1.sum().backward()
    assert all(p.grad is not None for p in loaded.parameters())


def test_cli_export_counts_match_torchvision(tmp_path, published):
    path = tmp_path / "mnv2.pt"
    r = invoke("export", "mobilenet_v2", "--to", str(path))
    assert r.exit_code == 0, r.output
    line = r.stdout.strip()
    assert line.startswith(f"wrote {path}: MobileNetV2 as torchscript, input 1x3x224x224")
    assert "max |diff| vs eager" in line and "\n" not in line
    loaded = jit_load(path)
    ref = published["torchvision"]["mobilenet_v2"]
    assert sum(p.numel() for p in loaded.parameters()) == ref["params"]
    assert f"{ref['params']:,} params" in line
    assert loaded(torch.randn(1, 3, 224, 224)).shape == (1, 1000)


def test_cli_scaling_flags_batch_and_overwrite(tmp_path):
    path = tmp_path / "model.pt"
    path.write_text("precious")
    args = ["export", "efficientnet_b0", "--phi", "-2", "--batch", "2", "--to", str(path)]
    r = invoke(*args)
    assert r.exit_code == 1
    assert r.stderr.strip() == f"Error: {path}: exists; use --overwrite to replace it"
    assert path.read_text() == "precious"
    r = invoke(*args, "--force")  # the memory guard only
    assert r.exit_code == 1 and "--overwrite" in r.stderr and path.read_text() == "precious"
    r = invoke(*args, "--overwrite")
    assert r.exit_code == 0, r.output
    px = math.floor(224 * 1.15 ** -2 + 0.5)  # gamma^phi x 224, rounded half up
    assert f"input 2x3x{px}x{px}" in r.stdout
    assert "EfficientNet-B0 (d=0.694444, w=0.826446" in r.stdout  # alpha^-2, beta^-2
    assert jit_load(path)(torch.randn(1, 3, px, px)).shape == (1, 1000)
    assert sorted(os.listdir(tmp_path)) == ["model.pt"]  # no temporary file left


@pytest.mark.parametrize("args,code,words", [
    (["--to", "model.txt"], 2, "Invalid value for '--to': cannot tell the format"),
    (["--to", "model"], 2, "use a .pt2, .pt, .ts, .onnx, .pth, .safetensors file name"),
    ([], 2, "Missing option '--to'"),
    (["--to", "no/such/dir/model.pt"], 1, "does not exist"),
    (["--to", "model.pt", "--batch", "0"], 2, "--batch"),
    (["--to", "model.pt", "--phi", "1", "--width", "2"], 2, "cannot be combined"),
    (["--to", "model.pth", "--strategy", "dWr"], 2, "--strategy and --factor go together"),
    (["--to", "model.pth", "--strategy", "dWr", "--factor", "2", "--phi", "1"], 2,
     "cannot be combined with --phi"),
    (["--to", "model.pth", "--strategy", "dwx", "--factor", "2"], 2, "unknown strategy 'dwx'"),
])
def test_bad_arguments(tmp_path, args, code, words):
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        r = invoke("export", "resnet50", *args)
    finally:
        os.chdir(cwd)
    assert r.exit_code == code
    assert words in r.stderr and "Traceback" not in r.output
    assert os.listdir(tmp_path) == []


def test_a_failed_check_writes_nothing(tmp_path, monkeypatch):
    def differs(*args, **kwargs):
        raise ValueError("outputs differ by up to 1 (output scale 1)")

    monkeypatch.setattr("scalekit.equivalence.check_outputs", differs)
    path = tmp_path / "model.pt"
    with pytest.raises(ScalekitError, match="does not match the eager model.*nothing written"):
        exporting.export_torchscript(trained_a_little("resnet50"), path,
                                     exporting.example_input(1, 3, 32))
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# torch.export (.pt2)


def test_torch_export_round_trip(tmp_path):
    """The ExportedProgram, loaded here with torch.export.load, gives the eager model's outputs
    on an input the exporter never saw (same shape: the program's is fixed)."""
    model = trained_a_little("efficientnet_b0")  # SE, SiLU, dropout, stochastic depth, BN stats
    state = {k: v.clone() for k, v in model.state_dict().items()}
    path = tmp_path / "model.pt2"
    result = exporting.export_model(model, path, exporting.example_input(2, 3, 32))
    assert (result.format, result.input_shape) == ("torch.export", (2, 3, 32, 32))
    assert 0 <= result.max_abs_diff <= 1e-4 * result.output_scale
    assert model.training  # flags restored, weights untouched
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert sorted(os.listdir(tmp_path)) == ["model.pt2"]

    program = torch.export.load(str(path))
    assert isinstance(program, torch.export.ExportedProgram)
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        assert_same_outputs(model(x), program.module()(x))
    # the program holds the weights and BatchNorm statistics it was exported with, by name
    assert set(program.state_dict) <= set(model.state_dict())
    assert {k for k, _ in model.named_parameters()} <= set(program.state_dict)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in program.state_dict.items())


# ---------------------------------------------------------------------------------------------
# weights: state_dict (.pth) and safetensors


def test_cli_state_dict_round_trip_into_a_fresh_model(tmp_path, published):
    """`export --to FILE.pth` writes the weights; the test loads them (torch.load, weights
    only) into a model it builds itself from the same flags, and gets the same outputs as a
    second export's TorchScript file of the same seeded weights."""
    path = tmp_path / "mnv2.pth"
    flags = ["--width", "0.5", "--size", "64"]
    torch.manual_seed(3)
    r = invoke("export", "mobilenet_v2", *flags, "--to", str(path))
    assert r.exit_code == 0, r.output
    assert " as state_dict, input 1x3x64x64" in r.stdout and "max |diff| vs eager 0 " in r.stdout
    state = torch.load(path, weights_only=True)
    fresh = build_model(scale("mobilenet_v2", width=0.5, size=64)).eval()
    assert set(state) == set(fresh.state_dict())
    fresh.load_state_dict(state, strict=True)
    torch.manual_seed(3)
    eager = build_model(scale("mobilenet_v2", width=0.5, size=64)).eval()  # the same seeded init
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(fresh(x), eager(x))
    assert sorted(os.listdir(tmp_path)) == ["mnv2.pth"]


def test_state_dict_check_catches_weights_that_do_not_load(tmp_path, monkeypatch):
    """A file that leaves any tensor out is refused and nothing is written."""
    model = trained_a_little("resnet50")

    def drop_one(sd, f):
        sd = dict(sd)
        sd.pop(next(iter(sd)))
        torch.save(sd, f)

    path = tmp_path / "r50.pth"
    with pytest.raises(ScalekitError, match="do not load into a fresh model.*nothing written"):
        exporting._export_weights(model, path, exporting.example_input(1, 3, 32),
                                  overwrite=False, fresh=None, fmt="state_dict", save=drop_one,
                                  load=lambda f: torch.load(f, weights_only=True))
    assert os.listdir(tmp_path) == []


def test_state_dict_without_a_fresh_model_checks_into_a_blanked_copy(tmp_path):
    model = trained_a_little("efficientnet_b0")
    result = exporting.export_state_dict(model, tmp_path / "b0.pth",
                                         exporting.example_input(1, 3, 32))
    assert result.max_abs_diff == 0.0  # the same weights and buffers, bit for bit
    blank = exporting._blank_copy(model)
    assert all(torch.isnan(p).all() for p in blank.parameters())
    assert not any(torch.isnan(p).any() for p in model.parameters())  # the original untouched


def test_safetensors_round_trip(tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch",
                                            reason="pip install 'scalekit-cnn[safetensors]'")
    path = tmp_path / "b0.safetensors"
    torch.manual_seed(5)
    r = invoke("export", "efficientnet_b0", "--strategy", "dWr", "--factor", "0.25", "--to",
               str(path))
    assert r.exit_code == 0, r.output
    assert " as safetensors, " in r.stdout
    tensors = safetensors_torch.load_file(str(path))
    torch.manual_seed(5)
    from scalekit.strategies import scale_by
    from scalekit.spec import load_spec
    from scalekit.bundled import resolve_spec

    spec, coef = scale_by(load_spec(resolve_spec("efficientnet_b0")), strategy="dWr", factor=0.25)
    assert coef.depth == pytest.approx(0.25 ** 0.1) and coef.width == pytest.approx(0.25 ** 0.4)
    eager = build_model(spec)
    assert {k: v.shape for k, v in tensors.items()} == \
        {k: v.shape for k, v in eager.state_dict().items()}
    assert all(torch.equal(tensors[k], v) for k, v in eager.state_dict().items())


# ---------------------------------------------------------------------------------------------
# ONNX


def test_onnx_without_the_extra_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    path = tmp_path / "model.onnx"
    r = invoke("export", "resnet50", "--to", str(path))
    assert r.exit_code == 1
    assert r.stderr.strip().splitlines()[-1].endswith("pip install 'scalekit-cnn[onnx]'")
    assert "onnxruntime" in r.stderr
    assert not path.exists()


@needs_onnx
def test_onnx_round_trip(tmp_path):
    """One export (the exporter takes seconds): through the CLI, with the weights seeded so that
    the test can build the same eager model and compare on an input the exporter never saw."""
    import onnxruntime

    path = tmp_path / "model.onnx"
    flags = dict(width=0.5, depth=0.5, size=40)
    torch.manual_seed(1)
    r = invoke("export", "efficientnet_b0", "--width", "0.5", "--depth", "0.5", "--size", "40",
               "--batch", "2", "--to", str(path))
    assert r.exit_code == 0, r.output
    assert " as onnx, input 2x3x40x40" in r.stdout
    torch.manual_seed(1)
    model = build_model(scale("efficientnet_b0", **flags)).eval()

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert (inp.name, inp.shape) == ("input", [2, 3, 40, 40])
    x = torch.randn(2, 3, 40, 40)
    (y,) = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        assert_same_outputs(model(x), torch.from_numpy(y))
    assert sorted(os.listdir(tmp_path)) == ["model.onnx"]

"""The memory guard: its estimate checked against torch (meta device: nothing is allocated), and
the refusal, its message and --force, without ever building a model that does not fit."""

from __future__ import annotations

import pytest

# the whole module needs torch: skipped where only the light install is (CI's second venv)
torch = pytest.importorskip("torch", reason="needs the torch extra")
from click.testing import CliRunner

from scalekit import memory as guard
from scalekit.build import build_model
from scalekit.cli import cli
from scalekit.errors import ScalekitError
from scalekit.memory import (BYTES_PER_VALUE, HEADROOM, available_memory, check_memory,
                            estimate_memory, format_bytes)
from scalekit.plan import expand
from scalekit.scaling import scale_spec
from scalekit.spec import load_spec

from .conftest import SPEC_NAMES, spec_path

GiB = 1024 ** 3


def plan_of(name: str, **scaling):
    spec = load_spec(spec_path(name))
    return expand(scale_spec(spec, **scaling)[0] if scaling else spec)


def measured(plan, batch: int) -> tuple[int, int, int]:
    """On the meta device: (parameter count, largest single activation tensor, largest
    input + output of one layer), values at ``batch``, from forward hooks on every leaf module."""
    model = build_model(plan, device="meta").eval()
    largest, layer = [0], [0]

    def hook(mod, inp, out):
        n_in = sum(t.numel() for t in inp if isinstance(t, torch.Tensor))
        largest[0] = max(largest[0], out.numel())
        layer[0] = max(layer[0], n_in + (0 if out is inp[0] else out.numel()))  # in-place: 1 tensor

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(torch.empty(batch, plan.in_channels, *plan.resolution, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return sum(p.numel() for p in model.parameters()), largest[0], layer[0]


CASES = [(name, {}, 1) for name in SPEC_NAMES] + [
    ("efficientnet_b0", {"preset": "b7"}, 1),
    ("resnet50", {"phi": 2}, 3),
    ("mobilenet_v2", {"width": 1.4, "size": 96}, 8),
    ("mobilenet_v1", {"width": 0.25, "depth": 2.0}, 2),
]


@pytest.mark.parametrize("name,scaling,batch", CASES, ids=lambda v: str(v))
def test_estimate_against_torch(name, scaling, batch):
    plan = plan_of(name, **scaling)
    est = estimate_memory(plan, batch)
    params, largest, layer = measured(plan, batch)
    assert est.params_bytes == BYTES_PER_VALUE * params  # exact
    # activations: at least what is certainly alive at once (one layer's input and output, plus
    # the network's input), at least the largest tensor, and within 6x of that tensor
    image = batch * plan.in_channels * plan.resolution[0] * plan.resolution[1]
    assert est.activation_bytes >= BYTES_PER_VALUE * (layer + image)
    assert BYTES_PER_VALUE * largest <= est.activation_bytes <= 6 * BYTES_PER_VALUE * largest
    assert est.total_bytes == est.params_bytes + est.activation_bytes


def test_activations_scale_with_batch_and_pixels_params_do_not():
    one = estimate_memory(plan_of("resnet50"), 1)
    four = estimate_memory(plan_of("resnet50"), 4)
    big = estimate_memory(plan_of("resnet50", size=448), 1)
    assert four.activation_bytes == 4 * one.activation_bytes and four.params == one.params
    assert big.params == one.params
    assert big.activations == pytest.approx(4 * one.activations, rel=0.02)


def test_guard_refuses_a_huge_model_naming_the_estimate():
    plan = plan_of("resnet50", width=100, size=20000)  # counting it costs nothing
    est = estimate_memory(plan)
    with pytest.raises(ScalekitError) as e:
        check_memory(plan, available=16 * GiB)
    msg = str(e.value)
    assert msg.startswith("ResNet-50 (d=1, w=100, 20000px) needs about ")
    assert f"params {format_bytes(est.params_bytes)} + activations " \
           f"{format_bytes(est.activation_bytes)} at batch 1, 20000 px" in msg
    assert "only 16.0 GiB available" in msg and "--force" in msg and "\n" not in msg
    assert est.params_bytes > 800 * GiB  # 219 G params: the refusal is right on any machine


def test_force_skips_the_refusal_and_a_fitting_model_passes():
    plan = plan_of("resnet50", width=100, size=20000)
    assert check_memory(plan, force=True, available=1) == estimate_memory(plan)
    small = plan_of("mobilenet_v2")
    est = check_memory(small, available=64 * GiB)
    assert est.total_bytes < GiB


def test_headroom_boundary():
    plan = plan_of("mobilenet_v1")
    need = estimate_memory(plan, 2).total_bytes * HEADROOM
    check_memory(plan, 2, available=int(need) + 1)
    with pytest.raises(ScalekitError, match="batch 2"):
        check_memory(plan, 2, available=int(need) - 1)


def test_batch_must_be_positive():
    with pytest.raises(ScalekitError, match="batch must be >= 1"):
        estimate_memory(plan_of("mobilenet_v1"), 0)


def test_available_memory_reads_the_system(monkeypatch):
    have = available_memory()
    if have is None:
        pytest.skip("this system does not report available memory")
    assert 0 < have
    with open("/proc/meminfo", encoding="ascii") as f:
        total = next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith("MemTotal:"))
    assert have <= total
    # a container limit tighter than the machine wins: cgroup v2, 8 GiB limit, 2 GiB in use
    files = {"/sys/fs/cgroup/memory.max": 8 * GiB, "/sys/fs/cgroup/memory.current": 2 * GiB}
    monkeypatch.setattr(guard, "_read_int", files.get)
    assert available_memory() == min(have, 6 * GiB)


def test_format_bytes():
    assert format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(212 * GiB + GiB // 2) == "212.5 GiB"
    assert format_bytes(3 * 1024 * 1024 * GiB) == "3.0 PiB"


@pytest.mark.parametrize("args", [
    ["info", "mobilenet_v1", "--counter", "thop", "--no-latency", "--format", "json"],
    ["scale", "mobilenet_v1", "--width", "0.5", "--counter", "thop", "--no-latency", "--format",
     "json"],
])
def test_cli_guard_and_force(monkeypatch, args):
    """With 1 MiB 'available', thop is refused with the estimate; --force builds it anyway."""
    monkeypatch.setattr(guard, "available_memory", lambda: 1024 * 1024)
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 1
    assert "needs about" in r.output and "only 1.0 MiB available" in r.output
    assert "--force" in r.output
    r = CliRunner().invoke(cli, args + ["--force"])
    assert r.exit_code == 0, r.output
    assert '"counter": "thop"' in r.output


@pytest.mark.torch
def test_the_python_api_names_its_own_override(monkeypatch):
    """From the Python API the refusal says force=True (there is no --force to pass there)."""
    import scalekit

    monkeypatch.setattr(guard, "available_memory", lambda: 1024 * 1024)
    with pytest.raises(ScalekitError) as e:
        scalekit.build_model(spec_path("mobilenet_v1"))
    assert "use force=True to try anyway" in str(e.value) and "--force" not in str(e.value)

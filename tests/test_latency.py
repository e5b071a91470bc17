"""The latency harness and the inference optimiser: correctness only, never speed.

Tiny resolutions, few runs and small budgets keep the file fast; nothing here asserts that one
thing is faster than another (the machine is shared and noisy).
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

# the whole module needs torch: skipped where only the light install is (CI's second venv)
torch = pytest.importorskip("torch", reason="needs the torch extra")
from torch import nn

from scalekit.build import build_model
from scalekit.equivalence import check_outputs
from scalekit.latency.harness import (Latency, LatencyInterrupted, flush_denormal_enabled,
                                      measure_latency)
from scalekit.latency.machine import machine_info, peak_gflops
from scalekit.latency.optimize import fold_batchnorm, optimize_for_inference
from scalekit.plan import expand
from scalekit.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))


def _one_per_kind() -> list:
    """The smallest bundled specs (by params) that between them hold every registered block kind
    and grouped convolution: the inference optimisations act per module type, so a larger spec of
    the same kinds tests nothing more (and EfficientNetV2-L alone took 6 s)."""
    from scalekit.blocks import KINDS
    from scalekit.records import make_record

    by_size = sorted(SPECS, key=lambda p: make_record(load_spec(p)).params)
    chosen, seen = [], set()
    for p in by_size:
        plan = expand(load_spec(p))
        have = {b.kind for st in plan.stages for b in st.blocks}
        have |= {"grouped"} if any(getattr(b, "groups", 1) > 1 for st in plan.stages
                                   for b in st.blocks) else set()
        if have - seen:
            chosen.append(p)
            seen |= have
    assert set(KINDS) <= seen, set(KINDS) - seen
    paper = [p for p in SPECS if p.stem in ("efficientnet_b0", "resnet50")]  # and the paper's
    return sorted(set(chosen) | set(paper))


OPTIMIZE_SPECS = _one_per_kind()
FAST = dict(warmup=1, min_runs=3, max_runs=5, budget_s=0.2)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def restore_threads():
    """Let a test change torch's thread count without leaking it into the next test."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def small_model(path: Path, resolution: int = 64) -> nn.Module:
    """A bundled spec at ``resolution`` with random BatchNorm statistics, so that folding BN is
    not the near no-op it is on freshly initialised BN (mean 0, var 1, gamma 1, beta 0)."""
    model = build_model(expand(load_spec(path), resolution=resolution))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(0.1 * torch.randn(m.num_features, generator=g))
    return model


class Boom(nn.Module):
    """Raises ``exc`` on forward call number ``at`` (1-based)."""

    def __init__(self, exc: BaseException, at: int):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.exc, self.at, self.calls = exc, at, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.at:
            raise self.exc
        return self.conv(x)


def tiny_conv() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())


# ---------------------------------------------------------------------------------------------
# the harness


def test_harness_returns_sane_statistics():
    lat = measure_latency(tiny_conv(), 32, batch=2, **FAST)
    values = [lat.median_ms, lat.mean_ms, lat.min_ms, lat.max_ms, lat.p25_ms, lat.p75_ms]
    assert all(math.isfinite(v) and v > 0 for v in values)
    assert lat.min_ms <= lat.p25_ms <= lat.median_ms <= lat.p75_ms <= lat.max_ms
    assert lat.min_ms <= lat.mean_ms <= lat.max_ms
    assert 3 <= lat.runs <= 5 and lat.warmup == 1 and lat.threads == 1 and lat.batch == 2
    assert lat.iqr_ms >= 0 and lat.throughput > 0
    d = lat.to_dict()
    assert d["median_ms"] == lat.median_ms and d["iqr_ms"] == lat.iqr_ms


def test_rectangular_resolution_and_channels():
    lat = measure_latency(nn.Conv2d(1, 2, 3), (16, 40), in_channels=1, **FAST)
    assert lat.runs >= 3


def test_latency_arithmetic():
    lat = Latency.from_samples([4.0, 1.0, 2.0, 3.0, 5.0], warmup=2, threads=1, batch=4)
    assert (lat.min_ms, lat.p25_ms, lat.median_ms, lat.p75_ms, lat.max_ms) == (1, 2, 3, 4, 5)
    assert lat.mean_ms == 3 and lat.iqr_ms == 2 and lat.rel_iqr == pytest.approx(2 / 3)
    assert lat.throughput == pytest.approx(4 * 1000 / 3)
    # 1e9 MACs per image, 4 images in 3 ms: 8e9 FLOPs / 0.003 s
    assert lat.gflops_per_s(10**9) == pytest.approx(8e9 / 0.003 / 1e9)
    single = Latency.from_samples([7.0], warmup=0, threads=1, batch=1)
    assert single.p25_ms == single.median_ms == single.p75_ms == 7.0


def test_stops_at_max_runs_and_reports_progress():
    calls: list[tuple[int, int]] = []
    lat = measure_latency(tiny_conv(), 16, warmup=0, min_runs=4, max_runs=4, budget_s=60,
                          target_rel_spread=0.0, progress=lambda d, t: calls.append((d, t)))
    assert lat.runs == 4
    assert [d for d, _ in calls] == [1, 2, 3, 4]
    assert all(t >= d for d, t in calls) and calls[-1] == (4, 4)


def test_thread_count_and_train_flag_restored(restore_threads):
    torch.set_num_threads(2)
    model = tiny_conv()
    model.train()
    measure_latency(model, 16, threads=1, **FAST)
    assert torch.get_num_threads() == 2
    assert model.training and all(m.training for m in model.modules())


def test_thread_count_restored_after_exception(restore_threads):
    torch.set_num_threads(2)
    with pytest.raises(RuntimeError, match="boom"):
        measure_latency(Boom(RuntimeError("boom"), at=3), 16, threads=1, **FAST)
    assert torch.get_num_threads() == 2


def test_interrupt_carries_partial_statistics(restore_threads):
    torch.set_num_threads(2)
    # warm-up 1, then timed runs 1-3 complete; call 5 is interrupted
    with pytest.raises(LatencyInterrupted) as info:
        measure_latency(Boom(KeyboardInterrupt(), at=5), 16, threads=1, warmup=1, min_runs=10,
                        max_runs=10, budget_s=60)
    assert isinstance(info.value, KeyboardInterrupt)
    assert info.value.partial is not None and info.value.partial.runs == 3
    assert torch.get_num_threads() == 2


def test_interrupt_during_warmup_has_no_partial(restore_threads):
    with pytest.raises(LatencyInterrupted) as info:
        measure_latency(Boom(KeyboardInterrupt(), at=1), 16, warmup=2, min_runs=2, max_runs=2)
    assert info.value.partial is None


class FlushProbe(nn.Module):
    """Records, at every forward, whether subnormal floats are flushed to zero."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.seen: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(flush_denormal_enabled())
        return self.conv(x)


def test_subnormals_flushed_while_timing_and_mode_restored():
    assert torch.tensor(1e-40).item() != 0  # the probe's premise: 1e-40 is a float32 subnormal
    probe = FlushProbe()
    measure_latency(probe, 16, **FAST)
    assert probe.seen and all(probe.seen)
    assert not flush_denormal_enabled()
    probe.seen.clear()
    measure_latency(probe, 16, flush_denormal=False, **FAST)
    assert probe.seen and not any(probe.seen)
    torch.set_flush_denormal(True)
    try:
        measure_latency(probe, 16, **FAST)
        assert flush_denormal_enabled()  # restored to what it was: on
    finally:
        torch.set_flush_denormal(False)


def test_non_finite_parameters_rejected():
    model = tiny_conv()
    with torch.no_grad():
        model[0].weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        measure_latency(model, 16, **FAST)


@pytest.mark.parametrize("kwargs", [dict(batch=0), dict(threads=0), dict(min_runs=5, max_runs=4),
                                    dict(budget_s=0.0), dict(warmup=-1)])
def test_bad_arguments_rejected(kwargs):
    with pytest.raises(ValueError):
        measure_latency(tiny_conv(), 16, **{**FAST, **kwargs})


def test_measures_an_optimised_module():
    model = small_model(ROOT / "specs" / "mobilenet_v2.yaml", 32)
    frozen, _ = optimize_for_inference(model, torch.randn(1, 3, 32, 32))
    assert measure_latency(frozen, 32, **FAST).median_ms > 0


# ---------------------------------------------------------------------------------------------
# machine facts


def test_peak_gflops_positive_cached_and_restores_threads(restore_threads):
    torch.set_num_threads(2)
    peak = peak_gflops(1, n=128, budget_s=0.05)
    assert math.isfinite(peak) and peak > 0
    assert peak_gflops(1, n=128, budget_s=0.05) == peak  # cached, not re-measured
    assert torch.get_num_threads() == 2


def test_machine_info():
    info = machine_info()
    assert info["cpu"] and info["logical_cores"] >= 1 and info["available_cores"] >= 1
    assert info["torch"] == torch.__version__ and info["python"].count(".") == 2


def test_importing_latency_does_not_import_torch():
    code = "import sys, scalekit.latency.harness, scalekit.latency.networks; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# ---------------------------------------------------------------------------------------------
# the optimiser


def test_fold_batchnorm_is_exact_and_removes_every_bn():
    model = small_model(ROOT / "specs" / "resnet50.yaml", 32).eval()
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = model(x)
        assert fold_batchnorm(model) == n_bn
        after = model(x)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4 * before.abs().max().item())


@pytest.mark.parametrize("path", OPTIMIZE_SPECS, ids=[p.stem for p in OPTIMIZE_SPECS])
def test_optimised_matches_eager_and_leaves_model_alone(path):
    model = small_model(path)  # left in train mode on purpose
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    frozen, description = optimize_for_inference(model, x)
    assert "BatchNorm folded" in description
    assert model.training  # not switched to eval
    after = model.state_dict()
    assert after.keys() == state.keys() and all(torch.equal(after[k], state[k]) for k in state)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # not folded in place
    # on a fresh input, not only the one it was traced and checked on
    check_outputs(model.eval(), frozen, torch.randn(1, 3, 64, 64))


def test_check_outputs_raises_outside_tolerance():
    a = nn.Linear(4, 3)
    b = nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 4)
    assert check_outputs(a, b, x) == 0.0
    with torch.no_grad():
        b.bias += 1e-2 * a(x).abs().max()
    with pytest.raises(ValueError, match="differ"):
        check_outputs(a, b, x)

"""Latency on the command line: `bench`, the latency columns of info / scale / compare, compare
--table 4, --optimize, --no-latency, Ctrl-C, and `check` against latency-bearing baselines.

Tiny networks (32-64 px), few runs and short budgets keep the file fast. Nothing here asserts
that anything is fast or slow: the machine is shared and noisy. What is checked is what the
numbers must satisfy whatever the machine (positive, finite, ordered, consistent with the counts
they are derived from), what the options do, and the paper's figures against tests/data.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import signal
import subprocess
import sys
from importlib import resources

import jsonschema
import pytest

# the whole module needs torch: skipped where only the light install is (CI's second venv)
torch = pytest.importorskip("torch", reason="needs the torch extra")
from click.testing import CliRunner
from rich.console import Console

from scalekit import build, equivalence
from scalekit.commands import common as cliutil
from scalekit.latency import networks as timing
from scalekit.latency import optimize
from scalekit.records import make_record as analyze
from scalekit.cli import cli, main
from scalekit.latency.harness import Latency, LatencyInterrupted, flush_denormal_enabled
from scalekit.spec import load_spec

from .conftest import ROOT, assert_no_torch, run_cli

TINY = """\
name: {name}
resolution: 32
num_classes: 10
stem: {{out: 8, stride: 2}}
stages:
  - {{block: mbconv, out: 16, stride: 2, expand: 4, se: 0.25}}
  - {{block: dwsep, out: 32, stride: 2}}
"""
# a short harness: tests check what the numbers are, never how small
QUICK = ("--warmup", "1", "--min-runs", "3", "--max-runs", "4", "--time-budget", "0.2")
SHORT = ("--time-budget", "0.2")  # info / scale / compare: at least 10 runs, then stop
MEASURED = ("--latency", "measured", *SHORT)


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.format(name="Tiny"))
    return str(path)


def invoke(*args: str):
    r = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r


def as_json(*args: str) -> dict:
    return json.loads(invoke(*args, "--format", "json").stdout)


def assert_valid(doc: dict) -> None:
    """``doc`` is a valid report (scalekit/data/report.schema.json)."""
    schema = json.loads(resources.files("scalekit").joinpath("data/report.schema.json")
                        .read_text("utf-8"))
    errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(doc)]
    assert not errors, errors[:3]


def assert_sane(lat: dict, macs: int, *, batch: int = 1, threads: int = 1) -> None:
    """What any latency measurement must satisfy, on any machine."""
    for k in ("median_ms", "mean_ms", "min_ms", "max_ms", "p25_ms", "p75_ms", "throughput",
              "gflops_per_s", "peak_gflops", "peak_fraction"):
        assert math.isfinite(lat[k]) and lat[k] > 0, (k, lat[k])
    assert lat["min_ms"] <= lat["p25_ms"] <= lat["median_ms"] <= lat["p75_ms"] <= lat["max_ms"]
    assert lat["min_ms"] <= lat["mean_ms"] <= lat["max_ms"]
    assert lat["iqr_ms"] == pytest.approx(lat["p75_ms"] - lat["p25_ms"])
    assert (lat["batch"], lat["threads"]) == (batch, threads)
    seconds = lat["median_ms"] / 1000
    assert lat["throughput"] == pytest.approx(batch / seconds)
    assert lat["gflops_per_s"] == pytest.approx(2 * macs * batch / seconds / 1e9)  # FLOPs = 2 MACs
    assert lat["peak_fraction"] == pytest.approx(lat["gflops_per_s"] / lat["peak_gflops"])


# ---------------------------------------------------------------------------------------------
# bench


def test_bench_statistics_are_positive_finite_and_consistent(tiny):
    doc = as_json("bench", tiny, "mobilenet_v2", "--size", "64", "--batch", "2", *QUICK)
    assert [r["name"] for r in doc["records"]] == ["Tiny (d=1, w=1, 64px)",
                                                   "MobileNetV2 (d=1, w=1, 64px)"]
    for rec in doc["records"]:
        assert rec["resolution"] == 64
        lat = rec["latency"]
        assert_sane(lat, rec["macs"], batch=2)
        assert 3 <= lat["runs"] <= 4 and lat["warmup"] == 1 and lat["optimized"] is None
    t = doc["timing"]
    assert t["threads"] == 1 and t["batch"] == 2 and t["peak_gflops"] > 0
    assert t["torch"] == torch.__version__ and t["cpu"]
    assert t["harness"] == {"warmup": 1, "min_runs": 3, "max_runs": 4, "budget_s": 0.2}


def test_bench_scales_by_strategy_like_scale():
    """--strategy dWr --factor S: d, w, r = s^0.1, s^0.4, s^0.05 (Dollar et al. 2021)."""
    (rec,) = as_json("bench", "mobilenet_v2", "--strategy", "dWr", "--factor", "0.25",
                     *QUICK)["records"]
    c = rec["coefficients"]
    assert (c["depth"], c["width"], c["resolution"]) == pytest.approx((0.25 ** 0.1, 0.25 ** 0.4,
                                                                      0.25 ** 0.05))
    assert rec["mode"] == "scaled" and rec["latency"]["median_ms"] > 0
    assert rec["resolution"] == round(224 * 0.25 ** 0.05)


def test_bench_runs_exactly_max_runs_when_min_equals_max(tiny):
    lat = as_json("bench", tiny, "--min-runs", "5", "--max-runs", "5", "--time-budget", "100",
                  "--warmup", "0")["records"][0]["latency"]
    assert lat["runs"] == 5 and lat["warmup"] == 0


def test_bench_table_and_machine_line(tiny):
    out = invoke("bench", tiny, *QUICK).output
    for text in ("median ms", "IQR ms", "min - max ms", "images/s", "GFLOP/s", "% peak",
                 "eager", "fp32 matmul peak", "1 thread, batch 1", "subnormals flushed"):
        assert text in out, text
    assert f"torch {torch.__version__}" in out


def test_bench_csv_has_latency_columns(tiny):
    rows = list(csv.DictReader(io.StringIO(
        invoke("bench", tiny, "--optimize", *QUICK, "--format", "csv").stdout)))
    assert len(rows) == 1
    for col in ("latency_ms", "latency_iqr_ms", "gflops_per_s", "peak_fraction",
                "optimized_latency_ms", "optimized_speedup"):
        assert float(rows[0][col]) >= 0, col


def test_thread_count_and_flush_mode_restored(tiny):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        lat = as_json("bench", tiny, "--threads", "2", *QUICK)["records"][0]["latency"]
        assert lat["threads"] == 2
        assert torch.get_num_threads() == 1
        assert not flush_denormal_enabled()
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("args,words", [
    (("--min-runs", "5", "--max-runs", "4"), "--max-runs"),
    (("--threads", "0"), "--threads"),
    (("--batch", "0"), "--batch"),
    (("--time-budget", "0"), "--time-budget"),
    (("--no-latency",), "--no-latency"),
])
def test_bench_usage_errors(tiny, args, words):
    r = run_cli("bench", tiny, *args)
    assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr


def test_progress_bar_on_a_terminal(tiny, monkeypatch):
    """On a terminal, a bar per model (one for a model and its optimised copy, timed
    interleaved), runs done of runs expected."""
    screen = io.StringIO()
    monkeypatch.setattr(cliutil, "stderr_console",
                        lambda: Console(file=screen, force_terminal=True, color_system=None,
                                        width=120))
    rec = analyze(load_spec(tiny))
    [timed], extra = cliutil.measure([rec], timing.TimingOptions(
        optimize=True, warmup=1, min_runs=3, max_runs=3, budget_s=0.2))
    assert timed.latency["runs"] == timed.latency["optimized"]["runs"] == 3
    assert extra["timing"]["threads"] == 1
    text = screen.getvalue()
    assert "timing Tiny (1/1, interleaved)" in text
    assert "0/3 runs" in text and "scalekit: timing" not in text


def test_progress_goes_to_stderr_and_stdout_stays_data(tiny):
    r = run_cli("bench", tiny, "mobilenet_v2", "--size", "64", *QUICK, "--format", "json")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["records"]) == 2  # nothing else on stdout
    assert "scalekit: timing Tiny (d=1, w=1, 64px) (1/2)" in r.stderr
    assert "scalekit: timing MobileNetV2 (d=1, w=1, 64px) (2/2)" in r.stderr


# ---------------------------------------------------------------------------------------------
# --optimize


def test_optimize_outputs_match_eager_on_an_input_of_the_tests_own(tiny, monkeypatch):
    """The optimised copy that is timed gives the eager model's outputs, within fp32 tolerance,
    on an input neither scalekit's trace nor its own check used."""
    seen = []
    real = equivalence.check_outputs

    def spy(a, b, example, **kw):
        seen.append((a, b, example))
        return real(a, b, example, **kw)

    monkeypatch.setattr(equivalence, "check_outputs", spy)
    lat = as_json("bench", tiny, "--optimize", *QUICK)["records"][0]["latency"]
    (eager, fast, example), = seen
    x = torch.randn(example.shape, generator=torch.Generator().manual_seed(1234))
    with torch.inference_mode():
        want, got = eager(x), fast(x)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5 * float(want.abs().max()))
    opt = lat["optimized"]
    assert_sane(opt, as_json("info", tiny, "--no-latency")["records"][0]["macs"])
    assert opt["speedup"] == pytest.approx(lat["median_ms"] / opt["median_ms"])
    assert "BatchNorm folded" in opt["method"] and 0 <= opt["max_abs_diff"]


def test_optimized_copy_that_differs_is_refused(tiny, monkeypatch):
    real = optimize.optimize_for_inference

    def wrong(model, example):
        fast, how = real(model, example)
        return (lambda x: fast(x) * 1.01), how

    monkeypatch.setattr(optimize, "optimize_for_inference", wrong)
    r = CliRunner().invoke(cli, ["info", tiny, "--optimize", *SHORT])
    assert r.exit_code == 1
    assert "optimised model does not compute what the eager one does" in r.output
    assert "differ" in r.output


def test_optimize_needs_latency(tiny):
    r = run_cli("info", tiny, "--no-latency", "--optimize")
    assert r.returncode == 2 and "--optimize" in r.stderr and "Traceback" not in r.stderr


# ---------------------------------------------------------------------------------------------
# latency columns of info, scale, compare


def test_info_predicts_by_default_and_measures_on_request(tiny):
    counted = as_json("info", tiny, "--no-latency")["records"][0]
    assert counted["latency"] is None
    doc = as_json("info", tiny)
    assert_valid(doc)
    lat = doc["records"][0]["latency"]
    assert lat["kind"] == "predicted" and lat["predicted_ms"] > 0 and "median_ms" not in lat
    assert lat["runtime"] == "eager" and isinstance(lat["trusted"], bool)
    assert doc["timing"]["kind"] == "predicted" and doc["query"]["params"]["latency"] == "predicted"
    assert "latency, predicted (eager): " in invoke("info", tiny).output
    r = invoke("info", tiny, "--optimize", *SHORT)  # --optimize measures
    assert "latency, measured (eager): " in r.output and "optimised: " in r.output
    assert "x the eager speed" in r.output and "95% interval" in r.output
    assert "fp32 matmul peak" in r.output and "Latency MEASURED" in r.output
    doc = as_json("info", tiny, "--optimize", *SHORT)
    assert_valid(doc)
    rec = doc["records"][0]
    assert (rec["params"], rec["macs"], rec["acts"]) == (counted["params"], counted["macs"],
                                                         counted["acts"])
    assert_sane(rec["latency"], rec["macs"])
    assert rec["latency"]["runs"] >= 10  # the command line's harness: at least 10 timed runs
    lo, hi = rec["latency"]["optimized"]["speedup_interval"]
    assert lo <= rec["latency"]["optimized"]["speedup"] <= hi
    assert doc["query"]["params"]["latency"] == "measured"


def test_scale_times_baseline_and_scaled(tiny):
    doc = as_json("scale", tiny, "--width", "2", *MEASURED)
    base, scaled = doc["records"]
    for rec in (base, scaled):
        assert_sane(rec["latency"], rec["macs"])
    out = invoke("scale", tiny, "--width", "2", *MEASURED).output
    assert "measured ms ± IQR (eager)" in out and "GFLOP/s (% peak)" in out and "of MACs" in out


def test_scale_interrupted_writes_no_out_spec(tiny, tmp_path, monkeypatch, capsys):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(timing, "measure_interleaved", interrupt)
    out = tmp_path / "scaled.yaml"
    with pytest.raises(SystemExit) as e:
        main(["scale", tiny, "--width", "2", "--latency", "measured", "--out", str(out)])
    assert e.value.code == 130
    assert not out.exists()
    assert "interrupted while timing" in capsys.readouterr().err


def test_memory_guard_refuses_before_timing(tmp_path):
    huge = tmp_path / "huge.yaml"
    huge.write_text("name: huge\nresolution: 20000\nstem: {out: 64}\n"
                    "stages:\n  - {block: conv, out: 300000, stride: 2}\n")
    r = run_cli("info", str(huge), "--latency", "measured")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs about" in lines[0] and "--force" in lines[0]


def test_compare_latency_columns(tiny):
    out = invoke("compare", tiny, "--mode", "width", *MEASURED).output
    assert "measured ms ± IQR (eager)" in out and "GFLOP/s (% peak)" in out
    recs = as_json("compare", tiny, "--mode", "width", *MEASURED)["records"]
    assert [r["mode"] for r in recs] == ["baseline", "width"]
    for rec in recs:
        assert_sane(rec["latency"], rec["macs"])


def test_sweep_stays_count_only_unless_asked(tiny):
    recs = as_json("sweep", tiny, "--mode", "width", "--values", "1,2")["records"]
    assert all(r["latency"] is None for r in recs)


def test_no_latency_never_imports_torch(tiny):
    code = ("import sys\nfrom click.testing import CliRunner\nfrom scalekit.cli import cli\n"
            f"for args in (['info', {tiny!r}, '--no-latency'],"
            f" ['scale', {tiny!r}, '--width', '2', '--no-latency', '--format', 'csv'],"
            " ['compare', '--table', '2', '--table', '3', '--no-latency'],"
            " ['compare', '--match', 'macs', '--no-latency', '--format', 'json'],"
            f" ['sweep', {tiny!r}, '--no-latency']):\n"
            "    r = CliRunner().invoke(cli, args)\n"
            "    assert r.exit_code == 0, r.output\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\nprint('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "ok", out.stderr


# ---------------------------------------------------------------------------------------------
# compare --table 4


def fake_interleaved(models, resolutions, **kw):
    """The harness's answer for the two Table 4 networks, told apart by input size (ResNet-152
    at 224 px, EfficientNet-B1 at 240 px): 400 ms and 80 ms, so our speedup is 5.0x."""
    out = []
    for resolution in resolutions:
        median = 400.0 if tuple(resolution) == (224, 224) else 80.0
        out.append(Latency.from_samples([median * 0.99, median, median * 1.02, median * 1.01],
                                        warmup=kw["warmup"], threads=kw["threads"],
                                        batch=kw["batch"], cpu_share=1.0))
    return out


def test_table4_paper_figures_and_our_speedup(monkeypatch, published):
    monkeypatch.setattr(timing, "measure_interleaved", fake_interleaved)
    monkeypatch.setattr(build, "build_model", lambda plan: torch.nn.Identity())  # not timed
    doc = as_json("compare", "--table", "4", "--latency", "measured")
    assert_valid(doc)
    recs = {r["name"]: r for r in doc["records"]}
    assert list(recs) == ["ResNet-152", "EfficientNet-B1"]
    paper = published["paper"]["table4"]
    for name, rec in recs.items():
        assert rec["reference"]["paper_top1"] == paper[name]["top1"]
        assert rec["reference"]["paper_latency_s"] == paper[name]["latency_s"]
    assert recs["EfficientNet-B1"]["reference"]["paper_speedup"] == paper["speedup"]
    assert recs["ResNet-152"]["params"] == published["exact_224"]["resnet152"]["params"]
    assert recs["ResNet-152"]["macs"] == published["exact_224"]["resnet152"]["macs"]
    b1 = published["torchvision"]["efficientnet_b1"]
    assert recs["EfficientNet-B1"]["params"] == b1["params"]
    assert recs["EfficientNet-B1"]["resolution"] == b1["resolution"]
    assert recs["EfficientNet-B1"]["latency"]["median_ms"] == pytest.approx(80.4)
    rel = recs["EfficientNet-B1"]["latency"]["speedup_over_first"]
    assert rel["to"] == "ResNet-152" and rel["speedup"] == pytest.approx(5.0)
    assert rel["interval"][0] <= 5.0 <= rel["interval"][1]  # paired samples: a tight interval
    table = invoke("compare", "--table", "4", "--latency", "measured").output
    assert "Table 4" in table and "0.554" in table and "0.098" in table and "5.7x" in table
    assert "runs 5.0x (" in table and "as fast as ResNet-152 here (the paper: 5.7x)" in table
    assert "timed interleaved" in table and "1 thread, batch 1" in table


def test_table4_baseline_is_recounted_by_check(monkeypatch, tmp_path):
    monkeypatch.setattr(timing, "measure_interleaved", fake_interleaved)
    monkeypatch.setattr(build, "build_model", lambda plan: torch.nn.Identity())
    baseline = tmp_path / "t4.json"
    invoke("compare", "--table", "4", "--latency", "measured", "--format", "json", "-o",
           str(baseline))
    monkeypatch.setattr(timing, "measure_interleaved", None)  # a counts-only check times nothing
    r = invoke("check", "-b", str(baseline))
    assert "2 models compared" in r.output and "latency not compared" in r.output


def test_table4_needs_latency():
    r = run_cli("compare", "--table", "4", "--no-latency")
    assert r.returncode == 2 and "latency table" in r.stderr and "Traceback" not in r.stderr


# ---------------------------------------------------------------------------------------------
# Ctrl-C: what was measured so far on stderr, no report, exit 130


def test_interrupt_reports_what_was_measured_and_writes_nothing(tmp_path, monkeypatch, capsys):
    specs = []
    for name in ("TinyA", "TinyB"):
        specs.append(tmp_path / f"{name}.yaml")
        specs[-1].write_text(TINY.format(name=name))
    calls = []
    real = timing.measure_interleaved

    def second_is_interrupted(models, resolutions, **kw):
        calls.append(resolutions)
        if len(calls) == 2:  # TinyB, after 2 timed runs
            raise LatencyInterrupted(Latency.from_samples([5.0, 7.0], warmup=1, threads=1,
                                                          batch=1))
        return real(models, resolutions, **kw)

    monkeypatch.setattr(timing, "measure_interleaved", second_is_interrupted)
    out = tmp_path / "report.json"
    out.write_text("old\n")
    with pytest.raises(SystemExit) as e:
        main(["bench", *map(str, specs), *QUICK, "--format", "json", "-o", str(out)])
    assert e.value.code == 130
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err
    assert "interrupted while timing TinyB" in err and "1 of 2 models timed" in err
    assert "TinyA: " in err and "ms median" in err
    assert "TinyB: 6.0 ms median, IQR 1.0 ms, 2 runs (unfinished)" in err  # the IQR's digits
    assert err.rstrip().endswith("scalekit: interrupted") and "Traceback" not in err
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["TinyA.yaml", "TinyB.yaml",
                                                          "report.json"]


def test_sigint_while_timing_exits_130_without_output(tiny, tmp_path):
    """A real Ctrl-C: a measurement that would never end, interrupted once it has started."""
    out = tmp_path / "report.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("SCALEKIT_DEBUG", None)
    p = subprocess.Popen([sys.executable, "-c", "from scalekit.cli import main; main()", "bench",
                          tiny, "--min-runs", "1000000", "--max-runs", "1000000",
                          "--time-budget", "100000", "--format", "json", "--output", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         cwd=ROOT)
    try:
        line = p.stderr.readline()  # printed as the timing starts
        assert "scalekit: timing Tiny" in line, line
        p.send_signal(signal.SIGINT)
        stdout, stderr = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, stderr
    assert stdout == "" and "Traceback" not in stderr
    assert "interrupted while timing Tiny" in stderr and "no report written" in stderr
    assert stderr.rstrip().endswith("scalekit: interrupted")
    assert not out.exists() and not list(tmp_path.glob(".scalekit-*"))


# ---------------------------------------------------------------------------------------------
# scalekit check against a baseline with latency


def test_check_recounts_a_timed_baseline_without_timing_it(tiny, tmp_path):
    baseline = tmp_path / "timed.json"
    invoke("info", tiny, *MEASURED, "--format", "json", "-o", str(baseline))
    doc = json.loads(baseline.read_text())
    assert doc["records"][0]["latency"] and doc["query"]["params"]["latency"] == "measured"
    assert_no_torch(["check", "-b", str(baseline)], expect="latency not compared")
    # asked to compare latency, it times again (a tolerance no machine can fail: no timing test)
    r = invoke("check", "-b", str(baseline), "--latency-tolerance", "1e9%")
    assert "1 of 1 model timed on both sides" in " ".join(r.output.split())

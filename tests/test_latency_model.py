"""Latency you can trust and latency you can predict: the trust flag (CPU share, spread), the
digits a spread supports, interleaved comparisons and their intervals, the peaks, and the
per-machine latency table (keys, prediction, calibration, a corrupt or unwritable cache, no
torch when it is warm).

Nothing here asserts that anything is fast, slow or accurate to a number: the machine is shared.
What is checked is what must hold whatever the machine (a contended run is flagged, a prediction
is the calibrated sum of the table's entries, a bad cache is rebuilt with one line). Tiny
networks and tiny harnesses keep it fast; calibration is on two tiny networks here (the real
one, on four bundled networks, is benchmarks/latency_model.py's business).
"""

from __future__ import annotations

import json
import math
import os
import stat
import statistics
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from scalekit.cli import cli
from scalekit.latency import machine, networks, pieces, prediction, table
from scalekit.latency.harness import (MAX_REL_SPREAD, MIN_CPU_SHARE, Latency, distrust,
                                      ratio_interval)
from scalekit.latency.table import LatencyTable, network_pieces, piece_key, table_key
from scalekit.plan import expand
from scalekit.queries import QueryError, make_query
from scalekit.report import tables
from scalekit.spec import load_spec

from .conftest import ROOT

TINY = """\
name: {name}
resolution: 32
num_classes: 10
stem: {{out: 8, stride: 2}}
stages:
  - {{block: mbconv, out: 16, stride: 2, expand: 4, se: 0.25, repeats: 2}}
  - {{block: dwsep, out: {wide}, stride: 2}}
"""


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.format(name="Tiny", wide=32))
    return str(path)


@pytest.fixture
def small_calibration(monkeypatch, tmp_path):
    """Calibrate on two tiny networks instead of the four bundled ones (in this process), in a
    cache directory of the test's own."""
    specs = []
    for name, wide in (("CalA", 24), ("CalB", 40)):
        p = tmp_path / f"{name}.yaml"
        p.write_text(TINY.format(name=name, wide=wide))
        specs.append(expand(load_spec(str(p))))
    monkeypatch.setattr(pieces, "calibration_plans", lambda batch: specs)
    monkeypatch.setattr(pieces, "CALIBRATION_HARNESS", {"warmup": 1, "min_runs": 3,
                                                       "max_runs": 5, "budget_s": 0.2})
    monkeypatch.setattr(pieces, "PIECE_HARNESS", {"warmup": 1, "min_runs": 3, "max_runs": 5,
                                                 "budget_s": 0.2})
    cache = tmp_path / "cache"
    monkeypatch.setenv("SCALEKIT_CACHE_DIR", str(cache))
    return cache


def run(*args: str):
    r = CliRunner().invoke(cli, list(args))
    return r


def table_file(cache, runtime: str = "eager", threads: int = 1) -> str:
    return LatencyTable.file_for(table_key(threads, runtime, None), str(cache))


# ---------------------------------------------------------------------------------------------
# trust: the CPU share and the spread


def test_a_contended_or_spread_measurement_is_flagged_with_its_reason():
    quiet = Latency.from_samples([10.0, 10.1, 10.2, 9.9], warmup=1, threads=1, batch=1,
                                 cpu_share=0.99)
    assert quiet.trusted and quiet.to_dict()["reason"] is None
    busy = Latency.from_samples([10.0, 10.1, 10.2, 9.9], warmup=1, threads=1, batch=1,
                                cpu_share=0.5)
    d = busy.to_dict()
    assert d["trusted"] is False and "contended" in d["reason"] and "50%" in d["reason"]
    wide = Latency.from_samples([5.0, 10.0, 15.0, 20.0], warmup=1, threads=1, batch=1,
                                cpu_share=1.0)
    assert not wide.trusted and "wide spread" in wide.distrust
    assert distrust(MIN_CPU_SHARE, MAX_REL_SPREAD) is None  # the thresholds themselves pass


def test_the_median_gets_no_more_digits_than_its_spread_supports():
    assert tables.latency_text({"median_ms": 250.2, "iqr_ms": 101.8}) == "250 ± 100"
    assert tables.latency_text({"median_ms": 35.21, "iqr_ms": 0.76}) == "35.21 ± 0.76"
    assert tables.latency_text({"median_ms": 147.6, "iqr_ms": 7.28}) == "147.6 ± 7.3"
    assert tables.latency_text({"median_ms": 1204.3, "iqr_ms": 0.0}) == "1,204.3 ± 0.0"
    # a prediction: 3 significant digits, no more
    assert [tables.predicted_text({"predicted_ms": v}) for v in (0.4123, 24.54, 245.4)] == \
        ["0.412", "24.5", "245"]


def test_interleaved_ratio_interval_is_paired_seeded_and_contains_the_ratio():
    a = Latency.from_samples([40.0, 44.0, 41.0, 60.0, 42.0, 43.0], warmup=0, threads=1, batch=1)
    b = Latency.from_samples([10.0, 11.0, 10.2, 15.0, 10.5, 10.7], warmup=0, threads=1, batch=1)
    ratio, lo, hi = ratio_interval(a, b)
    assert ratio == pytest.approx(a.median_ms / b.median_ms)
    assert lo <= ratio <= hi
    assert ratio_interval(a, b) == (ratio, lo, hi)  # seeded: the same samples, the same interval
    alone = Latency.from_samples([40.0], warmup=0, threads=1, batch=1)
    assert ratio_interval(alone, alone) == (1.0, 1.0, 1.0)


def test_bench_beside_a_busy_process_on_its_core_is_flagged(tiny):
    """A busy loop on the same CPU as `bench`: the result says it is not to be trusted."""
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("needs CPU affinity (Linux)")
    cpu = min(os.sched_getaffinity(0))
    pin = lambda: os.sched_setaffinity(0, {cpu})  # noqa: E731
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"], preexec_fn=pin)
    try:
        time.sleep(0.2)
        r = subprocess.run([sys.executable, "-c", "from scalekit.cli import main; main()",
                            "bench", tiny, "--min-runs", "20", "--max-runs", "400",
                            "--time-budget", "0.5", "--format", "json"],
                           capture_output=True, text=True, preexec_fn=pin, cwd=ROOT, timeout=120)
    finally:
        busy.kill()
        busy.wait()
    assert r.returncode == 0, r.stderr
    lat = json.loads(r.stdout)["records"][0]["latency"]
    assert lat["trusted"] is False and "contended" in lat["reason"]
    assert lat["cpu_share"] < MIN_CPU_SHARE


def test_bench_table_shows_the_flag_and_the_reason(tiny, monkeypatch):
    real = networks.measure_interleaved

    def contended(*args, **kwargs):
        return [Latency.from_samples(lat.samples_ms, warmup=lat.warmup, threads=lat.threads,
                                     batch=lat.batch, cpu_share=0.42)
                for lat in real(*args, **kwargs)]

    monkeypatch.setattr(networks, "measure_interleaved", contended)
    r = run("bench", tiny, "--min-runs", "3", "--max-runs", "3", "--warmup", "0")
    assert r.exit_code == 0, r.output
    assert "eager !" in r.output and "0.42" in r.output
    assert "! Tiny (d=1, w=1, 32px): not to be trusted (contended: the process had 42%" in \
        " ".join(r.output.split()) or "! Tiny: not to be trusted (contended" in r.output


# ---------------------------------------------------------------------------------------------
# peaks: measured (best of several sizes), theoretical, and never above 100%


def test_flops_per_cycle_from_the_cpu():
    assert machine.flops_per_cycle("AuthenticAMD", 0x19, 0x11, {"avx512f", "fma"})[0] == 32
    assert machine.flops_per_cycle("AuthenticAMD", 0x17, 0x01, {"avx2", "fma"})[0] == 16
    assert machine.flops_per_cycle("AuthenticAMD", 0x17, 0x31, {"avx2", "fma"})[0] == 32
    assert machine.flops_per_cycle("GenuineIntel", 6, 85, {"avx512f", "avx2", "fma"})[0] == 64
    assert machine.flops_per_cycle("GenuineIntel", 6, 60, {"avx2", "fma"})[0] == 32
    assert machine.flops_per_cycle("", None, None, set())[0] is None


def test_theoretical_peak_is_null_when_the_measured_one_beats_it():
    theory = machine.theoretical_peak(1)
    if theory.gflops is None:
        assert theory.basis  # says why
        return
    assert theory.gflops > 0 and "GHz" in theory.basis
    beaten = machine.theoretical_peak(1, measured=theory.gflops * 2)
    assert beaten.gflops is None and "below the measured" in beaten.basis


def test_a_network_above_the_peak_is_never_shown_above_100_percent(monkeypatch):
    monkeypatch.setattr(networks, "peak_gflops", lambda threads, **kw: 10.0)
    lat = Latency.from_samples([1.0, 1.0, 1.0], warmup=0, threads=1, batch=1)
    stats = networks._stats(lat, 10**9, 10.0)  # 2000 GFLOP/s against a peak of 10
    networks._cap_to_peak(stats, 1)
    assert stats["peak_fraction"] is None and "peak" in stats["peak_note"]
    assert tables.peak_share(stats) == "n/a"
    assert tables.peak_share({"peak_fraction": 1.3}) == "100%"  # and never printed above


def test_peak_is_the_best_of_several_sizes():
    machine._PEAK_CACHE.clear()
    best = machine.peak_gflops(1, sizes=(64, 128), budget_s=0.05)
    one = machine.peak_gflops(1, sizes=(64,), budget_s=0.05)
    assert math.isfinite(best) and best > 0 and one > 0


# ---------------------------------------------------------------------------------------------
# the latency table


def test_piece_keys_ignore_training_only_fields_and_count_repeats(tiny):
    plan = expand(load_spec(tiny))
    blocks = list(plan.blocks())
    from dataclasses import replace

    b = blocks[2]  # the second mbconv block of the stage: same wiring as the first? not quite
    assert piece_key(replace(b, drop_path=0.3), 1) == piece_key(b, 1)
    assert piece_key(b, 1) != piece_key(b, 2)  # the batch is part of the key
    assert piece_key(replace(b, cin=b.cin + 8), 1) != piece_key(b, 1)
    found = network_pieces(plan, 1)
    assert sum(n for _, n in found.values()) == len(blocks)


def test_prediction_is_the_calibrated_sum_of_the_table(tiny, small_calibration, monkeypatch):
    r = run("info", tiny, "--format", "json")
    assert r.exit_code == 0, r.output
    lat = json.loads(r.stdout)["records"][0]["latency"]
    assert lat["kind"] == "predicted"
    data = json.loads(open(table_file(small_calibration)).read())
    plan = expand(load_spec(tiny))
    cal = data["calibration"]["1"]
    total = sum(n * data["pieces"][k][0] for k, (_, n) in network_pieces(plan, 1).items())
    assert lat["sum_ms"] == pytest.approx(total)
    assert lat["predicted_ms"] == pytest.approx(cal["factor"] * total)
    ratios = [n["measured_ms"] / n["sum_ms"] for n in cal["networks"]]
    assert cal["factor"] == pytest.approx(statistics.median(ratios))
    assert data["key"]["threads"] == 1 and data["key"]["runtime"] == "eager"
    # pieces timed while contended are timed again only on a quiet machine, a few times: here
    # the machine reads as contended from now on (as a shared CI machine may be, or not), so a
    # warm table must time nothing, whatever this machine's load was when it was filled
    monkeypatch.setattr(prediction, "cpu_share_now", lambda seconds=0.0: 0.0)
    warm = [CliRunner().invoke(cli, ["info", tiny, "--format", "json"]) for _ in range(2)]
    assert all("timing" not in r.stderr for r in warm)  # warm: nothing timed
    first, second = (json.loads(r.stdout)["records"][0]["latency"] for r in warm)
    assert first == second  # and the same answer: lookups, not measurements


def test_a_warm_table_predicts_without_torch(tiny, small_calibration):
    assert run("info", tiny).exit_code == 0  # warm
    # settled: what was timed on a contended machine has used its retries (else a quiet moment
    # now would time it again, with torch, which is right but not this test's case)
    path = table_file(small_calibration)
    data = json.loads(open(path).read())
    for piece in data["pieces"].values():
        piece[4] = table.RETRIES + 1
    for cal in data["calibration"].values():
        cal["attempts"] = table.RETRIES + 1
    with open(path, "w") as f:
        json.dump(data, f)
    code = ("import sys\nfrom click.testing import CliRunner\nfrom scalekit.cli import cli\n"
            f"r = CliRunner().invoke(cli, ['info', {tiny!r}, '--format', 'json'])\n"
            "assert r.exit_code == 0, r.output\n"
            "assert 'predicted_ms' in r.output\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\nprint('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "SCALEKIT_CACHE_DIR": str(small_calibration)})
    assert out.stdout.strip() == "ok", out.stderr


@pytest.mark.parametrize("garbage", ["{not json", '{"format": 1, "key": {}, "pieces": {}}',
                                     "BAD PIECE"])
def test_a_corrupt_table_is_one_line_and_rebuilt(tiny, small_calibration, garbage):
    assert run("info", tiny).exit_code == 0
    path = table_file(small_calibration)
    if garbage == "BAD PIECE":  # valid JSON, a piece with a negative time
        data = json.loads(open(path).read())
        k = next(iter(data["pieces"]))
        data["pieces"][k][0] = -1.0
        garbage = json.dumps(data)
    with open(path, "w") as f:
        f.write(garbage)
    r = CliRunner().invoke(cli, ["info", tiny, "--format", "json"])
    assert r.exit_code == 0, r.output
    warnings = [ln for ln in r.stderr.splitlines() if "warning" in ln]
    assert len(warnings) == 1 and path in warnings[0] and "rebuilding" in warnings[0]
    json.loads(r.stdout)  # the report is whole
    rebuilt = table.parse_table(open(path).read(), table_key(1, "eager", None))
    assert rebuilt["pieces"] and 1 in rebuilt["calibration"]  # valid again, never trusted as was


def test_a_table_that_is_not_a_regular_file_never_blocks(tiny, small_calibration):
    if not hasattr(os, "mkfifo"):
        pytest.skip("needs FIFOs")
    path = table_file(small_calibration)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.mkfifo(path)  # a reader that opened it would wait for a writer forever
    r = CliRunner().invoke(cli, ["info", tiny, "--format", "json"])
    assert r.exit_code == 0, r.output
    warnings = [ln for ln in r.stderr.splitlines() if "warning" in ln]
    assert len(warnings) == 1 and "not a regular file" in warnings[0]
    assert "not cached" in warnings[0]
    assert json.loads(r.stdout)["records"][0]["latency"]["predicted_ms"] > 0
    assert stat.S_ISFIFO(os.stat(path).st_mode)  # left as it was: not scalekit's to replace


def test_an_unwritable_cache_is_one_line_and_the_report_still_comes(tiny, small_calibration,
                                                                    tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    monkeypatch.setenv("SCALEKIT_CACHE_DIR", str(blocker / "cache"))
    r = CliRunner().invoke(cli, ["info", tiny, "--format", "json"])
    assert r.exit_code == 0, r.output
    warnings = [ln for ln in r.stderr.splitlines() if "warning" in ln]
    assert len(warnings) == 1 and "cannot write the latency table" in warnings[0]
    assert json.loads(r.stdout)["records"][0]["latency"]["predicted_ms"] > 0


def test_a_contended_piece_is_timed_again_then_settles(tiny):
    t = LatencyTable(table_key(1, "eager", None), "/nonexistent/x.json")
    t.put("k", 1.0, 0.1, 5, 0.4)
    assert not t.pieces["k"].settled
    t.put("k", 2.0, 0.1, 5, 0.3)  # less trusted still: the first is kept
    assert t.pieces["k"].ms == 1.0 and t.pieces["k"].attempts == 2
    t.put("k", 3.0, 0.1, 5, 0.95)  # trusted: replaces it
    assert t.pieces["k"].ms == 3.0 and t.pieces["k"].settled


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SCALEKIT_CACHE_DIR", str(tmp_path / "x"))
    assert table.cache_dir() == str(tmp_path / "x")
    monkeypatch.delenv("SCALEKIT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert table.cache_dir() == str(tmp_path / "xdg" / "scalekit")


# ---------------------------------------------------------------------------------------------
# the options


def test_latency_parameter_reads_stored_booleans_and_the_new_kinds():
    assert make_query("info", {"spec": "x", "latency": True}).params["latency"] == "measured"
    assert make_query("info", {"spec": "x", "latency": False}).params["latency"] is False
    assert make_query("info", {"spec": "x"}).params["latency"] == "predicted"
    assert make_query("sweep", {"spec": "x"}).params["latency"] is False
    for kind in ("predicted", "measured", "both"):
        assert make_query("compare", {"latency": kind}).params["latency"] == kind
    with pytest.raises(QueryError, match="latency"):
        make_query("info", {"spec": "x", "latency": "sometimes"})
    with pytest.raises(QueryError, match="runtime"):
        make_query("info", {"spec": "x", "runtime": "tvm"})


@pytest.mark.parametrize("args,words", [
    (("--latency", "measured", "--no-latency"), "contradict"),
    (("--latency", "predicted", "--optimize"), "--optimize"),
    (("--latency", "measured", "--optimize", "--runtime", "onnxruntime"), "--runtime eager"),
    (("--threads", "100000"), "cores available"),
])
def test_contradicting_latency_options_are_usage_errors(tiny, args, words):
    r = CliRunner().invoke(cli, ["info", tiny, *args])
    assert r.exit_code == 2 and words in r.output and "Traceback" not in r.output


def test_onnxruntime_missing_is_one_line_naming_the_extra(tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    for args in (["info", tiny, "--runtime", "onnxruntime"],
                 ["bench", tiny, "--runtime", "onnxruntime"]):
        r = CliRunner().invoke(cli, args)
        assert r.exit_code == 1, r.output
        lines = r.output.strip().splitlines()
        assert lines[-1] == ("Error: --runtime onnxruntime needs onnxruntime: pip install "
                             "'scalekit-cnn[onnx]'")


def test_every_runtime_is_labelled_in_the_table(tiny):
    pytest.importorskip("onnxruntime")
    for runtime, label in (("optimized", "optimised"), ("onnxruntime", "onnxruntime")):
        r = run("compare", tiny, "--mode", "width", "--latency", "measured", "--runtime",
                runtime, "--time-budget", "0.1")
        assert r.exit_code == 0, r.output
        assert f"measured ms ± IQR ({label})" in r.output and "runtime" in r.output


# ---------------------------------------------------------------------------------------------
# predictions in the reports: both, fit on predictions confirmed by measurement


def test_both_puts_prediction_beside_measurement(tiny, small_calibration):
    r = run("info", tiny, "--latency", "both", "--time-budget", "0.1", "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    lat = doc["records"][0]["latency"]
    assert lat["kind"] == "both" and lat["median_ms"] > 0 and lat["predicted_ms"] > 0
    assert lat["prediction_error"] == pytest.approx(lat["predicted_ms"] / lat["median_ms"] - 1)
    assert doc["timing"]["kind"] == "both" and doc["timing"]["prediction"]["kind"] == "predicted"
    out = run("compare", tiny, "--mode", "width", "--latency", "both", "--time-budget",
              "0.1").output
    for header in ("predicted ms (eager)", "measured ms ± IQR (eager)", "pred. error"):
        assert header in out, header
    assert "Latency PREDICTED" in out and "Latency MEASURED" in out


def test_fit_searches_predictions_and_confirms_by_measurement(tiny, small_calibration):
    predicted = json.loads(run("info", tiny, "--format", "json").stdout)
    target = 4 * predicted["records"][0]["latency"]["predicted_ms"]
    r = run("fit", tiny, "--target-latency", f"{target}ms", "--mode", "resolution",
            "--max-measurements", "3", "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    fit, (_, best, above) = doc["fit"], doc["records"]
    assert fit["latency"] == "predicted" and fit["measured"] is False
    assert best["latency"]["kind"] == above["latency"]["kind"] == "both"  # measured to confirm
    assert best["latency"]["predicted_ms"] == fit["achieved"] <= target  # searched on these
    assert above["latency"]["predicted_ms"] == fit["next"]["achieved"]
    conf = fit["confirmed"]
    assert conf["measured_ms"] == best["latency"]["median_ms"]
    assert conf["within_target"] == (conf["measured_ms"] <= target)
    table_text = run("fit", tiny, "--target-latency", f"{target}ms", "--mode", "resolution",
                     "--max-measurements", "3").output
    assert "LATENCY IS PREDICTED" in table_text and "measured whole" in table_text
    assert ("CONFIRMED" in table_text) and "predicted ms" in table_text

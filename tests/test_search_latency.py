"""``scalekit search --cost latency``: step 1 under a latency target instead of a MACs one.

The grid is checked against a brute-force enumeration that scales every point of the box itself
and reads each network's prediction off the latency table (the prediction's own accuracy is
test_latency_model.py's and benchmarks/latency_model_report.md's business); the confirmation of
the pick is checked for what must hold whatever the machine (its ratio is its two measurements'
ratio, its verdict follows from the target and tolerance). Calibration is on two tiny networks
(test_latency_model's fixture), in a cache of the test's own.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from click.testing import CliRunner

import scalekit
from scalekit.cli import cli
from scalekit.latency.networks import TimingOptions
from scalekit.latency import prediction
from scalekit.latency.prediction import predict_records
from scalekit.records import make_record, network_key
from scalekit.scaling import coefficients, scale
from scalekit.spec import load_spec

from .test_latency_model import small_calibration  # noqa: F401  (a fixture)
from .test_search import FAKE, FINE, PY

pytestmark = pytest.mark.torch  # blocks the latency table lacks are timed

BOX = {"alpha": "1.0:1.2", "beta": "1.0:1.1", "gamma": "1.0:1.1", "step": "0.1"}


def _values(text: str) -> list[Decimal]:
    lo, hi = (Decimal(v) for v in text.split(":"))
    step = Decimal(BOX["step"])
    return [lo + i * step for i in range(int((hi - lo) / step) + 1)]


def brute_force(path: str) -> tuple[float, dict[tuple, float]]:
    """Every point of BOX scaled here, every distinct network predicted: (the baseline's
    predicted ms, {network_key: predicted ratio})."""
    base = load_spec(path)
    recs = {}
    for a in _values(BOX["alpha"]):
        for b in _values(BOX["beta"]):
            for g in _values(BOX["gamma"]):
                coef = coefficients(base, phi=1.0, alpha=float(a), beta=float(b), gamma=float(g))
                net = scale(base, coef)
                recs.setdefault(network_key(net), make_record(net, coefficients=coef))
    preds, _ = predict_records([make_record(base), *recs.values()],
                               TimingOptions(kind="predicted"), say=lambda _: None)
    base_ms = preds[0].latency["predicted_ms"]
    return base_ms, {k: p.latency["predicted_ms"] / base_ms for k, p in zip(recs, preds[1:])}


def closed_form(spec, seed):
    """Highest at d, w, r = 1.2, 1.1, 1.15 (the baseline itself, scaled by 1, has no origin)."""
    d, w = (spec.origin.depth, spec.origin.width) if spec.origin else (1.0, 1.0)
    return 1 - ((d - 1.2) ** 2 + (w - 1.1) ** 2 + (spec.resolution / 64 - 1.15) ** 2)


@pytest.fixture(autouse=True)
def settled(monkeypatch):
    """The machine reads as contended, so a piece timed while it was is never timed again in a
    quiet moment: the table each test fills first stays what the search and the brute force
    both read (on a shared machine it would otherwise change between them)."""
    monkeypatch.setattr(prediction, "cpu_share_now", lambda seconds=0.0: 0.0)


@pytest.fixture
def fine(tmp_path):
    p = tmp_path / "fine.yaml"
    p.write_text(FINE)
    return str(p)


def test_the_grid_keeps_exactly_the_networks_whose_predicted_ratio_is_within(
        fine, small_calibration):  # noqa: F811
    base_ms, ratios = brute_force(fine)
    ordered = sorted(ratios.values())
    target = ordered[len(ordered) // 2]
    tolerance = (ordered[-1] - ordered[0]) / 4
    res = scalekit.search(fine, dry_run=True, cost="latency", target=round(target, 6),
                          tolerance=round(tolerance, 6), **BOX)
    want = {k for k, r in ratios.items() if abs(r - round(target, 6)) <= round(tolerance, 6)}
    got = {network_key(c.spec): c for c in res.grid.candidates}
    assert set(got) == want and 0 < len(want) < len(ratios)
    for k, c in got.items():
        assert c.latency_ratio == pytest.approx(ratios[k])
        assert c.achieved == c.record.macs / res.grid.baseline.macs  # the MACs ratio beside it
    assert res.grid.baseline_latency["predicted_ms"] == pytest.approx(base_ms)
    assert res.grid.settings.constrain == "achieved" and res.confirmed is None  # a dry run


def test_an_evaluated_latency_search_confirms_its_pick_by_measurement(
        fine, small_calibration):  # noqa: F811
    _, ratios = brute_force(fine)
    target = sorted(ratios.values())[len(ratios) // 2]
    res = scalekit.search(fine, evaluate=closed_form, cost="latency", target=round(target, 6),
                          tolerance=1.0, **BOX)
    conf, best = res.confirmed, res.best
    assert best is not None and conf is not None
    assert conf["measured_ms"] > 0 and conf["baseline_ms"] > 0
    assert conf["measured_ratio"] == pytest.approx(conf["measured_ms"] / conf["baseline_ms"])
    assert conf["predicted_ratio"] == best.candidate.latency_ratio
    assert conf["within_tolerance"] == (abs(conf["measured_ratio"] - round(target, 6)) <= 1.0)
    # the best is what the closed form says among the kept candidates
    top = max(res.grid.candidates, key=lambda c: closed_form(c.spec, 0))
    assert best.candidate.key == top.key


def test_the_reports_say_the_latency_is_predicted_and_show_the_confirmation(
        fine, small_calibration, tmp_path):  # noqa: F811
    fake = tmp_path / "fake.py"
    fake.write_text(FAKE)
    args = ["search", fine, "--cost", "latency", "--target", "1.5", "--tolerance", "1.0",
            "--alpha", BOX["alpha"], "--beta", BOX["beta"], "--gamma", BOX["gamma"],
            "--step", BOX["step"], "--journal", str(tmp_path / "j.jsonl"),
            "--evaluate", f"{PY} {fake} --spec {{spec}} --out {{out}}"]
    r = CliRunner().invoke(cli, [*args, "--format", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["search"]["cost"] == "latency" and doc["search"]["constrain"] == "achieved"
    assert doc["baseline"]["predicted_latency_ms"] > 0
    assert doc["timing"]["kind"] == "predicted" and doc["timing"]["threads"] == 1
    conf = doc["confirmed"]
    assert conf["measured_ratio"] == pytest.approx(conf["measured_ms"] / conf["baseline_ms"])
    for c in doc["candidates"]:
        assert c["latency_ratio"] == pytest.approx(
            c["predicted_latency_ms"] / doc["baseline"]["predicted_latency_ms"])
        assert abs(c["latency_ratio"] - 1.5) <= 1.0
    table = CliRunner().invoke(cli, args)  # resumed from the journal: only the pick re-measured
    assert table.exit_code == 0, table.output
    assert "latency" in table.stdout and "PREDICTED latency" in table.stdout
    assert "measured whole, interleaved" in table.stdout
    csv = CliRunner().invoke(cli, [*args, "--format", "csv"])
    assert csv.stdout.splitlines()[0].split(",")[6] == "latency_ratio"


@pytest.mark.parametrize("extra,says", [
    (["--constrain", "nominal"], "a latency has no nominal form"),
    (["--cost", "flops"], "'flops' is not one of"),
])
def test_bad_latency_settings_are_usage_errors(fine, extra, says):
    r = CliRunner().invoke(cli, ["search", fine, "--dry-run", "--cost", "latency", *extra])
    assert r.exit_code == 2 and says in r.output and "Traceback" not in r.output


def test_a_macs_search_loads_no_latency_code(fine):
    import subprocess
    import sys

    code = ("import sys\nfrom click.testing import CliRunner\nfrom scalekit.cli import cli\n"
            f"r = CliRunner().invoke(cli, ['search', {fine!r}, '--dry-run'])\n"
            "assert r.exit_code == 0, r.output\n"
            "bad = [m for m in sys.modules if m.startswith(('scalekit.latency', 'torch'))]\n"
            "assert not bad, bad\nprint('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr

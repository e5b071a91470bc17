"""``scalekit search`` (step 1 of compound scaling): the grid against a brute-force enumeration,
fake evaluators whose best is known in closed form, the journal (resume after a kill, failures,
--retry-failed, another search's journal refused), timeouts, Ctrl-C, bad input, the reports,
--write-spec, and the Python API. The built-in proxy and the Ray backend have their own files
(test_search_proxy.py, test_search_ray.py).

The fake evaluators are small Python scripts written into tmp_path: their metric is a closed-form
function of the candidate spec they are given, so the right answer is known without training.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

import scalekit
from scalekit.records import network_key
from scalekit.search import grid as gridmod
from scalekit.search.journal import Header, JournalError, open_journal
from scalekit.spec import load_spec

from .conftest import ROOT, assert_no_torch, run_cli, spec_path
from .test_bad_input import assert_clear_error, run_batch

PY = shlex.quote(sys.executable)

# A small network with fine-grained rounding (divisor 1, no 10% guard, long stages), so that
# nearly every grid point is its own network: the closed-form best is then a grid point, not an
# alias of one.
FINE = """\
name: Fine
resolution: 64
num_classes: 10
stem: {out: 64, stride: 2}
stages:
  - {block: dwsep, out: 96, repeats: 10, stride: 2}
  - {block: dwsep, out: 128, repeats: 10, stride: 2}
scaling: {channel_divisor: 1, min_channels: 1, round_limit: 0.0}
"""

# metric = 1 - squared distance of (d, w, r) from (1.2, 1.1, 1.15) (+ a small seed offset), read
# from the spec the evaluator is given: origin.depth / origin.width are the candidate's d and w,
# its resolution / 64 its r.
FAKE = """\
import argparse, json, os, sys, time, yaml
p = argparse.ArgumentParser()
p.add_argument("--spec"); p.add_argument("--out"); p.add_argument("--seed", type=int, default=0)
a = p.parse_args()
s = yaml.safe_load(open(a.spec))
d, w, px = s["origin"]["depth"], s["origin"]["width"], s["resolution"]
acc = 1 - ((d - 1.2) ** 2 + (w - 1.1) ** 2 + (px / 64 - 1.15) ** 2) + 0.0001 * a.seed
log = os.environ.get("FAKE_LOG")
behaviour = os.environ.get("FAKE_MODE", "")
if behaviour == "fail-large" and px >= 76:
    print("simulated crash: CUDA out of memory at px", px, file=sys.stderr)
    sys.exit(3)
if behaviour == "kill-parent":
    starts = os.environ["FAKE_STARTS"]
    with open(starts, "a") as f:
        f.write("x\\n")
    if sum(1 for _ in open(starts)) == int(os.environ["FAKE_KILL_AT"]):
        os.kill(os.getppid(), 9)  # the search process dies mid-evaluation
        sys.exit(1)
if behaviour == "wrong-key":
    json.dump({"acc": acc, "loss": 1 - acc}, open(a.out, "w"))
    sys.exit(0)
json.dump({"accuracy": acc, "loss": 1 - acc}, open(a.out, "w"))
if log:
    with open(log, "a") as f:
        f.write(json.dumps({"origin": [d, w, px], "seed": a.seed, "spec": open(a.spec).read()})
                + "\\n")
"""
GRID = ["--alpha", "1.1:1.3", "--beta", "1.0:1.2", "--gamma", "1.1:1.2", "--step", "0.05"]


@pytest.fixture
def fine(tmp_path: Path) -> Path:
    p = tmp_path / "fine.yaml"
    p.write_text(FINE)
    return p


@pytest.fixture
def fake(tmp_path: Path) -> str:
    p = tmp_path / "fake.py"
    p.write_text(FAKE)
    return f"{PY} {shlex.quote(str(p))} --spec {{spec}} --out {{out}} --seed {{seed}}"


def search_cli(*args: str, env: dict | None = None, cwd: Path | None = None):
    return run_cli("search", *args, env=env, cwd=str(cwd) if cwd else None)


def lines_of(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


# ---------------------------------------------------------------------------------------------
# the grid


def brute_force(axes, step, target, tolerance):
    """Every (alpha, beta, gamma) with lo <= v <= hi on lo + k*step, exact rational arithmetic."""
    def values(lo, hi):
        lo, hi, s = Fraction(lo), Fraction(hi), Fraction(step)
        out, v = [], lo
        while v <= hi:
            out.append(v)
            v += s
        return out
    t, tol = Fraction(target), Fraction(tolerance)
    return {(a, b, g) for a, b, g in itertools.product(*(values(*ax) for ax in axes))
            if abs(a * b * b * g * g - t) <= tol}


@pytest.mark.parametrize("axes,step,target,tolerance", [
    ((("1", "2"), ("1", "1.5"), ("1", "1.5")), "0.05", "2", "0.1"),  # the defaults
    ((("1", "1.6"), ("1", "1.3"), ("1.05", "1.35")), "0.1", "2", "0.25"),
    ((("1", "1.5"), ("1", "1.2"), ("1", "1.2")), "0.02", "1.5", "0.01"),
])
def test_the_grid_keeps_exactly_the_points_that_satisfy_the_constraint(axes, step, target,
                                                                          tolerance):
    spec = load_spec(spec_path("efficientnet_b0"))
    g = gridmod.grid_settings(alpha=":".join(axes[0]), beta=":".join(axes[1]),
                              gamma=":".join(axes[2]), step=step, target=target,
                              tolerance=tolerance)
    res = gridmod.candidates(spec, g)
    got = {(Fraction(p.alpha), Fraction(p.beta), Fraction(p.gamma))
           for c in res.candidates for p in (c.point, *c.aliases)}
    want = brute_force(axes, step, target, tolerance)
    assert got == want and res.kept == len(want)
    # merged points really are one network, and candidates are distinct networks
    keys = set()
    for c in res.candidates:
        nets = {network_key(scalekit.scale(spec, phi=1, alpha=float(p.alpha), beta=float(p.beta),
                                           gamma=float(p.gamma)))
                for p in (c.point, *c.aliases)}
        assert len(nets) == 1
        keys |= nets
        # the point that names a candidate is the one whose nominal cost is nearest the target
        assert all(abs(c.point.nominal - Decimal(target)) <= abs(p.nominal - Decimal(target))
                   for p in c.aliases)
    assert len(keys) == len(res.candidates)


def test_the_default_grid_holds_the_papers_coefficients():
    g = gridmod.grid_settings()
    pts = {tuple(float(v) for v in p) for p in gridmod.grid_points(g)}
    assert (1.2, 1.1, 1.15) in pts
    res = gridmod.candidates(load_spec(spec_path("efficientnet_b0")), g)
    kept = {p.floats() for c in res.candidates for p in (c.point, *c.aliases)}
    assert (1.2, 1.1, 1.15) in kept  # 1.2 * 1.1^2 * 1.15^2 = 1.92: within 2 +- 0.1


def test_achieved_cost_is_exact_macs_of_the_rounded_network():
    """achieved = MACs of the rounded phi = 1 network / baseline MACs, checked against torch's
    FlopCounterMode on the meta device (an independent counter)."""
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    def macs(spec):
        with torch.device("meta"):
            model = scalekit.build_model(spec).eval()
            x = torch.empty(1, 3, spec.resolution, spec.resolution)
        with FlopCounterMode(display=False) as fc:
            model(x)
        return fc.get_total_flops() // 2

    spec = load_spec(spec_path("mobilenet_v2"))
    g = gridmod.grid_settings(alpha="1.2", beta="1.1", gamma="1.15", tolerance="0.1")
    (c,) = gridmod.candidates(spec, g).candidates
    assert c.achieved == macs(c.spec) / macs(spec)
    assert abs(c.nominal - 1.2 * 1.1 ** 2 * 1.15 ** 2) < 1e-12


def test_constrain_achieved_filters_on_the_rounded_cost():
    spec = load_spec(spec_path("efficientnet_b0"))
    common = dict(alpha="1.0:1.3", beta="1.0:1.2", gamma="1.0:1.3", step="0.05", tolerance="0.1")
    nominal = gridmod.candidates(spec, gridmod.grid_settings(**common))
    achieved = gridmod.candidates(spec, gridmod.grid_settings(**common, constrain="achieved"))
    assert achieved.candidates and all(abs(c.achieved - 2) <= 0.1 for c in achieved.candidates)
    # EfficientNet-B0's one-block stages round up (ceil): most nominal-2x points cost more
    assert any(abs(c.achieved - 2) > 0.1 for c in nominal.candidates)
    assert {c.key for c in achieved.candidates} != {c.key for c in nominal.candidates}


def test_dry_run_lists_candidates_without_torch_or_ray():
    assert_no_torch(["search", "efficientnet_b0", "--dry-run"], expect="evaluations to run")
    code = ("import sys\nfrom click.testing import CliRunner\nfrom scalekit.cli import cli\n"
            "r = CliRunner().invoke(cli, ['search', 'resnet50', '--dry-run', '--format', 'json'])\n"
            "assert r.exit_code == 0, r.output\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'ray')]\n"
            "assert not bad, bad\nprint(r.output)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["best"] is None and doc["search"]["dry_run"] is True
    assert len(doc["candidates"]) == doc["search"]["networks"] > 0
    for c in doc["candidates"]:
        assert {"alpha", "beta", "gamma", "nominal_cost", "achieved_cost", "macs"} <= set(c)


# ---------------------------------------------------------------------------------------------
# evaluating: a known best, failures, the journal


def test_a_fake_evaluator_with_a_known_best_picks_it(fine, fake, tmp_path):
    out = tmp_path / "r.json"
    r = search_cli(str(fine), "--evaluate", fake, *GRID, "--journal", str(tmp_path / "j.jsonl"),
                   "--format", "json", "--output", str(out), "--workers", "2")
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    best = doc["best"]
    assert (best["alpha"], best["beta"], best["gamma"]) == (1.2, 1.1, 1.15)
    assert best["coefficients"] == {"alpha": 1.2, "beta": 1.1, "gamma": 1.15}
    assert best["aliases"] == []  # fine rounding: the best is its own network
    assert doc["candidates"][0] == best
    means = [c["metric"]["mean"] for c in doc["candidates"]]
    assert means == sorted(means, reverse=True)
    # --minimize on the fake's loss (1 - accuracy) picks the same candidate
    r = search_cli(str(fine), "--evaluate", fake, *GRID, "--journal", str(tmp_path / "j2.jsonl"),
                   "--metric", "loss", "--minimize", "--format", "json")
    assert r.returncode == 0, r.stderr
    b = json.loads(r.stdout)["best"]
    assert (b["alpha"], b["beta"], b["gamma"]) == (1.2, 1.1, 1.15)


def test_a_search_killed_halfway_resumes_without_evaluating_anything_twice(fine, fake, tmp_path):
    log = tmp_path / "completed.jsonl"
    journal = tmp_path / "j.jsonl"
    args = [str(fine), "--evaluate", fake, *GRID, "--seeds", "2", "--journal", str(journal),
            "--format", "csv"]
    env = {"FAKE_LOG": str(log), "FAKE_MODE": "kill-parent",
           "FAKE_STARTS": str(tmp_path / "starts"), "FAKE_KILL_AT": "5"}
    r = search_cli(*args, env=env)
    assert r.returncode == -signal.SIGKILL, (r.returncode, r.stderr)
    assert len(lines_of(journal)) == 1 + 4  # the header and the 4 finished evaluations
    r = search_cli(*args, env={**env, "FAKE_KILL_AT": "0"})
    assert r.returncode == 0, r.stderr
    assert "4 of 30 evaluations already there, 26 to run" in r.stderr
    done = [(tuple(x["origin"]), x["seed"]) for x in lines_of(log)]
    assert len(done) == 30 and len(set(done)) == 30  # every (network, seed) exactly once
    # the same table as a search that was never interrupted
    clean = search_cli(str(fine), "--evaluate", fake, *GRID, "--seeds", "2", "--journal",
                       str(tmp_path / "clean.jsonl"), "--format", "csv")
    assert clean.returncode == 0, clean.stderr

    def table(text):
        return [{k: v for k, v in row.items() if k != "seconds"}
                for row in csv.DictReader(io.StringIO(text))]
    assert table(r.stdout) == table(clean.stdout) and len(table(r.stdout)) == 15
    # a third run finds everything in the journal and evaluates nothing
    again = search_cli(*args, env={**env, "FAKE_KILL_AT": "0"})
    assert again.returncode == 0 and "30 of 30 evaluations already there" in again.stderr
    assert len(lines_of(log)) == 30 and table(again.stdout) == table(clean.stdout)


def test_a_failing_evaluator_is_recorded_and_the_search_goes_on(fine, fake, tmp_path):
    log, journal = tmp_path / "completed.jsonl", tmp_path / "j.jsonl"
    args = [str(fine), "--evaluate", fake, *GRID, "--journal", str(journal), "--format", "json"]
    r = search_cli(*args, env={"FAKE_MODE": "fail-large", "FAKE_LOG": str(log)})
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    failed = [c for c in doc["candidates"] if c["status"] == "failed"]
    ok = [c for c in doc["candidates"] if c["status"] == "ok"]
    assert failed and ok and len(failed) + len(ok) == 15
    assert all(c["resolution"] >= 76 for c in failed) and all(c["resolution"] < 76 for c in ok)
    ev = failed[0]["evaluations"][0]
    assert ev["reason"] == "exit status 3" and "CUDA out of memory" in ev["stderr_tail"]
    assert all(c["rank"] is None for c in failed) and doc["best"]["resolution"] < 76
    assert "FAILED, exit status 3" in r.stderr
    entries = lines_of(journal)[1:]
    assert sum(e["status"] == "failed" for e in entries) == len(failed)
    # again: failed ones are not re-run without --retry-failed ...
    r = search_cli(*args, env={"FAKE_LOG": str(log)})
    assert r.returncode == 0 and len(lines_of(log)) == len(ok)
    assert "15 of 15 evaluations already there" in r.stderr
    # ... and with it, only they are
    r = search_cli(*args, "--retry-failed", env={"FAKE_LOG": str(log)})
    assert r.returncode == 0, r.stderr
    assert len(lines_of(log)) == 15 and json.loads(r.stdout)["best"]["alpha"] == 1.2
    assert all(c["status"] == "ok" for c in json.loads(r.stdout)["candidates"])


def test_a_timeout_kills_the_whole_process_group(fine, tmp_path):
    script = tmp_path / "slow.py"
    pids = tmp_path / "pids"
    script.write_text(
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen(['sleep', '60'])\n"  # a grandchild of the search
        f"open({str(pids)!r}, 'a').write(f'{{os.getpid()}} {{child.pid}}\\n')\n"
        "print('training...', file=sys.stderr, flush=True)\n"
        "time.sleep(60)\n")
    t0 = time.monotonic()
    r = search_cli(str(fine), "--evaluate", f"{PY} {shlex.quote(str(script))} {{spec}}",
                   "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--timeout", "1",
                   "--journal", str(tmp_path / "j.jsonl"))
    assert time.monotonic() - t0 < 30
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("Error: every evaluation failed")
    assert "timed out after 1 s" in r.stderr
    entry = lines_of(tmp_path / "j.jsonl")[1]
    assert entry["status"] == "failed" and "training..." in entry["stderr_tail"]
    for pid in map(int, pids.read_text().split()):
        assert not _running(pid), pid


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_stops_the_search_and_its_commands(fine, tmp_path, sig):
    """Ctrl-C, or SIGTERM (a scheduler cancelling the job): the running commands' process groups
    are killed, what finished is in the journal, exit 128 + the signal."""
    script = tmp_path / "slow.py"
    pids = tmp_path / "pids"
    script.write_text("import os, time\n"
                      f"open({str(pids)!r}, 'a').write(f'{{os.getpid()}}\\n')\n"
                      "time.sleep(60)\n")
    journal = tmp_path / "j.jsonl"
    env = dict(os.environ)
    env.pop("SCALEKIT_DEBUG", None)
    p = subprocess.Popen([sys.executable, "-c", "from scalekit.cli import main; main()", "search",
                          str(fine), "--evaluate", f"{PY} {shlex.quote(str(script))} {{spec}}",
                          *GRID, "--workers", "2", "--journal", str(journal)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         cwd=ROOT)
    deadline = time.monotonic() + 60
    while (not pids.exists() or len(pids.read_text().split()) < 2) and time.monotonic() < deadline:
        time.sleep(0.1)
    p.send_signal(sig)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 128 + sig, err  # 130 for Ctrl-C, 143 for SIGTERM
    assert "Traceback" not in err and out == ""
    assert "search interrupted: 0 of 15 evaluations finished in" in err
    assert "run the same command again to resume" in err
    assert err.strip().endswith("scalekit: interrupted" if sig == signal.SIGINT
                                else "scalekit: terminated by SIGTERM")
    assert lines_of(journal)[0]["journal"] == "scalekit search"  # readable: the header
    for pid in map(int, pids.read_text().split()):
        assert not _running(pid), pid


def test_a_journal_of_another_spec_or_evaluator_is_refused(fine, fake, tmp_path):
    journal = tmp_path / "j.jsonl"
    grid = ["--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15"]
    assert search_cli(str(fine), "--evaluate", fake, *grid, "--journal", str(journal)).returncode == 0
    other = tmp_path / "other.yaml"
    other.write_text(FINE.replace("out: 128", "out: 136"))
    for args, text in (([str(other), "--evaluate", fake], "of another spec ('Fine'"),
                       ([str(fine), "--evaluate", fake + " --extra"], "of another evaluator"),
                       ([str(fine), "--evaluate", fake, "--metric", "loss"],
                        "of another evaluator")):
        r = search_cli(*args, *grid, "--journal", str(journal))
        assert r.returncode == 1, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"Error: {journal}: this journal is "), \
            r.stderr
        assert text in lines[0]
    # the same spec with other comments and layout is the same spec
    same = tmp_path / "same.yaml"
    same.write_text("# a comment\n" + FINE.replace("out: 64, stride: 2", "stride: 2, out: 64"))
    r = search_cli(str(same), "--evaluate", fake, *grid, "--journal", str(journal))
    assert r.returncode == 0 and "1 of 1 evaluations already there" in r.stderr


def test_a_torn_last_line_is_dropped_and_the_journal_goes_on(tmp_path):
    path = tmp_path / "j.jsonl"
    header = Header("X", "abc", "command: x | metric: accuracy")
    from scalekit.search.evaluators import Evaluation

    with open_journal(str(path), header) as j:
        j.append(Evaluation("k1", 0, True, 0.5, 1.0))
    with open(path, "a") as f:
        f.write('{"key": "k2", "seed": 0, "sta')  # a write cut short by a crash
    with open_journal(str(path), header) as j:
        assert set(j.entries) == {("k1", 0)} and "unfinished last line" in j.warnings[0]
        j.append(Evaluation("k2", 0, False, None, 1.0, reason="boom"))
    with open_journal(str(path), header) as j:
        assert j.get("k2", 0).reason == "boom" and j.get("k1", 0).metric == 0.5
        with pytest.raises(JournalError, match="another search is using this journal"):
            open_journal(str(path), header)


def test_seeds_give_mean_spread_and_say_when_the_best_is_not_distinguishable(tmp_path):
    def noisy(spec, seed):  # two networks 0.01 apart, seed noise of +-0.05
        return {"accuracy": 0.5 + 0.01 * spec.resolution / 100 + (0.05 if seed % 2 else -0.05)}

    spec = load_spec(spec_path("mobilenet_v2"))
    res = scalekit.search(spec, evaluate=noisy, alpha="1.2", beta="1.1", gamma="1.15:1.2",
                          tolerance="0.2", seeds=2)
    assert len(res.ranked) == 2 and res.best.spread == pytest.approx(0.1 / 2 ** 0.5)
    assert res.not_distinguishable == (res.ranked[1],)
    assert res.best.mean == pytest.approx(0.5 + 0.01 * res.best.candidate.record.resolution / 100)


# ---------------------------------------------------------------------------------------------
# bad input


def test_bad_input_gets_one_clear_line(fine, fake, tmp_path):
    cases = [
        ("alpha-backwards", ["--alpha", "1.5:1.2"], 2, ["--alpha 1.5:1.2", "LO is above HI"]),
        ("beta-below-one", ["--beta", "0.9:1.2"], 2, ["--beta", "must be >= 1"]),
        ("gamma-text", ["--gamma", "1.0:big"], 2, ["--gamma", "expected a number"]),
        ("step-zero", ["--step", "0"], 2, ["--step 0", "must be > 0"]),
        ("grid-huge", ["--step", "0.0001"], 2, ["--alpha", "raise --step"]),
        ("no-candidate", ["--alpha", "1.0:1.1", "--beta", "1.0:1.1", "--gamma", "1.0:1.1",
                          "--tolerance", "0.01", "--dry-run"], 2,
         ["no grid point", "within 0.01 of 2", "nearest nominal cost is 1.61051"]),
        ("no-spec-field", ["--evaluate", "python train.py --out {out}"], 2,
         ["--evaluate", "no {spec}"]),
        ("unknown-field", ["--evaluate", "python train.py --spec {spec} --lr {lr}"], 2,
         ["unknown field {lr}"]),
        ("no-evaluator", [], 2, ["give an evaluator", "builtin:proxy", "--dry-run"]),
        ("unknown-builtin", ["--evaluate", "builtin:imagenet"], 2, ["unknown built-in"]),
        ("ray-address-local", ["--evaluate", fake, "--address", "auto"], 2,
         ["--address", "--backend ray"]),
        ("write-spec-dry-run", ["--dry-run", "--write-spec", "{tmp}/o.yaml"], 2,
         ["--write-spec needs an evaluated search"]),
        ("write-spec-exists", ["--evaluate", fake, "--write-spec", "{tmp}/keep.yaml"], 1,
         ["keep.yaml", "--overwrite"]),
        ("journal-is-dir", ["--evaluate", fake, *GRID, "--journal", "{tmp}"], 2,
         ["is a directory"]),
        ("journal-not-ours", ["--evaluate", fake, *GRID, "--journal", "{tmp}/keep.yaml"], 1,
         ["not a scalekit search journal"]),
    ]
    (tmp_path / "keep.yaml").write_text("keep me\n")
    batch = [{"id": cid, "argv": ["search", str(fine), *[a.replace("{tmp}", str(tmp_path))
                                                          for a in argv]], "cwd": str(tmp_path)}
             for cid, argv, _, _ in cases]
    results = run_batch(batch, tmp_path)
    for cid, _, code, texts in cases:
        assert_clear_error(results[cid], code, texts)
    assert (tmp_path / "keep.yaml").read_text() == "keep me\n"


def test_a_metric_key_missing_from_the_json_is_one_clear_line(fine, fake, tmp_path):
    r = search_cli(str(fine), "--evaluate", fake, "--alpha", "1.2", "--beta", "1.1", "--gamma",
                   "1.15", "--journal", str(tmp_path / "j.jsonl"),
                   env={"FAKE_MODE": "wrong-key"})
    assert r.returncode == 1 and "Traceback" not in r.stderr and r.stdout == ""
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: every evaluation failed (1 of 1)")
    assert "metric 'accuracy' is not in the JSON written to {out} (its keys: acc, loss)" in last
    assert "--metric names the key" in last


# ---------------------------------------------------------------------------------------------
# reports, --write-spec, check


def test_formats_and_plot(fine, fake, tmp_path):
    journal = str(tmp_path / "j.jsonl")
    common = [str(fine), "--evaluate", fake, *GRID, "--journal", journal]
    png = tmp_path / "plot.png"
    r = search_cli(*common, "--plot", str(png))
    assert r.returncode == 0, r.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = tmp_path / "plot.svg"  # the plots' common style (report/plot.py): the suffix's format
    assert search_cli(*common, "--plot", str(svg)).returncode == 0  # (from the journal: no rerun)
    from .test_sweep import svg_texts

    texts = svg_texts(svg)
    assert min(size for _, size in texts) >= 9
    assert "best: alpha=1.2, beta=1.1, gamma=1.15" in [t for t, _ in texts]
    table = r.stdout
    assert "Fine: compound scaling step 1 at phi = 1, 15 candidates ranked by accuracy" in table
    assert "best: alpha=1.2 beta=1.1 gamma=1.15" in table
    assert "one seed per candidate: no spread measured" in table
    assert "--write-spec OUT.yaml" in table
    rows = list(csv.DictReader(io.StringIO(search_cli(*common, "--format", "csv").stdout)))
    assert len(rows) == 15 and rows[0]["rank"] == "1"
    assert (rows[0]["alpha"], rows[0]["beta"], rows[0]["gamma"]) == ("1.2", "1.1", "1.15")
    md = search_cli(*common, "--format", "markdown").stdout
    assert md.startswith("| rank | alpha | beta | gamma |") and md.count("\n") == 17



@pytest.mark.parametrize("seeds", [1, 2])
def test_the_table_is_complete_at_80_columns(fine, seeds):
    from scalekit.commands.common import render_text
    from scalekit.report import search as report

    res = scalekit.search(str(fine), evaluate=lambda spec, seed: closed_form(spec, seed) + seed,
                          alpha="1.1:1.3", beta="1.0:1.2", gamma="1.1:1.2", seeds=seeds)
    text = render_text(report.renderables(res, "fine.yaml"), width=80)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    rows = [ln for ln in text.splitlines() if ln[:3].strip().isdigit() and len(ln.split()) >= 11]
    assert len(rows) == 15 and rows[0].split()[1:4] == ["1.2", "1.1", "1.15"]
    assert ("± " in rows[0]) == (seeds > 1)


def test_write_spec_keeps_the_text_and_is_step_2(tmp_path, fake):
    spec = tmp_path / "b0.yaml"
    text = Path(spec_path("efficientnet_b0")).read_text()
    spec.write_text(text)
    out = tmp_path / "found.yaml"
    args = [str(spec), "--evaluate", fake.replace("/ 64", "/ 224"), "--alpha", "1.1:1.3",
            "--beta", "1.0:1.2", "--gamma", "1.1:1.2", "--journal", str(tmp_path / "j.jsonl"),
            "--write-spec", str(out), "--format", "json"]
    r = search_cli(*args)
    assert r.returncode == 0, r.stderr
    best = json.loads(r.stdout)["best"]
    a, b, g = best["alpha"], best["beta"], best["gamma"]
    written = out.read_text()
    assert "# TF round_filters / Keras / torchvision _make_divisible / timm" in written
    found = load_spec(out)
    base = load_spec(spec)
    assert (found.scaling.compound.alpha, found.scaling.compound.beta,
            found.scaling.compound.gamma) == (a, b, g)
    import dataclasses
    assert dataclasses.replace(found, scaling=base.scaling) == base  # nothing else changed
    # step 2: `scale OUT.yaml --phi 3` is the baseline scaled by the found coefficients
    s2 = json.loads(run_cli("scale", str(out), "--phi", "3", "--no-latency", "--format",
                            "json").stdout)["records"][1]
    ref = scalekit.count(scalekit.scale(base, phi=3, alpha=a, beta=b, gamma=g))
    assert (s2["params"], s2["macs"]) == (ref.params, ref.macs)
    # an existing file is kept unless --overwrite
    out.write_text("mine\n")
    r = search_cli(*args)
    assert r.returncode == 1 and "--overwrite" in r.stderr and out.read_text() == "mine\n"
    assert search_cli(*args, "--overwrite").returncode == 0 and load_spec(out) == found


def test_check_refuses_a_search_report(fine, fake, tmp_path):
    report = tmp_path / "search.json"
    r = search_cli(str(fine), "--evaluate", fake, "--alpha", "1.2", "--beta", "1.1", "--gamma",
                   "1.15", "--journal", str(tmp_path / "j.jsonl"), "--format", "json",
                   "--output", str(report))
    assert r.returncode == 0, r.stderr
    doc = json.loads(report.read_text())
    assert "query" not in doc and doc["kind"] == "search"
    log = tmp_path / "ran"
    r = run_cli("check", "--baseline", str(report), env={"FAKE_LOG": str(log)})
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "scalekit search" in lines[0] and "never" in lines[0]
    assert not log.exists()  # nothing was evaluated


# ---------------------------------------------------------------------------------------------
# the Python API


def closed_form(spec, seed):
    d, w = spec.origin.depth, spec.origin.width
    return 1 - ((d - 1.2) ** 2 + (w - 1.1) ** 2 + (spec.resolution / 64 - 1.15) ** 2)


def test_python_api_with_a_callable(fine, tmp_path):
    code = "import sys, scalekit\nassert 'scalekit.search' not in sys.modules\nprint('ok')\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "ok", out.stderr
    journal = tmp_path / "api.jsonl"
    res = scalekit.search(str(fine), evaluate=closed_form, alpha="1.1:1.3", beta=(1.0, 1.2),
                          gamma="1.1:1.2", journal=journal)
    assert isinstance(res, scalekit.search.SearchResult)
    c = res.best.candidate
    assert (c.alpha, c.beta, c.gamma) == (1.2, 1.1, 1.15) and res.evaluated_now == 15
    assert res.best.mean == pytest.approx(closed_form(c.spec, 0))
    # resumed from its journal: nothing evaluated again; the same ranking in worker processes
    again = scalekit.search(str(fine), evaluate=closed_form, alpha="1.1:1.3", beta=(1.0, 1.2),
                            gamma="1.1:1.2", journal=journal, workers=2)
    assert again.evaluated_now == 0 and again.reused == 15
    pool = scalekit.search(str(fine), evaluate=closed_form, alpha="1.1:1.3", beta=(1.0, 1.2),
                           gamma="1.1:1.2", workers=2)
    assert [r.candidate.key for r in pool.ranked] == [r.candidate.key for r in res.ranked]
    # a callable that raises is a failed evaluation, with its traceback's tail
    def broken(spec, seed):
        raise RuntimeError("no GPU here")
    res = scalekit.search(str(fine), evaluate=broken, alpha="1.2", beta="1.1", gamma="1.15")
    (row,) = res.results
    assert row.status == "failed" and row.failures[0].reason == "RuntimeError: no GPU here"
    assert "raise RuntimeError" in row.failures[0].stderr_tail and res.best is None


def test_a_shell_template_and_a_template_without_out(fine, tmp_path):
    """A template with shell syntax runs under /bin/sh with its fields quoted; one without {out}
    prints its JSON as the last line of stdout."""
    d = tmp_path / "dir with space"
    d.mkdir()
    script = d / "print.py"
    script.write_text("import json, sys, yaml\n"
                      "s = yaml.safe_load(open(sys.argv[1]))\n"
                      "print('log line')\n"
                      "print(json.dumps({'accuracy': s['resolution'] / 100}))\n")
    for template in (f"{PY} {shlex.quote(str(script))} {{spec}}",
                     f"{PY} {shlex.quote(str(script))} {{spec}} 2>&1 | tail -n 1"):
        res = scalekit.search(str(fine), evaluate=template, alpha="1.2", beta="1.1",
                              gamma="1.1:1.2", tolerance="0.3")
        assert res.best is not None and not res.failed, [r.failures for r in res.results]
        assert res.best.mean == res.best.candidate.record.resolution / 100


def test_the_search_package_holds_its_layer():
    """scalekit/search/ computes (the reports are report/search.py), imports latency code only
    inside run.py's functions for --cost latency (a MACs search loads none:
    test_search_latency.py), and torch, numpy and Ray only inside the functions that train or
    run Ray."""
    from .test_structure import ALL

    mods = [m for m in ALL if m == "scalekit.search" or m.startswith("scalekit.search.")]
    assert {"scalekit.search.grid", "scalekit.search.proxy", "scalekit.search.backends"} <= set(mods)
    for m in mods:
        names = [x for x, _, _ in ALL[m]]
        assert not [x for x in names if x.startswith(("scalekit.report", "scalekit.commands",
                                                      "rich", "click"))], m
        latency = [(x, at_top) for x, _, at_top in ALL[m] if x.startswith("scalekit.latency")]
        assert not latency or (m == "scalekit.search.run"
                               and not any(at_top for _, at_top in latency)), (m, latency)
        top = [x for x, _, at_top in ALL[m] if at_top and x.split(".")[0] in ("ray", "torch",
                                                                              "numpy")]
        assert top == [], (m, top)
        if m != "scalekit.search.backends":
            assert not [x for x in names if x.split(".")[0] == "ray"], m


def dies_at_77px(spec, seed):
    """A callable whose worker process is killed (as by the out-of-memory killer) on 77 px."""
    if spec.resolution == 77:
        os.kill(os.getpid(), signal.SIGKILL)
    if spec.resolution == 74:
        time.sleep(60)
    return closed_form(spec, seed)


def test_a_killed_worker_process_is_a_failed_evaluation(fine, tmp_path):
    """workers > 1 runs each evaluation of a callable in a process of its own: one killed, or
    past its timeout, is recorded as failed and the others go on; a callable that cannot be
    sent to a worker process is refused before anything runs."""
    journal = tmp_path / "j.jsonl"
    res = scalekit.search(str(fine), evaluate=dies_at_77px, alpha="1.2", beta="1.1",
                          gamma="1.1:1.2", tolerance="0.3", workers=2, timeout=4,
                          journal=journal)
    by_px = {r.candidate.record.resolution: r.failures[0].reason if r.failures else "ok"
             for r in res.results}
    assert by_px == {77: "the worker process died (killed by signal 9)",
                     74: "timed out after 4 s (its worker process was killed)", 70: "ok"}
    assert res.best.candidate.record.resolution == 70
    assert len(journal.read_text().splitlines()) == 1 + 3
    with pytest.raises(scalekit.search.SearchUsageError, match="must be picklable"):
        scalekit.search(str(fine), evaluate=lambda spec, seed: 1.0, alpha="1.2", beta="1.1",
                        gamma="1.15", workers=2)


def test_a_hostile_spec_name_reaches_no_stream_raw(tmp_path, fake):
    """A spec name with an escape sequence, a newline and rich markup is shown escaped in the
    table, on stderr, in the written spec's header and in the evaluator's candidate spec."""
    spec = tmp_path / "evil.yaml"
    spec.write_text(FINE.replace("name: Fine", 'name: "Evil\\e[31m\\n[bold]x[/bold]"'))
    out = tmp_path / "found.yaml"
    r = search_cli(str(spec), "--evaluate", fake, "--alpha", "1.2", "--beta", "1.1", "--gamma",
                   "1.15", "--journal", str(tmp_path / "j.jsonl"), "--write-spec", str(out))
    assert r.returncode == 0, r.stderr
    for text in (r.stdout, r.stderr, out.read_text()):
        assert "\x1b" not in text
    assert "Evil\\x1b[31m\\n[bold]x[/bold]" in r.stdout
    assert load_spec(out).name == "Evil\x1b[31m\n[bold]x[/bold]"  # the name itself is kept


def test_journal_keys_survive_a_scalekit_that_adds_a_field_with_a_default():
    """The journal names a network (and the spec) by its data with defaults left out: a later
    scalekit whose dataclasses gain a field (at its default) finds the same entries."""
    import dataclasses

    from scalekit.spec import HeadSpec

    spec = load_spec(spec_path("efficientnet_b0"))
    newer_head = dataclasses.make_dataclass(
        "HeadSpec", [("future", int, dataclasses.field(default=0))], bases=(HeadSpec,),
        frozen=True)
    fields = {f.name: getattr(spec.head, f.name) for f in dataclasses.fields(HeadSpec)}
    newer = dataclasses.replace(spec, head=newer_head(**fields))
    assert gridmod.network_digest(newer) == gridmod.network_digest(spec)
    assert gridmod.spec_digest(newer) == gridmod.spec_digest(spec)
    changed = dataclasses.replace(spec, head=newer_head(**fields, future=1))
    assert gridmod.network_digest(changed) != gridmod.network_digest(spec)
    wider = scalekit.scale(spec, width=1.1)
    assert gridmod.network_digest(wider) != gridmod.network_digest(spec)
    renamed = dataclasses.replace(wider, name="another name", description="x")
    assert gridmod.network_digest(renamed) == gridmod.network_digest(wider)

"""The Ray backend for real: a local Ray instance (2 CPUs, no dashboard, its files under a short
temporary folder) started by the search, a small grid of fake-evaluator commands run as Ray tasks,
results streamed into the journal, and Ray shut down afterwards. Skipped only when Ray is not
installed (``pip install -e '.[ray]'``; CI installs it)."""

from __future__ import annotations

import json
import shutil
import tempfile

import pytest

import scalekit

from .conftest import run_cli
from .test_search import FAKE, FINE, PY

ray = pytest.importorskip("ray")


@pytest.fixture
def ray_tmp():
    # Ray's socket paths must stay under ~107 characters: pytest's tmp_path is too deep
    d = tempfile.mkdtemp(prefix="skray", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_the_ray_backend_runs_a_grid_on_a_local_ray_instance(tmp_path, ray_tmp):
    spec = tmp_path / "fine.yaml"
    spec.write_text(FINE)
    fake = tmp_path / "fake.py"
    fake.write_text(FAKE)
    template = f"{PY} {fake} --spec {{spec}} --out {{out}} --seed {{seed}}"
    grid = dict(alpha="1.1:1.3", beta="1.0:1.2", gamma="1.1:1.2", step="0.1")
    journal = tmp_path / "ray.jsonl"
    lines: list[str] = []
    res = scalekit.search(str(spec), evaluate=template, **grid, seeds=2, journal=journal,
                          backend="ray", ray_num_cpus=2, ray_temp_dir=ray_tmp, say=lines.append)
    assert not ray.is_initialized()  # the search started Ray, and shut it down
    assert res.backend.startswith("ray, local Ray instance (2 CPUs)")
    local = scalekit.search(str(spec), evaluate=template, **grid, seeds=2)
    assert [(r.candidate.key, r.mean) for r in res.ranked] == \
        [(r.candidate.key, r.mean) for r in local.ranked]
    c = res.best.candidate
    assert (c.alpha, c.beta, c.gamma) == (1.2, 1.1, 1.2)  # the grid's point nearest the peak
    assert res.evaluated_now == 2 * len(res.grid.candidates) and not res.failed
    entries = [json.loads(x) for x in journal.read_text().splitlines()[1:]]
    assert len(entries) == res.evaluated_now and all(e["status"] == "ok" for e in entries)
    assert sum("accuracy" in x for x in lines) == res.evaluated_now  # streamed, one by one
    # resumed with the local backend from the journal Ray wrote: nothing to run again
    again = scalekit.search(str(spec), evaluate=template, **grid, seeds=2, journal=journal)
    assert again.evaluated_now == 0 and again.reused == res.evaluated_now


def test_a_failing_ray_task_is_recorded(tmp_path, ray_tmp):
    spec = tmp_path / "fine.yaml"
    spec.write_text(FINE)
    res = scalekit.search(str(spec), evaluate=f"{PY} -c \"import sys; sys.exit(4)\" {{spec}}",
                          alpha="1.2", beta="1.1", gamma="1.15", backend="ray", ray_num_cpus=2,
                          ray_temp_dir=ray_tmp, timeout=30)
    (row,) = res.results
    assert row.status == "failed" and row.failures[0].reason == "exit status 4"


def test_an_address_where_nothing_answers_is_one_line_at_once(tmp_path):
    """ray.init would retry for many minutes; the search asks the port first."""
    import socket

    with socket.socket() as s:  # a free port on this machine, closed again: nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = tmp_path / "fine.yaml"
    spec.write_text(FINE)
    r = run_cli("search", str(spec), "--evaluate", f"{PY} -c pass {{spec}}", "--alpha", "1.2",
                "--beta", "1.1", "--gamma", "1.15", "--backend", "ray", "--address",
                f"127.0.0.1:{port}", "--journal", str(tmp_path / "j.jsonl"))
    assert r.returncode == 1, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"Error: --address 127.0.0.1:{port}: nothing answers at "), last

"""What does `scalekit search` cost around the training it runs? Measured side by side, in one run.

1. Wall time per candidate: the built-in proxy task (real training, default settings) against a
   trivial command evaluator (a Python process that writes its JSON at once: the fixed cost of
   a command evaluation) and an in-process Python callable (no process at all).
2. The journal: appending evaluations to a journal file (one fsync'd line each) against an
   in-memory journal.
3. The Ray backend against the local one: the same trivial-command grid on a local Ray instance
   (2 CPUs, started and shut down by the search) and on the local backend with 2 workers, and
   Ray's start and shutdown alone, which separates its fixed cost from its cost per task.

Everything but the proxy is repeated and interleaved (a, b, a, b, ...) so that machine noise hits
both sides alike; medians are reported. Writes benchmarks/search_report.md. Not a test.

    python benchmarks/search.py            # ~4 minutes on 2 idle cores
"""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import scalekit
from scalekit.host import cpu_model
from scalekit.search import proxy
from scalekit.search.backends import RayBackend, import_ray
from scalekit.search.evaluators import Evaluation
from scalekit.search.journal import Header, memory_journal, open_journal

ROOT = Path(__file__).resolve().parent.parent
REPEATS = 3
SPEC = "proxy_mbconv"
TRIVIAL = ("import json, sys; json.dump({'accuracy': 0.5}, open(sys.argv[sys.argv.index('--out') "
           "+ 1], 'w'))")
GRID_12 = dict(alpha="1.0:1.4", beta="1.0:1.3", gamma="1.0:1.3", step="0.1")  # 12 networks
APPENDS = 500


def noop(spec, seed):
    return 0.5


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def journal_appends(path: Path | None, n: int) -> float:
    """Seconds for ``n`` appends to a journal file (``path``) or to an in-memory one."""
    header = Header("bench", "0" * 16, "command: bench | metric: accuracy")
    book = memory_journal(header) if path is None else open_journal(str(path), header)
    evs = [Evaluation(f"{i:016x}", 0, True, 0.5, 1.0, values={"loss": 0.5}) for i in range(n)]
    about = {"alpha": 1.2, "beta": 1.1, "gamma": 1.15, "resolution": 37, "params": 94962,
             "macs": 1501306}
    with book:
        t = time.perf_counter()
        for ev in evs:
            book.append(ev, about)
        return time.perf_counter() - t


def ray_start_stop(temp_dir: str) -> float:
    """Seconds to start a private local Ray instance of 2 CPUs (as the search does) and shut it
    down, with no task."""
    ray = import_ray()
    t = time.perf_counter()
    RayBackend(num_cpus=2, temp_dir=temp_dir).connect(ray)  # as the search starts it
    ray.shutdown()
    return time.perf_counter() - t


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="skbench", dir="/tmp"))
    trivial = f"{shlex.quote(sys.executable)} -c {shlex.quote(TRIVIAL)} --spec {{spec}} --out {{out}}"
    n12 = len(scalekit.search(SPEC, dry_run=True, **GRID_12).results)
    t: dict[str, list[float]] = {}

    def add(key: str, seconds: float) -> None:
        t.setdefault(key, []).append(seconds)

    # 1-3: interleaved rounds
    for r in range(REPEATS):
        add("callable", timed(lambda: scalekit.search(SPEC, evaluate=noop, **GRID_12)))
        add("command", timed(lambda: scalekit.search(SPEC, evaluate=trivial, **GRID_12)))
        add("memory journal", journal_appends(None, APPENDS))
        add("file journal", journal_appends(tmp / f"j{r}.jsonl", APPENDS))
        add("local", timed(lambda: scalekit.search(SPEC, evaluate=trivial, workers=2,
                                                   **GRID_12)))
        rt = tempfile.mkdtemp(prefix="skr", dir="/tmp")
        add("ray start+stop", ray_start_stop(rt))
        add("ray", timed(lambda: scalekit.search(SPEC, evaluate=trivial, backend="ray",
                                                 ray_num_cpus=2, ray_temp_dir=rt, **GRID_12)))
        shutil.rmtree(rt, ignore_errors=True)
        print(f"round {r + 1}/{REPEATS}: " + ", ".join(f"{k} {v[-1]:.3f}s" for k, v in t.items()),
              flush=True)
    # 4: the proxy itself (real training, default settings), 1 and 2 workers
    five = dict(alpha="1.1:1.2", beta="1.1:1.2", gamma="1.1:1.2", step="0.1", tolerance="0.25")
    n5 = len(scalekit.search(SPEC, dry_run=True, **five).results)
    proxy_runs = {}
    for workers in (1, 2):
        cpu0 = os.times()
        t0 = time.perf_counter()
        res = scalekit.search(SPEC, evaluate="builtin:proxy", workers=workers, **five)
        wall = time.perf_counter() - t0
        cpu1 = os.times()
        cpu = (cpu1.children_user + cpu1.children_system) - (cpu0.children_user
                                                             + cpu0.children_system)
        proxy_runs[workers] = (wall, cpu, res)
        print(f"proxy, {workers} worker(s): {wall:.1f}s wall, {cpu:.1f} CPU-s", flush=True)
    shutil.rmtree(tmp, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in t.items()}
    per = lambda k, n: med[k] / n * 1000  # noqa: E731 - ms per evaluation
    ray_per = (med["ray"] - med["ray start+stop"]) / n12 * 1000
    w1, cpu1_s, res1 = proxy_runs[1]
    w2, cpu2_s, _ = proxy_runs[2]
    evals = sorted(e.seconds for r in res1.results for e in r.evaluations)
    train = sorted(e.values.get("train_seconds", 0) for r in res1.results for e in r.evaluations)
    load = os.getloadavg()
    lines = [
        "# `scalekit search`: what it costs around the training",
        "",
        f"Written by `python benchmarks/search.py` on {datetime.date.today()}: {cpu_model()}, "
        f"{os.cpu_count()} logical cores, Python {platform.python_version()}, torch "
        f"{_version('torch')}, Ray {_version('ray')}; load average at the end "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (a machine shared with other jobs: wall "
        f"times are inflated, CPU-seconds are not). Baseline `{SPEC}`. Timings are medians of "
        f"{REPEATS} interleaved rounds (a, b, c, a, b, c, ...) unless said otherwise.",
        "",
        "## Wall time per candidate",
        "",
        "| evaluator | candidates | search s | per candidate ms |",
        "|---|---:|---:|---:|",
        f"| Python callable, in process (no-op) | {n12} | {med['callable']:.2f} | "
        f"{per('callable', n12):.1f} |",
        f"| command: a Python process that writes its JSON at once | {n12} | {med['command']:.2f} "
        f"| {per('command', n12):.0f} |",
        f"| builtin:proxy (default: {proxy.ProxyConfig().train:,} images, "
        f"{proxy.ProxyConfig().epochs} epochs), 1 worker, one run | {n5} | {w1:.1f} | "
        f"{w1 / n5 * 1000:,.0f} |",
        f"| builtin:proxy, 2 workers, one run | {n5} | {w2:.1f} | {w2 / n5 * 1000:,.0f} |",
        "",
        f"The proxy's evaluations used {cpu1_s / n5:.1f} CPU-seconds each (1 worker; "
        f"{cpu2_s / n5:.1f} with 2): on an idle 2-core machine a 10-candidate grid with "
        f"`--workers 2` takes about {cpu2_s / n5 * 10 / 2 / 60:.1f} minutes. One evaluation took "
        f"{evals[0]:.1f}-{evals[-1]:.1f} s of wall time, of which {train[0]:.1f}-{train[-1]:.1f} s "
        "making the data and training; the rest is starting Python, importing torch and writing "
        f"the result. Running any command costs ~{per('command', n12):.0f} ms (second row): "
        "noise beside a training run.",
        "",
        "## The journal",
        "",
        "| journal | appends | s | per evaluation ms |",
        "|---|---:|---:|---:|",
        f"| in memory (the API without `journal=`) | {APPENDS} | {med['memory journal']:.3f} | "
        f"{per('memory journal', APPENDS):.3f} |",
        f"| a file: one JSON line written and fsync'd per evaluation | {APPENDS} | "
        f"{med['file journal']:.3f} | {per('file journal', APPENDS):.3f} |",
        "",
        f"The journal costs {per('file journal', APPENDS) - per('memory journal', APPENDS):.2f} "
        "ms per finished evaluation, nearly all of it the fsync that makes each line survive a "
        "crash.",
        "",
        "## Ray backend against local (trivial command evaluator, 2 CPUs each)",
        "",
        "| | s |",
        "|---|---:|",
        f"| local backend, 2 workers: a {n12}-candidate search | {med['local']:.2f} |",
        f"| Ray: starting a private local instance (2 CPUs) and shutting it down, no task | "
        f"{med['ray start+stop']:.2f} |",
        f"| Ray backend: the same {n12}-candidate search (start and shutdown included) | "
        f"{med['ray']:.2f} |",
        "",
        f"Ray's fixed cost is starting and stopping its instance, ~{med['ray start+stop']:.1f} s "
        f"per search (none on a cluster, `--address`: only connecting). Beyond that an "
        f"evaluation costs {ray_per:.0f} ms as a Ray task against {per('local', n12):.0f} ms on "
        "the local backend (both include running the command). Both are small beside one "
        "training run.",
    ]
    out = ROOT / "benchmarks" / "search_report.md"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    print(f"\nwrote {out}")


def _version(pkg: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    main()

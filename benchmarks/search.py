"""What does `scalekit search` cost around the training it runs? Measured side by side, in one run.

1. Wall time per candidate: the built-in proxy task (real training, default settings) against a
   trivial command evaluator (a Python process that writes its JSON at once: the fixed cost of
   a command evaluation) and an in-process Python callable (no process at all).
2. The journal: the same search with a journal file (one fsync'd line per evaluation) and with
   an in-memory one, on a no-op callable, so that the difference is the journal alone.
3. The Ray backend against the local one: the same trivial-command grid on a local Ray instance
   (2 CPUs, started and shut down by the search) and on the local backend with 2 workers; two
   grid sizes separate Ray's fixed cost (start-up, shutdown) from its cost per task.

Everything but the proxy is repeated and interleaved (a, b, a, b, ...) so that machine noise hits
both sides alike; medians are reported. Writes benchmarks/search_report.md. Not a test.

    python benchmarks/search.py            # ~3 minutes on 2 cores
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

ROOT = Path(__file__).resolve().parent.parent
REPEATS = 3
SPEC = "proxy_mbconv"
TRIVIAL = ("import json, sys; json.dump({'accuracy': 0.5}, open(sys.argv[sys.argv.index('--out') "
           "+ 1], 'w'))")
GRID_12 = dict(alpha="1.0:1.4", beta="1.0:1.3", gamma="1.0:1.3", step="0.1")  # 12 networks
GRID_30 = dict(alpha="1.0:1.5", beta="1.0:1.3", gamma="1.0:1.3", step="0.05", tolerance="0.05")


def noop(spec, seed):
    return 0.5


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="skbench", dir="/tmp"))
    trivial = f"{shlex.quote(sys.executable)} -c {shlex.quote(TRIVIAL)} --spec {{spec}} --out {{out}}"
    n12 = len(scalekit.search(SPEC, dry_run=True, **GRID_12).results)
    n30 = len(scalekit.search(SPEC, dry_run=True, **GRID_30).results)
    t: dict[str, list[float]] = {}

    def add(key: str, seconds: float) -> None:
        t.setdefault(key, []).append(seconds)

    # 1-3: interleaved rounds
    for r in range(REPEATS):
        add("callable", timed(lambda: scalekit.search(SPEC, evaluate=noop, **GRID_12)))
        add("command", timed(lambda: scalekit.search(SPEC, evaluate=trivial, **GRID_12)))
        many = dict(alpha="1.0:2.0", beta="1.0:1.5", gamma="1.0:1.5", seeds=4)  # 4 x 65 nets
        add("memory journal", timed(lambda: scalekit.search(SPEC, evaluate=noop, **many)))
        path = tmp / f"j{r}.jsonl"
        add("file journal", timed(lambda: scalekit.search(SPEC, evaluate=noop, journal=path,
                                                         **many)))
        n_many = sum(len(x.evaluations) for x in scalekit.search(
            SPEC, evaluate=noop, journal=path, **many).results)
        for grid, n in (("small", GRID_12), ("large", GRID_30)):
            add(f"local {grid}", timed(lambda: scalekit.search(SPEC, evaluate=trivial, workers=2,
                                                               **n)))
            rt = tempfile.mkdtemp(prefix="skr", dir="/tmp")
            add(f"ray {grid}", timed(lambda: scalekit.search(SPEC, evaluate=trivial,
                                                             backend="ray", ray_num_cpus=2,
                                                             ray_temp_dir=rt, **n)))
            shutil.rmtree(rt, ignore_errors=True)
        print(f"round {r + 1}/{REPEATS}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in t.items()),
              flush=True)
    # 4: the proxy itself (real training, default settings): 4 candidates, 1 and 2 workers
    five = dict(alpha="1.1:1.2", beta="1.1:1.2", gamma="1.1:1.2", step="0.1", tolerance="0.25")
    n5 = len(scalekit.search(SPEC, dry_run=True, **five).results)
    proxy_times = {}
    for workers in (1, 2):
        res = None

        def run():
            nonlocal res
            res = scalekit.search(SPEC, evaluate="builtin:proxy", workers=workers, **five)
        proxy_times[workers] = (timed(run), res)
        print(f"proxy, {workers} worker(s): {proxy_times[workers][0]:.1f}s", flush=True)
    shutil.rmtree(tmp, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in t.items()}
    per = lambda k, n: med[k] / n * 1000  # noqa: E731 - ms per evaluation
    ray_fixed = (med["ray small"] * n30 - med["ray large"] * n12) / (n30 - n12)
    ray_per = (med["ray large"] - med["ray small"]) / (n30 - n12)
    local_per = (med["local large"] - med["local small"]) / (n30 - n12)
    w1, res1 = proxy_times[1]
    w2, _ = proxy_times[2]
    evals = sorted(e.seconds for r in res1.results for e in r.evaluations)
    train = sorted(e.values.get("train_seconds", 0) for r in res1.results for e in r.evaluations)
    lines = [
        "# `scalekit search`: what it costs around the training",
        "",
        f"Written by `python benchmarks/search.py` on {datetime.date.today()}: {cpu_model()}, "
        f"{os.cpu_count()} logical cores, Python {platform.python_version()}, torch "
        f"{_version('torch')}, Ray {_version('ray')}. Baseline `{SPEC}`; every timing is a "
        f"whole search (grid, evaluations, report data), median of {REPEATS} interleaved rounds "
        "unless said otherwise.",
        "",
        "## Wall time per candidate",
        "",
        "| evaluator | candidates | search s | per candidate ms |",
        "|---|---:|---:|---:|",
        f"| Python callable, in process (no-op) | {n12} | {med['callable']:.2f} | "
        f"{per('callable', n12):.1f} |",
        f"| command, a Python process that writes its JSON at once | {n12} | {med['command']:.2f} | "
        f"{per('command', n12):.0f} |",
        f"| builtin:proxy (default settings: {proxy.ProxyConfig().train:,} images, "
        f"{proxy.ProxyConfig().epochs} epochs), 1 worker, one run | {n5} | {w1:.1f} | "
        f"{w1 / n5 * 1000:,.0f} |",
        f"| builtin:proxy, 2 workers, one run | {n5} | {w2:.1f} | {w2 / n5 * 1000:,.0f} |",
        "",
        f"One proxy evaluation (1 worker) took {evals[0]:.1f}-{evals[-1]:.1f} s, of which "
        f"{train[0]:.1f}-{train[-1]:.1f} s generating the data and training; the rest is starting "
        "Python, importing torch and writing the result. The fixed cost of running any command "
        f"is the second row, ~{per('command', n12):.0f} ms: noise beside a training run.",
        "",
        "## The journal",
        "",
        "| journal | evaluations | search s | per evaluation ms |",
        "|---|---:|---:|---:|",
        f"| in memory (the API without `journal=`) | {n_many} | {med['memory journal']:.2f} | "
        f"{per('memory journal', n_many):.2f} |",
        f"| a file: one line appended and fsync'd per evaluation | {n_many} | "
        f"{med['file journal']:.2f} | {per('file journal', n_many):.2f} |",
        "",
        f"The journal costs {(med['file journal'] - med['memory journal']) / n_many * 1000:.2f} ms "
        "per evaluation (mostly the fsync that makes each line survive a crash).",
        "",
        "## Ray backend against local (trivial command evaluator, 2 CPUs each)",
        "",
        "| backend | candidates | search s | candidates | search s |",
        "|---|---:|---:|---:|---:|",
        f"| local, 2 workers | {n12} | {med['local small']:.2f} | {n30} | {med['local large']:.2f} |",
        f"| ray, local instance of 2 CPUs (started and shut down by the search) | {n12} | "
        f"{med['ray small']:.2f} | {n30} | {med['ray large']:.2f} |",
        "",
        f"From the two sizes: Ray's fixed cost (starting a local instance, shutting it down) is "
        f"~{ray_fixed:.1f} s per search; per evaluation it costs {ray_per * 1000:.0f} ms against "
        f"{local_per * 1000:.0f} ms locally (both include running the command). On a cluster "
        "(`--address`) there is no start-up, only connecting; either way the overhead is small "
        "beside one training run.",
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

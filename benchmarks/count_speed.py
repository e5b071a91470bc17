"""How fast do the count-only commands start and finish, against the previous release? Times
whole command lines of both side by side, in one run.

The previous release's source tree (``--previous DIR``; by default a git worktree of
``PREVIOUS`` made in a temporary directory) and this checkout are run by the same interpreter,
each through ``PYTHONPATH`` (so both use the same click, rich and PyYAML), with their bytecode
compiled first (neither pays for compiling, whatever PYTHONDONTWRITEBYTECODE says). Each command
line is run REPEATS times, interleaved (prev a, this a, prev b, this b, ..., then again) so that
machine noise hits both alike. The report gives, per command and version, the median wall time,
the median CPU time (user + system of the child: less sensitive to other load on a shared
machine than wall time) and the number of modules imported (``python -X importtime``), and the
ratio this / previous. Writes benchmarks/count_speed_report.md. Not part of the test suite.

    python benchmarks/count_speed.py [--previous DIR] [--repeats N]
"""

from __future__ import annotations

import argparse
import compileall
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PREVIOUS = "f7f7e28"  # the commit before this round's changes: the previous release
ABOUT_PREVIOUS = ("The previous release has fewer block kinds, bundled specs and counting "
                  "conventions than this checkout (this round added them), so a ratio includes "
                  "their cost as well as the start-up work.")
REPEATS = 11
PY = sys.executable
ROOT = Path(__file__).resolve().parent.parent

# label -> argv after `python -m scalekit.cli` ({baseline} is filled in per version)
COMMANDS = {
    "scalekit --version": ["--version"],
    "scalekit compare --no-latency (Tables 3 + 7, 19 networks)": ["compare", "--no-latency"],
    "scalekit compare --table 2 --no-latency (10 networks)": ["compare", "--table", "2",
                                                              "--no-latency"],
    "scalekit compare --match macs --no-latency (19 networks solved)": ["compare", "--match",
                                                                        "macs", "--no-latency"],
    "scalekit info efficientnet_b0 --no-latency --format json": ["info", "efficientnet_b0",
                                                                 "--no-latency", "--format", "json"],
    "scalekit check --baseline B.json (resnet50's info)": ["check", "--baseline", "{baseline}"],
}


# Where `scalekit compare --no-latency`'s CPU time goes, measured inside one process of this
# checkout (process_time between the steps; dataclass creation timed around the stdlib's own
# dataclasses._process_class). Printed as one line of "name=milliseconds".
PHASES = r"""
import dataclasses, io, time
t0 = time.process_time()
import click, rich.console, rich.table, yaml
t1 = time.process_time()
made, spent = dataclasses._process_class, [0.0]
def timed(*args, **kwargs):
    t = time.process_time()
    try:
        return made(*args, **kwargs)
    finally:
        spent[0] += time.process_time() - t
dataclasses._process_class = timed
from scalekit.commands import load
load("compare")
t2 = time.process_time()
dataclasses._process_class = made
from scalekit import queries
outcome = queries.run_query(queries.make_query("compare", {"latency": False}))
t3 = time.process_time()
from scalekit.commands import common, compare
common.render_text(compare._draw(outcome))
t4 = time.process_time()
print(f"deps={(t1 - t0) * 1e3:.1f} ours={(t2 - t1) * 1e3:.1f} dataclasses={spent[0] * 1e3:.1f} "
      f"count={(t3 - t2) * 1e3:.1f} render={(t4 - t3) * 1e3:.1f}")
"""


def phases(env: dict[str, str], repeats: int) -> dict[str, float]:
    """Median milliseconds of each step of PHASES over ``repeats`` fresh processes."""
    runs: dict[str, list[float]] = {}
    for _ in range(repeats):
        out = subprocess.run([PY, "-c", PHASES], env=env, cwd=env["BENCH_CWD"],
                             capture_output=True, text=True, check=True).stdout.split()
        for item in out:
            k, v = item.split("=")
            runs.setdefault(k, []).append(float(v))
    return {k: statistics.median(v) for k, v in runs.items()}


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one child process; it must succeed."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=env["BENCH_CWD"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {err.strip()}")
    return wall, usage.ru_utime + usage.ru_stime


def modules_imported(argv: list[str], env: dict[str, str]) -> int:
    out = subprocess.run([PY, "-X", "importtime", *argv[1:]], env=env, cwd=env["BENCH_CWD"],
                         capture_output=True, text=True, check=True)
    return sum(1 for line in out.stderr.splitlines() if line.startswith("import time:")) - 1


def previous_tree(where: str | None, tmp: str) -> Path:
    if where:
        return Path(where).resolve()
    path = Path(tmp) / "previous"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), PREVIOUS],
                   check=True, capture_output=True)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--previous", metavar="DIR", help=f"source tree of the previous release "
                    f"(default: a git worktree of {PREVIOUS})")
    ap.add_argument("--repeats", type=int, default=REPEATS)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        prev = previous_tree(args.previous, tmp)
        try:
            report = measure(prev, args.repeats, tmp)
        finally:
            if not args.previous:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                str(prev)], capture_output=True)
    out = ROOT / "benchmarks" / "count_speed_report.md"
    out.write_text(report, encoding="utf-8")
    print(report)
    print(f"wrote {out}")


def measure(prev: Path, repeats: int, tmp: str) -> str:
    versions = {"previous": prev, "this": ROOT}
    envs, lines = {}, {}
    for name, tree in versions.items():
        compileall.compile_dir(str(tree / "scalekit"), quiet=1)
        env = dict(os.environ, NO_COLOR="1", PYTHONPATH=str(tree), BENCH_CWD=str(tree))
        env.pop("SCALEKIT_DEBUG", None)
        baseline = str(Path(tmp) / f"{name}.json")
        subprocess.run([PY, "-m", "scalekit.cli", "info", "resnet50", "--no-latency", "--format",
                        "json", "--output", baseline], env=env, cwd=tree, check=True,
                       capture_output=True)
        envs[name] = env
        lines[name] = {k: [PY, "-m", "scalekit.cli", *(a.replace("{baseline}", baseline)
                                                       for a in v)]
                       for k, v in COMMANDS.items()}
        lines[name]["python -c pass (interpreter start-up)"] = [PY, "-c", "pass"]
    labels = ["python -c pass (interpreter start-up)", *COMMANDS]
    wall = {(v, k): [] for v in versions for k in labels}
    cpu = {(v, k): [] for v in versions for k in labels}
    for v in versions:  # warm the page cache once
        for k in labels:
            run(lines[v][k], envs[v])
    for _ in range(repeats):
        for k in labels:
            for v in versions:
                w, c = run(lines[v][k], envs[v])
                wall[v, k].append(w)
                cpu[v, k].append(c)
    mods = {(v, k): modules_imported(lines[v][k], envs[v]) for v in versions for k in labels}
    steps = phases(envs["this"], repeats)
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip() or "?"
    med = statistics.median
    out = [
        "# Count-only commands: start-up and wall time, this checkout against the previous release",
        "",
        f"Written by `python benchmarks/count_speed.py` on {datetime.date.today()}: {cpu_model()}, "
        f"{os.cpu_count()} logical cores, load average {os.getloadavg()[0]:.1f} at the end, "
        f"Python {platform.python_version()}. *previous* = {PREVIOUS} (the previous release), "
        f"*this* = {rev} (plus uncommitted changes, if any). Both run by the same interpreter "
        "and packages (click, rich, PyYAML), bytecode compiled, each command run "
        f"{repeats} times, interleaved. Wall = median whole-process wall time; CPU = median "
        "user + system time of the process (what other load on a shared machine disturbs "
        f"less); modules = modules imported (`python -X importtime`). {ABOUT_PREVIOUS}",
        "",
        "| command | previous wall ms | this wall ms | this / previous | previous CPU ms | "
        "this CPU ms | this / previous | modules previous -> this |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for k in labels:
        pw, tw = med(wall["previous", k]), med(wall["this", k])
        pc, tc = med(cpu["previous", k]), med(cpu["this", k])
        out.append(f"| {k} | {pw * 1000:.0f} | {tw * 1000:.0f} | {tw / pw:.2f} | "
                   f"{pc * 1000:.0f} | {tc * 1000:.0f} | {tc / pc:.2f} | "
                   f"{mods['previous', k]} -> {mods['this', k]} |")
    python_cpu = med(cpu["this", labels[0]]) * 1000
    out += ["", "None of these commands imports torch (tests check `sys.modules`). What the "
            "start-up saves: command modules are imported only when their command runs, "
            "`import scalekit` loads its API on first use, scalekit's own YAML files (bundled "
            "specs, reference data) are parsed by libyaml, and json, csv, importlib.metadata "
            "and tempfile are imported only by the code that uses them.", "",
            "## Where `scalekit compare --no-latency` spends its CPU time (this checkout)", "",
            f"Median of {repeats} fresh processes, CPU ms (`time.process_time` between the "
            "steps):", "",
            "| step | CPU ms |", "|---|---:|",
            f"| interpreter start-up (`python -c pass`, above) | {python_cpu:.0f} |",
            f"| importing click, rich (console, table) and PyYAML | {steps['deps']:.0f} |",
            f"| importing scalekit's modules for `compare` | {steps['ours']:.0f} |",
            f"| ... of which creating their dataclasses (`@dataclass`) | "
            f"{steps['dataclasses']:.0f} |",
            f"| counting the 19 networks (specs loaded, expanded, counted) | {steps['count']:.0f} |",
            f"| rendering the table (rich) | {steps['render']:.0f} |", ""]
    return "\n".join(out)


if __name__ == "__main__":
    main()

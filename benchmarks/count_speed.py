"""How fast are the count-only commands? Times whole command lines side by side, in one run.

Each command is run REPEATS times, interleaved (a, b, c, a, b, c, ...) so that machine noise hits
all of them alike; the report gives the median wall time of each and its ratio to a bare
`python -c pass`, so that the interpreter's own start-up is visible and scalekit's own work is
the difference. Writes benchmarks/count_speed_report.md. Not part of the test suite.

    python benchmarks/count_speed.py
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPEATS = 15
PY = sys.executable
COMMANDS = {
    "python -c pass (interpreter start-up)": [PY, "-c", "pass"],
    "python -c 'import torch' (for scale)": [PY, "-c", "import torch"],
    "scalekit --version": [PY, "-m", "scalekit.cli", "--version"],
    "scalekit compare --no-latency (Tables 3 + 7, 19 networks)": [PY, "-m", "scalekit.cli", "compare", "--no-latency"],
    "scalekit compare --table 2 --no-latency (10 networks)": [PY, "-m", "scalekit.cli", "compare", "--table", "2", "--no-latency"],
    "scalekit compare --match macs --no-latency (19 networks solved)": [PY, "-m", "scalekit.cli", "compare", "--match", "macs", "--no-latency"],
    "scalekit info efficientnet_b0 --no-latency --format json": [PY, "-m", "scalekit.cli", "info", "efficientnet_b0", "--no-latency", "--format", "json"],
}


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, NO_COLOR="1")
    times: dict[str, list[float]] = {k: [] for k in COMMANDS}
    for k, cmd in COMMANDS.items():  # warm the page cache once
        subprocess.run(cmd, cwd=root, env=env, capture_output=True, check=True)
    for _ in range(REPEATS):
        for k, cmd in COMMANDS.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=root, env=env, capture_output=True, check=True)
            times[k].append(time.perf_counter() - t0)
    base = statistics.median(times[next(iter(COMMANDS))])
    lines = [
        "# Count-only commands: wall time",
        "",
        f"Written by `python benchmarks/count_speed.py` on {datetime.date.today()}: {cpu_model()}, "
        f"{os.cpu_count()} logical cores, Python {platform.python_version()}. Each command run "
        f"{REPEATS} times, interleaved with the others; median and min-max of whole-process wall "
        "time. *scalekit's own work* = median minus the bare interpreter's start-up.",
        "",
        "| command | median ms | min - max ms | x `python -c pass` | scalekit's own work ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for k, ts in times.items():
        med = statistics.median(ts)
        own = "" if k.startswith("python") else f"{(med - base) * 1000:.0f}"
        lines.append(f"| {k} | {med * 1000:.0f} | {min(ts) * 1000:.0f} - {max(ts) * 1000:.0f} | "
                     f"{med / base:.1f} | {own} |")
    lines += ["", "None of the scalekit commands above imports torch (tests/test_cli.py checks "
              "`sys.modules`); importing torch alone costs the time in the second row."]
    out = root / "benchmarks" / "count_speed_report.md"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()

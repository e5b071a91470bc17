"""How good is predicted latency? Predicted vs measured for scaled networks of every bundled
family (none of them a calibration network), what a cold table costs, how fast a warm table
predicts 1,000 candidates, and how long the CLI's defaults take.

1. A fresh latency table (a temporary cache directory): the calibration (4 bundled networks at
   their base resolution, ResNet-50 at 160 px) and each network's missing blocks are timed, and
   what that costs is reported (cold).
2. Each of :data:`NETWORKS` (scaled EfficientNet-B0, MobileNetV2, MobileNetV1, ResNet-50 and
   ResNet-152 variants) is predicted from the table, then measured whole with the harness the CLI
   uses (``--latency measured``): median, IQR, and the CPU share the process had while timing.
   Error = predicted / measured - 1. Targets (issue 14): median |error| <= 5 %, worst <= 15 %,
   on a quiet machine.
3. Warm: a grid of 1,000 EfficientNet-B0 candidates (5 widths x 5 resolutions x 40 depths),
   their blocks timed once (cold cost), then all 1,000 predicted from the warm table, best of 3
   (target: under 2 s). No torch is needed for that step.
4. The CLI's defaults, wall time of the whole process: ``scalekit info efficientnet_b0`` and
   ``scalekit compare`` (predicted, warm and cold), and ``--latency measured``.

Writes benchmarks/latency_model_report.md. Not part of the test suite; takes 5-15 minutes
(longer on a busy machine).

    python benchmarks/latency_model.py [--quick]
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere, without installing scalekit

from scalekit.bundled import load_named  # noqa: E402
from scalekit.latency.networks import TimingOptions, measure_records  # noqa: E402
from scalekit.latency.prediction import open_table, warm  # noqa: E402
from scalekit.plan import expand  # noqa: E402
from scalekit.records import make_record  # noqa: E402
from scalekit.scaling import scale_spec  # noqa: E402

REPORT = ROOT / "benchmarks" / "latency_model_report.md"

NETWORKS = [  # (bundled spec, scaling flags): none is a calibration network
    ("efficientnet_b0", {"preset": "b1"}), ("efficientnet_b0", {"preset": "b2"}),
    ("efficientnet_b0", {"width": 0.5}), ("efficientnet_b0", {"depth": 1.5, "size": 192}),
    ("efficientnet_b0", {"size": 256}),
    ("mobilenet_v2", {"width": 0.75}), ("mobilenet_v2", {"width": 1.4}),
    ("mobilenet_v2", {"size": 160}), ("mobilenet_v2", {"size": 192}),
    ("mobilenet_v2", {"depth": 2.0}),
    ("mobilenet_v1", {"width": 0.5}), ("mobilenet_v1", {"width": 0.75}),
    ("mobilenet_v1", {"size": 160}), ("mobilenet_v1", {"size": 192}),
    ("mobilenet_v1", {"width": 1.25}),
    ("resnet50", {"size": 128}), ("resnet50", {"width": 0.5}), ("resnet50", {"depth": 0.5}),
    ("resnet50", {"size": 192}),
    ("resnet152", {"size": 128}), ("resnet152", {"width": 0.5}),
]
GRID_WIDTHS = (0.75, 1.0, 1.25, 1.5, 1.75)
GRID_SIZES = (160, 192, 224, 256, 288)
GRID_DEPTHS = tuple(round(1.0 + 0.1 * i, 1) for i in range(40))
MEASURE = TimingOptions(kind="measured", budget_s=2.0)  # the CLI's harness (info, compare)


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def record(name: str, flags: dict):
    spec = load_named(name)
    return make_record(scale_spec(spec, **flags)[0] if flags else spec)


def cli_seconds(args: list[str], cache: str) -> tuple[float, int]:
    env = {**os.environ, "SCALEKIT_CACHE_DIR": cache}
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", "from scalekit.cli import main; main()", *args],
                       capture_output=True, text=True, env=env, cwd=ROOT)
    return time.perf_counter() - t0, r.returncode


def load_average() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="8 networks, a 200-candidate grid")
    args = ap.parse_args()
    networks = NETWORKS[::3] if args.quick else NETWORKS
    depths = GRID_DEPTHS[:8] if args.quick else GRID_DEPTHS
    started = time.perf_counter()
    load_before = load_average()
    cache = tempfile.mkdtemp(prefix="scalekit-latency-bench-")
    os.environ["SCALEKIT_CACHE_DIR"] = cache

    import torch

    from scalekit.latency.machine import machine_info, peak_gflops, theoretical_peak

    torch.set_num_threads(1)
    info = machine_info()
    peak = peak_gflops(1)
    theory = theoretical_peak(1, peak)

    # 1. cold: calibration, then every network's blocks
    table = open_table(1, "eager", say)
    recs = [record(n, f) for n, f in networks]
    t0 = time.perf_counter()
    warm(table, [], 1, 1, "eager", say)  # calibration (and the peak) only
    calibration_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pieces = warm(table, [r.plan for r in recs], 1, 1, "eager", say)
    pieces_s = time.perf_counter() - t0
    cal = table.calibration[1]

    # 2. predicted vs measured
    rows = []
    for r in recs:
        pred = table.predict(r.plan, 1)
        say(f"measuring {r.name}")
        lat = measure_records([r], MEASURE)[0].latency
        rows.append((r, pred, lat))
    errors = [p.ms / lat["median_ms"] - 1 for _, p, lat in rows]
    abs_err = sorted(abs(e) for e in errors)
    trusted_err = [abs(p.ms / lat["median_ms"] - 1) for _, p, lat in rows if lat["trusted"]]
    cpu_err = sorted(abs(p.ms / lat["cpu_median_ms"] - 1) for _, p, lat in rows)
    shares = [lat["cpu_share"] for _, _, lat in rows]

    # 3. 1,000 candidates
    base = load_named("efficientnet_b0")
    grid = [dict(width=w, size=s, depth=d) for w in GRID_WIDTHS for s in GRID_SIZES for d in depths]
    specs = [scale_spec(base, **g)[0] for g in grid]
    distinct_nets = {expand(s).stages for s in specs[:: len(depths)]}
    t0 = time.perf_counter()
    grid_pieces = warm(table, [expand(s) for s in specs[:: len(depths)]], 1, 1, "eager", say)
    # deeper networks repeat the blocks of the shallowest of each (width, size)
    grid_pieces += warm(table, [expand(s) for s in specs], 1, 1, "eager", say)
    grid_warm_s = time.perf_counter() - t0
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        preds = [table.predict(expand(scale_spec(base, **g)[0]), 1).ms for g in grid]
        best = min(best, time.perf_counter() - t0)
    lookup_only = float("inf")
    plans = [expand(s) for s in specs]
    for _ in range(3):
        t0 = time.perf_counter()
        for p in plans:
            table.predict(p, 1)
        lookup_only = min(lookup_only, time.perf_counter() - t0)

    # 4. the CLI's defaults (whole processes)
    cold_cache = tempfile.mkdtemp(prefix="scalekit-latency-cold-")
    cli = {}
    cli["info efficientnet_b0 (predicted, cold table: calibrates)"] = cli_seconds(
        ["info", "efficientnet_b0"], cold_cache)
    cli["info efficientnet_b0 (predicted, warm table)"] = cli_seconds(
        ["info", "efficientnet_b0"], cold_cache)
    cli["compare (predicted, table warm from info only)"] = cli_seconds(["compare"], cold_cache)
    cli["compare (predicted, warm table)"] = cli_seconds(["compare"], cold_cache)
    cli["compare --no-latency"] = cli_seconds(["compare", "--no-latency"], cold_cache)
    cli["info efficientnet_b0 --latency measured"] = cli_seconds(
        ["info", "efficientnet_b0", "--latency", "measured"], cold_cache)
    if not args.quick:
        cli["compare --latency measured"] = cli_seconds(["compare", "--latency", "measured"],
                                                        cold_cache)

    total_s = time.perf_counter() - started
    quiet = statistics.median(shares) >= 0.9
    hit = statistics.median(abs_err) <= 0.05 and abs_err[-1] <= 0.15
    cpu_hit = statistics.median(cpu_err) <= 0.05 and cpu_err[-1] <= 0.15
    if quiet:
        verdict = (f"The machine was quiet (median CPU share {statistics.median(shares):.2f}): "
                   f"against wall time the targets are {'met' if hit else 'MISSED'}.")
    else:
        verdict = (f"**The machine was contended throughout** (median CPU share "
                   f"{statistics.median(shares):.2f}: other processes had "
                   f"{(1 - statistics.median(shares)) * 100:.0f}% of this core), so the targets, "
                   "which are for a quiet machine, could not be checked against wall time: every "
                   "wall-time median here is inflated by about 1 / share, and the predictions "
                   "(what the networks take on a quiet core) miss it by that much. Against the "
                   "measured CPU time of each forward, which contention barely moves, the "
                   f"prediction {'meets' if cpu_hit else 'MISSES'} both targets. Re-run this "
                   "on a quiet machine for the wall-time check.")
    lines = [
        "# Predicted latency: accuracy, cold cost, warm speed",
        "",
        f"Written by `python benchmarks/latency_model.py{' --quick' if args.quick else ''}` on "
        f"{datetime.date.today().isoformat()} in {total_s / 60:.1f} min. Batch 1, 1 thread, fp32, "
        "torch eager, randomly initialised weights (kaiming, as `build_model`).",
        "",
        "## Machine",
        "",
        "| | |", "|---|---|",
        *[f"| {k} | {v} |" for k, v in info.items()],
        f"| fp32 matmul peak, 1 thread (best of {', '.join(map(str, (256, 512, 768, 1024)))}) | "
        f"{peak:.1f} GFLOP/s |",
        f"| theoretical peak | {'n/a' if theory.gflops is None else f'{theory.gflops:.1f} GFLOP/s'}"
        f" ({theory.basis}) |",
        f"| load average before / after (1, 5, 15 min) | {load_before} / {load_average()} |",
        "",
        "## Headline",
        "",
        verdict,
        "",
        f"- **Accuracy against wall time** over {len(rows)} scaled networks (not the calibration "
        "ones): median "
        f"|error| **{statistics.median(abs_err) * 100:.1f} %**, worst **{abs_err[-1] * 100:.1f} %** "
        f"(targets: 5 %, 15 %); over the {len(trusted_err)} measurements flagged trusted: "
        + (f"median {statistics.median(trusted_err) * 100:.1f} %, worst "
           f"{max(trusted_err) * 100:.1f} %." if trusted_err else "none was trusted."),
        f"- Against the measured **CPU time** of each forward (the calling thread's, which is "
        f"all of the work at one thread; what the table itself keeps, and what wall time is on a "
        f"quiet machine): median |error| **{statistics.median(cpu_err) * 100:.1f} %**, worst "
        f"**{cpu_err[-1] * 100:.1f} %**.",
        f"- **CPU share** while measuring: median {statistics.median(shares):.2f}, lowest "
        f"{min(shares):.2f} (below {0.9} a measurement is flagged contended; wall time is then "
        "about CPU time / share).",
        f"- **Warm table**: 1,000 candidates predicted in **{best:.2f} s** from their specs "
        f"(scale + expand + lookups; {lookup_only:.2f} s of it for the lookups from plans); "
        f"target under 2 s.",
        f"- **Cold table**: calibration {calibration_s:.1f} s (once per machine, threads, batch and "
        f"runtime); the {len(rows)} networks' {pieces} distinct blocks {pieces_s:.1f} s "
        f"({pieces_s / max(1, len(rows)):.1f} s a network); the grid's {grid_pieces} new blocks "
        f"({len(distinct_nets)} widths x sizes) {grid_warm_s:.1f} s.",
        "",
        "## Calibration",
        "",
        f"factor **{cal.factor:.3f}** (median of measured / sum of blocks), CPU share "
        f"{cal.cpu_share:.2f}, learned from:",
        "",
        "| network | px | measured ms | sum of blocks ms | ratio |", "|---|---:|---:|---:|---:|",
        *[f"| {n['name']} | {n['resolution']} | {n['measured_ms']:.2f} | {n['sum_ms']:.2f} | "
          f"{n['ratio']:.3f} |" for n in cal.networks],
        "",
        "## Predicted vs measured",
        "",
        "| network | MACs (G) | predicted ms | measured ms ± IQR (wall) | error | measured CPU ms "
        "| error vs CPU | CPU share | trusted |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
        *[f"| {r.name} | {r.macs / 1e9:.3f} | {p.ms:.2f} | {lat['median_ms']:.2f} ± "
          f"{lat['iqr_ms']:.2f} | {(p.ms / lat['median_ms'] - 1) * 100:+.1f} % | "
          f"{lat['cpu_median_ms']:.2f} | {(p.ms / lat['cpu_median_ms'] - 1) * 100:+.1f} % | "
          f"{lat['cpu_share']:.2f} | {'yes' if lat['trusted'] else 'no: ' + lat['reason']} |"
          for r, p, lat in rows],
        "",
        "## The CLI's defaults (wall time of the whole process)",
        "",
        "| command | seconds | exit |", "|---|---:|---:|",
        *[f"| `scalekit {k}` | {s:.1f} | {rc} |" for k, (s, rc) in cli.items()],
        "",
        "## Method",
        "",
        "- Prediction: `scalekit.latency.table` — calibration factor x the sum of each block's "
        "median time, every distinct block (kind, channels, kernel, stride, input size, batch) "
        "timed alone, interleaved with the other missing blocks of its network (rounds of one run "
        "each), on the CLI's table harness (2 warm-up rounds, then until the round totals' IQR is "
        "within 3 %, at least 7 rounds, 1 s or 60 rounds).",
        "- Measurement: `measure_records` with `--latency measured`'s harness (3 warm-up runs, "
        "then until the IQR is within 5 % of the median after at least 10 runs, or 2 s); wall "
        "time per forward (`perf_counter_ns`) and the calling thread's CPU time "
        "(`thread_time_ns`), medians of each.",
        "- At one thread the table keeps each block's median CPU time, so that a table built on "
        "a shared machine predicts what the network takes on a quiet one; the calibration "
        "compares whole networks' CPU time with their blocks' likewise.",
        f"- The 1,000-candidate grid: EfficientNet-B0 at widths {GRID_WIDTHS}, sizes "
        f"{GRID_SIZES} px and {len(depths)} depths {depths[0]}-{depths[-1]}; predicted from their "
        "specs (each scaled, expanded and looked up).",
        f"- Median of the predictions over the grid: {statistics.median(preds):.1f} ms.",
    ]
    REPORT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {REPORT}")


if __name__ == "__main__":
    main()

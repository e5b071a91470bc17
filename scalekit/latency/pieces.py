"""Filling the latency table (scalekit/latency/table.py) by measurement: each missing piece (a
distinct block at a batch size) built alone with initialised weights and timed on the table's
runtime, and a batch size's calibration, learned from whole networks timed with their pieces.

Pieces are timed interleaved, a network's worth at a time (each round runs every missing block
of that network once, in turn), so that they see the same machine and each other's effect on
the caches, as they would inside the network. The round's total, not each block, sets when to
stop: it is what a prediction sums. At one thread the table keeps each piece's median CPU time
(:func:`robust_ms`): the latency it would have on a quiet machine, which wall time on a shared
one overstates by whatever the other processes took.

torch is imported inside the functions (this module is imported only when something must be
timed).
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..blocks import BlockPlan
from ..bundled import load_named
from ..plan import NetworkPlan, expand
from ..scaling import scale_spec
from .harness import INPUT_SEED, Latency, measure_interleaved
from .runtimes import prepare
from .table import (CALIBRATION, RETRIES, Calibration, LatencyTable, calibration_size,
                    network_pieces)

if TYPE_CHECKING:
    import torch

def robust_ms(lat: Latency) -> float:
    """What the table keeps of a timing: at one thread the median CPU time of the calling thread
    (all of the work; on a shared machine it moves far less than wall time, and on a quiet one
    the two agree), else the median wall time."""
    cpu = lat.cpu_median_ms
    return lat.median_ms if cpu is None or cpu <= 0 else cpu


PIECE_HARNESS = {"warmup": 2, "min_runs": 7, "max_runs": 60, "budget_s": 1.0,
                 "target_rel_spread": 0.03}
"""How one network's missing pieces are timed together: 2 warm-up rounds, then rounds until the
round totals' IQR is within 3% (at least 7 rounds), 1 s, or 60 rounds."""
CALIBRATION_HARNESS = {"warmup": 2, "min_runs": 8, "max_runs": 60, "budget_s": 3.0,
                       "target_rel_spread": 0.02}


def _input(b: BlockPlan, batch: int, runtime: str, g: torch.Generator) -> torch.Tensor:
    import torch

    x = torch.randn(batch, b.cin, b.h, b.w, generator=g)
    # inside an optimised network every activation after the first conv is channels_last
    return x.contiguous(memory_format=torch.channels_last) if runtime == "optimized" else x


def _forward(module: Any, runtime: str, example: torch.Tensor, threads: int) -> Any:
    return prepare(module.eval(), runtime, example, None, threads).forward


def block_forward(b: BlockPlan, runtime: str, example: torch.Tensor, threads: int) -> Any:
    """Block ``b`` alone, with initialised weights, on ``runtime``."""
    from ..build import block_module, init_weights

    m = block_module(b)
    init_weights(m)
    return _forward(m, runtime, example, threads)


def time_pieces(table: LatencyTable, blocks: dict[str, tuple[BlockPlan, int]], batch: int,
                threads: int, runtime: str) -> None:
    """Time ``blocks`` (key -> (block, count), one network's missing pieces) together and put
    them in ``table``."""
    import torch

    g = torch.Generator().manual_seed(INPUT_SEED)
    keys = list(blocks)
    inputs = [_input(blocks[k][0], batch, runtime, g) for k in keys]
    forwards = [block_forward(blocks[k][0], runtime, x, threads) for k, x in zip(keys, inputs)]
    lats = measure_interleaved(forwards, [(blocks[k][0].h, blocks[k][0].w) for k in keys],
                               in_channels=[blocks[k][0].cin for k in keys], batch=batch,
                               threads=threads, inputs=inputs, spread_of_total=True,
                               **PIECE_HARNESS)
    for k, lat in zip(keys, lats):
        table.put(k, robust_ms(lat), lat.iqr_ms, lat.runs, lat.cpu_share)


def calibration_plans(batch: int) -> list[NetworkPlan]:
    """The networks of :data:`CALIBRATION` at ``batch`` (resolution reduced for larger batches)."""
    plans = []
    for name, size in CALIBRATION:
        spec = load_named(name)
        px = calibration_size(size, batch)
        plans.append(expand(spec if px == spec.resolution else scale_spec(spec, size=px)[0]))
    return plans


def calibrate(table: LatencyTable, batch: int, threads: int, runtime: str) -> Calibration:
    """Learn ``batch``'s correction: each calibration network timed whole, interleaved with all
    of its pieces, and the factor = the median of measured / sum of pieces. The pieces' timings
    go into the table too."""
    import torch

    from ..build import build_model

    g = torch.Generator().manual_seed(INPUT_SEED)
    plans = calibration_plans(batch)
    forwards: list[Any] = []
    inputs: list[torch.Tensor] = []
    sizes: list[tuple[int, int]] = []
    channels: list[int] = []
    for plan in plans:  # the whole networks first
        x = torch.randn(batch, plan.in_channels, *plan.resolution, generator=g)
        forwards.append(_forward(build_model(plan), runtime, x, threads))
        inputs.append(x)
        sizes.append(plan.resolution)
        channels.append(plan.in_channels)
    pieces: dict[str, BlockPlan] = {}
    for plan in plans:
        for k, (b, _) in network_pieces(plan, batch).items():
            pieces.setdefault(k, b)
    for k, b in pieces.items():
        x = _input(b, batch, runtime, g)
        forwards.append(block_forward(b, runtime, x, threads))
        inputs.append(x)
        sizes.append((b.h, b.w))
        channels.append(b.cin)
    if runtime != "eager":  # one call's cost: the smallest graph the runtime can run
        x = torch.randn(1, 1, 1, 1, generator=g)
        forwards.append(_forward(torch.nn.ReLU(), runtime, x, threads))
        inputs.append(x)
        sizes.append((1, 1))
        channels.append(1)
    lats = measure_interleaved(forwards, sizes, in_channels=channels, batch=batch,
                               threads=threads, inputs=inputs, spread_of_total=True,
                               **CALIBRATION_HARNESS)
    overhead = robust_ms(lats[-1]) if runtime != "eager" else 0.0
    by_key: dict[str, Latency] = dict(zip(pieces, lats[len(plans):len(plans) + len(pieces)]))
    for k, lat in by_key.items():
        table.put(k, robust_ms(lat), lat.iqr_ms, lat.runs, lat.cpu_share)
    networks = []
    for plan, lat in zip(plans, lats):
        total = sum(n * max(0.0, robust_ms(by_key[k]) - overhead)
                    for k, (_, n) in network_pieces(plan, batch).items())
        whole = robust_ms(lat)
        networks.append({"name": plan.name, "resolution": plan.resolution[0],
                         "measured_ms": whole, "sum_ms": total,
                         "ratio": max(1e-9, whole - overhead) / total})
    cal = Calibration(statistics.median(n["ratio"] for n in networks), networks,
                      lats[0].cpu_share, overhead_ms=overhead)
    table.calibration[batch] = cal
    table.calibrated.add(batch)
    table.dirty = True
    return cal


def fill(table: LatencyTable, plans: Sequence[NetworkPlan], batch: int, threads: int,
         runtime: str, say: Callable[[str], None]) -> int:
    """Time what ``table`` lacks to predict ``plans`` at ``batch``: each network's missing
    pieces, then the calibration if the batch has none. Returns the pieces timed."""
    from .machine import peak_gflops

    timed = 0
    retry = bool(table.quiet_retry)  # contended entries are timed again only on a quiet machine
    todo = [(plan, table.missing([plan], batch, retry=retry)) for plan in plans]
    todo = [(plan, m) for plan, m in todo if m]
    seen: set[str] = set()
    for i, (plan, missing) in enumerate(todo, start=1):
        missing = {k: v for k, v in missing.items() if k not in seen}
        if not missing:
            continue
        say(f"scalekit: timing {len(missing)} block{'s' if len(missing) != 1 else ''} of "
            f"{plan.name} for the latency table ({i}/{len(todo)})")
        time_pieces(table, missing, batch, threads, runtime)
        seen.update(missing)
        timed += len(missing)
    old = table.calibration.get(batch)
    if old is None or (retry and not old.trusted and old.attempts <= RETRIES
                       and batch not in table.calibrated):
        say(f"scalekit: calibrating the latency table on {len(CALIBRATION)} networks (once per "
            f"machine, threads, batch and runtime)")
        cal = calibrate(table, batch, threads, runtime)
        if old is not None:
            cal.attempts = old.attempts + 1
            if old.trusted or (not cal.trusted and (old.cpu_share or 0) > (cal.cpu_share or 0)):
                old.attempts = cal.attempts
                table.calibration[batch] = old  # keep the less contended of the two
    if table.peak_gflops is None or table.cpu_capability is None:
        import torch

        table.peak_gflops = max(table.peak_gflops or 0.0, peak_gflops(threads))
        table.cpu_capability = torch.backends.cpu.get_cpu_capability()
        table.dirty = True
    return timed

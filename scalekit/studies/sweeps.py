"""Sweeps: one baseline scaled through a list of coefficients per mode, counted (and optionally
timed) at each point -- the data behind the paper's Figure 3, for any spec and any strategy.

The default values of width, depth and resolution are the coefficients the paper plots in
Figure 3; compound steps phi (EfficientNet-B0 .. about B5), the other strategies step the FLOPs
factor s. Counting needs no torch; ``scalekit sweep --latency`` times the points afterwards
(scalekit.latency.networks.measure_records, the code path of every latency the command line
reports).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..records import ModelRecord, Networks, make_record
from ..scaling import scale
from ..spec import Spec
from ..strategies import STRATEGIES, dial

# EfficientNet paper, Figure 3: the coefficients of each curve (r=1.0 is 224 px, r=2.5 is 560 px)
FIGURE3_VALUES: dict[str, tuple[float, ...]] = {
    "width": (1.0, 1.4, 1.8, 2.6, 3.8, 5.0),
    "depth": (1.0, 2.0, 3.0, 4.0, 6.0, 8.0),
    "resolution": (1.0, 1.3, 1.5, 1.7, 1.9, 2.2, 2.5),
}
COMPOUND_PHIS = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0)
STRATEGY_FACTORS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
DEFAULT_MODES = ("width", "depth", "resolution")


def default_values(mode: str) -> tuple[float, ...]:
    """Figure 3's values for width / depth / resolution, phi 0..5 for compound, s = 1..32 else."""
    if mode in FIGURE3_VALUES:
        return FIGURE3_VALUES[mode]
    if mode == "compound":
        return COMPOUND_PHIS
    if mode in STRATEGIES:
        return STRATEGY_FACTORS
    return ()


@dataclass(frozen=True)
class SweepPoint:
    mode: str
    symbol: str  # the dial: w, d, r, phi or s
    value: float
    record: ModelRecord


def sweep(spec: Spec, modes: Sequence[str], values: Sequence[float] | None = None, *,
          counter: str = "analytic", networks: Networks | None = None) -> list[SweepPoint]:
    """Scale ``spec`` by each value of each mode (``values`` for every mode, or each mode's
    :func:`default_values`) and count it. Each point's record keeps its network, so that it can
    be timed (:func:`scalekit.latency.networks.measure_records`); a network that several points
    reach (every mode's value 1) is expanded and counted once."""
    networks = networks if networks is not None else Networks()
    points = []
    for mode in modes:
        d = dial(spec, mode)
        for v in values if values else default_values(mode):
            coef = d.coefficients(v)
            scaled = scale(spec, coef)
            rec = make_record(scaled, counter=counter, coefficients=coef, mode=mode,
                              base=spec.name, networks=networks)
            points.append(SweepPoint(mode, d.symbol, float(v), rec))
    return points

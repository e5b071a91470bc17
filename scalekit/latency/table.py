"""The per-machine latency table: what each distinct block took on this machine, and the
correction a sum of blocks needs, so that a network's latency can be *predicted* without
building it (the FBNet / nn-Meter approach).

A *piece* is one distinct block configuration at a batch size: its kind and every field of its
plan that inference depends on (channels, kernel, stride, input size, expansion, squeeze width,
residual, activation; not stochastic depth or dropout). A network's prediction is::

    predicted = calibration factor x sum over its blocks of (the piece's median time - o) + o

where ``o`` is one call into the runtime (a frozen TorchScript graph's or an onnxruntime
session's; 0 for eager torch, whose network calls every block as the piece does), which a
whole network pays once and every piece timed alone pays again.

The factor is learned per machine (and batch) from a few whole networks timed interleaved with
their own pieces (:data:`CALIBRATION`): a sum of standalone blocks misses what they do to each
other's caches and the framework's work between them.

The table is a JSON file under the user's cache directory (``$SCALEKIT_CACHE_DIR``, else
``$XDG_CACHE_HOME/scalekit``, else ``~/.cache/scalekit``), one file per machine (CPU model and
cores), torch version, threads, dtype and runtime: safe to delete (it is rebuilt, by measuring,
when needed). It is written atomically (scalekit/files.py); a file that cannot be read as a
table of this key is reported in one line and rebuilt, never trusted.

No torch here: a prediction from a warm table is lookups and a multiplication.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable, Iterable

from ..blocks import BlockPlan
from ..errors import FileError, ScalekitError
from ..files import read_input, write_atomic
from ..host import cpu_model
from ..plan import NetworkPlan
from .harness import MIN_CPU_SHARE

FORMAT = 1
DTYPE = "float32"
IGNORED_FIELDS = frozenset({"drop_path", "dropout"})  # training only: no effect on inference
RETRIES = 2  # a piece timed on a contended machine is timed again this many times, at most

CALIBRATION = (("efficientnet_b0", 224), ("mobilenet_v2", 224), ("mobilenet_v1", 224),
               ("resnet50", 160))
"""The whole networks (bundled spec, resolution at batch 1) a table's correction is learned from:
one of each block family, small enough to time in a few seconds. At batch n the resolution is
divided by sqrt(n) (to a multiple of 32, at least 64) so that calibrating stays as quick."""

Say = Callable[[str], None]


def cache_dir() -> str:
    """Where scalekit keeps what it may rebuild: ``$SCALEKIT_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/scalekit``, else ``~/.cache/scalekit``."""
    explicit = os.environ.get("SCALEKIT_CACHE_DIR")
    if explicit:
        return os.path.abspath(os.path.expanduser(explicit))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "scalekit")


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def table_key(threads: int, runtime: str, runtime_version: str | None = None) -> dict[str, Any]:
    """What a table's timings depend on: the machine, torch's version (from package metadata:
    no torch import), threads, dtype and runtime (with onnxruntime's version)."""
    return {"cpu": cpu_model(), "logical_cores": os.cpu_count(), "torch": _version("torch"),
            "threads": threads, "dtype": DTYPE, "runtime": runtime,
            "runtime_version": runtime_version}


_FIELDS: dict[type, tuple[str, ...]] = {}


def piece_key(b: BlockPlan, batch: int) -> str:
    """The table's key of block ``b`` at ``batch``: its kind and every field inference depends
    on, ``mbconv|b1|cin=16|cout=24|h=112|w=112|kernel=3|stride=2|act=silu|mid=96|...``."""
    names = _FIELDS.get(type(b))
    if names is None:
        names = _FIELDS[type(b)] = tuple(f.name for f in dataclasses.fields(b)
                                         if f.name not in IGNORED_FIELDS and f.name != "kind")
    return "|".join([b.kind, f"b{batch}", *(f"{n}={getattr(b, n)}" for n in names)])


def network_pieces(plan: NetworkPlan, batch: int) -> dict[str, tuple[BlockPlan, int]]:
    """The distinct pieces of ``plan`` at ``batch``: key -> (a block, how many blocks share it)."""
    out: dict[str, tuple[BlockPlan, int]] = {}
    for b in plan.blocks():
        k = piece_key(b, batch)
        block, n = out.get(k, (b, 0))
        out[k] = (block, n + 1)
    return out


@dataclass
class Piece:
    """One piece's timing: median and IQR (ms), runs, and the CPU share it was timed with."""

    ms: float
    iqr_ms: float
    runs: int
    cpu_share: float | None
    attempts: int = 1  # how many times it has been timed

    @property
    def trusted(self) -> bool:
        return self.cpu_share is None or self.cpu_share >= MIN_CPU_SHARE

    @property
    def settled(self) -> bool:
        """Trusted, or timed as often as :data:`RETRIES` allows: not to be timed again."""
        return self.trusted or self.attempts > RETRIES

    def to_list(self) -> list[Any]:
        return [self.ms, self.iqr_ms, self.runs, self.cpu_share, self.attempts]


@dataclass
class Calibration:
    """The correction of one batch size: ``factor`` (median of measured / sum over
    ``networks``), each network's figures, and the CPU share while they were timed."""

    factor: float
    networks: list[dict[str, Any]]
    cpu_share: float | None
    attempts: int = 1
    overhead_ms: float = 0.0  # one call into the runtime, in every piece's time: counted once

    @property
    def spread(self) -> float:
        """The largest relative distance of one calibration network's ratio from the factor."""
        return max((abs(n["ratio"] / self.factor - 1) for n in self.networks), default=0.0)

    @property
    def trusted(self) -> bool:
        return self.cpu_share is None or self.cpu_share >= MIN_CPU_SHARE

    def to_dict(self) -> dict[str, Any]:
        return {"factor": self.factor, "networks": self.networks, "cpu_share": self.cpu_share,
                "attempts": self.attempts, "overhead_ms": self.overhead_ms}


class TableError(ValueError):
    """A table file that is not a table of the expected key."""


TABLE_LIMIT = 64_000_000  # bytes: a table this size holds some 300,000 pieces


def _read(path: str) -> str:
    """A table file's text: a regular file only (a FIFO there would block), capped."""
    return read_input(path, TABLE_LIMIT, "latency tables").decode("utf-8")


def _number(v: Any, what: str, positive: bool = True) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
            or (v <= 0 if positive else v < 0):
        raise TableError(f"{what} is not a {'positive' if positive else 'non-negative'} number")
    return float(v)


def _share(v: Any, what: str) -> float | None:
    if v is None:
        return None
    x = _number(v, what, positive=False)
    if x > 1:
        raise TableError(f"{what} is above 1")
    return x


@dataclass
class LatencyTable:
    """The pieces and calibrations of one key, and the file they live in."""

    key: dict[str, Any]
    path: str
    pieces: dict[str, Piece] = field(default_factory=dict)
    calibration: dict[int, Calibration] = field(default_factory=dict)
    peak_gflops: float | None = None  # the best fp32 matmul peak measured at this key's threads
    cpu_capability: str | None = None  # torch's SIMD level, recorded when the table was built
    dirty: bool = False  # holds what the file does not
    fresh: set[str] = field(default_factory=set)  # pieces timed by this process: not again
    calibrated: set[int] = field(default_factory=set)  # batches calibrated by this process
    quiet_retry: bool | None = None  # retime contended entries now? (None: not looked yet)
    blocked: bool = False  # something that is not a regular file holds its name: never written

    @classmethod
    def file_for(cls, key: dict[str, Any], directory: str | None = None) -> str:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        return os.path.join(directory or cache_dir(), f"latency-{key['runtime']}-{digest}.json")

    @classmethod
    def load(cls, key: dict[str, Any], say: Say, directory: str | None = None) -> LatencyTable:
        """The table of ``key`` from its file; empty when there is none yet, and when the file
        cannot be read as one (``say`` gets one line, and the file is rebuilt)."""
        path = cls.file_for(key, directory)
        table = cls(key, path)
        if not os.path.lexists(path):
            return table  # none yet (saving says so if the directory cannot be made)
        if not os.path.isfile(path):  # a FIFO, a device, a directory: not ours to replace
            say(f"scalekit: warning: {path} is not a regular file: the latency table is not read "
                "or written there, and predictions are not cached (remove it to let scalekit "
                "rebuild the table)")
            table.blocked = True
            return table
        try:
            text = _read(path)
        except (FileError, UnicodeDecodeError) as e:
            say(f"scalekit: warning: cannot read the latency table {path} "
                f"({getattr(e, 'reason', e)}); rebuilding it")
            table.dirty = True
            return table
        try:
            table.absorb(parse_table(text, key))
        except TableError as e:
            say(f"scalekit: warning: {path} is not a latency table scalekit can use ({e}); "
                "rebuilding it")
            table.dirty = True
        return table

    def absorb(self, other: dict[str, Any]) -> None:
        """Take in what a parsed file holds (``parse_table``), keeping this table's own entries
        where both have one."""
        for k, p in other["pieces"].items():
            self.pieces.setdefault(k, p)
        for b, c in other["calibration"].items():
            self.calibration.setdefault(b, c)
        if other["peak_gflops"] is not None:
            self.peak_gflops = max(self.peak_gflops or 0.0, other["peak_gflops"])
        self.cpu_capability = self.cpu_capability or other["cpu_capability"]

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "key": self.key, "peak_gflops": self.peak_gflops,
                "cpu_capability": self.cpu_capability,
                "calibration": {str(b): c.to_dict() for b, c in sorted(self.calibration.items())},
                "pieces": {k: p.to_list() for k, p in sorted(self.pieces.items())}}

    def save(self, say: Say) -> bool:
        """Write the table (merged with what the file holds now, in case another scalekit wrote
        it meanwhile) atomically. A directory that cannot be made or written gets one line
        (``say``) and the table is kept in memory only. True if written."""
        if not self.dirty:
            return True
        if self.blocked:  # said so when it was loaded
            return False
        directory = os.path.dirname(self.path)
        try:
            os.makedirs(directory, exist_ok=True)
            try:
                if os.path.lexists(self.path):
                    self.absorb(parse_table(_read(self.path), self.key))
            except (FileError, UnicodeDecodeError, TableError):
                pass  # nothing there to keep (or nothing usable): ours replaces it
            write_atomic(self.path, json.dumps(self.to_dict(), indent=1, sort_keys=False) + "\n")
        except (OSError, ScalekitError) as e:
            why = e.strerror if isinstance(e, OSError) and e.strerror else getattr(e, "reason", e)
            say(f"scalekit: warning: cannot write the latency table in {directory} ({why}); "
                "predictions are not cached (set SCALEKIT_CACHE_DIR to a writable directory)")
            return False
        self.dirty = False
        return True

    # --- reading predictions -----------------------------------------------------------------

    def missing(self, plans: Iterable[NetworkPlan], batch: int, *,
                retry: bool = True) -> dict[str, tuple[BlockPlan, int]]:
        """The pieces of ``plans`` this table lacks, or (``retry``) holds but should time again:
        timed on a contended machine, with retries left, and not by this process."""
        out: dict[str, tuple[BlockPlan, int]] = {}
        for plan in plans:
            for k, (b, n) in network_pieces(plan, batch).items():
                p = self.pieces.get(k)
                if p is None or (retry and not p.settled and k not in self.fresh):
                    out.setdefault(k, (b, n))
        return out

    def put(self, key: str, ms: float, iqr_ms: float, runs: int, cpu_share: float | None) -> None:
        """A new timing of a piece: replaces an untrusted one (unless it is less trusted still)."""
        old = self.pieces.get(key)
        attempts = 1 if old is None else old.attempts + 1
        new = Piece(ms, iqr_ms, runs, cpu_share, attempts)
        self.fresh.add(key)
        if old is not None and old.trusted and not new.trusted:
            old.attempts = attempts
        elif old is not None and not old.trusted and not new.trusted and \
                (old.cpu_share or 0) > (cpu_share or 0):
            old.attempts = attempts  # keep the less contended of two contended timings
        else:
            self.pieces[key] = new
        self.dirty = True

    def predict(self, plan: NetworkPlan, batch: int) -> Prediction:
        """The calibrated sum of ``plan``'s pieces (all must be in the table, and the batch
        calibrated: :meth:`missing` says what to time first)."""
        cal = self.calibration[batch]
        total = 0.0
        shares = []
        untrusted = 0
        pieces = network_pieces(plan, batch)
        for k, (_, n) in pieces.items():
            p = self.pieces[k]
            total += n * max(0.0, p.ms - cal.overhead_ms)
            if p.cpu_share is not None:
                shares.append(p.cpu_share)
            untrusted += not p.trusted
        return Prediction(cal.factor * total + cal.overhead_ms, total, cal.factor, cal.spread,
                          len(pieces),
                          min(shares) if shares else None, untrusted, cal.trusted)


@dataclass(frozen=True)
class Prediction:
    """A network's predicted latency and what it rests on."""

    ms: float  # calibration factor x sum
    sum_ms: float  # the sum of its blocks' median times
    factor: float
    spread: float  # the calibration networks' largest distance from the factor (relative)
    pieces: int  # distinct pieces
    cpu_share: float | None  # the lowest CPU share any of its pieces was timed with
    untrusted_pieces: int  # pieces timed on a contended machine
    calibration_trusted: bool

    @property
    def distrust(self) -> str | None:
        reasons = []
        if self.untrusted_pieces:
            reasons.append(f"{self.untrusted_pieces} of {self.pieces} pieces timed on a contended "
                           f"machine (CPU share down to {self.cpu_share:.0%})")
        if not self.calibration_trusted:
            reasons.append("calibrated on a contended machine")
        return "; ".join(reasons) or None

    def to_dict(self, threads: int, batch: int, runtime: str) -> dict[str, Any]:
        """The ``latency`` object of a record whose latency is predicted only."""
        why = self.distrust
        return {"kind": "predicted", "predicted_ms": self.ms, "runtime": runtime,
                "threads": threads, "batch": batch, "trusted": why is None, "reason": why,
                "cpu_share": self.cpu_share, "pieces": self.pieces, "sum_ms": self.sum_ms,
                "calibration_factor": self.factor, "calibration_spread": self.spread}


def parse_table(text: str, key: dict[str, Any]) -> dict[str, Any]:
    """A table file's contents, checked: right format and key, every number finite and positive.
    Raises :class:`TableError` saying what is wrong."""
    try:
        data = json.loads(text)
    except ValueError as e:
        raise TableError(f"not valid JSON: {e}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise TableError(f"not format {FORMAT}")
    if data.get("key") != key:
        raise TableError("made for another machine, torch, thread count or runtime")
    pieces, calibration = data.get("pieces"), data.get("calibration")
    if not isinstance(pieces, dict) or not isinstance(calibration, dict):
        raise TableError("no pieces or calibration")
    out_pieces = {}
    for k, v in pieces.items():
        if not isinstance(v, list) or len(v) != 5:
            raise TableError(f"piece {k!r} is malformed")
        runs, attempts = v[2], v[4]
        if not (isinstance(runs, int) and runs >= 1 and isinstance(attempts, int) and attempts >= 1):
            raise TableError(f"piece {k!r} has a bad run count")
        out_pieces[k] = Piece(_number(v[0], k), _number(v[1], k, positive=False), runs,
                              _share(v[3], k), attempts)
    out_cal = {}
    for b, c in calibration.items():
        if not (isinstance(b, str) and b.isdigit() and isinstance(c, dict)
                and isinstance(c.get("networks"), list) and c["networks"]):
            raise TableError(f"calibration {b!r} is malformed")
        for n in c["networks"]:
            if not isinstance(n, dict) or not isinstance(n.get("name"), str):
                raise TableError(f"calibration {b!r} is malformed")
            for f in ("measured_ms", "sum_ms", "ratio"):
                _number(n.get(f), f"calibration {b} {f}")
        attempts = c.get("attempts", 1)
        if not isinstance(attempts, int) or attempts < 1:
            raise TableError(f"calibration {b!r} is malformed")
        out_cal[int(b)] = Calibration(_number(c.get("factor"), f"calibration {b} factor"),
                                      c["networks"], _share(c.get("cpu_share"), "calibration"),
                                      attempts, _number(c.get("overhead_ms", 0.0),
                                                        f"calibration {b} overhead",
                                                        positive=False))
    peak = data.get("peak_gflops")
    capability = data.get("cpu_capability")
    if capability is not None and not isinstance(capability, str):
        raise TableError("cpu_capability is not a string")
    return {"pieces": out_pieces, "calibration": out_cal,
            "peak_gflops": None if peak is None else _number(peak, "peak_gflops"),
            "cpu_capability": capability}


def calibration_size(resolution: int, batch: int) -> int:
    """A calibration network's resolution at ``batch`` (see :data:`CALIBRATION`)."""
    if batch == 1:
        return resolution
    return max(64, int(resolution / math.sqrt(batch)) // 32 * 32)

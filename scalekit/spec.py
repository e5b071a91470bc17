"""Network specs: YAML in, frozen typed dataclasses out.

A spec describes a baseline network as data: a stem, stages of repeated blocks (the first block of
a stage takes the stage's stride), a classifier head, and the scaling rules that real
implementations use for it. See docs/spec-format.md for the format, field by field.

Only ``yaml.safe_load`` is used: specs are data, nothing in them is executed or imported.
This module never imports torch.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import reprlib
from dataclasses import dataclass, field
from typing import Any, Mapping

import yaml

from .errors import SpecError

BLOCK_TYPES = ("conv", "dwsep", "mbconv", "bottleneck")
ACTIVATIONS = ("relu", "relu6", "silu")
DEPTH_ROUNDING = ("ceil", "round")
CHANNEL_ROUNDING = ("nearest", "floor")
HEAD_RULES = ("width", "width_at_least_1", "fixed")
STEM_RULES = ("width", "fixed")

MAX_SPEC_BYTES = 1_000_000  # a baseline spec is a few kB; anything this large is not a spec
MAX_NESTING = 20  # deeper YAML than this is not a spec either
MAX_VALUES = 100_000  # a spec has a few hundred values; YAML aliases can multiply them (billion laughs)
# Past these a "network" is a typo, not a model. They keep every count an exact int that still
# converts to a finite float for reports, and scaled specs are held to the same limits.
MAX_BLOCKS = 10_000
MAX_CHANNELS = 1_000_000_000
MAX_RESOLUTION = 100_000

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60


def short_repr(v: Any) -> str:
    """A short repr of a user's value for an error message (a value can be huge or cyclic)."""
    try:
        return _REPR.repr(v)
    except ValueError:  # an int past Python's str-conversion digit limit, maybe inside a list
        if isinstance(v, int):
            return f"<an integer of about {int(v.bit_length() * 0.30103):,} digits>"
        return f"<a {type(v).__name__} too large to show>"


@dataclass(frozen=True)
class PoolSpec:
    """A max-pool after the stem conv (ResNet): kernel k, stride s, padding k // 2."""

    kernel: int = 3
    stride: int = 2


@dataclass(frozen=True)
class StemSpec:
    """The first conv-BN-activation layer."""

    out: int
    kernel: int = 3
    stride: int = 2
    act: str = "relu"
    pool: PoolSpec | None = None


@dataclass(frozen=True)
class StageSpec:
    """``repeats`` blocks of one type; only the first block has ``stride`` and changes channels."""

    block: str
    out: int
    repeats: int = 1
    stride: int = 1
    kernel: int = 3
    act: str = "relu"
    expand: float = 1.0  # mbconv: expanded width = in * expand
    se: float = 0.0  # mbconv: squeeze width = max(1, int(block input channels * se)); 0 = no SE
    mid: int = 0  # bottleneck: width of the 3x3 conv (ResNet-50 stage 1: 64)
    name: str = ""


@dataclass(frozen=True)
class HeadSpec:
    """Optional 1x1 conv-BN-act, global average pool, dropout, linear classifier."""

    conv: int = 0  # channels of the 1x1 conv; 0 = none (ResNet, MobileNetV1)
    act: str = "relu"
    dropout: float = 0.0


@dataclass(frozen=True)
class Compound:
    """Compound scaling bases: d = alpha**phi, w = beta**phi, r = gamma**phi (paper eq. 3)."""

    alpha: float = 1.2
    beta: float = 1.1
    gamma: float = 1.15


@dataclass(frozen=True)
class ScalingRules:
    """How scaled channel counts, depths and resolutions are rounded. Data, not code."""

    channel_divisor: int = 8
    min_channels: int = 8
    round_limit: float = 0.9  # bump by one divisor if rounding fell below this share of c*w
    channel_rounding: str = "nearest"
    depth_rounding: str = "ceil"
    stem: str = "width"
    head: str = "width"
    resolution_divisor: int = 1
    compound: Compound = field(default_factory=Compound)


@dataclass(frozen=True)
class Preset:
    """An official, hand-rounded set of coefficients (EfficientNet-B0..B7)."""

    width: float
    depth: float
    resolution: int
    dropout: float | None = None


@dataclass(frozen=True)
class Origin:
    """Where a scaled spec came from (informative only: the numbers in the spec are final)."""

    spec: str
    width: float = 1.0
    depth: float = 1.0
    resolution: int = 0
    phi: float | None = None
    preset: str | None = None


@dataclass(frozen=True)
class Spec:
    name: str
    resolution: int
    stem: StemSpec
    stages: tuple[StageSpec, ...]
    head: HeadSpec
    num_classes: int = 1000
    in_channels: int = 3
    drop_path: float = 0.0  # stochastic depth rate of the last block (training only; costs nothing)
    description: str = ""
    scaling: ScalingRules = field(default_factory=ScalingRules)
    presets: Mapping[str, Preset] = field(default_factory=dict)
    origin: Origin | None = None
    path: str | None = field(default=None, compare=False)

    @property
    def total_stride(self) -> int:
        s = self.stem.stride * (self.stem.pool.stride if self.stem.pool else 1)
        for st in self.stages:
            s *= st.stride
        return s

    @property
    def depth(self) -> int:
        """Number of blocks in the stages (stem and head excluded)."""
        return sum(st.repeats for st in self.stages)


# --------------------------------------------------------------------------------------------
# Validation: one small parser per dataclass, each error names its field.


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if close:
        return f"unknown field {short_repr(key)} (did you mean {close[0]!r}?)"
    return f"unknown field {short_repr(key)} (valid: {', '.join(valid)})"


def _check_keys(data: Any, cls: type, path: str, skip: tuple[str, ...] = ()) -> dict:
    if not isinstance(data, dict):
        raise SpecError(f"expected a mapping, got {_tname(data)}", field=path or None)
    valid = [f.name for f in dataclasses.fields(cls) if f.name not in skip]
    for key in data:
        if not isinstance(key, str):
            raise SpecError(f"field names must be strings, got {short_repr(key)}", field=path or None)
        if key not in valid:
            name = key if key.isprintable() and len(key) <= 60 else short_repr(key)
            raise SpecError(_suggest(key, valid), field=_join(path, name))
    return data


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _tname(v: Any) -> str:
    if v is None:
        return "nothing (null)"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a mapping"}.get(type(v), type(v).__name__)


def _req(data: dict, key: str, path: str) -> Any:
    if key not in data or data[key] is None:
        raise SpecError("missing required field", field=_join(path, key))
    return data[key]


def _int(data: dict, key: str, path: str, default: Any = dataclasses.MISSING, *,
         lo: int | None = None, hi: int | None = None) -> int:
    v = data.get(key, default) if default is not dataclasses.MISSING else _req(data, key, path)
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        raise SpecError(f"expected an integer, got {_tname(v)} {short_repr(v)}", field=_join(path, key))
    if lo is not None and v < lo:
        raise SpecError(f"must be >= {lo:,}, got {short_repr(v)}", field=_join(path, key))
    if hi is not None and v > hi:
        raise SpecError(f"must be <= {hi:,}, got {short_repr(v)}", field=_join(path, key))
    return v


def _float(data: dict, key: str, path: str, default: Any = dataclasses.MISSING, *,
           lo: float | None = None, lo_open: bool = False, hi: float | None = None,
           hi_open: bool = False) -> float:
    v = data.get(key, default) if default is not dataclasses.MISSING else _req(data, key, path)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise SpecError(f"expected a number, got {_tname(v)} {short_repr(v)}", field=_join(path, key))
    try:
        v = float(v)
    except OverflowError:  # an int too large for a float
        v = math.inf
    if not math.isfinite(v):
        raise SpecError(f"must be finite, got {v}", field=_join(path, key))
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise SpecError(f"must be {'>' if lo_open else '>='} {lo:g}, got {v:g}", field=_join(path, key))
    if hi is not None and (v > hi or (hi_open and v == hi)):
        raise SpecError(f"must be {'<' if hi_open else '<='} {hi:g}, got {v:g}", field=_join(path, key))
    return v


def _str(data: dict, key: str, path: str, default: Any = dataclasses.MISSING, *,
         choices: tuple[str, ...] | None = None) -> str:
    v = data.get(key, default) if default is not dataclasses.MISSING else _req(data, key, path)
    if not isinstance(v, str):
        raise SpecError(f"expected a string, got {_tname(v)} {short_repr(v)}", field=_join(path, key))
    if choices is not None and v not in choices:
        raise SpecError(f"unknown value {short_repr(v)} (valid: {', '.join(choices)})",
                        field=_join(path, key))
    return v


def _kernel(data: dict, key: str, path: str, default: int) -> int:
    k = _int(data, key, path, default, lo=1, hi=31)
    if k % 2 == 0:
        raise SpecError(f"must be odd ('same' padding k // 2 needs an odd kernel), got {k}",
                        field=_join(path, key))
    return k


def _stride(data: dict, key: str, path: str, default: int) -> int:
    s = _int(data, key, path, default)
    if s not in (1, 2):
        raise SpecError(f"must be 1 or 2, got {s}", field=_join(path, key))
    return s


def _pool(data: Any, path: str) -> PoolSpec | None:
    if data is None:
        return None
    _check_keys(data, PoolSpec, path)
    return PoolSpec(kernel=_kernel(data, "kernel", path, 3), stride=_stride(data, "stride", path, 2))


def _stem(data: Any, path: str) -> StemSpec:
    _check_keys(data, StemSpec, path)
    return StemSpec(
        out=_int(data, "out", path, lo=1, hi=MAX_CHANNELS),
        kernel=_kernel(data, "kernel", path, 3),
        stride=_stride(data, "stride", path, 2),
        act=_str(data, "act", path, "relu", choices=ACTIVATIONS),
        pool=_pool(data.get("pool"), _join(path, "pool")),
    )


# fields that only make sense for some block types
_BLOCK_FIELDS = {
    "conv": {"block", "out", "repeats", "stride", "kernel", "act", "name"},
    "dwsep": {"block", "out", "repeats", "stride", "kernel", "act", "name"},
    "mbconv": {"block", "out", "repeats", "stride", "kernel", "act", "expand", "se", "name"},
    "bottleneck": {"block", "out", "repeats", "stride", "act", "mid", "name"},
}


def _stage(data: Any, path: str) -> StageSpec:
    _check_keys(data, StageSpec, path)
    block = _str(data, "block", path, choices=BLOCK_TYPES)
    for key in data:
        if key not in _BLOCK_FIELDS[block]:
            raise SpecError(f"not a field of a {block!r} block (valid: "
                            f"{', '.join(sorted(_BLOCK_FIELDS[block]))})", field=_join(path, key))
    mid = 0
    if block == "bottleneck":
        mid = _int(data, "mid", path, lo=1, hi=MAX_CHANNELS)
    se = _float(data, "se", path, 0.0)
    if not 0.0 <= se <= 1.0:
        raise SpecError(f"must be > 0 and <= 1, or 0 for no squeeze-excitation, got {se:g}",
                        field=_join(path, "se"))
    return StageSpec(
        block=block,
        out=_int(data, "out", path, lo=1, hi=MAX_CHANNELS),
        repeats=_int(data, "repeats", path, 1, lo=1, hi=MAX_BLOCKS),
        stride=_stride(data, "stride", path, 1),
        kernel=_kernel(data, "kernel", path, 3),
        act=_str(data, "act", path, "relu", choices=ACTIVATIONS),
        expand=_float(data, "expand", path, 1.0, lo=0.0, lo_open=True, hi=64),
        se=se,
        mid=mid,
        name=_str(data, "name", path, ""),
    )


def _head(data: Any, path: str) -> HeadSpec:
    _check_keys(data, HeadSpec, path)
    return HeadSpec(
        conv=_int(data, "conv", path, 0, lo=0, hi=MAX_CHANNELS),
        act=_str(data, "act", path, "relu", choices=ACTIVATIONS),
        dropout=_float(data, "dropout", path, 0.0, lo=0.0, hi=1.0, hi_open=True),
    )


def _compound(data: Any, path: str) -> Compound:
    _check_keys(data, Compound, path)
    kw = {k: _float(data, k, path, getattr(Compound, k), lo=0.0, lo_open=True, hi=100)
          for k in ("alpha", "beta", "gamma")}
    return Compound(**kw)


def _rules(data: Any, path: str) -> ScalingRules:
    if data is None:
        return ScalingRules()
    _check_keys(data, ScalingRules, path)
    d = ScalingRules()
    divisor = _int(data, "channel_divisor", path, d.channel_divisor, lo=1, hi=1024)
    return ScalingRules(
        channel_divisor=divisor,
        min_channels=_int(data, "min_channels", path, divisor, lo=1, hi=MAX_CHANNELS),
        round_limit=_float(data, "round_limit", path, d.round_limit, lo=0.0, hi=1.0),
        channel_rounding=_str(data, "channel_rounding", path, d.channel_rounding,
                              choices=CHANNEL_ROUNDING),
        depth_rounding=_str(data, "depth_rounding", path, d.depth_rounding, choices=DEPTH_ROUNDING),
        stem=_str(data, "stem", path, d.stem, choices=STEM_RULES),
        head=_str(data, "head", path, d.head, choices=HEAD_RULES),
        resolution_divisor=_int(data, "resolution_divisor", path, d.resolution_divisor, lo=1, hi=1024),
        compound=_compound(data.get("compound", {}), _join(path, "compound")),
    )


def _presets(data: Any, path: str) -> dict[str, Preset]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SpecError(f"expected a mapping of preset names, got {_tname(data)}", field=path)
    out = {}
    for name, p in data.items():
        ppath = _join(path, str(name))
        if isinstance(p, list):  # [width, depth, resolution, dropout], as in efficientnet_builder
            if len(p) not in (3, 4):
                raise SpecError("expected [width, depth, resolution] or [..., dropout]", field=ppath)
            p = dict(zip(("width", "depth", "resolution", "dropout"), p))
        _check_keys(p, Preset, ppath)
        drop = p.get("dropout")
        out[str(name)] = Preset(
            width=_float(p, "width", ppath, lo=0.0, lo_open=True, hi=100),
            depth=_float(p, "depth", ppath, lo=0.0, lo_open=True, hi=100),
            resolution=_int(p, "resolution", ppath, lo=1, hi=MAX_RESOLUTION),
            dropout=None if drop is None else _float(p, "dropout", ppath, lo=0.0, hi=1.0, hi_open=True),
        )
    return out


def _origin(data: Any, path: str) -> Origin | None:
    if data is None:
        return None
    _check_keys(data, Origin, path)
    phi = data.get("phi")
    return Origin(
        spec=_str(data, "spec", path),
        width=_float(data, "width", path, 1.0, lo=0.0, lo_open=True),
        depth=_float(data, "depth", path, 1.0, lo=0.0, lo_open=True),
        resolution=_int(data, "resolution", path, 0, lo=0, hi=MAX_RESOLUTION),
        phi=None if phi is None else _float(data, "phi", path),
        preset=data.get("preset") if data.get("preset") is None else _str(data, "preset", path),
    )


def check_network(spec: Spec) -> None:
    """Rules that span fields, for loaded and scaled specs alike (raises :class:`SpecError`):
    the input is at least the network's total stride (else every stage past that point runs at
    1 px, which is a typo, not a model), at most MAX_BLOCKS blocks and MAX_CHANNELS channels, and
    every MBConv expansion leaves at least one channel."""
    if spec.resolution < spec.total_stride:
        raise SpecError(f"must be at least the network's total stride {spec.total_stride} "
                        f"(stem, pool and stage strides multiplied), got {spec.resolution}",
                        field="resolution")
    if spec.resolution > MAX_RESOLUTION:
        raise SpecError(f"must be <= {MAX_RESOLUTION:,}, got {spec.resolution:,}", field="resolution")
    if spec.depth > MAX_BLOCKS:
        raise SpecError(f"{spec.depth:,} blocks in all; scalekit refuses networks of more than "
                        f"{MAX_BLOCKS:,} blocks", field="stages")
    channels = [("stem.out", spec.stem.out), ("head.conv", spec.head.conv)]
    for i, st in enumerate(spec.stages):
        channels += [(f"stages[{i}].out", st.out), (f"stages[{i}].mid", st.mid)]
    for name, c in channels:
        if c > MAX_CHANNELS:
            raise SpecError(f"must be <= {MAX_CHANNELS:,}, got {c:,}", field=name)
    cin = spec.stem.out
    for i, st in enumerate(spec.stages):
        smallest = cin if st.repeats == 1 else min(cin, st.out)  # later blocks take st.out
        if st.block == "mbconv" and st.expand != 1 and int(smallest * st.expand) < 1:
            raise SpecError(f"{smallest} input channels x {st.expand:g} leaves no expanded "
                            "channel; expand must give at least 1", field=f"stages[{i}].expand")
        cin = st.out


def spec_from_dict(data: Any, *, path: str | None = None) -> Spec:
    """Validate a parsed YAML document into a :class:`Spec` (raises :class:`SpecError`)."""
    try:
        _check_keys(data, Spec, "", skip=("path",))
        stages_raw = _req(data, "stages", "")
        if not isinstance(stages_raw, list) or not stages_raw:
            raise SpecError("expected a non-empty list of stages", field="stages")
        spec = Spec(
            name=_str(data, "name", ""),
            resolution=_int(data, "resolution", "", lo=1, hi=MAX_RESOLUTION),
            stem=_stem(_req(data, "stem", ""), "stem"),
            stages=tuple(_stage(s, f"stages[{i}]") for i, s in enumerate(stages_raw)),
            head=_head({} if data.get("head") is None else data["head"], "head"),
            num_classes=_int(data, "num_classes", "", 1000, lo=1, hi=10_000_000),
            in_channels=_int(data, "in_channels", "", 3, lo=1, hi=100_000),
            drop_path=_float(data, "drop_path", "", 0.0, lo=0.0, hi=1.0, hi_open=True),
            description=_str(data, "description", "", ""),
            scaling=_rules(data.get("scaling"), "scaling"),
            presets=_presets(data.get("presets"), "presets"),
            origin=_origin(data.get("origin"), "origin"),
            path=path,
        )
        check_network(spec)
    except SpecError as e:
        raise e.with_file(path) if path and not e.file else e
    return spec


class _StrictLoader(yaml.SafeLoader):
    """safe_load, plus duplicate keys are an error (a silent overwrite hides typos), and the
    document may nest at most MAX_NESTING deep: the composer stops there, before PyYAML's own
    recursion (and its scanner, slow on thousands of open brackets) gets far."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_NESTING:
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_NESTING} levels; not a spec",
                    self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, (str, int, float, bool)) and key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", mark)
        seen.add(key) if isinstance(key, (str, int, float, bool)) else None
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _check_shape(obj: Any, path: str) -> None:
    """Refuse data nested deeper than MAX_NESTING or holding more than MAX_VALUES values.

    Values are counted as reached, so YAML aliases that repeat one list inside another
    (a "billion laughs" file of a few hundred bytes) are refused before anything walks them.
    """
    stack = [(obj, 1)]
    seen = 0
    while stack:
        o, d = stack.pop()
        seen += 1
        if d > MAX_NESTING:
            raise SpecError(f"nested deeper than {MAX_NESTING} levels; not a spec", file=path)
        if seen > MAX_VALUES:
            raise SpecError(f"more than {MAX_VALUES:,} values (YAML aliases count each time they "
                            "are used); not a spec", file=path)
        if isinstance(o, dict):
            stack.extend((v, d + 1) for v in o.values())
        elif isinstance(o, list):
            stack.extend((v, d + 1) for v in o)


def parse_yaml(text: str, *, path: str | None = None) -> Any:
    """YAML text -> plain data, with errors that say where (line and column)."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.constructor.ConstructorError as e:
        mark = e.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = e.problem or str(e)
        if "could not determine a constructor" in problem:
            tag = problem.partition("tag ")[2].strip("'").replace("tag:yaml.org,2002:", "!!")
            problem = (f"YAML tag not allowed ({tag}): "
                       "specs are plain data, tags that construct objects are rejected")
        raise SpecError(f"{where}{problem}", file=path) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        kind = "YAML error" if isinstance(e, yaml.composer.ComposerError) else "YAML syntax error"
        raise SpecError(f"{kind} at {where}{e.problem}", file=path) from None
    except yaml.reader.ReaderError as e:
        before = text[:e.position]
        where = f"line {before.count(chr(10)) + 1}, column {e.position - before.rfind(chr(10))}"
        char = f"U+{e.character:04X}" if isinstance(e.character, int) else repr(e.character)
        raise SpecError(f"YAML error at {where}: control character {char} is not allowed in "
                        "YAML", file=path) from None
    except RecursionError:
        raise SpecError(f"nested deeper than {MAX_NESTING} levels; not a spec", file=path) from None
    except (yaml.YAMLError, ValueError) as e:  # ValueError: an int of > 4300 digits, a bad date
        raise SpecError(f"YAML error: {' '.join(str(e).split())}", file=path) from None


def load_spec(path: str | os.PathLike) -> Spec:
    """Read and validate a YAML spec file. Raises :class:`SpecError` naming file and field."""
    p = os.fspath(path)
    if not p.strip():
        raise SpecError("no spec given: the file name is empty")
    try:
        size = os.path.getsize(p)
        if os.path.isdir(p):
            raise SpecError("is a directory, not a spec file", file=p)
        if size > MAX_SPEC_BYTES:
            raise SpecError(f"file is {size:,} bytes; specs larger than {MAX_SPEC_BYTES:,} bytes are "
                            "refused", file=p)
        with open(p, "rb") as f:  # bounded: /dev/zero or a pipe reports size 0
            raw = f.read(MAX_SPEC_BYTES + 1)
        if len(raw) > MAX_SPEC_BYTES:
            raise SpecError(f"more than {MAX_SPEC_BYTES:,} bytes; larger specs are refused", file=p)
    except FileNotFoundError:
        raise SpecError("no such file", file=p) from None
    except PermissionError:
        raise SpecError("permission denied", file=p) from None
    except IsADirectoryError:
        raise SpecError("is a directory, not a spec file", file=p) from None
    except OSError as e:
        raise SpecError(f"cannot read: {e.strerror or e}", file=p) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError("not a UTF-8 text file", file=p) from None
    data = parse_yaml(text, path=p)
    if data is None:
        raise SpecError("file is empty", file=p)
    _check_shape(data, p)
    return spec_from_dict(data, path=p)


# --------------------------------------------------------------------------------------------
# Writing back: a spec as plain YAML data that load_spec reads to an equal Spec.


def _clean(obj: Any, defaults: Any) -> Any:
    out = {}
    for f in dataclasses.fields(obj):
        if f.name == "path":
            continue
        v = getattr(obj, f.name)
        if dataclasses.is_dataclass(v):
            v = _clean(v, None)
        elif isinstance(v, tuple):
            v = [_clean(x, None) if dataclasses.is_dataclass(x) else x for x in v]
        elif isinstance(v, Mapping):
            v = {k: (_clean(x, None) if dataclasses.is_dataclass(x) else x) for k, x in v.items()}
            if not v:
                continue
        if v is None:
            continue
        if isinstance(v, float) and v.is_integer() and f.name in ("expand",):
            v = int(v)
        out[f.name] = v
    return out


def spec_to_dict(spec: Spec) -> dict:
    """The spec as plain data (lists and dicts), ready for yaml.safe_dump."""
    d = _clean(spec, None)
    for st in d["stages"]:  # drop fields that do not belong to the block type
        for key in list(st):
            if key not in _BLOCK_FIELDS[st["block"]] or (key == "name" and not st[key]):
                del st[key]
    order = ["name", "description", "resolution", "in_channels", "num_classes", "drop_path",
             "stem", "stages", "head", "scaling", "presets", "origin"]
    return {k: d[k] for k in order if k in d}


def spec_to_yaml(spec: Spec, *, header: str = "") -> str:
    body = yaml.safe_dump(spec_to_dict(spec), sort_keys=False, default_flow_style=None, width=100)
    return header + body

"""Network specs: YAML in, frozen typed dataclasses out.

A spec describes a baseline network as data: a stem, stages of repeated blocks (the first block of
a stage takes the stage's stride), a classifier head, and the scaling rules that real
implementations use for it. See docs/spec-format.md for the format, field by field.

Only ``yaml.safe_load`` is used: specs are data, nothing in them is executed or imported.
This module never imports torch.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

import yaml

from .blocks import StageSpec, kind, stage_kinds
from .blocks.base import stage_fields
from .errors import FileError, SpecError
from .layouts import FAMILIES
from .fields import ACTIVATIONS  # noqa: F401 - the activations a spec may name, re-exported
from .fields import (MAX_CHANNELS, MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS, act_field,
                     check_keys, check_names, float_field, int_field, join, kernel_field,
                     required, short_repr, str_field, stride_field, type_name)
from .files import path_name, read_input

BLOCK_TYPES = stage_kinds()  # what a stage's ``block:`` may be (the registered stage kinds)
DEPTH_ROUNDING = ("ceil", "round")
CHANNEL_ROUNDING = ("nearest", "floor")
HEAD_RULES = ("width", "width_at_least_1", "last_stage_multiple", "fixed")
STEM_RULES = ("width", "fixed")
GROUP_RULES = ("fixed_groups", "fixed_group_width")
WIDTH_CHANNELS = ("all", "inner")

MAX_SPEC_BYTES = 1_000_000  # a baseline spec is a few kB; anything this large is not a spec
MAX_NESTING = 20  # deeper YAML than this is not a spec either
MAX_VALUES = 100_000  # a spec has a few hundred values; YAML aliases can multiply them (billion laughs)
# Past these a "network" is a typo, not a model. They keep every count an exact int that still
# converts to a finite float for reports, and scaled specs are held to the same limits
# (MAX_CHANNELS, in fields.py, too).
MAX_BLOCKS = 10_000
MAX_RESOLUTION = 100_000


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
class HeadSpec:
    """Optional 1x1 conv-BN-act, global average pool, dropout, linear classifier."""

    conv: int = 0  # channels of the 1x1 conv; 0 = none (ResNet, MobileNetV1)
    act: str = "relu"
    dropout: float = 0.0


@dataclass(frozen=True)
class BatchNormSpec:
    """The settings of every BatchNorm (they change no count, but a checkpoint's outputs need
    them: torchvision's EfficientNet-B5..B7 use eps 1e-3, momentum 0.01)."""

    eps: float = 1e-5  # PyTorch's default
    momentum: float = 0.1  # PyTorch's (TF's 0.99 decay is momentum 0.01 here)


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
    max_resolution: int = 0  # scaled resolutions are capped here (EfficientNetV2: 480); 0: none
    groups: str = "fixed_groups"  # keeping a grouped conv's width divisible: GROUP_RULES
    width_channels: str = "all"  # which channels width scaling touches: WIDTH_CHANNELS
    compound: Compound = field(default_factory=Compound)


@dataclass(frozen=True)
class Preset:
    """An official, hand-rounded set of coefficients (EfficientNet-B0..B7)."""

    width: float
    depth: float
    resolution: int
    dropout: float | None = None
    batchnorm: BatchNormSpec | None = None  # the model's BatchNorm settings, if not the spec's


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
    # stochastic depth: block i of N (from 0) drops with drop_path * i / N (training only)
    drop_path: float = 0.0
    description: str = ""
    batchnorm: BatchNormSpec = field(default_factory=BatchNormSpec)
    # library -> the family of its checkpoints (scalekit.layouts.FAMILIES), for load-by-name
    checkpoints: Mapping[str, str] = field(default_factory=dict)
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


def _pool(data: Any, path: str) -> PoolSpec | None:
    if data is None:
        return None
    check_keys(data, PoolSpec, path)
    return PoolSpec(kernel=kernel_field(data, "kernel", path, 3), stride=stride_field(data, "stride", path, 2))


def _stem(data: Any, path: str) -> StemSpec:
    check_keys(data, StemSpec, path)
    return StemSpec(
        out=int_field(data, "out", path, lo=1, hi=MAX_CHANNELS),
        kernel=kernel_field(data, "kernel", path, 3),
        stride=stride_field(data, "stride", path, 2),
        act=act_field(data, "act", path),
        pool=_pool(data.get("pool"), join(path, "pool")),
    )


def _stage(data: Any, path: str) -> StageSpec:
    kinds = stage_kinds()
    # a field no stage kind has is a typo, answered with the closest name
    check_names(data, sorted({f for name in kinds for f in stage_fields(kind(name).stage)}), path)
    block = str_field(data, "block", path, choices=kinds)
    k = kind(block)
    check_names(data, stage_fields(k.stage), path, what=f"a {block!r} block")
    return k.stage(
        block=block,
        out=int_field(data, "out", path, lo=1, hi=MAX_CHANNELS),
        repeats=int_field(data, "repeats", path, 1, lo=1, hi=MAX_BLOCKS),
        stride=stride_field(data, "stride", path, 1),
        act=act_field(data, "act", path),
        name=str_field(data, "name", path, ""),
        **k.parse(data, path),
    )


def _head(data: Any, path: str) -> HeadSpec:
    check_keys(data, HeadSpec, path)
    return HeadSpec(
        conv=int_field(data, "conv", path, 0, lo=0, hi=MAX_CHANNELS),
        act=act_field(data, "act", path),
        dropout=float_field(data, "dropout", path, 0.0, lo=0.0, hi=1.0, hi_open=True),
    )


def _batchnorm(data: Any, path: str) -> BatchNormSpec:
    check_keys(data, BatchNormSpec, path)
    d = BatchNormSpec()
    return BatchNormSpec(
        eps=float_field(data, "eps", path, d.eps, lo=0.0, lo_open=True, hi=1.0, hi_open=True),
        momentum=float_field(data, "momentum", path, d.momentum, lo=0.0, hi=1.0))


def _checkpoints(data: Any, path: str) -> dict[str, str]:
    if data is None:
        return {}
    check_names(data, list(FAMILIES), path)
    return {lib: str_field(data, lib, path, choices=FAMILIES[lib]) for lib in data}


def _compound(data: Any, path: str) -> Compound:
    check_keys(data, Compound, path)
    kw = {k: float_field(data, k, path, getattr(Compound, k), lo=0.0, lo_open=True, hi=100)
          for k in ("alpha", "beta", "gamma")}
    return Compound(**kw)


def _rules(data: Any, path: str) -> ScalingRules:
    if data is None:
        return ScalingRules()
    check_keys(data, ScalingRules, path)
    d = ScalingRules()
    divisor = int_field(data, "channel_divisor", path, d.channel_divisor, lo=1, hi=1024)
    return ScalingRules(
        channel_divisor=divisor,
        min_channels=int_field(data, "min_channels", path, divisor, lo=1, hi=MAX_CHANNELS),
        round_limit=float_field(data, "round_limit", path, d.round_limit, lo=0.0, hi=1.0),
        channel_rounding=str_field(data, "channel_rounding", path, d.channel_rounding,
                              choices=CHANNEL_ROUNDING),
        depth_rounding=str_field(data, "depth_rounding", path, d.depth_rounding, choices=DEPTH_ROUNDING),
        stem=str_field(data, "stem", path, d.stem, choices=STEM_RULES),
        head=str_field(data, "head", path, d.head, choices=HEAD_RULES),
        resolution_divisor=int_field(data, "resolution_divisor", path, d.resolution_divisor, lo=1, hi=1024),
        max_resolution=int_field(data, "max_resolution", path, 0, lo=0, hi=MAX_RESOLUTION),
        groups=str_field(data, "groups", path, d.groups, choices=GROUP_RULES),
        width_channels=str_field(data, "width_channels", path, d.width_channels,
                                 choices=WIDTH_CHANNELS),
        compound=_compound(data.get("compound", {}), join(path, "compound")),
    )


def _presets(data: Any, path: str) -> dict[str, Preset]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SpecError(f"expected a mapping of preset names, got {type_name(data)}", field=path)
    out = {}
    for name, p in data.items():
        if isinstance(name, bool) or not isinstance(name, (str, int)):
            raise SpecError(f"preset names must be strings, got {type_name(name)} "
                            f"{short_repr(name)}", field=path)
        if len(str(name)) > MAX_NAME_CHARS:
            raise SpecError(f"a preset name of {len(str(name)):,} characters; at most "
                            f"{MAX_NAME_CHARS:,} are allowed", field=path)
        ppath = join(path, str(name))
        if str(name) in out:  # 1 and "1" are one preset name
            raise SpecError(f"two presets are named {str(name)!r} (an integer and a string "
                            "name the same preset)", field=ppath)
        if isinstance(p, list):  # [width, depth, resolution, dropout], as in efficientnet_builder
            if len(p) not in (3, 4):
                raise SpecError("expected [width, depth, resolution] or [..., dropout]", field=ppath)
            p = dict(zip(("width", "depth", "resolution", "dropout"), p))
        check_keys(p, Preset, ppath)
        drop, bn = p.get("dropout"), p.get("batchnorm")
        out[str(name)] = Preset(
            width=float_field(p, "width", ppath, lo=0.0, lo_open=True, hi=100),
            depth=float_field(p, "depth", ppath, lo=0.0, lo_open=True, hi=100),
            resolution=int_field(p, "resolution", ppath, lo=1, hi=MAX_RESOLUTION),
            dropout=None if drop is None else float_field(p, "dropout", ppath, lo=0.0, hi=1.0, hi_open=True),
            batchnorm=None if bn is None else _batchnorm(bn, join(ppath, "batchnorm")),
        )
    return out


def _origin(data: Any, path: str) -> Origin | None:
    if data is None:
        return None
    check_keys(data, Origin, path)
    phi = data.get("phi")
    return Origin(
        spec=str_field(data, "spec", path),
        width=float_field(data, "width", path, 1.0, lo=0.0, lo_open=True),
        depth=float_field(data, "depth", path, 1.0, lo=0.0, lo_open=True),
        resolution=int_field(data, "resolution", path, 0, lo=0, hi=MAX_RESOLUTION),
        phi=None if phi is None else float_field(data, "phi", path),
        preset=data.get("preset") if data.get("preset") is None else str_field(data, "preset", path),
    )


def check_network(spec: Spec) -> None:
    """Rules that span fields, for loaded and scaled specs alike (raises :class:`SpecError`):
    the input is at least the network's total stride (else every stage past that point runs at
    1 px, which is a typo, not a model), at most MAX_BLOCKS blocks and MAX_CHANNELS channels, and
    each stage's own rules across fields (its kind's ``check``: an MBConv expansion leaves at least
    one channel, ...)."""
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
        channels += [(f"stages[{i}].{f}", c) for f, c in kind(st.block).channels(st).items()]
    for name, c in channels:
        if c > MAX_CHANNELS:
            raise SpecError(f"must be <= {MAX_CHANNELS:,}, got {c:,}", field=name)
    cin = spec.stem.out
    for i, st in enumerate(spec.stages):
        kind(st.block).check(st, cin, f"stages[{i}]")
        cin = st.out
    last = spec.stages[-1].out
    if spec.scaling.head == "last_stage_multiple" and spec.head.conv % last:
        raise SpecError(f"last_stage_multiple scales the head conv as a multiple of the last "
                        f"stage's width, but head.conv {spec.head.conv:,} is not a whole multiple "
                        f"of {last:,}", field="scaling.head")


def spec_from_dict(data: Any, *, path: str | None = None) -> Spec:
    """Validate a parsed YAML document into a :class:`Spec` (raises :class:`SpecError`)."""
    try:
        check_keys(data, Spec, "", skip=("path",))
        stages_raw = required(data, "stages", "")
        if not isinstance(stages_raw, list) or not stages_raw:
            raise SpecError("expected a non-empty list of stages", field="stages")
        spec = Spec(
            name=str_field(data, "name", ""),
            resolution=int_field(data, "resolution", "", lo=1, hi=MAX_RESOLUTION),
            stem=_stem(required(data, "stem", ""), "stem"),
            stages=tuple(_stage(s, f"stages[{i}]") for i, s in enumerate(stages_raw)),
            head=_head({} if data.get("head") is None else data["head"], "head"),
            num_classes=int_field(data, "num_classes", "", 1000, lo=1, hi=10_000_000),
            in_channels=int_field(data, "in_channels", "", 3, lo=1, hi=100_000),
            drop_path=float_field(data, "drop_path", "", 0.0, lo=0.0, hi=1.0, hi_open=True),
            description=str_field(data, "description", "", "", max_len=MAX_DESCRIPTION_CHARS),
            batchnorm=_batchnorm({} if data.get("batchnorm") is None else data["batchnorm"],
                                 "batchnorm"),
            checkpoints=_checkpoints(data.get("checkpoints"), "checkpoints"),
            scaling=_rules(data.get("scaling"), "scaling"),
            presets=_presets(data.get("presets"), "presets"),
            origin=_origin(data.get("origin"), "origin"),
            path=path,
        )
        check_network(spec)
    except SpecError as e:
        raise e.with_file(path) if path and not e.file else e
    return spec


MERGE_TAG = "tag:yaml.org,2002:merge"


class _StrictLoader(yaml.SafeLoader):
    """safe_load, plus duplicate keys are an error (a silent overwrite hides typos), and the
    document may nest at most MAX_NESTING deep: the composer stops there, before PyYAML's own
    recursion (and its scanner, slow on thousands of open brackets) gets far. Merge keys
    (``<<: *base``) are plain YAML and allowed, within the same bound on values as aliases:
    merging mappings that merge others can double a mapping per level."""

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

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        _flatten_bounded(self, node)


def _flatten_bounded(loader: Any, node: yaml.MappingNode) -> None:
    """PyYAML's merge (``<<``) of ``node``, refused past MAX_VALUES entries."""
    yaml.constructor.SafeConstructor.flatten_mapping(loader, node)
    if len(node.value) > MAX_VALUES:
        raise yaml.constructor.ConstructorError(
            None, None, f"merge keys (<<) give a mapping more than {MAX_VALUES:,} entries; "
            "not a spec", node.start_mark)


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    """A mapping whose own keys are distinct; keys merged in with ``<<`` may be overridden by
    its own (that is what a merge is for)."""
    seen = set()
    for key_node, _ in node.value:
        if key_node.tag == MERGE_TAG:
            continue
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, (str, int, float, bool)) and key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", mark)
        seen.add(key) if isinstance(key, (str, int, float, bool)) else None
    loader.flatten_mapping(node)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


_CSafeLoader = getattr(yaml, "CSafeLoader", None)  # libyaml's parser, where PyYAML has it


class _TooDeep(Exception):
    pass


def _deeper_than(root: Any, limit: int) -> bool:
    """Whether a composed node tree nests deeper than ``limit`` nodes (root = 1), counting a node
    reached through an alias where it is used; a cycle counts as too deep. Each node is walked
    once (an alias-heavy document is not expanded), and never more than ``limit`` deep."""
    heights: dict[int, int | None] = {}

    def height(node: Any, depth: int) -> int:
        if depth > limit:
            raise _TooDeep
        key = id(node)
        if key not in heights:
            heights[key] = None  # in progress: met again below itself, it is a cycle
            if isinstance(node, yaml.MappingNode):
                kids = [n for pair in node.value for n in pair]
            elif isinstance(node, yaml.SequenceNode):
                kids = node.value
            else:
                kids = []
            heights[key] = 1 + max((height(k, depth + 1) for k in kids), default=0)
        h = heights[key]
        if h is None or depth + h - 1 > limit:
            raise _TooDeep
        return h

    try:
        height(root, 1)
    except _TooDeep:
        return True
    return False


_SLOW = object()  # the fast parser cannot vouch for this text: parse it with _StrictLoader


def _fast_parse(text: str) -> Any:
    """What :class:`_StrictLoader` reads from ``text``, parsed by libyaml (C: ten to twenty
    times faster than PyYAML's pure-Python scanner, which dominated a count-only command's
    start), or ``_SLOW`` for anything but a valid document within the limits: a syntax error,
    a duplicate key, non-printable characters, nesting deeper than MAX_NESTING. The pure-Python
    loader then gives the answer, so every error reads as it always has.

    Only for scalekit's own files (:func:`ours`): where both parsers read a document they read
    the same data, but libyaml accepts some text that PyYAML refuses (tabs as separators, ``?``
    keys in flow mappings), and a user's spec must load, or fail, as it always has."""
    if _CSafeLoader is None or yaml.reader.Reader.NON_PRINTABLE.search(text):
        return _SLOW
    loader = _FastStrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _deeper_than(node, MAX_NESTING):
            return _SLOW
        return loader.construct_document(node)
    except (yaml.YAMLError, ValueError, RecursionError):
        return _SLOW
    finally:
        loader.dispose()


if _CSafeLoader is not None:
    class _FastStrictLoader(_CSafeLoader):  # type: ignore[misc, valid-type]
        """libyaml's parser with :class:`_StrictLoader`'s duplicate-key check and its bound on
        merged mappings (the constructor is PyYAML's Python code in both)."""

        def flatten_mapping(self, node: yaml.MappingNode) -> None:
            _flatten_bounded(self, node)

    _FastStrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                      _construct_mapping)


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


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def ours(path: str | os.PathLike) -> bool:
    """Whether ``path`` is one of scalekit's own files (a bundled spec, reference data): under
    the installed package's directory."""
    return os.path.abspath(path).startswith(_PACKAGE_DIR + os.sep)


def parse_yaml(text: str, *, path: str | None = None, fast: bool = False) -> Any:
    """YAML text -> plain data, with errors that say where (line and column). ``fast`` (for
    scalekit's own files only, see :func:`ours`): a valid document is parsed by libyaml when
    PyYAML has it (:func:`_fast_parse`); anything else, and every user's file, by PyYAML's own
    scanner, which also words the errors."""
    if fast:
        data = _fast_parse(text)
        if data is not _SLOW:
            return data
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
    """Read and validate a YAML spec file. Raises :class:`SpecError` naming file and field.

    Only a regular file is read (a FIFO or a device is refused before anything blocks), of at
    most MAX_SPEC_BYTES bytes, named by at most files.MAX_PATH characters."""
    try:
        p = path_name(path)
    except FileError as e:
        raise SpecError(e.reason, file=e.path) from None
    if not p.strip():
        raise SpecError("no spec given: the file name is empty")
    try:
        raw = read_input(p, MAX_SPEC_BYTES, "specs")
    except FileError as e:
        raise SpecError(e.reason, file=p) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError("not a UTF-8 text file", file=p) from None
    data = parse_yaml(text, path=p, fast=ours(p))
    if data is None:
        raise SpecError("file is empty", file=p)
    _check_shape(data, p)
    return spec_from_dict(data, path=p)


# --------------------------------------------------------------------------------------------
# Writing back: a spec as plain YAML data that load_spec reads to an equal Spec.


def _clean(obj: Any) -> Any:
    out = {}
    for f in dataclasses.fields(obj):
        if f.name == "path":
            continue
        v = getattr(obj, f.name)
        if dataclasses.is_dataclass(v):
            v = _clean(v)
        elif isinstance(v, tuple):
            v = [_clean(x) if dataclasses.is_dataclass(x) else x for x in v]
        elif isinstance(v, Mapping):
            v = {k: (_clean(x) if dataclasses.is_dataclass(x) else x) for k, x in v.items()}
            if not v:
                continue
        if v is None:
            continue
        out[f.name] = v
    return out


def _stage_dict(st: dict) -> dict:
    """A stage as written: the common fields, then the kind's own (whole numbers as integers:
    ``expand: 6``), then its name if it has one."""
    name = st.pop("name", "")
    out = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in st.items()}
    return {**out, "name": name} if name else out


def spec_to_dict(spec: Spec) -> dict:
    """The spec as plain data (lists and dicts), ready for yaml.safe_dump."""
    d = _clean(spec)
    d["stages"] = [_stage_dict(st) for st in d["stages"]]
    order = ["name", "description", "resolution", "in_channels", "num_classes", "drop_path",
             "batchnorm", "checkpoints", "stem", "stages", "head", "scaling", "presets", "origin"]
    return {k: d[k] for k in order if k in d}


def spec_to_yaml(spec: Spec, *, header: str = "") -> str:
    body = yaml.safe_dump(spec_to_dict(spec), sort_keys=False, default_flow_style=None, width=100)
    return header + body

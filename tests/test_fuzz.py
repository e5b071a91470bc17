"""Fuzzing the spec loader: mutated specs load or raise the typed error, never anything else.

Each example takes a bundled spec's parsed YAML, applies 1-4 random mutations (drop a key or list
item, rename a key, retype a value, put a random number somewhere) and asserts:

- ``spec_from_dict`` returns a :class:`Spec` or raises :class:`SpecError`, and nothing else;
- a spec that loads can be expanded, counted, memory-estimated and scaled (phi or a preset)
  without any exception other than a :class:`ScalekitError`.

A second test does the same to the YAML text (characters inserted, deleted or replaced) through
``load_spec``. Examples are bounded so the file runs in a few seconds.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scalekit.counting import count_plan
from scalekit.errors import ScalekitError
from scalekit.blocks import KINDS
from scalekit.memory import estimate_memory
from scalekit.plan import expand
from scalekit.scaling import scale_spec
from scalekit.spec import (ACTIVATIONS, BLOCK_TYPES, Compound, HeadSpec, Origin, PoolSpec, Preset,
                           ScalingRules, Spec, SpecError, StemSpec, load_spec,
                           spec_from_dict)

from .conftest import SPEC_NAMES, spec_path

TEXTS = {name: Path(spec_path(name)).read_text(encoding="utf-8") for name in SPEC_NAMES}
DICTS = {name: yaml.safe_load(text) for name, text in TEXTS.items()}
# every field name the format knows: renaming a key to another class's field must fail cleanly too
STAGE_CLASSES = tuple(k.stage for k in KINDS.values() if k.stage is not None)
FIELD_NAMES = sorted({f.name for cls in (Spec, StemSpec, PoolSpec, *STAGE_CLASSES, HeadSpec,
                                         ScalingRules, Compound, Preset, Origin)
                      for f in dataclasses.fields(cls)})

# anything YAML can produce, and then some: wrong types, huge / negative / non-finite numbers
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6),
    st.integers(min_value=10**15, max_value=10**40), st.sampled_from([10**400, -10**400, -1, 0]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([float("nan"), float("inf"),
                                                                     float("-inf"), -0.0, 1e-300]),
    st.text(max_size=20), st.lists(st.integers(-3, 3), max_size=4),
    st.dictionaries(st.text(max_size=5), st.integers(-3, 3), max_size=2),
    st.sampled_from(BLOCK_TYPES + ACTIVATIONS),
)
# plausible numbers, so that more mutated specs load and reach expand / count / scale
NUMBERS = st.one_of(st.integers(-3, 3000), st.floats(-2, 2000, allow_nan=False))
KEYS = st.one_of(st.sampled_from(FIELD_NAMES), st.text(min_size=1, max_size=12), st.integers(-2, 2))


def slots(obj: Any) -> Iterator[tuple[Any, Any]]:
    """Every (container, key-or-index) in a parsed YAML document."""
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for k, v in list(items):
        yield obj, k
        yield from slots(v)


def mutate(doc: dict, data: st.DataObject) -> dict:
    doc = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        places = list(slots(doc))
        if not places:
            break
        parent, key = data.draw(st.sampled_from(places), label="where")
        op = data.draw(st.sampled_from(["drop", "rename", "retype", "number", "number"]),
                       label="op")  # numbers twice: more mutants load and reach expand / count
        if op == "drop":
            del parent[key]
        elif op == "rename" and isinstance(parent, dict):
            new = data.draw(st.one_of(KEYS, st.sampled_from([f"{key}x", str(key)[:-1],
                                                             str(key).upper()])), label="key")
            parent[new] = parent.pop(key)
        elif op == "number":
            parent[key] = data.draw(NUMBERS, label="number")
        else:
            parent[key] = data.draw(VALUES, label="value")
    return doc


def exercise(spec: Spec, data: st.DataObject) -> None:
    """What commands do with a loaded spec; only ScalekitError may come out."""
    for s in (spec, None):
        try:
            if s is None:
                presets = sorted(spec.presets)
                if presets and data.draw(st.booleans(), label="preset?"):
                    s, _ = scale_spec(spec, preset=data.draw(st.sampled_from(presets)))
                else:
                    s, _ = scale_spec(spec, phi=data.draw(st.floats(-4, 4), label="phi"))
            plan = expand(s)
            total = count_plan(plan).total
            assert total.params > 0 and total.macs >= 0 and total.acts > 0
            estimate_memory(plan)
        except ScalekitError:
            pass


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SPEC_NAMES), st.data())
def test_mutated_spec_loads_or_raises_spec_error(name, data):
    doc = mutate(DICTS[name], data)
    try:
        spec = spec_from_dict(doc)
    except SpecError:
        return
    assert isinstance(spec, Spec)
    exercise(spec, data)


@settings(max_examples=40, deadline=None)
@given(VALUES.filter(lambda v: not isinstance(v, dict)))
def test_any_document_that_is_not_a_mapping(value):
    try:
        spec_from_dict(value)
    except SpecError as e:
        assert "expected a mapping" in str(e)
    else:  # pragma: no cover - a scalar is never a spec
        raise AssertionError("a non-mapping loaded")


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(SPEC_NAMES), st.data())
def test_mutated_yaml_text_loads_or_raises_spec_error(name, data):
    text = TEXTS[name]
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        i = data.draw(st.integers(0, len(text)), label="at")
        j = i + data.draw(st.integers(0, 8), label="span")
        new = data.draw(st.text(alphabet=st.sampled_from(list("[]{}:,-&*!|>'\"#%@`?\t\n 0.e9x"))
                                | st.characters(), max_size=6), label="insert")
        text = text[:i] + new + text[j:]
    fd, path = tempfile.mkstemp(suffix=".yaml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogatepass") as f:
            f.write(text)
        try:
            spec = load_spec(path)
        except SpecError as e:
            assert "\n" not in str(e), "an error message spans lines"
            return
        exercise(spec, data)
    finally:
        os.unlink(path)

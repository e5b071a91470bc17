"""Fuzzing the spec loader: mutated specs load or raise the typed error, never anything else.

Each example takes a bundled spec's parsed YAML, applies 1-4 random mutations (drop a key or list
item, rename a key, retype a value, put a random number somewhere) and asserts:

- ``spec_from_dict`` returns a :class:`Spec` or raises :class:`SpecError`, and nothing else;
- a spec that loads can be expanded, counted, memory-estimated and scaled (phi or a preset)
  without any exception other than a :class:`ScalekitError`.

A second test does the same to the YAML text (characters inserted, deleted or replaced) through
``load_spec``.

Baselines (issue 15) are fuzzed the same way: report documents mutated as data (values retyped,
keys renamed into query or output parameters, NaN, huge integers) and as JSON text, then checked
(``baseline.check``): a result or a ScalekitError, a report that renders, and never a file
written. Command lines are fuzzed through the real entry point (``scalekit.cli.main``,
in-process): random values for the options of count-only commands give exit 0, 1 or 2 and, on
an error, exactly one escaped ``Error:`` line, never a traceback.

Examples are bounded so the file runs in a few seconds.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest
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


# ---------------------------------------------------------------------------------------------
# baselines: a JSON document that a pull request can edit, mutated; `check` reads it as data


def _baseline_documents() -> dict[str, dict]:
    from scalekit import baseline as baseline_check
    from scalekit.queries import make_query

    docs = {}
    for name, command, params in (("info", "info", {"spec": "resnet50", "latency": False}),
                                  ("scale", "scale", {"spec": "mobilenet_v2", "phi": 1,
                                                      "latency": False}),
                                  ("check", "check", {"specs": ["mobilenet_v1"]})):
        docs[name] = baseline_check.current_document(make_query(command, params),
                                                     f"scalekit {command}")
    timed = copy.deepcopy(docs["info"])  # with latency, as a timed report has it
    timed["records"][0]["latency"] = {"median_ms": 40.0, "iqr_ms": 1.0, "min_ms": 39.0,
                                      "max_ms": 45.0, "runs": 10, "threads": 1, "batch": 1}
    docs["timed"] = timed
    return docs


BASELINES = _baseline_documents()
QUERY_WORDS = ["list", "info", "scale", "compare", "fit", "sweep", "bench", "check", "export",
               "out", "output", "force", "overwrite", "plot_path", "to", "version", "params",
               "command", "spec", "specs", "latency", "median_ms", "records", "name", "mode"]
JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.sampled_from([10**400, -1, 0, 2]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(QUERY_WORDS + ["\x1b[31m", "[/bold]", "a\nb", "resnet50", "/etc/passwd"]),
    st.lists(st.integers(-3, 3), max_size=3), st.dictionaries(st.sampled_from(QUERY_WORDS),
                                                              st.integers(-3, 3), max_size=2),
)


def mutate_json(doc: dict, data: st.DataObject) -> dict:
    doc = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        places = list(slots(doc))
        if not places:
            break
        parent, key = data.draw(st.sampled_from(places), label="where")
        op = data.draw(st.sampled_from(["drop", "rename", "value", "value"]), label="op")
        if op == "drop":
            del parent[key]
        elif op == "rename" and isinstance(parent, dict):
            parent[data.draw(st.sampled_from(QUERY_WORDS), label="key")] = parent.pop(key)
        else:
            parent[key] = data.draw(JSON_VALUES, label="value")
    return doc


def check_baseline_text(text: str, data: st.DataObject) -> None:
    """Run `check` on a baseline holding ``text``: a result or a ScalekitError, nothing else;
    its report renders; and no file appears beside the baseline (a baseline never writes)."""
    from scalekit import baseline as baseline_check
    from scalekit.commands.common import render_text
    from scalekit.report import changes

    folder = tempfile.mkdtemp()
    path = os.path.join(folder, "b.json")
    try:
        with open(path, "w", encoding="utf-8", errors="surrogatepass") as f:
            f.write(text)
        tolerance = data.draw(st.sampled_from([None, 0.25]), label="latency tolerance")
        try:
            done = baseline_check.check(path, latency_tolerance=tolerance,
                                        measure=None if tolerance is None else _fake_measure)
        except ScalekitError:
            return
        finally:
            assert os.listdir(folder) == ["b.json"], os.listdir(folder)
        if done.result is not None:
            render_text([changes.changes_table(done.result, path), done.headline])
            changes.changes_markdown(done.result, done.headline)
    finally:
        for name in os.listdir(folder):
            os.unlink(os.path.join(folder, name))
        os.rmdir(folder)


def _fake_measure(records, options):
    """A stand-in for timing (no torch): every record 40 ms."""
    lat = {"median_ms": 40.0, "iqr_ms": 1.0, "min_ms": 39.0, "max_ms": 45.0, "runs": 10,
           "threads": 1, "batch": 1}
    return [dataclasses.replace(r, latency=lat) for r in records], {}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(BASELINES)), st.data())
def test_mutated_baseline_checks_or_raises_scalekit_error(name, data):
    import json

    check_baseline_text(json.dumps(mutate_json(BASELINES[name], data)), data)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(BASELINES)), st.data())
def test_mutated_baseline_text_checks_or_raises_scalekit_error(name, data):
    import json

    text = json.dumps(BASELINES[name])
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        i = data.draw(st.integers(0, len(text)), label="at")
        j = i + data.draw(st.integers(0, 6), label="span")
        new = "".join(data.draw(st.lists(st.sampled_from(list('[]{}:,"\\-0123456789.eE ')
                                                     + ["NaN", "Infinity", "1e999", "true"]),
                                     max_size=4), label="insert"))
        text = text[:i] + new + text[j:]
    check_baseline_text(text, data)


# ---------------------------------------------------------------------------------------------
# command lines: random option values through the real entry point, in-process


OPTION_VALUES = st.one_of(
    st.sampled_from(["0", "-1", "1", "2", "1.5", "nan", "inf", "-inf", "1e-320", "1e400",
                     "1e11", "10000", "", " ", "abc", "\x1b[31m", "[/bold]", "2G", "40ms",
                     "0.5%", "b1", "width", "width,depth", "1,2,x", "compound,dWr"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**30, 10**30).map(str), st.text(max_size=8),
)
COMMANDS = {  # count-only command lines: nothing is built or timed
    "info": (["info", "{spec}", "--no-latency"], ["--counter", "--format"]),
    "scale": (["scale", "{spec}", "--no-latency"],
              ["--phi", "--width", "--depth", "--resolution", "--size", "--preset", "--alpha",
               "--beta", "--gamma", "--strategy", "--factor", "--format"]),
    "compare": (["compare", "--no-latency"], ["--mode", "--table", "--budget", "--match"]),
    "sweep": (["sweep", "{spec}"], ["--mode", "--values", "--y"]),
    "fit": (["fit", "{spec}"], ["--target-macs", "--target-params", "--target-acts", "--mode"]),
    "check": (["check", "--baseline", "{baseline}"], ["--tolerance", "--phi", "--width"]),
    "timing": (["info", "{spec}", "--no-latency"], ["--threads", "--batch", "--time-budget"]),
}


@pytest.fixture(scope="module")
def fuzz_files(tmp_path_factory):
    import json

    d = tmp_path_factory.mktemp("fuzz_cli")
    (d / "b.json").write_text(json.dumps(BASELINES["info"]))
    return d


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.sampled_from(sorted(COMMANDS)), st.sampled_from(["resnet50", "mobilenet_v2"]),
       st.data())
def test_random_option_values_give_one_clear_line(fuzz_files, command, spec, data):
    from click.testing import CliRunner

    from scalekit.cli import main

    base, options = COMMANDS[command]
    argv = [a.format(spec=spec, baseline=fuzz_files / "b.json") for a in base]
    for opt in data.draw(st.lists(st.sampled_from(options), min_size=1, max_size=3,
                                  unique=True), label="options"):
        argv += [opt, data.draw(OPTION_VALUES, label=opt)]
    before = sorted(os.listdir(fuzz_files))
    with CliRunner().isolation() as streams:
        try:
            main(argv)
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        err = streams[1].getvalue().decode("utf-8", "replace")
    assert code in (0, 1, 2), (argv, code, err)
    assert "Traceback" not in err and "internal error" not in err, (argv, err)
    if code != 0:
        lines = [ln for ln in err.splitlines() if ln.strip()
                 and not ln.startswith(("Usage: ", "Try '"))]
        errors = [ln for ln in lines if ln.startswith("Error: ")]
        assert len(errors) == 1, (argv, err)
        assert "\x1b" not in err, (argv, err)
    assert sorted(os.listdir(fuzz_files)) == before

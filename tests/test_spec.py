"""Spec loading and validation: clear, typed errors naming the file and the field."""

from __future__ import annotations

import dataclasses

import pytest

from scalekit.plan import expand
from scalekit.counting import count_plan
from scalekit.spec import SpecError, load_spec, spec_to_yaml

from .conftest import SPEC_NAMES, spec_path

MINIMAL = """\
name: tiny
resolution: 32
stem: {out: 8}
stages:
  - {block: conv, out: 16, repeats: 2, stride: 2}
"""


def write(tmp_path, text, name="spec.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_minimal_spec_defaults(tmp_path):
    s = load_spec(write(tmp_path, MINIMAL))
    assert s.num_classes == 1000 and s.in_channels == 3
    assert s.stem.kernel == 3 and s.stem.stride == 2
    assert s.stages[0].repeats == 2
    assert s.scaling.channel_divisor == 8 and s.scaling.depth_rounding == "ceil"


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_bundled_specs_round_trip(tmp_path, name):
    s = load_spec(spec_path(name))
    p = write(tmp_path, spec_to_yaml(s))
    again = load_spec(p)
    assert dataclasses.replace(again, path=None) == dataclasses.replace(s, path=None)
    assert count_plan(expand(again)).total == count_plan(expand(s)).total


@pytest.mark.parametrize("text,field,words", [
    ("name: x\nresolution: 32\nstem: {out: 8}\nstages:\n  - {block: convv, out: 16}\n",
     "stages[0].block", "unknown value 'convv'"),
    ("name: x\nresolution: 32\nstages:\n  - {block: conv, out: 16}\n", "stem", "missing"),
    ("name: x\nresolution: 32\nstem: {out: 8}\nstages:\n  - {block: conv}\n",
     "stages[0].out", "missing"),
    ("name: x\nresolution: 32\nstem: {out: 8}\nstages:\n  - {block: conv, out: 16, kernal: 3}\n",
     "stages[0].kernal", "did you mean 'kernel'"),
    ("name: x\nresolution: 32\nstem: {out: 8, stride: 3}\nstages:\n  - {block: conv, out: 8}\n",
     "stem.stride", "must be 1 or 2"),
    ("name: x\nresolution: 32\nstem: {out: 8, kernel: 4}\nstages:\n  - {block: conv, out: 8}\n",
     "stem.kernel", "odd"),
    ("name: x\nresolution: 32\nstem: {out: 8}\nstages:\n  - {block: mbconv, out: 8, se: 1.5}\n",
     "stages[0].se", "<= 1"),
    ("name: x\nresolution: 32\nstem: {out: 8}\nstages:\n  - {block: conv, out: -8}\n",
     "stages[0].out", ">= 1"),
    ("name: x\nresolution: 32\nstem: {out: 8}\nstages:\n  - {block: conv, out: 8, act: gelu}\n",
     "stages[0].act", "relu, relu6, silu"),
    ("name: x\nresolution: 32\nstem: {out: 8}\nstages:\n  - {block: bottleneck, out: 8}\n",
     "stages[0].mid", "missing"),
    ("name: x\nresolution: 32\nstem: {out: 8}\nstages:\n  - {block: conv, out: 8, expand: 6}\n",
     "stages[0].expand", "not a field of a 'conv' block"),
    ("name: x\nresolution: thirty\nstem: {out: 8}\nstages:\n  - {block: conv, out: 8}\n",
     "resolution", "expected an integer"),
    ("name: x\nresolution: 32\nstem: {out: 8}\nstages: []\n", "stages", "non-empty"),
])
def test_bad_specs_name_file_and_field(tmp_path, text, field, words):
    p = write(tmp_path, text)
    with pytest.raises(SpecError) as e:
        load_spec(p)
    assert e.value.file == p
    assert e.value.field == field
    assert words in str(e.value)
    assert str(e.value).startswith(p)


def test_missing_file(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        load_spec(str(tmp_path / "nope.yaml"))


def test_yaml_syntax_error_has_line_and_column(tmp_path):
    p = write(tmp_path, "name: x\nstages: [\n  {block: conv\n")
    with pytest.raises(SpecError, match=r"line \d+, column \d+"):
        load_spec(p)


def test_python_object_tag_rejected(tmp_path):
    p = write(tmp_path, "name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(SpecError, match="tag not allowed"):
        load_spec(p)


def test_duplicate_key_rejected(tmp_path):
    p = write(tmp_path, MINIMAL + "resolution: 64\n")
    with pytest.raises(SpecError, match="duplicate key 'resolution'"):
        load_spec(p)


def test_huge_and_deep_files_refused(tmp_path):
    big = write(tmp_path, "# " + "x" * 1_100_000 + "\n" + MINIMAL, "big.yaml")
    with pytest.raises(SpecError, match="larger than"):
        load_spec(big)
    deep = write(tmp_path, "a: " + "[" * 50 + "]" * 50 + "\n", "deep.yaml")
    with pytest.raises(SpecError, match="nested deeper"):
        load_spec(deep)


def test_spec_is_frozen():
    s = load_spec(spec_path("resnet50"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.resolution = 1  # type: ignore[misc]

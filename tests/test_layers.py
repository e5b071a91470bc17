"""``scalekit info SPEC --layers``, count-only (the torch comparison is tests/test_layers_torch.py):
the layers sum to the stage rows and to the totals under every convention and with scaling flags,
every output format parses and says the same, the table fits 80 columns, and torch is never
imported."""

from __future__ import annotations

import csv
import io
import json
from importlib import resources

import pytest
from click.testing import CliRunner
from rich.console import Console

from scalekit.bundled import bundled_specs
from scalekit.cli import cli
from scalekit.conventions import NAMES as CONVENTIONS
from scalekit.conventions import count_convention
from scalekit.queries import make_query, run_query
from scalekit.report import tables

from .conftest import assert_no_torch

pytestmark = pytest.mark.light  # count-only: CI runs it in the torch-free venv too

BUNDLED = sorted(p.stem for p in bundled_specs())


def layer_lines(text: str) -> list[str]:
    """The table's layer rows: a stage name, then the block's index."""
    return [line for line in text.splitlines()
            if len(line.split()) > 2 and line.split()[1].isdigit()]


def invoke(*args: str, code: int = 0):
    r = CliRunner().invoke(cli, list(args))
    assert r.exit_code == code, r.output
    return r


def info(spec: str, **params):
    q = make_query("info", {"spec": spec, "layers": True, "latency": False, **params})
    return run_query(q).records[0]


def by_stage(rec):
    out: dict[str, list[int]] = {}
    for x in rec.layers:
        c = out.setdefault(x.stage, [0, 0, 0])
        c[0] += x.params
        c[1] += x.macs
        c[2] += x.acts
    return out


@pytest.mark.parametrize("name", BUNDLED)
def test_layers_sum_to_the_stage_rows_and_the_totals(name):
    rec = info(name)
    plain = run_query(make_query("info", {"spec": name, "latency": False})).records[0]
    assert plain.layers is None  # only when asked
    sums = by_stage(rec)
    assert list(sums) == [s.name for s in plain.stages]
    for s in plain.stages:  # the stage rows `info` prints without --layers
        assert sums[s.name] == [s.params, s.macs, s.acts], s.name
    assert [sum(v[i] for v in sums.values()) for i in range(3)] == \
        [plain.params, plain.macs, plain.acts]
    # every row is a conv, a linear layer or a pool, and says where it is
    assert {x.layer for x in rec.layers} <= {"conv", "linear", "maxpool", "avgpool"}
    assert all(x.block >= 1 for x in rec.layers)


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("name", ["efficientnet_b0", "resnet50", "efficientnet_v2_s"])
def test_layers_follow_the_convention(name, convention):
    rec = info(name, convention=convention)
    cc = count_convention(rec.plan, convention)
    assert rec.convention == convention and rec.macs == cc.total
    sums = by_stage(rec)
    assert [(n, sums[n][1]) for n, _ in cc.stages] == list(cc.stages)
    assert all(x.unit == cc.unit for x in rec.layers)


def test_bn_params_are_in_the_conv_rows():
    rec = info("resnet50")
    stem = rec.layers[0]
    assert (stem.layer, stem.output, stem.kernel, stem.stride) == ("conv", (64, 112, 112), 7, 2)
    assert stem.folded == ("bn", "relu")
    assert stem.bn_params == 2 * 64 and stem.params == 7 * 7 * 3 * 64 + 2 * 64
    pools = [x for x in rec.layers if x.layer.endswith("pool")]
    assert [(x.layer, x.acts) for x in pools] == [("maxpool", 64 * 56 * 56), ("avgpool", 0)]
    assert rec.layers[-1].layer == "linear" and rec.layers[-1].output == (1000,)


@pytest.mark.parametrize("flags", [("--phi", "1.5"), ("--preset", "b3"), ("--width", "1.4"),
                                   ("--strategy", "dWr", "--factor", "2")])
def test_scaling_flags_give_the_scaled_networks_layers(flags):
    doc = json.loads(invoke("info", "efficientnet_b0", *flags, "--layers", "--no-latency",
                            "--format", "json").stdout)
    scaled = json.loads(invoke("scale", "efficientnet_b0", *flags, "--no-latency", "--format",
                               "json").stdout)["records"][1]
    rec = doc["records"][0]
    assert rec["mode"] == "scaled" and rec["name"] == scaled["name"]
    for k in ("params", "macs", "acts"):
        assert sum(x[k] for x in rec["layers"]) == rec[k] == scaled[k]
    stages = {s["name"]: s for s in scaled["stages"]}
    sums = {}
    for x in rec["layers"]:
        sums[x["stage"]] = sums.get(x["stage"], 0) + x["params"]
    assert sums == {n: s["params"] for n, s in stages.items()}


@pytest.fixture(scope="module")
def validator():
    jsonschema = pytest.importorskip("jsonschema")
    text = resources.files("scalekit").joinpath("data/report.schema.json").read_text("utf-8")
    return jsonschema.Draft202012Validator(json.loads(text))


def test_every_format_parses_and_agrees(validator):
    args = ("info", "mobilenet_v2", "--layers", "--no-latency")
    doc = json.loads(invoke(*args, "--format", "json").stdout)
    errors = [e.message for e in validator.iter_errors(doc)]
    assert not errors, errors[:3]
    assert doc["query"]["params"]["layers"] is True
    layers = doc["records"][0]["layers"]
    rows = list(csv.DictReader(io.StringIO(invoke(*args, "--format", "csv").stdout)))
    assert len(rows) == len(layers) == 54  # MobileNetV2: 52 convs, the global pool, the fc
    for row, x in zip(rows, layers):
        assert row["output"] == "x".join(map(str, x["output"]))
        assert (row["stage"], int(row["block"]), row["layer"]) == (x["stage"], x["block"],
                                                                  x["layer"])
        assert [int(row[k]) for k in ("params", "bn_params", "macs", "flops", "acts")] == \
            [x[k] for k in ("params", "bn_params", "macs", "flops", "acts")]
        assert row["groups"] == ("" if x["groups"] is None else str(x["groups"]))
    md = invoke(*args, "--format", "markdown").stdout.splitlines()
    assert len(md) == len(layers) + 2 and md[0].startswith("| model | stage | block |")
    cells = [line.strip("|").split(" | ") for line in md[2:]]
    assert sum(int(c[11].replace(",", "")) for c in cells) == doc["records"][0]["params"]
    text = invoke(*args).stdout
    table = layer_lines(text)
    assert len(table) == len(layers)
    assert f"{len(layers)} layers" in text.splitlines()[0]
    total = sum(int(line.split()[-3].replace(",", "")) for line in table)
    assert total == doc["records"][0]["params"]
    assert f"{total:,} params" in text  # the totals line under the table


def test_output_writes_the_same_report(tmp_path):
    out = tmp_path / "layers.csv"
    invoke("info", "resnet18", "--layers", "--no-latency", "--format", "csv", "--output", str(out))
    assert out.read_text() == invoke("info", "resnet18", "--layers", "--no-latency", "--format",
                                     "csv").stdout


@pytest.mark.parametrize("args", [("efficientnet_v2_l", "--phi", "3"),
                                  ("efficientnet_b0", "--preset", "b7", "--convention", "full"),
                                  ("resnext101_32x8d", "--width", "2"),
                                  ("efficientnet_b0", "--convention", "fvcore")])
def test_the_table_fits_80_columns(args):
    rec = info(args[0], **dict(zip([a.lstrip("-") for a in args[1::2]],
                                   [float(v) if v[0].isdigit() else v for v in args[2::2]])))
    buf = io.StringIO()
    table = tables.layers_table(rec)
    shown = tables.fit_width([table], 80)  # what a terminal of 80 columns gets
    assert shown[0].columns == table.columns  # every column, none left out
    Console(file=buf, width=80, no_color=True).print(*shown)
    lines = buf.getvalue().splitlines()
    assert max(map(len, lines)) <= 80
    assert "…" not in buf.getvalue()
    assert len(layer_lines(buf.getvalue())) == len(rec.layers)


def test_piped_table_has_no_trailing_spaces():
    text = invoke("info", "resnet50", "--layers", "--no-latency").stdout
    assert all(line == line.rstrip() for line in text.splitlines())


def test_layers_never_import_torch():
    assert_no_torch(*[["info", s, "--layers", "--no-latency", *fmt] for s in ("efficientnet_b0",
                                                                                "resnet50")
                      for fmt in ((), ("--format", "json"), ("--format", "csv"),
                                  ("--format", "markdown"))],
                    ["info", "efficientnet_b0", "--layers", "--no-latency", "--phi", "1",
                     "--convention", "fvcore"])


def test_a_cross_check_counter_is_refused():
    r = invoke("info", "resnet50", "--layers", "--no-latency", "--counter", "torch", code=2)
    assert "--layers" in r.output and "--counter torch" in r.output


def test_check_reads_a_layers_baseline_and_an_old_one(tmp_path):
    base = tmp_path / "base.json"
    invoke("info", "efficientnet_b0", "--layers", "--no-latency", "--format", "json", "--output",
           str(base))
    invoke("check", "--baseline", str(base))
    # a baseline of `info` written before --layers and the scaling flags existed
    doc = json.loads(base.read_text())
    params = doc["query"]["params"]
    for k in ("layers", "phi", "alpha", "beta", "gamma", "width", "depth", "resolution", "size",
              "preset", "strategy", "factor"):
        params.pop(k)
    del doc["records"][0]["layers"]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(doc))
    r = invoke("check", "--baseline", str(old))
    assert "check passed" in r.output and "1 model compared" in r.output

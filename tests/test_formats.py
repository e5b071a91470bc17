"""Machine-readable output: the JSON document against the schema kept in the package, one CSV and
Markdown row per model, byte-identical JSON, atomic --output, NO_COLOR and pipes."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from importlib import metadata, resources

import jsonschema
import pytest
from click.testing import CliRunner

import scalekit
from scalekit import files
from scalekit.report import document as report
from scalekit.cli import cli, main

from .conftest import HAS_TORCH, ROOT, needs_torch, run_cli

# every reporting command, with the number of models it reports; the counts come from the paper:
# Table 3 has 4 MobileNetV1 rows (no depth row), 5 MobileNetV2 and 5 ResNet-50 rows, Table 7 has
# 5 EfficientNet-B0 rows, Table 2 has B0..B7 plus ResNet-50 and ResNet-152; list has one record
# per bundled spec.
REPORTS = [
    (("list",), len(list((ROOT / "specs").glob("*.yaml")))),
    (("info", "efficientnet_b0", "--no-latency"), 1),
    (("info", "resnet50", "--no-latency"), 1),
    (("scale", "resnet50", "--phi", "2", "--no-latency"), 2),
    (("scale", "efficientnet_b0", "--preset", "b3", "--no-latency"), 2),
    (("scale", "mobilenet_v1", "--width", "0.5", "--size", "160", "--no-latency"), 2),
    (("compare", "--no-latency"), 19),
    (("compare", "--table", "2", "--no-latency"), 10),
    (("compare", "--table", "2", "--table", "3", "--table", "7", "--no-latency"), 29),
    (("compare", "mobilenet_v2", "--mode", "width", "--no-latency"), 2),
    # measured (tiny and short: the schema of a latency-bearing document, not its numbers)
    pytest.param(("bench", "mobilenet_v2", "efficientnet_b0", "--size", "64", "--optimize",
                  "--warmup", "1", "--min-runs", "2", "--max-runs", "3", "--time-budget", "0.1"),
                 2, marks=needs_torch),
]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-9]|4[0-9]|9[0-7]|10[0-7])(?:;[0-9;]*)?m")


def invoke(*args: str):
    r = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    text = resources.files("scalekit").joinpath("data/report.schema.json").read_text("utf-8")
    schema = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_schema_ships_as_package_data():
    with open(ROOT / "pyproject.toml", encoding="utf-8") as f:
        assert '"data/*.json"' in f.read()
    assert resources.files("scalekit").joinpath("data/report.schema.json").is_file()


@pytest.mark.parametrize("args,models", REPORTS,
                         ids=[" ".join(getattr(r, "values", r)[0]) for r in REPORTS])
def test_every_reporting_command_json_validates(validator, args, models):
    doc = json.loads(invoke(*args, "--format", "json").stdout)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]
    assert not errors, errors[:5]
    assert doc["schema_version"] == report.SCHEMA_VERSION
    assert len(doc["records"]) == models
    assert doc["query"]["command"] == args[0]
    for rec in doc["records"]:
        assert rec["flops"] == 2 * rec["macs"]
        for m in ("params", "macs", "acts"):
            assert sum(s[m] for s in rec["stages"]) == rec[m]


def test_json_record_numbers_are_published_figures(published):
    doc = json.loads(invoke("compare", "--table", "2", "--no-latency", "--format", "json").stdout)
    by_name = {r["name"]: r for r in doc["records"]}
    for name, key in (("EfficientNet-B0", "efficientnet_b0"), ("ResNet-50", "resnet50")):
        assert by_name[name]["params"] == published["exact_224"][key]["params"]
        assert by_name[name]["macs"] == published["exact_224"][key]["macs"]
    b3 = by_name["EfficientNet-B3"]
    assert b3["coefficients"] == {"phi": None, "depth": 1.4, "width": 1.2, "resolution": None,
                                  "size": 300, "preset": "b3"}
    assert b3["reference"]["paper_flops_b"] == 1.8 and b3["latency"] is None


def test_schema_rejects_what_it_should(validator):
    doc = json.loads(invoke("info", "mobilenet_v2", "--no-latency", "--format", "json").stdout)
    rec = doc["records"][0]
    latency = {"median_ms": 4.2, "iqr_ms": 0.3, "min_ms": 4.0, "max_ms": 5.1, "runs": 30,
               "threads": 1, "batch": 1, "mean_ms": 4.3, "warmup": 5}
    assert validator.is_valid({**doc, "records": [{**rec, "latency": latency}]})
    bad = [
        {**doc, "schema_version": 2},
        {k: v for k, v in doc.items() if k != "machine"},
        {**doc, "records": [{**rec, "params": -1}]},
        {**doc, "records": [{**rec, "macs": 1.5}]},
        {**doc, "records": [{k: v for k, v in rec.items() if k != "latency"}]},
        {**doc, "records": [{**rec, "latency": {k: v for k, v in latency.items() if k != "median_ms"}}]},
        {**doc, "records": [{**rec, "surprise": 1}]},
        {**doc, "records": [{**rec, "stages": [{**rec["stages"][0], "cout": "32"}]}]},
    ]
    for d in bad:
        assert not validator.is_valid(d)


def test_csv_and_markdown_have_one_row_per_model():
    args = ("compare", "--table", "2", "--table", "3", "--table", "7", "--no-latency")
    names = [r["name"] for r in json.loads(invoke(*args, "--format", "json").stdout)["records"]]
    rows = list(csv.DictReader(io.StringIO(invoke(*args, "--format", "csv").stdout)))
    assert [r["name"] for r in rows] == names
    assert {"params", "macs", "flops", "acts", "resolution", "paper_flops_b"} <= set(rows[0])
    lines = invoke(*args, "--format", "markdown").stdout.splitlines()
    head, rule, body = lines[0], lines[1], lines[2:]
    assert len(body) == len(names) == 29
    cells = head.count(" | ") + 1
    assert re.fullmatch(r"\|(-{3}:?\|)+", rule) and rule.count("|") == cells + 1
    for line, name in zip(body, names):
        assert line.startswith(f"| {name} |") and line.count(" | ") + 1 == cells


def test_same_count_only_command_gives_byte_identical_json(tmp_path):
    outs, files = [], []
    path = tmp_path / "scaled.json"
    for _ in range(2):
        r = run_cli("compare", "--table", "2", "--table", "3", "--table", "7", "--no-latency",
                    "--format", "json")
        assert r.returncode == 0, r.stderr
        outs.append(r.stdout.encode())
        assert run_cli("scale", "resnet50", "--phi", "2", "--no-latency", "--format", "json",
                       "-o", str(path)).returncode == 0
        files.append(path.read_bytes())
    assert outs[0] == outs[1]
    assert files[0] == files[1]


# ---------------------------------------------------------------------------------------------
# --output: the whole file or nothing


def _leftovers(directory) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(".scalekit-")]


@pytest.mark.parametrize("exc", [OSError("disk full"), KeyboardInterrupt()])
def test_write_atomic_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch, exc):
    target = tmp_path / "report.json"
    target.write_text("old contents\n")

    def fail(fd):  # the new text has been written to the temporary file, not yet moved
        raise exc

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(type(exc)):
        files.write_atomic(str(target), "new contents that must never be seen half-written\n")
    assert target.read_text() == "old contents\n"
    assert _leftovers(tmp_path) == []


def test_interrupted_command_leaves_the_old_output(tmp_path, monkeypatch):
    target = tmp_path / "out.json"
    target.write_text("old\n")

    def interrupt(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupt)
    with pytest.raises(SystemExit) as e:
        main(["info", "resnet50", "--no-latency", "--format", "json", "-o", str(target)])
    assert e.value.code == 130  # Ctrl-C
    assert target.read_text() == "old\n"
    assert _leftovers(tmp_path) == []


def test_failing_command_with_output_writes_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nresolution: 32\nstem: {out: 8}\nstages:\n  - {block: magic, out: 8}\n")
    for fmt in ("json", "table"):
        target = tmp_path / f"out.{fmt}"
        r = CliRunner().invoke(cli, ["info", str(bad), "--format", fmt, "-o", str(target)])
        assert r.exit_code == 1 and "stages[0].block" in r.stderr
        assert not target.exists()
    existing = tmp_path / "existing.json"
    existing.write_text("keep me\n")
    r = run_cli("info", str(bad), "--format", "json", "-o", str(existing))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert existing.read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "existing.json"]


def test_output_file_is_what_stdout_gets_and_stdout_stays_clean(tmp_path):
    target = tmp_path / "r.json"
    r = run_cli("info", "efficientnet_b0", "--no-latency", "--format", "json", "-o", str(target))
    assert r.returncode == 0 and r.stdout == ""
    assert f"wrote {target}" in r.stderr  # messages go to stderr
    piped = run_cli("info", "efficientnet_b0", "--no-latency", "--format", "json")
    written, printed = json.loads(target.read_text()), json.loads(piped.stdout)  # nothing else
    assert written.pop("command").endswith(f"-o {target}")
    assert printed.pop("command") == "scalekit info efficientnet_b0 --no-latency --format json"
    assert written == printed


# ---------------------------------------------------------------------------------------------
# terminals and pipes


def test_no_color_is_respected():
    forced = run_cli("info", "resnet50", "--no-latency", env={"FORCE_COLOR": "1"})
    assert COLOUR.search(forced.stdout), "expected colour on a forced terminal"
    plain = run_cli("info", "resnet50", "--no-latency", env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert plain.returncode == 0 and not COLOUR.search(plain.stdout)
    piped = run_cli("info", "resnet50", "--no-latency", env={"NO_COLOR": "1"})
    assert not ANSI.search(piped.stdout)
    assert ANSI.sub("", plain.stdout).split() == piped.stdout.split()


@pytest.mark.parametrize("fmt", ["json", "table", "markdown"])
def test_piping_into_head_is_quiet(fmt):
    p = subprocess.run(f"{sys.executable} -c 'from scalekit.cli import main; main()' compare "
                       f"--table 2 --table 3 --table 7 --no-latency --format {fmt} | head -c 10",
                       shell=True, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert len(p.stdout) == 10
    assert "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr and "Error" not in p.stderr


def test_json_pipes_into_a_json_reader():
    cmd = (f"{sys.executable} -c 'from scalekit.cli import main; main()' scale resnet50 --phi 2 "
           f"--no-latency --format json | {sys.executable} -c 'import json, sys; "
           "print(json.load(sys.stdin)[\"records\"][1][\"resolution\"])'")
    p = subprocess.run(cmd, shell=True, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert p.stdout.strip() == str(round(224 * 1.15 ** 2))  # gamma^phi * 224 = 296


def test_document_has_no_timestamps_and_names_versions():
    doc = json.loads(invoke("list", "--format", "json").stdout)
    assert doc["scalekit_version"] == scalekit.__version__
    # read without importing torch; null where the light install has no torch
    assert doc["torch_version"] == (metadata.version("torch") if HAS_TORCH else None)
    assert set(doc["machine"]) >= {"cpu", "logical_cores", "platform", "python"}
    text = json.dumps(doc)
    assert not re.search(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", text)

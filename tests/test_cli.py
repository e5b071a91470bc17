"""The command line, driven as a user drives it: help, output, exit codes, and no torch for
count-only commands."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from scalekit.cli import cli

from .conftest import SPEC_NAMES, assert_no_torch, needs_torch, run_cli, spec_path


pytestmark = pytest.mark.light  # count-only: CI runs it in the torch-free venv too

COMMANDS = cli.list_commands(None)


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_every_command(command):
    r = invoke(command, "--help")
    assert r.exit_code == 0
    assert "Usage: " in r.output and command in r.output


def test_version():
    r = invoke("--version")
    assert r.exit_code == 0 and "scalekit" in r.output and "0." in r.output


def test_list_shows_every_bundled_spec():
    r = invoke("list")
    assert r.exit_code == 0
    for name in SPEC_NAMES:
        assert name in r.output


def test_info_table_has_stages_and_exact_totals(published):
    r = invoke("info", spec_path("efficientnet_b0"), "--no-latency")
    assert r.exit_code == 0
    ref = published["pycls"]["EN-B0"]
    for token in ("stem", "stage1", "stage7", "head", "mbconv", f"{ref['params']:,}",
                  f"{published['exact_224']['efficientnet_b0']['macs']:,}", f"{ref['acts']:,}"):
        assert token in r.output


def test_info_json(published):
    r = invoke("info", "resnet50", "--no-latency", "--format", "json")
    doc = json.loads(r.stdout)
    rec = doc["records"][0]
    ref = published["pycls"]["R-50-1x64d"]
    assert rec["name"] == "ResNet-50" and rec["resolution"] == 224
    assert (rec["params"], rec["acts"]) == (ref["params"], ref["acts"])
    assert rec["macs"] == published["exact_224"]["resnet50"]["macs"]
    assert rec["flops"] == 2 * rec["macs"]
    assert [s["name"] for s in rec["stages"]] == ["stem", "stage1", "stage2", "stage3", "stage4", "head"]
    for s in rec["stages"]:
        assert {"name", "resolution", "params", "macs", "flops", "acts"} <= set(s)
    assert sum(s["params"] for s in rec["stages"]) == rec["params"]
    assert sum(s["macs"] for s in rec["stages"]) == rec["macs"]


@needs_torch
@pytest.mark.parametrize("counter", ["torch", "thop"])
def test_info_other_counters(counter, published):
    r = invoke("info", "mobilenet_v2", "--counter", counter, "--no-latency", "--format", "json")
    rec = json.loads(r.stdout)["records"][0]
    assert rec["params"] == published["exact_224"]["mobilenet_v2"]["params"]
    assert rec["counter"] == counter
    if counter == "torch":
        assert rec["macs"] == published["exact_224"]["mobilenet_v2"]["macs"]
    else:
        assert rec["macs"] > published["exact_224"]["mobilenet_v2"]["macs"]
    r = invoke("info", "mobilenet_v2", "--counter", "thop", "--no-latency")
    assert "thop" in r.output and "BatchNorm" in r.output


def test_count_only_commands_import_no_torch():
    assert_no_torch(["list"], ["info", "efficientnet_b0", "--no-latency"],
                    ["scale", "resnet50", "--phi", "2", "--no-latency"], ["compare", "--no-latency"],
                    ["compare", "--table", "2", "--no-latency"],
                    ["info", "resnet50", "--no-latency", "--format", "json"])


@pytest.mark.parametrize("content,words", [
    (None, "no such file"),
    ("name: x\nstages: [\n", "YAML syntax error"),
    ("name: x\nresolution: 32\nstem: {out: 8}\nstages:\n  - {block: magic, out: 8}\n", "stages[0].block"),
    ("name: x\nresolution: 32\nstages:\n  - {block: conv, out: 8}\n", "stem"),
])
def test_info_bad_input_is_one_line_exit_1(tmp_path, content, words):
    p = tmp_path / "bad.yaml"
    if content is not None:
        p.write_text(content)
    r = run_cli("info", str(p))
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert str(p) in lines[0] and words in lines[0]
    assert r.stdout == ""


def test_usage_error_exits_2():
    r = run_cli("info")
    assert r.returncode == 2 and "Missing argument" in r.stderr
    r = run_cli("scale", "resnet50", "--phi", "abc")
    assert r.returncode == 2 and "--phi" in r.stderr
    r = run_cli("compare", "--mode", "wdth")
    assert r.returncode == 2 and "wdth" in r.stderr and "Traceback" not in r.stderr


def test_broken_pipe_is_quiet():
    import subprocess
    import sys
    p = subprocess.run(f"{sys.executable} -c 'from scalekit.cli import main; main()' compare "
                       "--table 2 --table 3 --table 7 --no-latency --format csv | head -1", shell=True,
                       capture_output=True, text=True)
    assert p.stdout.startswith("name,")
    assert "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr

"""Hostile input, round two (issue 15): a baseline is data, outputs never destroy, inputs never
hang, terminals stay clean, bad numbers are clear errors, valid YAML is accepted, and the Python
API raises scalekit's errors.

Command lines run through the real entry point (``scalekit.cli.main``), in the style of
test_bad_input.py: one forked child per case from one driver process (``run_batch``), each
bounded by a time limit, and every case must exit 1 or 2 with exactly one ``Error:`` line on
stderr, no traceback, nothing on stdout. After the batch every file the cases could have
touched is byte-identical (and keeps its kind: a FIFO stays a FIFO) and no temporary file is
left. Signals are sent to real subprocesses.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scalekit import baseline as baseline_check
from scalekit.queries import make_query

from .conftest import ROOT, run_cli, spec_path
from .test_bad_input import assert_clear_error, run_batch

TINY = ("name: Tiny\nresolution: 32\nnum_classes: 10\nstem: {out: 8, stride: 2}\n"
        "stages:\n  - {block: conv, out: 16, stride: 2}\n")
# every character a terminal might act on, and rich markup
HOSTILE_NAME = ("Evil \x1b[31mRED\x1b[0m \x1b]0;pwned title\x07 \x1b]8;;file:///etc/passwd\x1b\\"
                "link\x1b]8;;\x1b\\ [/bold] [link=file:///etc/passwd]x[/link] :smile: a|b\r"
                "over\nwritten \u202eeulav\u202c \udc80 end")
RAW = ("\x1b", "\x07", "\r", "\u202e", "\udc80")  # none of these may reach a stream raw


def yaml_name(name: str) -> str:
    """``name`` as a YAML double-quoted scalar (escapes for every control character)."""
    out = []
    for c in name:
        if c in '"\\':
            out.append("\\" + c)
        elif ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0 or 0xd800 <= ord(c) < 0xe000 \
                or c in "\u202e\u202c":
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def tiny_named(name: str) -> str:
    return TINY.replace("name: Tiny", f"name: {yaml_name(name)}")


def info_document(spec: str) -> dict:
    """What `scalekit info SPEC --no-latency --format json` writes, computed in-process."""
    return baseline_check.current_document(make_query("info", {"spec": spec, "latency": False}),
                                           f"scalekit info {spec} --no-latency --format json")


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry of ``folder``: its kind and, for a regular file, its bytes' digest and mode."""
    out = {}
    for p in sorted(folder.iterdir()):
        st = os.lstat(p)
        kind = stat.S_IFMT(st.st_mode)
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if stat.S_ISREG(st.st_mode) else ""
        target = os.readlink(p) if stat.S_ISLNK(st.st_mode) else ""
        out[p.name] = (kind, digest, stat.S_IMODE(st.st_mode), target)
    return out


def no_temporaries(*folders: Path) -> None:
    left = [str(p) for f in folders for p in f.glob(".scalekit-*")]
    assert not left, f"temporary files left: {left}"


# ---------------------------------------------------------------------------------------------
# the scratch folder every batched case runs against

@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("hostile")
    (d / "tiny.yaml").write_text(TINY)
    (d / "evil.yaml").write_text(tiny_named(HOSTILE_NAME), encoding="utf-8")
    (d / "long_name.yaml").write_text(tiny_named("n" * 1001))
    (d / "huge_name.yaml").write_text(tiny_named("x" * 990_000))  # under the 1 MB size cap
    (d / "m.pt").write_text(TINY)  # a spec whose name is a TorchScript file name
    (d / "p.svg").write_text(TINY)  # a spec whose name is a plot file name
    os.link(d / "tiny.yaml", d / "tiny_hardlink.yaml")
    os.symlink("tiny.yaml", d / "tiny_link.yaml")
    os.mkfifo(d / "fifo")
    os.mkfifo(d / "fifo.yaml")
    os.mkfifo(d / "fifo.json")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(d / "sock"))
    sock.close()
    (d / "readonly.json").write_text("old report\n")
    os.chmod(d / "readonly.json", 0o444)
    (d / "keep.txt").write_text("keep me\n")

    doc = info_document(str(d / "tiny.yaml"))
    (d / "base.json").write_text(json.dumps(doc))
    (d / "readonly_base.json").write_text(json.dumps(doc))
    os.chmod(d / "readonly_base.json", 0o444)

    def bad(name: str, text: str) -> None:
        (d / name).write_text(text)

    def mutated(name: str, change) -> None:
        m = copy.deepcopy(doc)
        change(m)
        bad(name, json.dumps(m))

    text = json.dumps(doc)
    rec = doc["records"][0]
    bad("nan_latency.json", text.replace('"latency": null',
                                         '"latency": {"median_ms": NaN, "iqr_ms": 0, "runs": 1}'))
    bad("nan_machine.json", text.replace('"machine": {', '"machine": {"x": NaN, ', 1))
    bad("infinity.json", text.replace(f'"params": {rec["params"]}', '"params": Infinity', 1))
    bad("minus_infinity.json", text.replace('"machine": {', '"machine": {"x": -Infinity, ', 1))
    bad("float_overflow.json", text.replace('"machine": {', '"machine": {"x": 1e999, ', 1))
    bad("int_400_digits.json", text.replace(f'"params": {rec["params"]}',
                                            '"params": 1' + "0" * 399, 1))
    bad("int_5000_digits.json", text.replace('"machine": {', '"machine": {"x": 1' + "0" * 5000
                                             + ", ", 1))
    mutated("params_list.json", lambda m: m["records"][0].update(params=[1, 2]))
    mutated("params_negative.json", lambda m: m["records"][0].update(params=-5))
    mutated("median_bool.json", lambda m: m["records"][0].update(
        latency={"median_ms": True, "iqr_ms": 0}))
    mutated("median_list.json", lambda m: m["records"][0].update(
        latency={"median_ms": [1.0], "iqr_ms": 0}))
    mutated("stage_name_list.json", lambda m: m["records"][0]["stages"][0].update(name=["a"]))
    mutated("version_true.json", lambda m: m["query"].update(version=True))
    mutated("version_float.json", lambda m: m["query"].update(version=2.0))
    bad("nested_100k.json", "[" * 100_000 + "]" * 100_000)
    bad("nested_40.json", text[:-1] + ', "deep": ' + "[" * 40 + "]" * 40 + "}")
    with open(d / "big.json", "wb") as f:  # over the 16 MB cap: sparse, costs no disk
        f.truncate(17_000_000)
    # stored queries that try to write, export, plot or skip the memory guard
    for name, query in [
        ("q_out_force.json", {"command": "scale", "version": 2,
                              "params": {"spec": "resnet50", "width": 2, "out": str(d / "pwn.yaml"),
                                         "force": True}}),
        ("q_export.json", {"command": "export", "version": 2,
                           "params": {"spec": "resnet50", "to": str(d / "pwn.pt")}}),
        ("q_plot.json", {"command": "sweep", "version": 2,
                         "params": {"spec": "resnet50", "plot_path": str(d / "pwn.png")}}),
        ("q_overwrite.json", {"command": "info", "version": 2,
                              "params": {"spec": str(d / "tiny.yaml"), "overwrite": True}}),
        ("q_unknown_field.json", {"command": "info", "version": 2, "params": {},
                                  "run": "rm -rf /"}),
        ("q_spec_nul.json", {"command": "info", "version": 2, "params": {"spec": "a\0b"}}),
        ("q_spec_long.json", {"command": "info", "version": 2, "params": {"spec": "x" * 5000}}),
    ]:
        mutated(name, lambda m, q=query: m.update(query=q))
    # version 1 (scalekit 0.1.0) stored click's names: output keys are dropped, never used
    v1 = {"command": "info", "params": {"spec": str(d / "tiny.yaml"), "counter": "analytic",
                                        "latency": False, "fmt": "json", "force": True,
                                        "output": str(d / "pwn_v1.json")}}
    mutated("v1_output.json", lambda m: m.update(query=v1))
    return d


def _x(text: str, d: Path) -> str:
    return text.replace("{d}", str(d))


# (id, argv, exit code, texts the one Error: line must contain); {d} is the scratch folder
BASELINE_CASES = [
    ("nan-latency", ["check", "-b", "{d}/nan_latency.json", "--latency-tolerance", "25%"], 2,
     ["nan_latency.json", "NaN", "only finite numbers"]),
    ("nan-anywhere", ["check", "-b", "{d}/nan_machine.json"], 2, ["NaN"]),
    ("infinity", ["check", "-b", "{d}/infinity.json"], 2, ["Infinity"]),
    ("minus-infinity", ["check", "-b", "{d}/minus_infinity.json"], 2, ["-Infinity"]),
    ("float-overflow", ["check", "-b", "{d}/float_overflow.json"], 2, ["1e999", "finite"]),
    ("int-400-digits", ["check", "-b", "{d}/int_400_digits.json"], 2, ["400 digits"]),
    ("int-5000-digits", ["check", "-b", "{d}/int_5000_digits.json"], 2, ["5,001 digits"]),
    ("params-list", ["check", "-b", "{d}/params_list.json"], 2, ["records[0]"]),
    ("params-negative", ["check", "-b", "{d}/params_negative.json"], 2, ["records[0].params"]),
    ("median-bool", ["check", "-b", "{d}/median_bool.json", "--latency-tolerance", "25%"], 2,
     ["records[0].latency.median_ms"]),
    ("median-list", ["check", "-b", "{d}/median_list.json"], 2, ["records[0].latency.median_ms"]),
    ("stage-name-list", ["check", "-b", "{d}/stage_name_list.json"], 2, ["records[0].stages"]),
    ("version-true", ["check", "-b", "{d}/version_true.json"], 2, ["query version True"]),
    ("version-float", ["check", "-b", "{d}/version_float.json"], 2, ["query version 2.0"]),
    ("nested-100k", ["check", "-b", "{d}/nested_100k.json"], 2, ["nested deeper than 32"]),
    ("nested-40", ["check", "-b", "{d}/nested_40.json"], 2, ["nested deeper than 32"]),
    ("baseline-16MB", ["check", "-b", "{d}/big.json"], 2, ["17,000,000 bytes", "16,000,000"]),
    ("baseline-fifo", ["check", "-b", "{d}/fifo.json"], 2, ["FIFO", "not a regular file"]),
    ("baseline-dev-zero", ["check", "-b", "/dev/zero"], 2, ["/dev/zero", "character device"]),
    ("baseline-socket", ["check", "-b", "{d}/sock"], 2, ["socket"]),
    ("query-out-force", ["check", "-b", "{d}/q_out_force.json"], 2, ["takes no parameter",
                                                                     "force", "out"]),
    ("query-export", ["check", "-b", "{d}/q_export.json"], 2, ["`export` is not a reporting"]),
    ("query-plot", ["check", "-b", "{d}/q_plot.json"], 2, ["takes no parameter plot_path"]),
    ("query-overwrite", ["check", "-b", "{d}/q_overwrite.json"], 2,
     ["takes no parameter overwrite"]),
    ("query-unknown-field", ["check", "-b", "{d}/q_unknown_field.json"], 2, ["unknown fields: run"]),
    ("query-spec-nul", ["check", "-b", "{d}/q_spec_nul.json"], 2, ["parameter spec", "NUL"]),
    ("query-spec-long", ["check", "-b", "{d}/q_spec_long.json"], 2, ["parameter spec", "4,096"]),
]

OUTPUT_CASES = [
    ("output-onto-spec", ["info", "{d}/tiny.yaml", "--no-latency", "--output", "{d}/tiny.yaml"],
     1, ["--output is the same file as SPEC"]),
    ("output-onto-hardlinked-spec", ["info", "{d}/tiny.yaml", "--no-latency", "--output",
                                     "{d}/tiny_hardlink.yaml"], 1, ["same file as SPEC"]),
    ("output-onto-symlinked-spec", ["info", "{d}/tiny_link.yaml", "--no-latency", "--output",
                                    "{d}/tiny.yaml"], 1, ["same file as SPEC"]),
    ("output-onto-bundled-spec", ["info", "resnet50", "--no-latency", "--output",
                                  spec_path("resnet50")], 1, ["same file as SPEC"]),
    ("compare-output-onto-spec", ["compare", "{d}/tiny.yaml", "--no-latency", "--output",
                                  "{d}/tiny.yaml"], 1, ["same file as SPEC"]),
    ("out-and-output-same", ["scale", "{d}/tiny.yaml", "--width", "2", "--no-latency", "--out",
                             "{d}/new.yaml", "--output", "{d}/new.yaml"], 1,
     ["--output is the same file as --out"]),
    ("out-onto-spec", ["scale", "{d}/tiny.yaml", "--width", "2", "--no-latency", "--out",
                       "{d}/tiny.yaml", "--overwrite"], 1, ["--out is the same file as SPEC"]),
    ("plot-and-output-same", ["sweep", "{d}/tiny.yaml", "--plot", "{d}/p.png", "--output",
                              "{d}/p.png"], 1, ["--output is the same file as --plot"]),
    ("plot-onto-spec", ["sweep", "{d}/p.svg", "--plot", "{d}/p.svg"], 1,
     ["--plot is the same file as SPEC"]),
    ("export-onto-spec", ["export", "{d}/m.pt", "--to", "{d}/m.pt", "--overwrite"], 1,
     ["--to is the same file as SPEC"]),
    ("check-output-onto-baseline", ["check", "-b", "{d}/base.json", "--output",
                                    "{d}/base.json"], 1, ["same file as --baseline"]),
    ("check-update-output-onto-baseline", ["check", "-b", "{d}/base.json", "--update",
                                           "--output", "{d}/base.json"], 1,
     ["--output is the same file as --baseline (--update)"]),
    ("check-output-onto-query-spec", ["check", "-b", "{d}/base.json", "--output",
                                      "{d}/tiny.yaml"], 1,
     ["same file as a spec of the baseline's query"]),
    ("check-output-onto-spec", ["check", "-b", "{d}/base.json", "{d}/tiny.yaml", "--output",
                                "{d}/tiny.yaml"], 1, ["same file as SPEC"]),
    ("output-fifo", ["info", "{d}/tiny.yaml", "--no-latency", "--output", "{d}/fifo"], 1,
     ["FIFO", "replaces only regular files"]),
    ("output-socket", ["info", "{d}/tiny.yaml", "--no-latency", "--output", "{d}/sock"], 1,
     ["a socket"]),
    ("output-dev-null", ["info", "{d}/tiny.yaml", "--no-latency", "--output", "/dev/null"], 1,
     ["/dev/null", "character device", "--output -"]),
    ("output-dev-stdout", ["info", "{d}/tiny.yaml", "--no-latency", "--output", "/dev/stdout"],
     1, ["/dev/stdout", "a stream of this process", "--output -"]),
    ("out-dash", ["scale", "{d}/tiny.yaml", "--width", "2", "--no-latency", "--out", "-"], 1,
     ["cannot go to standard output"]),
    ("output-read-only", ["info", "{d}/tiny.yaml", "--no-latency", "--output",
                          "{d}/readonly.json"], 1, ["readonly.json", "read-only"]),
    ("update-read-only-baseline", ["check", "-b", "{d}/readonly_base.json", "--update"], 1,
     ["readonly_base.json", "read-only"]),
    ("out-read-only-overwrite", ["scale", "{d}/tiny.yaml", "--width", "2", "--no-latency", "--out",
                                 "{d}/readonly.json", "--overwrite"], 1, ["read-only"]),
]

INPUT_CASES = [
    ("spec-fifo", ["info", "{d}/fifo.yaml", "--no-latency"], 1, ["fifo.yaml", "FIFO"]),
    ("spec-fifo-in-compare", ["compare", "{d}/fifo.yaml", "--no-latency"], 1, ["FIFO"]),
    ("spec-fifo-in-check", ["check", "-b", "{d}/base.json", "{d}/fifo.yaml"], 1, ["FIFO"]),
    ("spec-socket", ["info", "{d}/sock", "--no-latency"], 1, ["a socket"]),
    ("weights-fifo", ["export", "{d}/tiny.yaml", "--to", "{d}/w.pt", "--weights", "{d}/fifo"], 1,
     ["fifo", "FIFO", "not a regular file"]),
    ("spec-name-too-long", ["info", "{d}/long_name.yaml", "--no-latency"], 1,
     ["name: 1,001 characters; at most 1,000"]),
    ("spec-name-990KB", ["info", "{d}/huge_name.yaml", "--no-latency"], 1,
     ["name: 990,000 characters; at most 1,000"]),
    ("spec-path-5000", ["info", "x" * 5000, "--no-latency"], 2,
     ["a name of 5,000 characters", "4,096"]),
    ("spec-path-component-300", ["info", "{d}/" + "y" * 300 + ".yaml", "--no-latency"], 1,
     ["cannot read", "too long"]),
    ("spec-path-nul", ["info", "a\0b.yaml", "--no-latency"], 2, ["cannot contain a NUL"]),
    ("spec-path-nul-in-compare", ["compare", "a\0b.yaml", "--no-latency"], 2, ["NUL"]),
]

NUMBER_CASES = [
    ("time-budget-nan", ["info", "{d}/tiny.yaml", "--time-budget", "nan"], 2,
     ["--time-budget", "finite"]),
    ("time-budget-inf", ["bench", "{d}/tiny.yaml", "--time-budget", "inf"], 2,
     ["--time-budget", "finite"]),
    ("threads-1e11", ["info", "{d}/tiny.yaml", "--threads", "1e11"], 2,
     ["--threads", "not a valid integer"]),
    ("threads-10000", ["info", "{d}/tiny.yaml", "--threads", "10000"], 2,
     ["--threads", "cores available", "10,000"]),
    ("threads-10000-bench", ["bench", "{d}/tiny.yaml", "--threads", "10000"], 2, ["--threads"]),
    ("threads-10000-fit", ["fit", "{d}/tiny.yaml", "--target-latency", "1ms", "--threads",
                           "10000"], 2, ["--threads", "cores available"]),
    # a flag's value outside its fixed range, an unknown preset: usage errors (issue 16)
    ("width-1e-320", ["scale", "{d}/tiny.yaml", "--width", "1e-320", "--no-latency"], 2,
     ["width", "from 1e-06"]),
    ("depth-1e-320", ["scale", "{d}/tiny.yaml", "--depth", "1e-320", "--no-latency"], 2,
     ["depth", "from 1e-06"]),
    ("resolution-1e-320", ["scale", "{d}/tiny.yaml", "--resolution", "1e-320", "--no-latency"],
     2, ["resolution", "from 1e-06"]),
    ("factor-1e-320", ["scale", "{d}/tiny.yaml", "--strategy", "dWr", "--factor", "1e-320",
                       "--no-latency"], 2, ["from 1e-06"]),
    ("sweep-values-1e-320", ["sweep", "{d}/tiny.yaml", "--mode", "width", "--values", "1e-320"],
     2, ["width", "from 1e-06"]),
    ("phi-huge-alpha-tiny", ["scale", "{d}/tiny.yaml", "--phi", "400", "--alpha", "0.1",
                             "--no-latency"], 2, ["phi=400", "multiplier"]),
    ("batch-1e11", ["bench", "{d}/tiny.yaml", "--batch", "1e11"], 2, ["--batch"]),
    ("lone-surrogate-argv", ["info", "\udcff.yaml", "--no-latency"], 1, ["\\udcff.yaml"]),
    ("escape-in-path", ["info", "\x1b[31mred\x1b]0;title\x07.yaml", "--no-latency"], 1,
     ["\\x1b[31mred\\x1b]0;title\\x07.yaml", "no such file"]),
    ("escape-in-option-value", ["scale", "{d}/tiny.yaml", "--phi", "\x1b[2J"], 2,
     ["--phi", "\\x1b[2J"]),
    ("escape-in-unknown-option", ["info", "{d}/tiny.yaml", "--\x1b[31mx"], 2, ["\\x1b[31mx"]),
    ("escape-in-preset", ["scale", "{d}/tiny.yaml", "--preset", "\x1b]0;t\x07", "--no-latency"],
     2, ["no preset", "\\x1b]0;t\\x07"]),
]

ALL_CASES = BASELINE_CASES + OUTPUT_CASES + INPUT_CASES + NUMBER_CASES


@pytest.fixture(scope="module")
def results(hostile, tmp_path_factory):
    before = snapshot(hostile)
    bundled = hashlib.sha256(Path(spec_path("resnet50")).read_bytes()).hexdigest()
    cases = [{"id": cid, "argv": [_x(a, hostile) for a in argv], "cwd": str(hostile)}
             for cid, argv, _, _ in ALL_CASES]
    out = run_batch(cases, tmp_path_factory.mktemp("hostile_streams"))
    out["_changed"] = {k: (before.get(k), v) for k, v in snapshot(hostile).items()
                       if before.get(k) != v}
    out["_bundled_intact"] = bundled == hashlib.sha256(
        Path(spec_path("resnet50")).read_bytes()).hexdigest()
    return out


@pytest.mark.parametrize("cid,argv,code,texts", ALL_CASES, ids=[c[0] for c in ALL_CASES])
def test_hostile_command_line(cid, argv, code, texts, results, hostile):
    r = results[cid]
    assert r["code"] != "timeout", f"{cid} hung"
    assert_clear_error(r, code, [_x(t, hostile) for t in texts])
    for raw in RAW:
        assert raw not in r["stderr"], f"{raw!r} reached stderr raw"


def test_nothing_was_touched_and_no_temporary_file_is_left(results, hostile):
    assert results["_changed"] == {}, results["_changed"]
    assert results["_bundled_intact"]
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    no_temporaries(hostile)
    for name in ("pwn.yaml", "pwn.pt", "pwn.png", "pwn_v1.json", "new.yaml", "p.png", "w.pt"):
        assert not (hostile / name).exists(), name


# ---------------------------------------------------------------------------------------------
# 1. a baseline is data


def test_a_version_1_query_drops_its_output_keys_and_runs(hostile):
    """0.1.0's reports stored ``output`` and ``force``: read as data, they are never used."""
    r = run_cli("check", "--baseline", str(hostile / "v1_output.json"))
    assert r.returncode == 0, r.stderr  # the same network, counted again
    assert "1 model compared" in r.stdout
    assert not (hostile / "pwn_v1.json").exists()


def test_a_nan_latency_never_passes_the_latency_check():
    from scalekit.errors import BaselineError
    from scalekit.report.document import parse_document
    from scalekit.studies.regression import compare_documents, has_latency

    assert not has_latency({"latency": {"median_ms": float("nan")}})
    assert not has_latency({"latency": {"median_ms": True}})
    doc = info_document(spec_path("resnet50"))
    doc["records"][0]["latency"] = {"median_ms": float("nan"), "iqr_ms": 0.0}
    with pytest.raises(BaselineError, match="NaN"):
        parse_document(json.dumps(doc), "b.json")  # json.dumps writes NaN; scalekit refuses it
    cur = copy.deepcopy(doc)
    cur["records"][0]["latency"] = {"median_ms": 10.0, "iqr_ms": 0.0}
    result = compare_documents(doc, cur, latency_tolerance=0.25)
    assert result.latency_compared == 0  # compared with nothing, not "within bounds"


# ---------------------------------------------------------------------------------------------
# 2. outputs never destroy


def test_output_dash_is_standard_output(hostile):
    r = run_cli("info", str(hostile / "tiny.yaml"), "--no-latency", "--format", "json",
                "--output", "-")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["records"][0]["name"] == "Tiny"
    assert not (hostile / "-").exists()


def test_a_rewritten_file_keeps_its_mode_and_symlinks_are_written_through(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    report = tmp_path / "report.json"
    report.write_text("old\n")
    os.chmod(report, 0o600)
    link = tmp_path / "link.json"
    link.symlink_to(report.name)
    r = run_cli("info", str(spec), "--no-latency", "--format", "json", "--output", str(link))
    assert r.returncode == 0, r.stderr
    assert link.is_symlink() and os.readlink(link) == report.name  # still a link
    assert json.loads(report.read_text())["records"][0]["name"] == "Tiny"  # its target rewritten
    assert stat.S_IMODE(report.stat().st_mode) == 0o600
    # check --update keeps the baseline's mode too
    base = tmp_path / "base.json"
    base.write_text(json.dumps(info_document(str(spec))))
    os.chmod(base, 0o640)
    spec.write_text(TINY.replace("out: 16", "out: 24"))
    r = run_cli("check", "--baseline", str(base), "--update")
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(base.stat().st_mode) == 0o640
    no_temporaries(tmp_path)


def test_the_output_policy_in_files_py(tmp_path):
    from scalekit.errors import FileError
    from scalekit.files import Files, atomic_path, read_input, write_atomic

    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("a\n")
    with pytest.raises(FileError, match="same file as IN"):
        Files().reads("IN", str(a)).writes("OUT", str(tmp_path / "." / "a.txt")).check()
    with pytest.raises(FileError, match="same file as ONE"):
        Files().writes("ONE", str(b)).writes("TWO", str(b)).check()
    Files().reads("IN", str(a)).writes("OUT", str(b)).writes("S", "-", stream=True).check()
    os.mkfifo(tmp_path / "f")
    with pytest.raises(FileError, match="FIFO"):
        write_atomic(str(tmp_path / "f"), "x")
    with pytest.raises(FileError, match="FIFO"):
        read_input(str(tmp_path / "f"), 10)
    with pytest.raises(FileError, match="larger than 1 bytes"):
        read_input(str(a), 1)
    if os.path.exists("/proc/self/status"):  # reports size 0, holds more: the read is bounded
        with pytest.raises(FileError, match="more than 3 bytes"):
            read_input("/proc/self/status", 3)
    # the target turning into something else while the caller writes is refused too
    with pytest.raises(FileError, match="FIFO"):
        with atomic_path(str(b)) as tmp:
            Path(tmp).write_text("new")
            os.mkfifo(b)
    assert stat.S_ISFIFO(os.stat(b).st_mode)
    no_temporaries(tmp_path)


def _popen(*args: str, cwd=ROOT) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("SCALEKIT_DEBUG", None)
    return subprocess.Popen([sys.executable, "-c", "from scalekit.cli import main; main()", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=cwd)


def _wait_until_scalekit_runs(p: subprocess.Popen, limit: float = 60) -> None:
    """Until the process catches SIGTERM (its SigCgt in /proc): scalekit's own code has
    started. (Before that the interpreter itself is starting, and a signal then is the
    interpreter's business: nothing of scalekit's has run, nothing is written.)"""
    bit = 1 << (signal.SIGTERM - 1)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and p.poll() is None:
        try:
            with open(f"/proc/{p.pid}/status") as f:
                caught = next(int(ln.split()[1], 16) for ln in f if ln.startswith("SigCgt:"))
        except (OSError, StopIteration):
            caught = 0
        if caught & bit:
            return
        time.sleep(0.001)


def _wait_for_temporary(p: subprocess.Popen, folder: Path, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while not list(folder.glob(".scalekit-*")):
        assert p.poll() is None, "finished before its temporary file appeared: " + p.stderr.read()
        assert time.monotonic() < deadline, "no temporary file appeared"
        time.sleep(0.005)


def _one_line(stderr: str, line: str) -> None:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert lines == [line], stderr


@pytest.mark.parametrize("fmt,sig", [("pt", signal.SIGTERM), ("onnx", signal.SIGINT)])
def test_a_signal_during_export_leaves_no_temporary_file(tmp_path, fmt, sig):
    """The exporter writes a temporary file beside the target (100 MB for a large model): a
    signal while it exists removes it, exits 128 + N with one line, and writes no target."""
    if fmt == "onnx":
        pytest.importorskip("onnxscript")
        pytest.importorskip("onnxruntime")
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY if fmt == "onnx" else open(spec_path("mobilenet_v2")).read())
    p = _popen("export", str(spec), "--to", str(tmp_path / f"m.{fmt}"))
    _wait_for_temporary(p, tmp_path)
    p.send_signal(sig)
    _, stderr = p.communicate(timeout=120)
    assert p.returncode == 128 + sig, stderr
    name = "interrupted" if sig == signal.SIGINT else f"terminated by {signal.Signals(sig).name}"
    _one_line(stderr, f"scalekit: {name}")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["tiny.yaml"]


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
def test_signals_at_any_moment_leave_no_temporary_file(tmp_path):
    """SIGTERM, SIGHUP and SIGINT at staggered moments of `check --update` (which reads a
    baseline, computes, and replaces it through a temporary file): each run exits 0 (done
    before the signal) or 128 + N, with no traceback, and never leaves a temporary file; the
    baseline is always a complete document."""
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    base = tmp_path / "base.json"
    base.write_text(json.dumps(info_document(str(spec))))
    sigs = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
    for i, delay in enumerate((0.0, 0.05, 0.1, 0.2, 0.3, 0.4)):
        sig = sigs[i % 3]
        p = _popen("check", "--baseline", str(base), "--update")
        _wait_until_scalekit_runs(p)
        time.sleep(delay)
        p.send_signal(sig)
        _, stderr = p.communicate(timeout=60)
        assert p.returncode in (0, 128 + sig), (delay, sig, stderr)
        assert "Traceback" not in stderr, stderr
        no_temporaries(tmp_path)
        json.loads(base.read_text())


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
def test_ctrl_c_while_scalekit_loads_prints_no_traceback(tmp_path):
    """A signal while click, rich and scalekit are imported (the first ~0.3 s): an import hook
    sends it exactly then. Then the same at fixed moments after the start."""
    hook = ("import os, signal, sys\n"
            "class Hook:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'rich.table':\n"
            "            sys.meta_path.remove(self); os.kill(os.getpid(), signal.SIG%s)\n"
            "        return None\n"
            "sys.meta_path.insert(0, Hook())\n"
            "from scalekit.cli import main; main()\n")
    for sig in ("INT", "TERM"):
        r = subprocess.run([sys.executable, "-c", hook % sig, "list"], capture_output=True,
                           text=True, timeout=60, cwd=ROOT)
        signum = getattr(signal, f"SIG{sig}")
        assert r.returncode == 128 + signum, r.stderr
        assert "Traceback" not in r.stderr and r.stdout == ""
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    for delay in (0.0, 0.02, 0.05, 0.1, 0.2):
        p = _popen("compare", "--no-latency")
        _wait_until_scalekit_runs(p)
        time.sleep(delay)
        p.send_signal(signal.SIGINT)
        _, stderr = p.communicate(timeout=60)
        assert p.returncode in (0, 130) and "Traceback" not in stderr, stderr


# ---------------------------------------------------------------------------------------------
# 4. terminal injection


@pytest.mark.parametrize("fmt", ["table", "csv", "markdown", "json"])
def test_a_hostile_name_reaches_no_stream_raw(hostile, fmt):
    r = run_cli("info", str(hostile / "evil.yaml"), "--no-latency", "--format", fmt,
                env={"FORCE_COLOR": "1"} if fmt == "table" else None)
    assert r.returncode == 0, r.stderr
    for raw in RAW[1:]:
        assert raw not in r.stdout
    if fmt != "table":  # a forced terminal gets scalekit's own colours, nothing else
        assert "\x1b" not in r.stdout
    else:
        assert "\x1b]" not in r.stdout and "\x1b[31m" not in r.stdout
    if fmt == "table":
        assert "[/bold] [link=file:///etc/passwd]x[/link] :smile:" in r.stdout  # not markup
        assert "\\x1b[31mRED" in r.stdout and "over\\nwritten" in r.stdout
    elif fmt == "csv":
        rows = list(csv.reader(io.StringIO(r.stdout)))
        assert len(rows) == 2 and rows[1][0].startswith("Evil \\x1b[31mRED")
    elif fmt == "markdown":
        lines = r.stdout.splitlines()
        assert len(lines) == 3  # header, rule, one row: a newline or | cannot add rows
        cells = lines[2].split(" | ")
        assert lines[2].count("|") - lines[2].count("\\|") == lines[0].count("|")
        assert "a\\|b" in cells[0]
    else:
        assert json.loads(r.stdout)["records"][0]["name"] == HOSTILE_NAME  # data, exactly


def test_a_hostile_name_in_an_error_message_and_in_check(hostile, tmp_path):
    r = run_cli("scale", str(hostile / "evil.yaml"), "--preset", "b1", "--no-latency")
    assert r.returncode == 2  # an unknown preset is a usage error (issue 16)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "no preset 'b1'" in lines[0]
    for raw in RAW:
        assert raw not in r.stderr
    base = tmp_path / "b.json"
    r = run_cli("info", str(hostile / "evil.yaml"), "--no-latency", "--format", "json",
                "--output", str(base))
    assert r.returncode == 0, r.stderr
    doc = json.loads(base.read_text())
    doc["records"][0]["params"] += 1
    base.write_text(json.dumps(doc))
    for fmt in ("table", "markdown"):
        r = run_cli("check", "--baseline", str(base), "--format", fmt)
        assert r.returncode == 1, r.stderr
        for raw in RAW:
            assert raw not in r.stdout and raw not in r.stderr


def test_a_hostile_name_in_progress_lines_while_timing(hostile):
    r = run_cli("info", str(hostile / "evil.yaml"), "--latency", "measured", "--time-budget",
                "0.05", env={"OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    assert "scalekit: timing Evil \\x1b[31mRED" in r.stderr
    for raw in RAW:
        assert raw not in r.stderr and raw not in r.stdout
    # predicted (the default): the lines that say which blocks are timed for the table, too
    r = run_cli("info", str(hostile / "evil.yaml"), env={"OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    for raw in RAW:
        assert raw not in r.stderr and raw not in r.stdout


def test_printing_a_990k_character_name_is_not_quadratic():
    """rich's default highlighter took 17 s for a 50,000-character name and hours for 990,000;
    scalekit's consoles print it at once (bounded by a timeout, not timed)."""
    code = ("import io\nfrom scalekit.report.tables import new_table, safe_console\n"
            "name = 'x' * 990_000\nt = new_table(name, caption=name)\nt.add_column(name)\n"
            "t.add_row(name)\nc = safe_console(file=io.StringIO(), width=200)\n"
            "c.print(t, name, name.replace('x', '1x'))\nprint('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       cwd=ROOT)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_scale_out_writes_a_hostile_name_that_reads_back(hostile, tmp_path):
    out = tmp_path / "scaled.yaml"
    r = run_cli("scale", str(hostile / "evil.yaml"), "--width", "2", "--no-latency", "--out",
                str(out))
    assert r.returncode == 0, r.stderr
    from scalekit.spec import load_spec

    scaled = load_spec(str(out))
    assert scaled.name.startswith(HOSTILE_NAME)
    header = [ln for ln in out.read_text().splitlines() if ln.startswith("#")]
    assert len(header) == 2  # the name's newline did not start a line of YAML
    r = run_cli("info", str(out), "--no-latency")
    assert r.returncode == 0, r.stderr


def test_a_long_name_scales_within_the_name_limit(tmp_path):
    from scalekit.fields import MAX_NAME_CHARS
    from scalekit.scaling import scale_spec
    from scalekit.spec import load_spec, spec_to_yaml

    spec = tmp_path / "long.yaml"
    spec.write_text(tiny_named("n" * MAX_NAME_CHARS))
    scaled, _ = scale_spec(load_spec(str(spec)), width=2)
    assert len(scaled.name) <= MAX_NAME_CHARS and scaled.name.endswith("32px)")
    (tmp_path / "again.yaml").write_text(spec_to_yaml(scaled))
    assert load_spec(str(tmp_path / "again.yaml")).name == scaled.name


def test_safe_text():
    from scalekit.text import safe_text

    assert safe_text("plain ±→ C:\\dir") == "plain ±→ C:\\dir"
    assert safe_text("a\x1b[31m\nb\rc\td\x00\x7f\x9b") == "a\\x1b[31m\\nb\\rc\\td\\x00\\x7f\\x9b"
    assert safe_text("\u202eabc\u2066\udcff") == "\\u202eabc\\u2066\\udcff"
    assert "\n" not in safe_text(HOSTILE_NAME)
    safe_text(HOSTILE_NAME).encode("utf-8")  # no lone surrogate left


# ---------------------------------------------------------------------------------------------
# 5. streams that cannot take the output


def test_an_ascii_stdout_gets_escapes_not_an_error(hostile):
    r = run_cli("info", str(hostile / "evil.yaml"), "--no-latency",
                env={"PYTHONIOENCODING": "ascii"})
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and r.stdout.isascii()


def test_a_closed_stdout_is_one_clear_error():
    r = subprocess.run([sys.executable, "-c", "from scalekit.cli import main; main()", "info",
                        "resnet50", "--no-latency"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, timeout=60, cwd=ROOT,
                       preexec_fn=lambda: os.close(1))
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0] == "Error: <stdout>: standard output is closed", r.stderr


# ---------------------------------------------------------------------------------------------
# 6. valid input accepted


MERGED = """\
name: Merged
resolution: 64
stem: {out: 8}
stages:
  - &base {block: mbconv, out: 16, expand: 6, kernel: 3, se: 0.25, act: silu}
  - <<: *base
    out: 24
    stride: 2
  - {<<: *base, kernel: 5}
"""
EXPLICIT = """\
name: Merged
resolution: 64
stem: {out: 8}
stages:
  - {block: mbconv, out: 16, expand: 6, kernel: 3, se: 0.25, act: silu}
  - {block: mbconv, out: 24, expand: 6, kernel: 3, se: 0.25, act: silu, stride: 2}
  - {block: mbconv, out: 16, expand: 6, kernel: 5, se: 0.25, act: silu}
"""


def test_yaml_merge_keys_are_accepted(tmp_path):
    from scalekit import count
    from scalekit.spec import load_spec

    (tmp_path / "merged.yaml").write_text(MERGED)
    (tmp_path / "explicit.yaml").write_text(EXPLICIT)
    merged = load_spec(str(tmp_path / "merged.yaml"))
    explicit = load_spec(str(tmp_path / "explicit.yaml"))
    assert merged == explicit
    assert count(merged) == count(explicit)
    r = run_cli("info", str(tmp_path / "merged.yaml"), "--no-latency")
    assert r.returncode == 0, r.stderr


def test_merge_keys_are_held_to_the_value_limit(tmp_path, monkeypatch):
    from scalekit import spec as spec_module
    from scalekit.errors import SpecError

    monkeypatch.setattr(spec_module, "MAX_VALUES", 5)
    text = "a: &a {k1: 1, k2: 2, k3: 3}\nb: &b {<<: *a, k4: 4, k5: 5}\nc: {<<: *b, k6: 6}\n"
    (tmp_path / "m.yaml").write_text(text)
    with pytest.raises(SpecError, match="merge keys"):
        spec_module.load_spec(str(tmp_path / "m.yaml"))


# ---------------------------------------------------------------------------------------------
# 7. the Python API raises scalekit's errors


def tiny_spec():
    import yaml

    from scalekit.spec import spec_from_dict

    return spec_from_dict(yaml.safe_load(TINY))


def _api_cases():
    import scalekit as sk

    b0 = lambda: sk.load_spec("efficientnet_b0")  # noqa: E731
    tiny = tiny_spec
    return [
        ("phi-10**400", lambda: sk.scale(b0(), phi=10**400), sk.ScalingError, "phi"),
        ("size-300.5", lambda: sk.scale(b0(), size=300.5), sk.ScalingError, "whole number"),
        ("preset-list", lambda: sk.scale(b0(), preset=["b1"]), sk.ScalingError, "preset"),
        ("width-1e-320", lambda: sk.scale(b0(), width=1e-320), sk.ScalingError, "width"),
        ("width-string", lambda: sk.scale(b0(), width="2"), sk.ScalingError, "width"),
        ("load-nul", lambda: sk.load_spec("a\0b"), sk.SpecError, "NUL"),
        ("load-5000", lambda: sk.load_spec("x" * 5000), sk.SpecError, "4,096"),
        ("load-300", lambda: sk.load_spec("x" * 300), sk.SpecError, "too long"),
        ("load-int", lambda: sk.load_spec(42), sk.SpecError, "file name"),
        ("load-fifo", lambda: sk.load_spec("/dev/zero"), sk.SpecError, "not a regular file"),
        ("count-res-huge", lambda: sk.count(b0(), resolution=10**7), sk.ScalingError,
         "resolution"),
        ("latency-batch-0", lambda: sk.measure_latency(tiny(), batch=0), sk.ArgumentError,
         "batch"),
        ("latency-batch-1e12", lambda: sk.measure_latency(tiny(), batch=10**12),
         sk.ArgumentError, "batch"),
        ("latency-budget-nan", lambda: sk.measure_latency(tiny(), budget_s=float("nan")),
         sk.ArgumentError, "budget_s"),
        ("latency-threads-10000", lambda: sk.measure_latency(tiny(), threads=10_000),
         sk.ArgumentError, "threads"),
        ("latency-unknown-option", lambda: sk.measure_latency(tiny(), repeat=3),
         sk.ArgumentError, "repeat"),
        ("latency-not-a-model", lambda: sk.measure_latency(42), sk.ArgumentError, "torch.nn"),
        ("latency-resolution-0", lambda: sk.measure_latency(tiny(), 0), sk.ArgumentError,
         "resolution"),
        ("latency-min-over-max", lambda: sk.measure_latency(tiny(), min_runs=5, max_runs=2),
         sk.ArgumentError, "max_runs"),
        ("build-force-not-bool", lambda: sk.build_model(tiny(), force="yes"), sk.ArgumentError,
         "force"),
    ]


API_IDS = ["phi-10**400", "size-300.5", "preset-list", "width-1e-320", "width-string",
           "load-nul", "load-5000", "load-300", "load-int", "load-fifo", "count-res-huge",
           "latency-batch-0", "latency-batch-1e12", "latency-budget-nan",
           "latency-threads-10000", "latency-unknown-option", "latency-not-a-model",
           "latency-resolution-0", "latency-min-over-max", "build-force-not-bool"]


@pytest.mark.parametrize("case", API_IDS)
def test_the_api_raises_documented_errors(case):
    _, call, error, words = next(c for c in _api_cases() if c[0] == case)
    with pytest.raises(error, match=words):
        call()


def test_load_weights_refuses_a_fifo_without_blocking(tmp_path):
    import scalekit as sk

    os.mkfifo(tmp_path / "w.pt")
    with pytest.raises(sk.FileError, match="FIFO"):
        sk.load_weights(sk.build_model(tiny_spec()), str(tmp_path / "w.pt"))


def test_build_model_and_measure_latency_apply_the_memory_guard(monkeypatch):
    import scalekit as sk
    from scalekit import api, memory

    tiny = tiny_spec()
    monkeypatch.setattr(memory, "available_memory", lambda: 1000)  # 1 kB left
    monkeypatch.setattr(api, "available_memory", lambda: 1000)
    with pytest.raises(sk.ScalekitError, match="needs about"):
        sk.build_model(tiny)
    model = sk.build_model(tiny, force=True)
    assert sum(p.numel() for p in model.parameters()) == sk.count(tiny).params
    with pytest.raises(sk.ScalekitError, match="needs about"):
        sk.measure_latency(tiny)
    with pytest.raises(sk.ScalekitError, match="needs about"):
        sk.measure_latency(model)  # a module it built: the same estimate
    lat = sk.measure_latency(model, force=True, warmup=0, min_runs=2, max_runs=2)
    assert lat.runs == 2


def test_click_messages_of_several_lines_stay_readable():
    """A bare `scalekit` shows click's help (several lines of scalekit's own text): escaped per
    line, not folded into one."""
    r = run_cli()
    assert r.returncode == 2
    assert "\nCommands:\n" in r.stderr + r.stdout and "\\n" not in r.stderr + r.stdout

"""The same kind of mistake gets the same answer everywhere (issue 16, item 8).

- Options that contradict each other, and options that would have no effect in the given
  combination, are usage errors on every command: exit 2, one ``Error: ...`` line on stderr
  (naming the option), no traceback, nothing on stdout, no file written.
- ``-q/--quiet`` (global or per command): stderr is empty on success; the result on stdout is
  the same as without it.
- Shell completion (click's protocol) offers the command names without importing any command,
  and a command's options, choices and SPEC names without importing torch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import ROOT, run_cli
from .test_bad_input import run_batch

pytestmark = pytest.mark.light  # count-only: CI runs it in the torch-free venv too

# (id, argv, texts the one line must contain). Run in an empty folder: any file a case names is
# there, and none may appear. The baseline `b.json` is made by the fixture.
REFUSED = [
    # latency: contradictions
    ("info-latency-no-latency", ["info", "resnet50", "--latency", "measured", "--no-latency"],
     ["--latency", "--no-latency"]),
    ("scale-optimize-no-latency", ["scale", "resnet50", "--width", "2", "--optimize",
                                   "--no-latency"], ["--optimize", "--no-latency"]),
    ("compare-table4-no-latency", ["compare", "--table", "4", "--no-latency"],
     ["--table 4", "--no-latency"]),
    ("info-optimize-predicted", ["info", "resnet50", "--optimize", "--latency", "predicted"],
     ["--optimize"]),
    ("bench-optimize-onnxruntime", ["bench", "resnet50", "--optimize", "--runtime",
                                    "onnxruntime"], ["--optimize", "--runtime"]),
    ("bench-max-below-min", ["bench", "resnet50", "--min-runs", "20", "--max-runs", "10"],
     ["--max-runs", "--min-runs"]),
    # latency: options without effect
    ("info-threads-no-latency", ["info", "resnet50", "--threads", "1", "--no-latency"],
     ["--threads has no effect", "--no-latency"]),
    ("info-runtime-no-latency", ["info", "resnet50", "--runtime", "optimized", "--no-latency"],
     ["--runtime has no effect"]),
    ("compare-time-budget-no-latency", ["compare", "--time-budget", "1", "--no-latency"],
     ["--time-budget has no effect"]),
    ("scale-time-budget-predicted", ["scale", "resnet50", "--phi", "1", "--time-budget", "1"],
     ["--time-budget has no effect", "predicted"]),
    ("sweep-threads-without-latency", ["sweep", "resnet50", "--threads", "1"],
     ["--threads has no effect", "without --latency"]),
    ("sweep-runtime-without-latency", ["sweep", "resnet50", "--runtime", "optimized"],
     ["--runtime has no effect"]),
    ("compare-batch-table-no-latency", ["compare", "--no-latency", "--batch", "8"],
     ["--batch has no effect", "--format json"]),
    ("info-force-nothing-built", ["info", "resnet50", "--force", "--no-latency"],
     ["--force has no effect"]),
    ("sweep-force-nothing-built", ["sweep", "resnet50", "--force"], ["--force has no effect"]),
    ("sweep-y-nothing-drawn", ["sweep", "resnet50", "--y", "acts", "--format", "json"],
     ["--y has no effect", "--plot"]),
    ("sweep-y-latency-without-latency", ["sweep", "resnet50", "--y", "latency"],
     ["--y latency", "--latency"]),
    # scaling flags, on every command that takes them
    *[(f"{cmd}-phi-width", [cmd, "resnet50", "--phi", "1", "--width", "2", *extra],
       ["--phi", "--width"])
      for cmd, extra in (("scale", ["--no-latency"]), ("info", ["--no-latency"]), ("bench", []),
                         ("reconcile", []),
                         ("export", ["--to", "x.pt2"]))],
    ("check-spec-phi-width", ["check", "--baseline", "b.json", "resnet50", "--phi", "1",
                              "--width", "2"], ["--phi", "--width"]),
    ("scale-preset-phi", ["scale", "efficientnet_b0", "--preset", "b1", "--phi", "1"],
     ["--preset", "--phi"]),
    ("scale-size-resolution", ["scale", "resnet50", "--size", "300", "--resolution", "1.2"],
     ["--resolution", "--size"]),
    ("scale-alpha-without-phi", ["scale", "resnet50", "--alpha", "1.3", "--width", "2"],
     ["--alpha", "--phi"]),
    ("scale-strategy-width", ["scale", "resnet50", "--strategy", "dWr", "--factor", "2",
                              "--width", "2"], ["--strategy", "--width"]),
    ("bench-strategy-without-factor", ["bench", "resnet50", "--strategy", "dWr"],
     ["--strategy and --factor go together"]),
    ("export-factor-without-strategy", ["export", "resnet50", "--factor", "2", "--to", "x.pt2"],
     ["--strategy and --factor go together"]),
    ("scale-unknown-strategy", ["scale", "resnet50", "--strategy", "dwr", "--factor", "2"],
     ["unknown strategy"]),
    ("scale-unknown-preset", ["scale", "efficientnet_b0", "--preset", "b9"], ["no preset 'b9'"]),
    ("scale-overwrite-without-out", ["scale", "resnet50", "--width", "2", "--overwrite"],
     ["--overwrite has no effect", "--out"]),
    # compare: --match and friends
    ("compare-match-table2", ["compare", "--table", "2", "--match", "macs", "--no-latency"],
     ["--match"]),
    ("compare-budget-table2", ["compare", "--table", "2", "--budget", "2G", "--no-latency"],
     ["--budget"]),
    ("compare-mode-table2", ["compare", "--table", "2", "--mode", "width", "--no-latency"],
     ["--mode"]),
    ("compare-match-convention", ["compare", "--match", "macs", "--convention", "fvcore",
                                  "--no-latency"], ["--match", "--convention"]),
    # counter and convention
    ("scale-counter-thop-convention", ["scale", "resnet50", "--width", "2", "--counter", "thop",
                                       "--convention", "full", "--no-latency"],
     ["--counter thop"]),
    # fit
    ("fit-two-targets", ["fit", "resnet50", "--target-macs", "2G", "--target-params", "20M"],
     ["exactly one"]),
    *[(f"fit-{opt[2:]}-without-latency-target", ["fit", "resnet50", "--target-macs", "2G", opt,
                                                 value], [f"{opt} has no effect",
                                                          "--target-latency"])
      for opt, value in (("--latency", "measured"), ("--runtime", "optimized"),
                         ("--threads", "1"), ("--max-measurements", "5"))],
    ("fit-memory-without-memory-target", ["fit", "resnet50", "--target-macs", "2G", "--memory",
                                          "training"], ["--memory has no effect"]),
    # check
    *[(f"check-update-{opt[2:]}", ["check", "--baseline", "b.json", "--update", opt, value],
       [f"{opt} has no effect", "--update"])
      for opt, value in (("--max-memory", "1GiB"), ("--latency-tolerance", "5%"),
                         ("--memory", "training"))],
    ("check-memory-without-max", ["check", "--baseline", "b.json", "--memory", "training"],
     ["--memory has no effect", "--max-memory"]),
    ("check-scaling-without-spec", ["check", "--baseline", "b.json", "--width", "2"],
     ["--width", "SPEC"]),
    ("check-latency-tolerance-spec", ["check", "--baseline", "b.json", "resnet50",
                                      "--latency-tolerance", "5%"], ["--latency-tolerance"]),
    # export, reconcile, search
    ("export-layout-without-weights", ["export", "resnet50", "--layout", "timm", "--to",
                                       "x.pt2"], ["--layout", "--weights"]),
    ("reconcile-force-meta-tools", ["reconcile", "resnet50", "--tools", "torch,thop",
                                    "--force"], ["--force has no effect", "--tools"]),
    ("search-dry-run-seeds", ["search", "proxy_mbconv", "--dry-run", "--seeds", "3"],
     ["--seeds has no effect", "--dry-run"]),
    ("search-dry-run-plot", ["search", "proxy_mbconv", "--dry-run", "--plot", "p.png"],
     ["--plot", "--dry-run"]),
    ("search-dry-run-journal", ["search", "proxy_mbconv", "--dry-run", "--journal", "j.jsonl"],
     ["--journal"]),
    ("search-address-local", ["search", "proxy_mbconv", "--evaluate", "builtin:proxy",
                              "--address", "auto"], ["--address has no effect",
                                                     "--backend local"]),
    ("search-threads-cost-macs", ["search", "proxy_mbconv", "--dry-run", "--threads", "1"],
     ["--threads has no effect", "--cost macs"]),
    ("search-overwrite-without-write-spec", ["search", "proxy_mbconv", "--dry-run",
                                             "--overwrite"], ["--overwrite has no effect"]),
    # outputs a refused command must not write
    ("info-output-refused", ["info", "resnet50", "--threads", "1", "--no-latency", "--output",
                             "report.json", "--format", "json"], ["--threads"]),
    ("sweep-plot-refused", ["sweep", "resnet50", "--threads", "1", "--plot", "s.svg"],
     ["--threads"]),
]


@pytest.fixture(scope="module")
def refused(tmp_path_factory):
    work = tmp_path_factory.mktemp("work")
    r = run_cli("info", "resnet50", "--no-latency", "--format", "json", "--output",
                str(work / "b.json"))
    assert r.returncode == 0, r.stderr
    before = sorted(os.listdir(work))
    results = run_batch([{"id": cid, "argv": argv, "cwd": str(work)} for cid, argv, _ in REFUSED],
                        tmp_path_factory.mktemp("streams"))
    return results, before, sorted(os.listdir(work))


@pytest.mark.parametrize("cid,argv,texts", REFUSED, ids=[c[0] for c in REFUSED])
def test_refused_combination_is_one_usage_line(refused, cid, argv, texts):
    results, before, after = refused
    r = results[cid]
    assert r["code"] == 2, (argv, r)
    assert r["stdout"] == "", r["stdout"]
    lines = r["stderr"].splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), r["stderr"]
    assert "Traceback" not in r["stderr"]
    for t in texts:
        assert t in lines[0], (t, lines[0])
    assert before == after  # nothing written, by any case


def test_a_typed_default_is_refused_but_a_default_is_not():
    r = run_cli("info", "resnet50", "--no-latency", "--format", "json")
    assert r.returncode == 0 and r.stderr == ""
    r = run_cli("info", "resnet50", "--no-latency", "--threads", "1")
    assert r.returncode == 2 and "--threads has no effect" in r.stderr


def test_options_with_an_effect_are_accepted():
    # --batch sets the batch of the memory estimate, timed or not
    one = json.loads(run_cli("info", "resnet50", "--no-latency", "--format", "json").stdout)
    four = json.loads(run_cli("info", "resnet50", "--no-latency", "--batch", "4",
                              "--format", "json").stdout)
    m1, m4 = one["records"][0]["memory"], four["records"][0]["memory"]
    assert (m1["batch"], m4["batch"]) == (1, 4)
    assert m4["inference_peak_bytes"] > m1["inference_peak_bytes"]
    # compare's table shows no memory, its reports do: --batch is accepted there
    doc = json.loads(run_cli("compare", "resnet50", "--no-latency", "--batch", "4", "--format",
                             "json").stdout)
    assert {r["memory"]["batch"] for r in doc["records"]} == {4}


# ---------------------------------------------------------------------------------------------
# --quiet


QUIET = [
    ["list"],
    ["info", "resnet50", "--no-latency"],
    ["scale", "resnet50", "--phi", "1", "--no-latency", "--out", "{tmp}/s.yaml"],
    ["compare", "--no-latency", "--output", "{tmp}/c.txt"],
    ["fit", "resnet50", "--target-macs", "2G", "--output", "{tmp}/f.json", "--format", "json"],
    ["sweep", "resnet50", "--mode", "width", "--values", "1,2", "--output", "{tmp}/w.csv",
     "--format", "csv"],
    ["search", "proxy_mbconv", "--dry-run"],
    ["check", "--baseline", "{tmp}/b.json", "--update", "resnet50"],
    ["check", "--baseline", "{tmp}/b.json", "--output", "{tmp}/check.md", "--format",
     "markdown"],
]


@pytest.mark.parametrize("argv,where", [(a, "command") for a in QUIET] +
                         [(a, "global") for a in QUIET[1:2] + QUIET[-1:]],
                         ids=lambda a: "-".join(a[:2]) if isinstance(a, list) else a)
def test_quiet_success_has_empty_stderr(tmp_path, argv, where):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if argv[0] == "check" and "--update" not in argv:
        assert run_cli("check", "--baseline", str(tmp_path / "b.json"), "--update",
                       "resnet50").returncode == 0
    loud = run_cli(*argv)
    assert loud.returncode == 0, loud.stderr
    for f in tmp_path.iterdir():  # the same files again (a baseline --update creates, too)
        if f.name != "b.json" or "--update" in argv:
            f.unlink()
    quiet = run_cli(*(["-q", *argv] if where == "global" else [*argv, "--quiet"]))
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    assert quiet.stdout == loud.stdout
    if "--output" in argv or "--out" in argv:
        assert loud.stderr.startswith("wrote ")  # the line --quiet leaves out


def test_quiet_keeps_errors_and_warnings(tmp_path):
    r = run_cli("-q", "info", str(tmp_path / "nope.yaml"), "--no-latency")
    assert r.returncode == 1 and r.stderr.startswith("Error: ")
    baseline = tmp_path / "b.json"
    assert run_cli("check", "--baseline", str(baseline), "--update", "resnet50").returncode == 0
    doc = json.loads(baseline.read_text())
    doc["scalekit_version"] = "0.0.1"
    baseline.write_text(json.dumps(doc))
    r = run_cli("check", "--baseline", str(baseline), "-q")
    assert r.returncode == 0 and r.stderr.startswith("scalekit: warning: ")


# ---------------------------------------------------------------------------------------------
# shell completion: click's protocol, as bash, zsh and fish run it


def complete(shell: str, words: str, cword: int) -> tuple[list[str], list[str]]:
    """What the completion script receives, and the modules loaded meanwhile (scalekit's
    commands, and whether torch was)."""
    code = ("import atexit, sys\n"
            "atexit.register(lambda: print('LOADED', [m for m in sys.modules if m == 'torch' or "
            "m.startswith('scalekit.commands.')], file=sys.stderr))\n"
            "from scalekit.cli import main\nmain()\n")
    # bash and zsh pass the index of the word being completed; fish passes that word itself
    current = words.rsplit(" ", 1)[-1] if shell == "fish" else str(cword)
    env = dict(os.environ, _SCALEKIT_COMPLETE=f"{shell}_complete", COMP_WORDS=words,
               COMP_CWORD=current)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    loaded = eval(r.stderr.rsplit("LOADED ", 1)[1])  # noqa: S307 - our own print
    return r.stdout.splitlines(), loaded


def _values(shell: str, lines: list[str]) -> list[str]:
    if shell == "bash":
        return [ln.split(",", 1)[1] for ln in lines]
    if shell == "zsh":  # type, value, help: three lines an item
        return lines[1::3]
    return [ln.split(",", 1)[1].split("\t")[0] for ln in lines]  # fish: type,value<TAB>help


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_of_command_names_imports_no_command(shell):
    from scalekit.commands import COMMANDS

    lines, loaded = complete(shell, "scalekit ", 1)
    assert _values(shell, lines)[:len(COMMANDS)] == list(COMMANDS)
    assert loaded == []


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_of_options_choices_specs_and_paths(shell):
    lines, loaded = complete(shell, "scalekit info resnet50 --co", 3)
    assert set(_values(shell, lines)) == {"--counter", "--convention"}
    assert "torch" not in loaded
    lines, loaded = complete(shell, "scalekit info resnet50 --counter ", 4)
    assert _values(shell, lines) == ["analytic", "torch", "thop"] and "torch" not in loaded
    lines, _ = complete(shell, "scalekit check --baseline ", 3)
    assert lines and lines[0].startswith("file")  # the shell completes a path
    lines, loaded = complete(shell, "scalekit sweep efficientnet_b", 2)
    values = _values(shell, lines)
    assert values[0] == "efficientnet_b" and lines[0].startswith("file")  # files, and names:
    assert {"efficientnet_b0"} <= set(values[1:]) and "torch" not in loaded
    assert all(v.startswith("efficientnet_b") for v in values)


def test_completion_scripts_exist_for_every_shell():
    for shell in ("bash", "zsh", "fish"):
        r = subprocess.run([sys.executable, "-c", "from scalekit.cli import main; main()"],
                           capture_output=True, text=True, cwd=ROOT, timeout=60,
                           env=dict(os.environ, _SCALEKIT_COMPLETE=f"{shell}_source"))
        assert r.returncode == 0 and f"_SCALEKIT_COMPLETE={shell}_complete" in r.stdout.replace(
            "'", "").replace('"', ""), r.stdout[:300]

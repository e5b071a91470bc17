"""Bad, hostile and huge input through the real entry point: one clear line, the right exit code
(1 for bad input, 2 for usage errors), the field or flag named, never a traceback, nothing on stdout.

Two corpora:
- tests/bad_specs/*.yaml: one problem per file; line 1 says what is wrong, each ``# expect:`` line
  is a piece of text the error must contain. Each is run as ``scalekit info FILE``.
- CASES below: bad command lines (and files generated at test time: empty, binary, 2 MB, ...).

Every case runs ``scalekit.cli.main`` (the console-script entry point) in its own process. A
fresh interpreter per case costs ~0.35 s, so one driver process imports scalekit once and forks a
child per case; each child has its own argv, stdout/stderr files, exit status and a time limit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import HAS_TORCH, ROOT, needs_torch, run_cli

BAD_SPECS = sorted((Path(__file__).parent / "bad_specs").glob("*.yaml"))
# A command that must never run: a case that reaches it has been parsed as data, or worse.
PWNED = "pwned.txt"

# The driver: read [{"id", "argv", "cwd"}] on stdin, fork one child per case, print the results.
DRIVER = r"""
import json, os, sys, time, traceback
from scalekit.cli import main

def run(case, out_dir, limit=60.0):
    out, err = (os.path.join(out_dir, f"{case['id']}.{s}") for s in ("out", "err"))
    sys.stdout.flush(); sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.chdir(case["cwd"])
            for fd, name in ((1, out), (2, err)):
                f = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(f, fd)
                os.close(f)
            sys.argv = ["scalekit", *case["argv"]]
            main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:
            traceback.print_exc()  # what a user would see: the test looks for "Traceback"
        finally:
            sys.stdout.flush(); sys.stderr.flush()
            os._exit(code)
    deadline = time.monotonic() + limit
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9); os.waitpid(pid, 0)
            return {"code": "timeout", "stdout": "", "stderr": ""}
        time.sleep(0.005)
    code = os.waitstatus_to_exitcode(status)
    with open(out, encoding="utf-8", errors="replace") as f1, open(err, encoding="utf-8", errors="replace") as f2:
        return {"code": code, "stdout": f1.read(), "stderr": f2.read()}

cases, out_dir = json.load(sys.stdin), sys.argv[1]
print(json.dumps({c["id"]: run(c, out_dir) for c in cases}))
"""


def run_batch(cases: list[dict], out_dir: Path) -> dict[str, dict]:
    """Run every case through the real entry point, one forked process each."""
    env = dict(os.environ)
    env.pop("SCALEKIT_DEBUG", None)
    p = subprocess.run([sys.executable, "-c", DRIVER, str(out_dir)], input=json.dumps(cases),
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


# ---------------------------------------------------------------------------------------------
# bad command lines: (id, argv, exit code, texts stderr must contain). {tmp} is a scratch folder
# prepared by the `files` fixture; {huge} a spec that needs far more memory than any machine has.

# Scaling flags that contradict each other, an unknown preset or strategy, or a value outside
# the flags' fixed range are usage errors (2, issue 16: the same mistake, the same code
# everywhere); valid flags that give a network this spec cannot have are errors (1).
CASES = [
    ("unknown-command", ["bogus"], 2, ["No such command 'bogus'"]),
    ("unknown-option", ["info", "resnet50", "--bogus"], 2, ["--bogus"]),
    ("extra-argument", ["info", "resnet50", "extra"], 2, ["unexpected extra argument (extra)"]),
    ("missing-spec-argument", ["info"], 2, ["Missing argument 'SPEC'"]),
    ("phi-nan", ["scale", "resnet50", "--phi", "nan"], 2, ["--phi", "finite"]),
    ("phi-inf", ["scale", "resnet50", "--phi", "inf"], 2, ["--phi", "finite"]),
    ("phi-minus-inf", ["scale", "resnet50", "--phi", "-inf"], 2, ["--phi", "finite"]),
    ("phi-text", ["scale", "resnet50", "--phi", "two"], 2, ["--phi", "'two' is not a valid float"]),
    ("width-zero", ["scale", "resnet50", "--width", "0"], 2, ["--width", "must be > 0"]),
    ("width-negative", ["scale", "resnet50", "--width", "-1"], 2, ["--width", "must be > 0"]),
    ("depth-text", ["scale", "resnet50", "--depth", "abc"], 2, ["--depth", "not a valid float"]),
    ("gamma-negative", ["scale", "resnet50", "--phi", "1", "--gamma", "-1"], 2, ["--gamma"]),
    ("size-zero", ["scale", "resnet50", "--size", "0"], 2, ["--size"]),
    ("size-fraction", ["scale", "resnet50", "--size", "1.5"], 2, ["--size", "not a valid integer"]),
    ("phi-with-preset", ["scale", "efficientnet_b0", "--phi", "1", "--preset", "b1"], 2,
     ["--preset", "--phi"]),
    ("phi-with-width", ["scale", "resnet50", "--phi", "1", "--width", "2"], 2, ["--phi", "--width"]),
    ("unknown-preset", ["scale", "efficientnet_b0", "--preset", "b9"], 2,
     ["no preset 'b9'", "b0, b1, b2"]),
    ("preset-on-resnet", ["scale", "resnet50", "--preset", "b1"], 2,
     ["ResNet-50 has no preset 'b1'", "presets: none"]),
    ("resolution-and-size", ["scale", "resnet50", "--resolution", "2", "--size", "300"], 2,
     ["--resolution", "--size"]),
    ("alpha-without-phi", ["scale", "resnet50", "--alpha", "1.3"], 2, ["--alpha", "--phi"]),
    ("phi-overflows", ["scale", "resnet50", "--phi", "1000"], 2, ["phi=1000", "depth multiplier"]),
    ("phi-underflows", ["scale", "resnet50", "--phi", "-1e308"], 2, ["phi=-1e+308", "multiplier of 0"]),
    ("phi-too-many-blocks", ["scale", "resnet50", "--phi", "60"], 1, ["blocks", "10,000"]),
    ("phi-below-total-stride", ["scale", "resnet50", "--phi", "-20"], 1,
     ["resolution", "total stride 32", "got 14"]),
    ("size-below-total-stride", ["scale", "resnet50", "--size", "16"], 1,
     ["resolution", "total stride 32", "got 16"]),
    ("size-too-large", ["scale", "resnet50", "--size", "1000000"], 2, ["size", "100,000"]),
    ("width-1e300", ["scale", "resnet50", "--width", "1e300"], 2, ["width", "1e+06"]),
    ("depth-1e308", ["scale", "resnet50", "--depth", "1e308"], 2, ["depth", "1e+06"]),
    ("width-too-many-channels", ["scale", "resnet50", "--width", "1e6"], 1,
     ["stages[2].out", "1,000,000,000"]),
    ("format-xml", ["info", "resnet50", "--format", "xml"], 2, ["--format", "'xml'"]),
    ("mode-typo", ["compare", "--mode", "wdth"], 2, ["--mode", "wdth", "valid: baseline"]),
    ("mode-empty", ["compare", "--mode", ""], 2, ["--mode"]),
    ("table-5", ["compare", "--table", "5"], 2, ["--table", "'5'"]),
    ("counter-foo", ["info", "resnet50", "--counter", "foo"], 2, ["--counter", "'foo'"]),
    ("convention-typo", ["info", "resnet50", "--convention", "fvcor"], 2,
     ["--convention", "'fvcor'", "'paper'", "'ptflops-aten'", "'full'"]),
    ("convention-thop-counter", ["scale", "resnet50", "--width", "2", "--counter", "thop",
                                 "--convention", "full"], 2, ["--counter thop", "thop convention"]),
    ("reconcile-tool-typo", ["reconcile", "resnet50", "--tools", "thop,fvcor"], 2,
     ["--tools", "unknown tool fvcor", "known: torch"]),
    ("reconcile-missing-spec", ["reconcile", "{tmp}/nope.yaml"], 1,
     ["{tmp}/nope.yaml", "no such file"]),
    ("reconcile-output-in-missing-dir", ["reconcile", "resnet50", "--output",
                                         "{tmp}/nodir/r.json"], 1,
     ["{tmp}/nodir/r.json", "does not exist"]),
    ("out-in-missing-dir", ["scale", "resnet50", "--width", "2", "--out", "{tmp}/nodir/b.yaml"], 1,
     ["{tmp}/nodir/b.yaml", "does not exist"]),
    ("out-exists", ["scale", "resnet50", "--width", "2", "--out", "{tmp}/keep.yaml"], 1,
     ["{tmp}/keep.yaml", "--overwrite"]),
    ("output-in-missing-dir", ["info", "resnet50", "--output", "{tmp}/nodir/r.json"], 1,
     ["{tmp}/nodir/r.json", "does not exist"]),
    ("output-is-directory", ["info", "resnet50", "--output", "{tmp}/adir"], 2,
     ["--output", "is a directory"]),
    ("output-unwritable", ["info", "resnet50", "--no-latency", "--format", "json", "--output",
                           "/proc/scalekit.json"],
     1, ["/proc/scalekit.json", "cannot write"]),
    ("spec-missing-file", ["info", "{tmp}/nope.yaml"], 1, ["{tmp}/nope.yaml", "no such file"]),
    ("spec-unknown-bundled-name", ["info", "resnet5O"], 1, ["resnet5O", "no such file"]),
    ("spec-empty-name", ["info", ""], 1, ["file name is empty"]),
    ("spec-directory", ["info", "{tmp}/adir"], 1, ["{tmp}/adir", "is a directory"]),
    ("spec-empty-file", ["info", "{tmp}/empty.yaml"], 1, ["{tmp}/empty.yaml", "file is empty"]),
    ("spec-binary", ["info", "{tmp}/binary.yaml"], 1, ["{tmp}/binary.yaml", "not a UTF-8"]),
    ("spec-latin-1", ["info", "{tmp}/latin1.yaml"], 1, ["{tmp}/latin1.yaml", "not a UTF-8"]),
    ("spec-control-char", ["info", "{tmp}/control.yaml"], 1,
     ["{tmp}/control.yaml", "line 2, column 11", "U+0007"]),
    ("spec-2MB", ["info", "{tmp}/big.yaml"], 1, ["{tmp}/big.yaml", "larger than 1,000,000 bytes"]),
    ("spec-dev-zero", ["info", "/dev/zero"], 1, ["/dev/zero", "a character device, not a regular file"]),
    ("spec-100k-brackets", ["info", "{tmp}/deep.yaml"], 1, ["{tmp}/deep.yaml", "nested deeper"]),
    ("spec-bad-in-compare", ["compare", "tests/bad_specs/se_negative.yaml"], 1, ["stages[1].se"]),
    ("spec-bad-in-scale", ["scale", "tests/bad_specs/unknown_block.yaml", "--phi", "1"], 1,
     ["stages[0].block"]),
    ("export-weights-missing", ["export", "resnet18", "--weights", "{tmp}/nope.pt", "--to",
                                "{tmp}/x.pt"], 1, ["{tmp}/nope.pt", "no such file"]),
    ("export-weights-not-a-checkpoint", ["export", "resnet18", "--weights", "{tmp}/keep.yaml",
                                         "--to", "{tmp}/x.pt"], 1,
     ["{tmp}/keep.yaml", "not a torch checkpoint"]),
    ("export-layout-the-spec-lacks", ["export", "mobilenet_v1", "--weights", "{tmp}/keep.yaml",
                                      "--layout", "torchvision", "--to", "{tmp}/x.pt"], 1,
     ["MobileNetV1 names no torchvision checkpoint layout", "timm"]),
    ("export-layout-without-weights", ["export", "resnet18", "--layout", "timm", "--to",
                                       "{tmp}/x.pt"], 2, ["--layout", "give --weights"]),
    ("export-layout-unknown", ["export", "resnet18", "--weights", "{tmp}/keep.yaml", "--layout",
                               "keras", "--to", "{tmp}/x.pt"], 2, ["--layout", "'keras'"]),
    ("memory-guard-info", ["info", "{huge}", "--counter", "thop", "--format", "json"], 1,
     ["needs about", "TiB", "available", "--force"]),
    ("memory-guard-scale", ["scale", "resnet50", "--width", "100", "--size", "20000", "--counter",
                            "thop"], 1, ["needs about", "TiB", "--force"]),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("bad_input")
    (tmp / "adir").mkdir()
    (tmp / "keep.yaml").write_text("keep me\n")
    (tmp / "empty.yaml").write_bytes(b"")
    (tmp / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    (tmp / "latin1.yaml").write_bytes("name: caf\u00e9\nresolution: 224\n".encode("latin-1"))
    (tmp / "control.yaml").write_text("name: x\nresolution\x07: 224\n")
    (tmp / "big.yaml").write_text("# padding\n" * 200_000 + "name: x\n")  # 2 MB
    (tmp / "deep.yaml").write_text("a: " + "[" * 100_000 + "]" * 100_000 + "\n")
    (tmp / "huge.yaml").write_text(  # ~1 TB of parameters: no machine builds this
        "name: huge\nresolution: 20000\nstem: {out: 64}\n"
        "stages:\n  - {block: conv, out: 300000, stride: 2}\n  - {block: conv, out: 300000}\n")
    return tmp


def _expand(text: str, tmp: Path) -> str:
    return text.replace("{tmp}", str(tmp)).replace("{huge}", str(tmp / "huge.yaml"))


@pytest.fixture(scope="module")
def results(files, tmp_path_factory) -> dict[str, dict]:
    cases = [{"id": f"spec-{p.stem}", "argv": ["info", str(p)], "cwd": str(files)}
             for p in BAD_SPECS]
    cases += [{"id": cid, "argv": [_expand(a, files) for a in argv], "cwd": str(ROOT)}
              for cid, argv, _, _ in CASES]
    return run_batch(cases, tmp_path_factory.mktemp("streams"))


def assert_clear_error(r: dict, code: int, texts: list[str]) -> None:
    """Exit ``code``; stderr is one ``Error:`` line (a usage error too: no click usage lines)
    naming every text; no traceback; nothing on stdout."""
    err = r["stderr"]
    assert r["code"] == code, f"exit {r['code']}, expected {code}; stderr: {err}"
    assert "Traceback" not in err and "internal error" not in err, err
    assert r["stdout"] == "", r["stdout"]
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    for t in texts:
        assert t in lines[0], f"{t!r} not in {lines[0]!r}"


def test_corpus_is_big_enough():
    assert len(BAD_SPECS) + len(CASES) >= 30
    assert len(BAD_SPECS) >= 30


@pytest.mark.parametrize("path", BAD_SPECS, ids=lambda p: p.stem)
def test_bad_spec_file(path, results, files):
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# BAD: "), "line 1 must say what is wrong"
    expects = [ln[len("# expect: "):] for ln in lines if ln.startswith("# expect: ")]
    assert expects, "each corpus file names at least one text its error must contain"
    assert_clear_error(results[f"spec-{path.stem}"], 1, [str(path)] + expects)
    assert not (files / PWNED).exists(), "a YAML tag ran a command"


@pytest.mark.parametrize("cid,argv,code,texts", CASES, ids=[c[0] for c in CASES])
def test_bad_command_line(cid, argv, code, texts, results, files):
    if cid == "spec-dev-zero" and not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero here")
    if cid == "output-unwritable" and not sys.platform.startswith("linux"):
        pytest.skip("needs /proc")
    if argv[0] == "export" and code == 1 and not HAS_TORCH:  # it says so first, in one line
        pytest.skip("needs the torch extra: pip install 'scalekit-cnn[torch]'")
    assert_clear_error(results[cid], code, [_expand(t, files) for t in texts])


def test_refused_out_leaves_the_file_alone(results, files):
    assert results["out-exists"]["code"] == 1
    assert (files / "keep.yaml").read_text() == "keep me\n"
    assert not list(files.glob(".scalekit-*")), "a temporary file was left behind"


def test_a_python_tag_spec_through_the_console_script(tmp_path):
    """The same check without the fork: the installed ``scalekit`` entry point, a fresh process."""
    spec = tmp_path / "evil.yaml"
    spec.write_text(f"name: !!python/object/apply:os.system ['touch {tmp_path / PWNED}']\n"
                    "resolution: 64\nstem: {out: 8}\nstages:\n  - {block: conv, out: 8}\n")
    r = run_cli("info", str(spec))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and "YAML tag not allowed" in r.stderr, r.stderr
    assert "!!python/object/apply:os.system" in r.stderr
    assert not (tmp_path / PWNED).exists()


# ---------------------------------------------------------------------------------------------
# Ctrl-C


@needs_torch
def test_ctrl_c_stops_cleanly_without_partial_output(tmp_path):
    """SIGINT during a long forward pass (thop on a ResNet-50 at 1600 px, ~0.7 GiB): exit 130,
    one line, no traceback, and no --output file (not even a temporary one)."""
    spec = tmp_path / "r50-1600.yaml"
    r = run_cli("scale", "resnet50", "--size", "1600", "--out", str(spec), "--no-latency")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "report.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")  # seconds on any CPU
    env.pop("SCALEKIT_DEBUG", None)
    p = subprocess.Popen([sys.executable, "-c", "from scalekit.cli import main; main()", "info",
                          str(spec), "--counter", "thop", "--no-latency", "--format", "json",
                          "--output", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         cwd=ROOT)
    time.sleep(2.5)  # past the imports: torch is loading or the forward pass is running
    assert p.poll() is None, "finished before it could be interrupted: " + p.stderr.read()
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 130, stderr
    assert stderr.strip() == "scalekit: interrupted", stderr
    assert stdout == ""
    assert sorted(x.name for x in tmp_path.iterdir()) == [spec.name]

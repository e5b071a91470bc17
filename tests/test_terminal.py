"""Tables on a real terminal (issue 16): through a pseudo-terminal of 80 and 120 columns, every
table is complete and legible (no cell shortened with ``…``, no line wider than the terminal,
every row's name whole and told apart from the others), the numbers it keeps are those of the
piped output and of the JSON document of the same command (the compact column set leaves out
columns, never digits), ``--wide`` shows every column, and piped tables carry no trailing
spaces. Count-only: no torch.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import pty
import re
import select
import struct
import sys
import termios
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

pytestmark = pytest.mark.light  # count-only: CI runs it in the torch-free venv too

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
NUMBER = re.compile(r"^[+-]?\d[\d,]*(\.\d+)?(%|x)?$")


def on_terminal(args: list[str], columns: int, cwd: Path = ROOT) -> tuple[int, str]:
    """Run scalekit on a pseudo-terminal ``columns`` wide (COLUMNS, TERM and the window size
    all say so); its whole output, ANSI codes stripped, and its exit code."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("NO_COLOR", "FORCE_COLOR", "SCALEKIT_DEBUG", "LINES")}
    env.update(COLUMNS=str(columns), TERM="xterm")
    pid, fd = pty.fork()
    if pid == 0:  # the child: the real entry point, on the pty
        try:
            os.chdir(cwd)
            os.execve(sys.executable, [sys.executable, "-c",
                                       "from scalekit.cli import main; main()", *args], env)
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    out = b""
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], 120)
            if not ready:
                os.kill(pid, 9)
                raise AssertionError(f"scalekit {' '.join(args)}: no output for 120 s")
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the child has closed the terminal
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(fd)
        _, status = os.waitpid(pid, 0)
    text = ANSI.sub("", out.decode("utf-8", "replace")).replace("\r\n", "\n")
    return os.waitstatus_to_exitcode(status), text


def piped(args: list[str], cwd: Path = ROOT) -> tuple[int, str]:
    return _piped(tuple(args), str(cwd))


@functools.lru_cache(maxsize=None)
def _piped(args: tuple[str, ...], cwd: str) -> tuple[int, str]:  # the same at 80 and 120
    r = run_cli(*args, cwd=cwd)
    return r.returncode, r.stdout


def table_rows(text: str, names: list[str]) -> dict[str, list[list[str]]]:
    """Each row of a table that starts with one of ``names`` (the longest that matches, as a
    whole word), its cells split on runs of spaces, by that name."""
    out: dict[str, list[list[str]]] = {}
    by_length = sorted(names, key=len, reverse=True)
    for line in text.splitlines():
        if not line.startswith(" "):  # a table's rows start inside its edge; text at column 0
            continue
        s = " ".join(line.split())  # a name of two cells (model, mode) with one space
        for n in by_length:
            if s == n or s.startswith(n + " "):
                out.setdefault(n, []).append(s[len(n):].split())
                break
    return out


def numbers(tokens: list[str]) -> list[str]:
    return [t for t in tokens if NUMBER.match(t)]


def is_subsequence(small: list[str], big: list[str]) -> bool:
    it = iter(big)
    return all(any(x == y for y in it) for x in small)


def assert_complete(text: str, width: int, names: list[str], args: list[str]) -> dict:
    """The checks every table on a terminal passes; the rows by name."""
    assert "…" not in text, f"scalekit {' '.join(args)} at {width} columns:\n{text}"
    long = [ln for ln in text.splitlines() if len(ln) > width]
    assert not long, f"lines wider than {width} columns: {long[:3]}"
    rows = table_rows(text, names)
    missing = [n for n in names if n not in rows]
    assert not missing, f"rows missing at {width} columns: {missing}\n{text}"
    return rows


# what each command's rows are called, and the number each row must show as the JSON has it
def _compare_rows(doc: dict) -> list[tuple[str, list[str]]]:
    return [(f"{r['base']} {r['mode']}", [f"{r['macs'] / 1e9:.3f}"]) for r in doc["records"]]


def _table2_rows(doc: dict) -> list[tuple[str, list[str]]]:
    return [(r["name"], [f"{r['macs'] / 1e9:.3f}", f"{r['params']:,}"]) for r in doc["records"]]


def _info_rows(doc: dict) -> list[tuple[str, list[str]]]:
    (r,) = doc["records"]
    return [(s["name"], [f"{s['params']:,}", f"{s['macs']:,}"]) for s in r["stages"]] + \
        [("total", [f"{r['params']:,}", f"{r['macs']:,}"])]


def _scale_rows(doc: dict) -> list[tuple[str, list[str]]]:
    base, scaled = doc["records"]
    rows = []
    for a, b in zip(base["stages"], scaled["stages"]):
        macs = [f"{a['macs'] / 1e9:.3f}", f"{b['macs'] / 1e9:.3f}"]
        rows.append((a["name"], macs if macs[0] != macs[1] else macs[:1]))
    return rows + [("params", [f"{base['params']:,}", f"{scaled['params']:,}"]),
                   ("MACs", [f"{base['macs']:,}", f"{scaled['macs']:,}"])]


def _fit_rows(doc: dict) -> list[tuple[str, list[str]]]:
    return [(r["mode"], [f"{r['macs'] / 1e9:.4f}"]) for r in doc["records"]]  # baseline, fit,
    # next step up


COMMANDS = {
    "compare": (["compare", "--no-latency"], _compare_rows),
    "table2": (["compare", "--table", "2", "--no-latency"], _table2_rows),
    "info": (["info", "efficientnet_b0", "--no-latency"], _info_rows),
    "scale": (["scale", "specs/resnet50.yaml", "--phi", "2", "--no-latency"], _scale_rows),
    "fit": (["fit", "efficientnet_b0", "--target-macs", "2G"], _fit_rows),
}


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("which", sorted(COMMANDS))
def test_tables_are_complete_on_a_terminal(which: str, width: int) -> None:
    args, rows_of = COMMANDS[which]
    rc, doc_text = piped(args + ["--format", "json"])
    assert rc == 0, doc_text
    expected = rows_of(json.loads(doc_text))
    if which == "compare":  # a row is its model and its mode: two cells, one name
        names = sorted({name for name, _ in expected})
    else:
        names = [name for name, _ in expected]
    assert len(set(names)) == len(names), names
    rc, text = on_terminal(args, width)
    assert rc == 0, text
    rc, pipe_text = piped(args)
    assert rc == 0
    rows = assert_complete(text, width, names, args)
    pipe_rows = table_rows(pipe_text, names)
    for name, want in expected:
        # the last line that starts with the name (a two-line header may start with one)
        cells, pipe_cells = rows[name][-1], pipe_rows[name][-1]
        # the numbers shown are the piped table's, in its order (columns left out, no digit)
        assert is_subsequence(numbers(cells), numbers(pipe_cells)), (name, cells, pipe_cells)
        # and those the JSON document has (MACs and params are essential columns)
        for value in want:
            assert value in cells, (name, value, cells)


def _compare_names_distinct(text: str) -> None:
    names = [ln.split()[0] for ln in text.splitlines() if ln.strip().startswith("EfficientNet-")]
    assert len(names) == len(set(names)) == 8, names  # B0..B7, each whole


@pytest.mark.parametrize("width", [80, 120])
def test_table2_tells_b0_from_b7(width: int) -> None:
    _, text = on_terminal(["compare", "--table", "2", "--no-latency"], width)
    _compare_names_distinct(text)


def _baseline(tmp_path: Path) -> Path:
    base = tmp_path / "base.json"
    r = run_cli("info", "efficientnet_b0", "--no-latency", "--format", "json", "--output",
                str(base))
    assert r.returncode == 0, r.stderr
    return base


def _changed_spec(tmp_path: Path) -> tuple[Path, Path]:
    """A baseline of ResNet-50 and the same spec with one more block in stage3 (README's CI
    example): the same model, changed."""
    spec = tmp_path / "mynet.yaml"
    text = (ROOT / "specs" / "resnet50.yaml").read_text(encoding="utf-8")
    spec.write_text(text, encoding="utf-8")
    base = tmp_path / "cost.json"
    r = run_cli("info", str(spec), "--no-latency", "--format", "json", "--output", str(base))
    assert r.returncode == 0, r.stderr
    changed = text.replace("out: 1024, repeats: 6,", "out: 1024, repeats: 7,")
    assert changed != text
    spec.write_text(changed, encoding="utf-8")
    return spec, base


@pytest.mark.parametrize("width", [80, 120])
def test_check_changes_on_a_terminal(tmp_path: Path, width: int) -> None:
    spec, base = _changed_spec(tmp_path)
    args = ["check", "--baseline", str(base)]
    rc, text = on_terminal(args, width, cwd=tmp_path)
    assert rc == 1, text  # a regression
    rows = assert_complete(text, width, ["ResNet-50"], args)
    rc, pipe_text = piped(args, cwd=tmp_path)
    assert rc == 1
    pipe_rows = table_rows(pipe_text, ["ResNet-50"])
    assert len(rows["ResNet-50"]) == len(pipe_rows["ResNet-50"]) == 3  # params, MACs, acts
    (r,) = json.loads(base.read_text(encoding="utf-8"))["records"]
    current = json.loads(run_cli("info", str(spec), "--no-latency", "--format", "json").stdout)
    (c,) = current["records"]
    for cells, pipe_cells, (metric, key) in zip(rows["ResNet-50"], pipe_rows["ResNet-50"],
                                                [("params", "params"), ("MACs", "macs"),
                                                 ("acts", "acts")]):
        assert cells[:3] == [metric, f"{r[key]:,}", f"{c[key]:,}"], cells  # baseline, current
        assert is_subsequence(numbers(cells), numbers(pipe_cells)), (cells, pipe_cells)


@pytest.mark.parametrize("args", [
    ["compare", "--no-latency"],
    ["compare", "--table", "2", "--no-latency"],
    ["info", "efficientnet_b0", "--no-latency"],
    ["scale", "specs/resnet50.yaml", "--phi", "2", "--no-latency"],
], ids=["compare", "table2", "info", "scale"])
def test_wide_shows_every_column(args: list[str]) -> None:
    _, pipe_text = piped(args)
    lines = pipe_text.splitlines()
    headers = []
    for i, ln in enumerate(lines):
        if ln.strip().startswith("━"):  # the header is the line above the rule
            headers += [h for h in re.split(r"\s{2,}", lines[i - 1].strip()) if h]
    assert len(headers) >= 8, headers
    _, narrow = on_terminal(args, 80)
    assert "--wide for all columns" in " ".join(narrow.split())  # says how to see them all
    rc, text = on_terminal(args + ["--wide"], 80)
    assert rc == 0
    missing = [h for h in headers if h not in text]
    assert not missing, missing
    assert "…" not in text


PIPED = [
    ["list"],
    ["compare", "--no-latency"],
    ["compare", "--table", "2", "--no-latency"],
    ["compare", "--match", "macs", "--no-latency"],
    ["info", "efficientnet_b0", "--no-latency"],
    ["scale", "resnet50", "--phi", "2", "--no-latency"],
    ["fit", "efficientnet_b0", "--target-macs", "2G"],
    ["sweep", "efficientnet_b0"],
    ["search", "proxy_mbconv", "--dry-run"],
]


@pytest.mark.parametrize("args", PIPED, ids=[" ".join(a[:2]) for a in PIPED])
def test_piped_tables_have_no_trailing_spaces(args: list[str], tmp_path: Path) -> None:
    rc, text = piped(args)
    assert rc == 0 and text.count("\n") > 5, text
    padded = [ln for ln in text.splitlines() if ln != ln.rstrip()]
    assert not padded, padded[:3]
    out = tmp_path / "report.txt"
    assert run_cli(*args, "--output", str(out)).returncode == 0
    assert out.read_text(encoding="utf-8") == text


def test_check_piped_has_no_trailing_spaces(tmp_path: Path) -> None:
    base = _baseline(tmp_path)
    rc, text = piped(["check", "--baseline", str(base), "efficientnet_b0", "--preset", "b1"])
    assert rc == 1 and "changes against" in text, text
    padded = [ln for ln in text.splitlines() if ln != ln.rstrip()]
    assert not padded, padded[:3]
    assert "1 model added, 1 model removed" in text  # one model: never "1 models"


def test_a_name_too_long_for_the_numbers_wraps_at_its_spaces(tmp_path: Path) -> None:
    """At 80 columns a check row named ``EfficientNet-B0 (d=1, w=1.1, 224px)`` leaves the numbers
    too little room even with every optional column left out: the name wraps at its spaces
    (whole, in order, in its own column), and no number is shortened."""
    r = run_cli("info", "efficientnet_b0", "--width", "1.1", "--no-latency", "--format", "json",
                cwd=tmp_path)
    doc = json.loads(r.stdout)
    (rec,) = doc["records"]
    name = rec["name"]
    assert len(name) > 30 and " " in name
    rec["params"] -= 1000  # a baseline the current network differs from by 1,000 params
    base = tmp_path / "b.json"
    base.write_text(json.dumps(doc), encoding="utf-8")
    args = ["check", "--baseline", str(base)]
    rc, text = on_terminal(args, 80, cwd=tmp_path)
    assert rc == 1 and "…" not in text, text
    assert not [ln for ln in text.splitlines() if len(ln) > 80]
    lines = text.splitlines()
    first = next(i for i, ln in enumerate(lines) if ln.startswith(" " + name.split()[0]))
    header = next(ln for ln in lines[:first] if " mode " in ln)
    col = header.index(" mode ")  # the name column ends where the mode column starts
    words = " ".join(ln[:col].strip() for ln in lines[first:first + 3]).split()
    assert " ".join(words).startswith(name), (name, lines[first:first + 3])
    cells = lines[first][col:].split()
    assert cells[1:4] == ["params", f"{rec['params']:,}", f"{rec['params'] + 1000:,}"], cells

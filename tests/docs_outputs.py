"""Every command the docs show with its output, run again and compared: README.md and docs/*.md.

The convention (docs/checking.md says it for writers): a command and what it prints go in a
``console`` block. Each line that starts with ``$ scalekit `` is a command; the lines after it, up
to the next ``$ `` line or the end of the block, are what it prints (stdout and stderr together,
in the order a terminal shows them), run piped (not a terminal), in a scratch directory that
holds a copy of the repository's ``specs/`` (so ``specs/resnet50.yaml`` reads as from the
repository root) and any input file the command names from :data:`FILES`. A line that is just
``...`` stands for lines left out: the lines shown above it must be the output's first lines,
those below it its last.

An HTML comment on the line right above the block may say, separated by ``;``:

- ``skip: REASON`` (alone, the rest of the comment is the reason): not run again (an
  8-minute search, a measured timing); keep these few;
- ``mask NAME,...``: the named fields of :data:`MASKS` (machine-dependent figures: the memory
  available, tool versions) are masked in both texts before they are compared; everything
  else is compared byte for byte;
- ``needs torch,fvcore,...``: the modules the commands need (the test skips without them).

Run ``python -m tests.docs_outputs --update`` to run every command again and write what it now
prints into the docs in place (each file replaced atomically); ``--check`` compares only.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import os
import re
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"  # copied into every scratch directory
UPDATE = "python -m tests.docs_outputs --update"
ELLIPSIS = "..."
PROMPT = "$ "

# machine- or install-dependent fields, each as specific as it can be (never all digits): the
# group named ``m`` is what is masked
MASKS: dict[str, re.Pattern[str]] = {
    # the memory guard's "only 22.7 GiB available": this machine's free memory
    "available-memory": re.compile(r"only (?P<m>\d+(\.\d+)? [KMGT]iB) available"),
    # reconcile's "tools:" paragraph: the versions of torch and of the FLOP counters installed
    # (a version may be wrapped onto the next line)
    "tool-versions": re.compile(r"\b(torch|fvcore|ptflops|thop|torchinfo)\s(?P<m>\d(?:[\w.+-]*\w)?)"),
}

DIRECTIVE = re.compile(r"^<!--\s*docs-test:\s*(.*?)\s*-->$")


def docs() -> list[Path]:
    """The documents whose shown outputs are kept true."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


# ---------------------------------------------------------------------------------------------
# reading the docs


@dataclass
class Command:
    line: str  # as shown, without the prompt
    shown: list[str]  # the output lines shown (may hold one ELLIPSIS line)

    @property
    def argv(self) -> list[str]:
        words = shlex.split(self.line)
        if not words or words[0] != "scalekit":
            raise ValueError(f"not a scalekit command: {self.line!r}")
        return words[1:]


@dataclass
class Block:
    path: Path
    start: int  # index of the line after the opening fence
    end: int  # index of the closing fence
    commands: list[Command]
    skip: str | None = None
    masks: list[str] = field(default_factory=list)
    needs: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.start}"

    @property
    def id(self) -> str:
        return f"{self.where} {self.commands[0].line}" if self.commands else self.where


def parse_directive(text: str, where: str) -> dict[str, object]:
    out: dict[str, object] = {"skip": None, "masks": [], "needs": []}
    if text.startswith("skip:"):  # the reason is the rest of the comment
        out["skip"] = text[len("skip:"):].strip()
        if not out["skip"]:
            raise ValueError(f"{where}: 'skip:' needs a reason")
        return out
    for part in filter(None, (p.strip() for p in text.split(";"))):
        if part.startswith("mask "):
            names = [n.strip() for n in part[len("mask "):].split(",")]
            unknown = [n for n in names if n not in MASKS]
            if unknown:
                raise ValueError(f"{where}: unknown mask {unknown} (known: {sorted(MASKS)})")
            out["masks"] = names
        elif part.startswith("needs "):
            out["needs"] = [n.strip() for n in part[len("needs "):].split(",")]
        else:
            raise ValueError(f"{where}: unknown docs-test directive {part!r}")
    return out


def blocks(path: Path) -> list[Block]:
    """The ``console`` blocks of ``path``. A ``text`` block that starts with a prompt is an
    error: it would escape the test."""
    lines = path.read_text(encoding="utf-8").split("\n")
    found: list[Block] = []
    i = 0
    while i < len(lines):
        fence = lines[i]
        if not fence.startswith("```"):
            i += 1
            continue
        lang = fence[3:].strip()
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
        if end is None:
            raise ValueError(f"{path.relative_to(ROOT)}:{i + 1}: a code block is not closed")
        body = lines[i + 1:end]
        where = f"{path.relative_to(ROOT)}:{i + 1}"
        if lang == "text" and body and body[0].startswith(PROMPT + "scalekit"):
            raise ValueError(f"{where}: a command with its output goes in a ```console block "
                             "(so that tests/test_docs_outputs.py runs it)")
        if lang == "console":
            if not body or not body[0].startswith(PROMPT):
                raise ValueError(f"{where}: a console block starts with '$ scalekit ...'")
            commands: list[Command] = []
            for line in body:
                if line.startswith(PROMPT):
                    commands.append(Command(line[len(PROMPT):], []))
                else:
                    commands[-1].shown.append(line)
            for c in commands:
                c.argv  # noqa: B018 - raises for a command that is not scalekit's
                if c.shown.count(ELLIPSIS) > 1:
                    raise ValueError(f"{where}: one '...' per command at most")
            above = lines[i - 1].strip() if i > 0 else ""
            m = DIRECTIVE.match(above)
            settings = parse_directive(m.group(1), where) if m else {}
            found.append(Block(path, i + 1, end, commands, **settings))  # type: ignore[arg-type]
        i = end + 1
    return found


def all_blocks() -> list[Block]:
    return [b for path in docs() for b in blocks(path)]


# ---------------------------------------------------------------------------------------------
# the input files the docs' commands name


def _spec_text(name: str) -> str:
    return (SPECS / f"{name}.yaml").read_text(encoding="utf-8")


def _replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def _typo_spec(cwd: Path, name: str) -> None:
    """EfficientNet-B0 with its third stage's ``kernel`` misspelt."""
    (cwd / name).write_text(_replace_once(_spec_text("efficientnet_b0"), "kernel: 5, stride: 2, out: 40,",
                                          "kernal: 5, stride: 2, out: 40,"), encoding="utf-8")


def _fifo(cwd: Path, name: str) -> None:
    os.mkfifo(cwd / name)


def _escape_spec(cwd: Path, name: str) -> None:
    """ResNet-50 (no presets) named with a colour, a title change and a bell."""
    text = _replace_once(_spec_text("resnet50"), "name: ResNet-50\n",
                         'name: "\\e[31mred\\e]0;title\\a"\n')
    (cwd / name).write_text(text, encoding="utf-8")


def _resnet18_weights(cwd: Path, name: str) -> None:
    """A ResNet-18 checkpoint in torchvision's layout (torchvision's key names and shapes)."""
    import torch

    from scalekit import build_model

    torch.save(build_model("resnet18", layout="torchvision").state_dict(), cwd / name)


def _changed_baseline(cwd: Path, name: str) -> None:
    """docs/ci.md's story: a cost report of specs/mynet.yaml (ResNet-50) stored as the
    baseline, then stage3 given one more block."""
    spec = cwd / "specs" / "mynet.yaml"
    text = _spec_text("resnet50")
    spec.write_text(text, encoding="utf-8")
    (cwd / name).parent.mkdir(parents=True, exist_ok=True)
    out = run(["info", "specs/mynet.yaml", "--no-latency", "--format", "json", "--output", name],
              cwd)
    assert (cwd / name).is_file(), out
    spec.write_text(_replace_once(text, "out: 1024, repeats: 6,", "out: 1024, repeats: 7,"),
                    encoding="utf-8")


FILES: dict[str, Callable[[Path, str], None]] = {
    "my.yaml": _typo_spec,
    "pipe.yaml": _fifo,
    "esc.yaml": _escape_spec,
    "resnet18.pth": _resnet18_weights,
    "ci/mynet-cost.json": _changed_baseline,
}


# ---------------------------------------------------------------------------------------------
# running


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    """A scratch directory with a copy of specs/, made the current directory."""
    with tempfile.TemporaryDirectory(prefix="scalekit-docs-") as tmp:
        cwd = Path(tmp)
        shutil.copytree(SPECS, cwd / "specs")
        (cwd / "cache").mkdir()
        before = os.getcwd()
        os.chdir(cwd)
        try:
            yield cwd
        finally:
            os.chdir(before)


def environment(cwd: Path) -> dict[str, str | None]:
    return {"COLUMNS": "1000", "LINES": "1000", "NO_COLOR": None, "FORCE_COLOR": None,
            "SCALEKIT_DEBUG": None, "SCALEKIT_CACHE_DIR": str(cwd / "cache"),
            "TERM": "dumb"}


def run(argv: list[str], cwd: Path) -> str:
    """What ``scalekit ARGV`` prints, piped: stdout and stderr in the order written. In-process
    (the real entry point, :func:`scalekit.cli.main`, with click's test streams), so a command
    costs milliseconds; tests/test_docs_outputs.py checks that a subprocess prints the same."""
    from click.testing import CliRunner

    from scalekit.cli import main

    runner = CliRunner(env=environment(cwd))
    with runner.isolation() as (_out, _err, both):
        try:
            main(list(argv))
        except SystemExit:
            pass
        sys.stdout.flush()
        sys.stderr.flush()
        return both.getvalue().decode("utf-8")


def prepare(command: Command, cwd: Path) -> None:
    for word in command.argv:
        if word in FILES and not (cwd / word).exists():
            FILES[word](cwd, word)


def outputs(block: Block) -> list[list[str]]:
    """Each command's output now, as lines (in one scratch directory, in order)."""
    got = []
    with scratch() as cwd:
        for c in block.commands:
            prepare(c, cwd)
            text = run(c.argv, cwd)
            lines = text.split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            got.append(lines)
    return got


# ---------------------------------------------------------------------------------------------
# comparing and updating


def masked(lines: list[str], masks: list[str]) -> list[str]:
    text = "\n".join(lines)
    for name in masks:
        text = MASKS[name].sub(lambda m, name=name: m.group(0)[:m.start("m") - m.start()]
                               + f"<{name}>" + m.group(0)[m.end("m") - m.start():], text)
    return text.split("\n")


def elide(got: list[str], shown: list[str]) -> list[str]:
    """``got`` cut as ``shown`` is: as many first and last lines around the ELLIPSIS line."""
    if ELLIPSIS not in shown:
        return got
    k = shown.index(ELLIPSIS)
    tail = len(shown) - k - 1
    if k + tail >= len(got):
        return got
    return got[:k] + [ELLIPSIS] + (got[len(got) - tail:] if tail else [])


def differences(block: Block, got: list[list[str]]) -> str:
    """A unified diff per command whose output is not what the block shows ('' if all are)."""
    report = []
    for c, lines in zip(block.commands, got):
        want = masked(c.shown, block.masks)
        have = masked(elide(lines, c.shown), block.masks)
        if want != have:
            diff = difflib.unified_diff(want, have, f"shown in {block.where}", "printed now",
                                        lineterm="")
            report.append(f"$ {c.line}\n" + "\n".join(diff))
    return "\n".join(report)


def rewrite(path: Path, text: str) -> None:
    """Replace ``path`` atomically (a temporary file beside it, then a rename)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def update(paths: list[Path], only_check: bool = False) -> int:
    """Run every block again; write what it prints into its file (unless ``only_check``).
    Returns how many blocks differed."""
    changed = 0
    for path in paths:
        lines = path.read_text(encoding="utf-8").split("\n")
        before = changed
        # last block first, so that earlier indices stay valid
        for block in reversed(blocks(path)):
            if block.skip:
                print(f"{block.where}: skipped ({block.skip})", file=sys.stderr)
                continue
            missing = [m for m in block.needs if not _importable(m)]
            if missing:
                print(f"{block.where}: not run: needs {', '.join(missing)}", file=sys.stderr)
                continue
            got = outputs(block)
            diff = differences(block, got)
            if not diff:
                continue
            changed += 1
            print(diff, file=sys.stderr)
            body = []
            for c, out in zip(block.commands, got):
                body += [PROMPT + c.line, *elide(out, c.shown)]
            lines[block.start:block.end] = body
        if changed > before and not only_check:
            rewrite(path, "\n".join(lines))
    return changed


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.docs_outputs", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--update", action="store_true", help="write what each command prints now")
    g.add_argument("--check", action="store_true", help="only compare (exit 1 on a difference)")
    p.add_argument("files", nargs="*", type=Path, help="the documents (default: all)")
    args = p.parse_args(argv)
    paths = [f.resolve() for f in args.files] or docs()
    changed = update(paths, only_check=args.check)
    verb = "differ" if args.check else "rewritten"
    print(f"{changed} block(s) {verb}", file=sys.stderr)
    return 1 if (changed and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())

"""Every command the docs show with its output prints that output today.

README.md and docs/*.md show commands in ``console`` blocks (``$ scalekit ...`` and what it
prints); tests/docs_outputs.py finds them, runs each again piped in a scratch directory and
compares byte for byte (machine-dependent fields masked by name, a few blocks skipped with a
reason). When an output changes on purpose, ``python -m tests.docs_outputs --update`` writes the
new one into the docs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from . import docs_outputs as d

pytestmark = pytest.mark.light

BLOCKS = d.all_blocks()


def _param(block: d.Block):
    marks = []
    if block.skip:
        marks.append(pytest.mark.skip(reason=f"not re-run: {block.skip}"))
    if "torch" in block.needs:
        marks.append(pytest.mark.torch)
    return pytest.param(block, id=block.id, marks=marks)


@pytest.mark.parametrize("block", [_param(b) for b in BLOCKS])
def test_the_shown_output_is_what_the_command_prints(block):
    for module in block.needs:
        pytest.importorskip(module)
    diff = d.differences(block, d.outputs(block))
    assert not diff, (f"{block.where}: the docs show another output than the command prints "
                      f"now; if the change is intended, run `{d.UPDATE}`\n{diff}")


def test_the_docs_show_commands_and_skip_few():
    runs = [b for b in BLOCKS if not b.skip]
    pages = {b.path.name for b in runs}
    assert len(runs) >= 12 and {"README.md", "commands.md", "bad-input.md", "ci.md"} <= pages
    assert len([b for b in BLOCKS if b.skip]) <= 5, [b.id for b in BLOCKS if b.skip]
    # the front page shows the main job, run as CI runs it
    assert any(c.line == "scalekit compare --no-latency" for b in runs
               if b.path.name == "README.md" for c in b.commands)


def test_an_error_output_is_a_failing_command():
    """An ``Error:`` line shown is printed by a command that fails (exit 1 or 2)."""
    from click.testing import CliRunner

    from scalekit.cli import main

    block = next(b for b in BLOCKS if b.path.name == "bad-input.md" and not b.needs)
    with d.scratch() as cwd:
        for c in block.commands:
            assert c.shown[-1].startswith("Error: "), c.line
            d.prepare(c, cwd)
            with CliRunner(env=d.environment(cwd)).isolation():
                with pytest.raises(SystemExit) as e:
                    main(c.argv)
            assert e.value.code in (1, 2), c.line


def test_in_process_runs_print_what_the_real_command_prints(tmp_path):
    """The comparison runs commands in-process (fast); the installed entry point in a fresh
    interpreter, piped, prints the same bytes: on stdout for a table, on stderr for an error."""
    with d.scratch() as cwd:
        for c in (d.Command("scalekit scale specs/resnet50.yaml --phi 2 --no-latency", []),
                  d.Command("scalekit info my.yaml", [])):
            d.prepare(c, cwd)
            inproc = d.run(c.argv, cwd)
            env = {k: v for k, v in {**os.environ, **d.environment(cwd)}.items()
                   if v is not None}
            real = subprocess.run([sys.executable, "-c", "from scalekit.cli import main; main()",
                                   *c.argv], capture_output=True, text=True, cwd=cwd, env=env,
                                  timeout=120)
            assert inproc == real.stdout + real.stderr
            assert real.stdout if c.argv[0] == "scale" else real.stderr


def test_the_update_script_rewrites_a_stale_output(tmp_path, monkeypatch):
    """`python -m tests.docs_outputs --update` puts the real output in place of a stale one,
    keeps the lines around the block and a '...' cut, and leaves a true block as it is."""
    page = tmp_path / "page.md"
    page.write_text("# a page\n\n```console\n$ scalekit info resnet50 --no-latency\nResNet-50 at 1px"
                    "\n...\nstale\n```\n\ntext\n\n```console\n$ scalekit scale resnet50 --size 16\n"
                    "Error: old\n```\n", encoding="utf-8")
    monkeypatch.setattr(d, "ROOT", tmp_path)
    assert d.main(["--check", str(page)]) == 1
    assert d.main(["--update", str(page)]) == 0
    text = page.read_text(encoding="utf-8")
    lines = text.split("\n")
    assert lines[:5] == ["# a page", "", "```console", "$ scalekit info resnet50 --no-latency",
                         "ResNet-50 at 224x224"]
    assert lines[5] == "..." and lines[6].startswith("memory (fp32, batch 1): params 97.5 MiB")
    assert "\n```\n\ntext\n\n```console\n$ scalekit scale resnet50 --size 16\nError: " in text
    assert "must be at least the network's total stride 32" in text
    assert d.main(["--check", str(page)]) == 0
    before = page.stat().st_mtime_ns
    assert d.main(["--update", str(page)]) == 0
    assert page.stat().st_mtime_ns == before  # nothing to write
    assert [p.name for p in tmp_path.iterdir()] == ["page.md"]  # no temporary file left


@pytest.mark.parametrize("text,words", [
    ("```text\n$ scalekit list\nx\n```\n", "console"),
    ("```console\nscalekit list\n```\n", "starts with"),
    ("```console\n$ ls\n```\n", "not a scalekit command"),
    ("<!-- docs-test: skip: -->\n```console\n$ scalekit list\n```\n", "reason"),
    ("<!-- docs-test: mask everything -->\n```console\n$ scalekit list\n```\n", "unknown mask"),
    ("<!-- docs-test: maybe -->\n```console\n$ scalekit list\n```\n", "directive"),
])
def test_a_block_the_test_could_not_check_is_refused(tmp_path, monkeypatch, text, words):
    page = tmp_path / "page.md"
    page.write_text(text, encoding="utf-8")
    monkeypatch.setattr(d, "ROOT", tmp_path)
    with pytest.raises(ValueError, match=words):
        d.blocks(page)


def test_masks_are_specific():
    """A mask hides its field and nothing else: the figures around it are still compared."""
    line = ("Error: X needs about 9.0 TiB (params 874.2 GiB + activations 8.2 TiB at batch 1); "
            "only 22.7 GiB available (scalekit keeps 25% headroom)")
    assert d.masked([line], ["available-memory"]) == [line.replace("22.7 GiB", "<available-memory>")]
    tools = ["tools: paper: torch 2.13.0+cpu FlopCounterMode; thop: thop", "0.1.1-2209072238 x;",
             "torchinfo 1.8.0 summary(...) (meta device)"]
    assert d.masked(tools, ["tool-versions"]) == [
        "tools: paper: torch <tool-versions> FlopCounterMode; thop: thop", "<tool-versions> x;",
        "torchinfo <tool-versions> summary(...) (meta device)"]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_link_between_the_docs_resolves():
    """Relative links (a moved section leaves none dangling), and their #anchors."""
    bad = []
    for path in d.docs():
        text = path.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            if not dest.exists():
                bad.append(f"{path.relative_to(d.ROOT)}: {target}")
            elif anchor and dest.suffix == ".md":
                heads = re.findall(r"^#+ (.*)$", dest.read_text(encoding="utf-8"), flags=re.M)
                if anchor not in {_slug(h) for h in heads}:
                    bad.append(f"{path.relative_to(d.ROOT)}: {target} (no such heading)")
    assert not bad, bad

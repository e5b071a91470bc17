"""The README's "Use it from Python" example runs as written and prints what the README says.

The block is read from README.md once the section is there, and from docs/readme/python-api.md
(where the section is drafted) until then. The numbers it prints are checked against
torchvision's published EfficientNet-B3 figures, not against scalekit.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.torch  # the example builds a model

HEADING = "## Use it from Python"


def section() -> tuple[Path, str]:
    """(file, text of the section up to the next level-2 heading)."""
    for path in (ROOT / "README.md", ROOT / "docs" / "readme" / "python-api.md"):
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        if HEADING in lines:
            start = lines.index(HEADING) + 1
            end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")),
                       len(lines))
            return path, "\n".join(lines[start:end])
    raise AssertionError(f"no {HEADING!r} section in README.md or docs/readme/python-api.md")


def fenced(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```$", text, flags=re.S | re.M)


def test_python_example_runs_and_prints_what_the_readme_shows(tmp_path, published):
    path, text = section()
    code, shown = fenced(text, "python"), fenced(text, "text")
    assert code and shown, f"{path}: the section needs a python block and its output"
    # one intra-op thread: on a small shared machine, competing OpenMP threads slow torch down
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code[0]], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    ref = published["torchvision"]["efficientnet_b3"]
    assert lines[0] == (f"EfficientNet-B3: {ref['params']:,} params, {ref['gmacs']:.3f} GMACs "
                        f"at {ref['resolution']}px")
    assert lines[1] == "params as counted: True"
    assert re.fullmatch(r"EfficientNet-B0 \(d=0\.694444, w=0\.826446, 169px\): \d+\.\d ms median "
                        r"over \d+ runs", lines[2]), lines[2]
    assert len(lines) == 3
    # what the README shows is what runs print, up to the machine-dependent latency figures
    latency = re.compile(r"\d+\.\d ms median over \d+ runs")
    assert ([latency.sub("", s) for s in shown[0].splitlines()]
            == [latency.sub("", s) for s in lines])

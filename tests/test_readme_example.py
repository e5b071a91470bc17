"""docs/python-api.md's example runs as written and prints what the page says.

The numbers it prints are checked against torchvision's published EfficientNet-B3 figures, not
against scalekit. (The page's shell commands are checked by tests/test_docs_outputs.py.)
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

PAGE = ROOT / "docs" / "python-api.md"


def section() -> tuple[Path, str]:
    """(file, its text)."""
    return PAGE, PAGE.read_text(encoding="utf-8")


def fenced(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```$", text, flags=re.S | re.M)


def test_python_example_runs_and_prints_what_the_page_shows(tmp_path, published):
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
    # what the page shows is what runs print, up to the machine-dependent latency figures
    latency = re.compile(r"\d+\.\d ms median over \d+ runs")
    assert ([latency.sub("", s) for s in shown[0].splitlines()]
            == [latency.sub("", s) for s in lines])

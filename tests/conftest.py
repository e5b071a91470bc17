"""Shared fixtures. Golden numbers come from tests/data/published.yaml, a verbatim copy of the
team's reference file (torchvision, pycls, the paper): never from scalekit itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
SPEC_NAMES = ("efficientnet_b0", "resnet50", "resnet152", "mobilenet_v2", "mobilenet_v1")


def spec_path(name: str) -> str:
    return str(SPECS / f"{name}.yaml")


@pytest.fixture(scope="session")
def published() -> dict:
    with open(Path(__file__).parent / "data" / "published.yaml", encoding="utf-8") as f:
        return yaml.safe_load(f)


def run_cli(*args: str, env: dict | None = None, input: str | None = None,
            cwd: str | None = None) -> subprocess.CompletedProcess:
    """Run the real entry point in a subprocess (what a user's shell does)."""
    e = dict(os.environ)
    e.pop("SCALEKIT_DEBUG", None)
    e.update(env or {})
    return subprocess.run([sys.executable, "-c", "from scalekit.cli import main; main()", *args],
                          capture_output=True, text=True, env=e, input=input, cwd=cwd or ROOT,
                          timeout=300)

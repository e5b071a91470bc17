"""Shared fixtures. Golden numbers come from tests/data/published.yaml, a verbatim copy of the
team's reference file (torchvision, pycls, the paper): never from scalekit itself.

Two markers (pyproject.toml): ``torch`` on a test that needs the torch extra (skipped where torch
is not installed; a module that needs it throughout skips itself with importorskip, or is not
collected there when it imports torch at module level), and
``light`` on a count-only test module, which CI also runs in a torch-free venv with the light
install (``pytest -m "light and not torch"``).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
SPEC_NAMES = ("efficientnet_b0", "resnet50", "resnet152", "mobilenet_v2", "mobilenet_v1")
# the families exact to torchvision (published.yaml torchvision_families)
FAMILY_NAMES = ("efficientnet_v2_s", "efficientnet_v2_m", "efficientnet_v2_l", "resnet18",
                "resnet34", "resnet101", "resnext50_32x4d", "resnext101_32x8d", "wide_resnet50_2")


HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.torch


_TORCH_AT_IMPORT = re.compile(r"^(import torch|from torch[ .])", re.M)


def pytest_ignore_collect(collection_path, config):
    """Without torch, a test module that imports it at module level is not collected (it could
    not be): the light venv runs what it can, whoever wrote the module."""
    if HAS_TORCH or collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    return True if _TORCH_AT_IMPORT.search(collection_path.read_text(encoding="utf-8")) else None


def pytest_collection_modifyitems(config, items):
    if HAS_TORCH:
        return
    skip = pytest.mark.skip(reason="needs the torch extra: pip install 'scalekit-cnn[torch]'")
    for item in items:
        if item.get_closest_marker("torch"):
            item.add_marker(skip)


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


def assert_no_torch(*commands: list[str], expect: str = "") -> None:
    """Run each command line through the CLI in one fresh interpreter; every one must succeed
    (printing ``expect``, if given), and torch must never have been imported."""
    code = ("import sys\nfrom click.testing import CliRunner\nfrom scalekit.cli import cli\n"
            f"for args in {list(commands)!r}:\n"
            "    r = CliRunner().invoke(cli, args)\n"
            "    assert r.exit_code == 0, (args, r.output)\n"
            f"    assert {expect!r} in r.output, (args, r.output)\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\nprint('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.fixture(scope="session", autouse=True)
def latency_cache(tmp_path_factory):
    """Every test (and every scalekit it starts) keeps its latency table in one directory of
    the session's, never in the user's cache: the first test that predicts a latency builds it
    (calibration included), the others read it."""
    path = tmp_path_factory.mktemp("cache")
    before = os.environ.get("SCALEKIT_CACHE_DIR")
    os.environ["SCALEKIT_CACHE_DIR"] = str(path)
    yield path
    if before is None:
        os.environ.pop("SCALEKIT_CACHE_DIR", None)
    else:
        os.environ["SCALEKIT_CACHE_DIR"] = before


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread: the machine is small and shared, and two OpenMP threads beside
    another process can make forwards ten times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

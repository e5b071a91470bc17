"""The structure holds: layers read from the code's own imports (ast), and each network expanded
once and counted once per counter, wherever it flows.

Layers, bottom up: rules and data (errors, text, fields, ops, blocks/, layouts, spec, scaling,
strategies, bundled, host, files) -> plan -> counting -> records, memory -> studies/ -> report/ ->
queries -> commands/, cli. torch is imported at module level only by the two modules that build torch
modules; latency code only by the latency package itself, and lazily (inside a function that
times) by the few places that time.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from scalekit import counting, plan as planning
from scalekit.queries import Run, make_query, run_query

from .conftest import ROOT, needs_torch


pytestmark = pytest.mark.light  # count-only: CI runs it in the torch-free venv too

PKG = ROOT / "scalekit"
MODULES = {p: ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
           for p in sorted(PKG.rglob("*.py"))}
CLI = ("scalekit.cli", "scalekit.commands")
# the modules a count-only command runs through: none may import latency code at all
COUNT_PATH = ("scalekit.errors", "scalekit.text", "scalekit.fields", "scalekit.ops",
              "scalekit.blocks",
              "scalekit.spec", "scalekit.scaling", "scalekit.strategies", "scalekit.bundled",
              "scalekit.host", "scalekit.files", "scalekit.layouts", "scalekit.plan",
              "scalekit.counting", "scalekit.conventions", "scalekit.layers", "scalekit.records",
              "scalekit.memory",
              "scalekit.studies", "scalekit.report")
TORCH_AT_IMPORT = ("scalekit.modules", "scalekit.build")


def _in(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def imports(path: Path, module: str) -> list[tuple[str, list[str], bool]]:
    """(imported module, names taken from it, at module level?) for every import in ``path``,
    relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    top_level = {id(n) for n in tree.body}
    for node in tree.body:  # imports under `if TYPE_CHECKING:` run at no time
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for n in ast.walk(node):
                top_level.discard(id(n))
                setattr(n, "_typing_only", True)
    out = []
    for node in ast.walk(tree):
        if getattr(node, "_typing_only", False):
            continue
        if isinstance(node, ast.Import):
            out += [(a.name, [], id(node) in top_level) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            names = [a.name for a in node.names]
            out.append((base, names, id(node) in top_level))
            out += [(f"{base}.{n}", [], id(node) in top_level) for n in names]
    return out


ALL = {MODULES[p]: imports(p, MODULES[p]) for p in MODULES}


def test_the_module_list_is_read():
    assert "scalekit.blocks.mbconv" in ALL and "scalekit.commands.check" in ALL
    assert any(m == "scalekit.spec" for m, _, _ in ALL["scalekit.plan"])


@pytest.mark.parametrize("module", [m for m in ALL if not _in(m, CLI)])
def test_library_modules_never_import_click_or_the_command_layer(module):
    bad = [m for m, _, _ in ALL[module] if _in(m, ("click",) + CLI)]
    assert bad == [], f"{module} imports {bad}"


@pytest.mark.parametrize("module", [m for m in ALL if _in(m, COUNT_PATH)])
def test_the_count_path_never_imports_latency_code(module):
    bad = [m for m, _, _ in ALL[module] if _in(m, ("scalekit.latency",))]
    assert bad == [], f"{module} imports {bad}"


@pytest.mark.parametrize("module", [m for m in ALL if not _in(m, ("scalekit.latency",))])
def test_latency_code_is_imported_only_where_something_is_timed(module):
    """Outside the latency package, only lazily (inside a function)."""
    bad = [m for m, _, top in ALL[module] if top and _in(m, ("scalekit.latency",))]
    assert bad == [], f"{module} imports {bad} at import time"


@pytest.mark.parametrize("module", [m for m in ALL if m not in TORCH_AT_IMPORT])
def test_torch_is_imported_lazily(module):
    bad = [m for m, _, top in ALL[module] if top and _in(m, ("torch", "thop", "onnx",
                                                               "onnxruntime", "fvcore",
                                                               "ptflops", "torchinfo"))]
    assert bad == [], f"{module} imports {bad} at import time"


@pytest.mark.parametrize("module", [m for m in ALL if _in(m, ("scalekit.studies",))])
def test_studies_compute_and_never_format(module):
    bad = [m for m, _, _ in ALL[module]
           if _in(m, ("scalekit.report", "scalekit.queries", "rich"))]
    assert bad == [], f"{module} imports {bad}"


@pytest.mark.parametrize("module", list(ALL))
def test_no_module_reaches_into_another_modules_private_names(module):
    bad = [(m, n) for m, names, _ in ALL[module] for n in names
           if n.startswith("_") and not n.startswith("__") and m.startswith("scalekit")]
    assert bad == [], f"{module} imports private names {bad}"


def test_atomic_writing_lives_in_files_py_alone():
    """Only scalekit/files.py makes temporary files and moves them into place."""
    for path, module in MODULES.items():
        if module == "scalekit.files":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        calls = {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
        assert not calls & {"os.replace", "os.rename", "tempfile.mkstemp",
                            "tempfile.NamedTemporaryFile"}, module


def test_nothing_tests_a_block_kind_by_name_outside_its_module():
    """The kind names appear as string literals only in their own module under blocks/ (and
    in docs/help text, which this test does not read: only comparisons and dict keys)."""
    from scalekit.blocks import KINDS

    for path, module in MODULES.items():
        if _in(module, ("scalekit.blocks",)):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                lits = [c.value for c in ast.walk(node) if isinstance(c, ast.Constant)]
                assert not set(lits) & set(KINDS), f"{module}: {ast.unparse(node)}"


def test_count_only_commands_load_no_latency_code():
    code = ("import sys\nfrom click.testing import CliRunner\nfrom scalekit.cli import cli\n"
            "for args in (['compare', '--no-latency'], ['fit', 'resnet50', '--target-macs', '5G'],"
            " ['sweep', 'mobilenet_v2'], ['info', 'resnet50', '--no-latency']):\n"
            "    r = CliRunner().invoke(cli, args)\n    assert r.exit_code == 0, (args, r.output)\n"
            "bad = [m for m in sys.modules if m.startswith(('scalekit.latency', 'torch'))]\n"
            "assert not bad, bad\nprint('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


# ---------------------------------------------------------------------------------------------
# one plan per network


class Calls:
    """Counts calls of plan.expand and counting.count_plan (whatever name a module calls them
    by) and the distinct networks expand returned."""

    def __init__(self):
        self.expand = self.count = 0
        self.networks: set = set()

    def __call__(self, frame, event, arg):
        if event == "call" and frame.f_code is counting.count_plan.__code__:
            self.count += 1
        elif frame.f_code is planning.expand.__code__:
            if event == "call":
                self.expand += 1
            elif event == "return" and arg is not None:
                self.networks.add((arg.resolution, tuple(arg.blocks())))


def watched(fn):
    calls = Calls()
    sys.setprofile(calls)
    try:
        result = fn()
    finally:
        sys.setprofile(None)
    return calls, result


def test_compare_match_expands_each_network_once():
    calls, outcome = watched(lambda: run_query(make_query("compare", {"match": "macs",
                                                                      "latency": False})))
    assert len(outcome.records) == 19
    assert calls.expand == len(calls.networks) == calls.count  # once each, and counted once
    assert calls.expand < 153  # what 0.1.0 needed for the same table


@pytest.mark.parametrize("command,params", [
    ("fit", {"spec": "efficientnet_b0", "target_macs": 2e9}),
    ("sweep", {"spec": "efficientnet_b0", "mode": ["width", "depth", "resolution", "compound"],
               "latency": False}),
    ("compare", {"latency": False}),
    ("scale", {"spec": "resnet50", "phi": 2, "latency": False}),
])
def test_every_study_expands_each_network_once(command, params):
    calls, _ = watched(lambda: run_query(make_query(command, params)))
    assert calls.expand == len(calls.networks) == calls.count


@needs_torch
def test_a_timed_record_is_expanded_once_and_counted_once(tmp_path):
    """Latency, the memory guard and the report read the plan and counts the record carries."""
    from scalekit.latency.networks import measure_records

    spec = tmp_path / "tiny.yaml"
    spec.write_text("name: Tiny\nresolution: 32\nnum_classes: 10\nstem: {out: 8, stride: 2}\n"
                    "stages:\n  - {block: dwsep, out: 16, stride: 2}\n")
    run = Run(measure=lambda recs, opts: (measure_records(recs, opts), {}))
    calls, outcome = watched(lambda: run_query(
        make_query("info", {"spec": str(spec), "time_budget": 0.05}), run))
    assert outcome.records[0].latency["median_ms"] > 0
    assert (calls.expand, calls.count) == (1, 1)

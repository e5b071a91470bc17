"""Packaging: the distribution's own name, a light (torch-free) base install whose missing extras
are one line each, a start-up that imports only what the command needs, and the YAML fast path
that start-up takes for scalekit's own files.

Runs in both CI venvs. Where torch is installed, its absence is simulated by hiding the module
(``sys.modules[name] = None`` makes ``import name`` fail) in a fresh interpreter; in the light
venv it is really absent.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml

import scalekit
from scalekit import extras, spec as spec_module
from scalekit.commands import COMMANDS
from scalekit.errors import ScalekitError, SpecError

from .conftest import HAS_TORCH, ROOT

pytestmark = pytest.mark.light  # count-only: CI runs it in the torch-free venv too

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]


def requirement_names(reqs: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower() for r in reqs}


# ---------------------------------------------------------------------------------------------
# the distribution's name and what it installs


def test_the_distribution_is_scalekit_cnn_and_the_command_and_package_stay_scalekit():
    assert PROJECT["name"] == extras.DISTRIBUTION == "scalekit-cnn"
    assert PROJECT["scripts"] == {"scalekit": "scalekit.cli:main"}
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "scalekit.__version__"}


def test_the_installed_version_is_the_package_version_and_reports_carry_it():
    try:
        installed = metadata.version(extras.DISTRIBUTION)
    except metadata.PackageNotFoundError:
        pytest.skip("scalekit-cnn is not installed (a bare source checkout)")
    assert installed == scalekit.__version__
    from scalekit.report.document import document

    doc = document([], "scalekit list")
    assert doc["scalekit_version"] == installed


def test_torch_version_is_read_without_importing_torch():
    code = ("import sys\nfrom scalekit.extras import installed_version\n"
            "v = installed_version('torch')\nassert 'torch' not in sys.modules\nprint(v)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    expected = metadata.version("torch") if HAS_TORCH else None
    assert out.stdout.strip() == str(expected)


def test_the_base_install_is_click_rich_pyyaml_and_torch_is_an_extra():
    assert requirement_names(PROJECT["dependencies"]) == {"click", "rich", "pyyaml"}
    extra = PROJECT["optional-dependencies"]
    assert requirement_names(extra["torch"]) == {"torch", "thop", "numpy"}
    assert {"pytest", "hypothesis", "jsonschema"} <= requirement_names(extra["test"])
    assert "torch" not in requirement_names(extra["test"])  # the light venv installs [test]
    # [all]: every extra but test, by the distribution's own name
    (everything,) = extra["all"]
    name, listed = re.fullmatch(r"([\w-]+)\[([\w,]+)\]", everything).groups()
    assert name == extras.DISTRIBUTION
    assert set(listed.split(",")) == set(extra) - {"all", "test"}
    # every module a hint names is installed by the extra the hint names
    for module, name in extras.EXTRA_OF.items():
        assert name in extra, module
        assert module in requirement_names(extra[name]) or (module, name) == ("numpy", "torch")


HINT = re.compile(r"pip install\s+(-e\s+)?['\"]?([\w.\-]*)\[")


def install_hints() -> list[tuple[str, str]]:
    files = [*sorted((ROOT / "scalekit").rglob("*.py")), ROOT / "README.md",
             *sorted((ROOT / "docs").rglob("*.md")), ROOT / ".ci" / "run"]
    return [(f"{p.relative_to(ROOT)}: {m.group(0)}", m.group(2)) for p in files
            for m in HINT.finditer(p.read_text(encoding="utf-8"))]


def test_every_install_hint_names_our_distribution():
    """`pip install 'scalekit[...]'` would install an unrelated company's SDK."""
    hints = install_hints()
    assert len(hints) >= 5
    wrong = [where for where, name in hints if name not in (extras.DISTRIBUTION, ".")]
    assert wrong == []


# ---------------------------------------------------------------------------------------------
# a missing extra is one line


def run_without(hidden: tuple[str, ...], *args: str,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The CLI in a fresh interpreter where ``hidden`` modules cannot be imported."""
    code = ("import sys\n"
            f"for m in {list(hidden)!r}:\n    sys.modules[m] = None\n"
            f"sys.argv = ['scalekit', *{list(args)!r}]\n"
            "from scalekit.cli import main\nmain()\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, env={**os.environ, **(env or {})})


NO_TORCH = ("torch", "thop", "numpy")
TORCH_HINT = "pip install 'scalekit-cnn[torch]'"


PREDICTED = "Error: predicted latency (this machine's table lacks blocks, timed once) needs torch: "
MEASURED = "Error: measured latency (timing on this CPU) needs torch: "


@pytest.mark.parametrize("args,line", [
    (["info", "resnet50"], PREDICTED + TORCH_HINT + ", or count only with --no-latency"),
    (["info", "resnet50", "--latency", "measured"],
     MEASURED + TORCH_HINT + ", or count only with --no-latency"),
    (["info", "resnet50", "--no-latency", "--counter", "thop"],
     "Error: --counter thop needs torch, thop: " + TORCH_HINT),
    (["info", "resnet50", "--no-latency", "--counter", "torch"],
     "Error: --counter torch needs torch: " + TORCH_HINT),
    (["bench", "mobilenet_v2"], MEASURED + TORCH_HINT),
    (["sweep", "resnet50", "--latency"],
     PREDICTED + TORCH_HINT + ", or count only (drop --latency)"),
    (["fit", "resnet50", "--target-latency", "10ms"], PREDICTED + TORCH_HINT),
    (["fit", "resnet50", "--target-latency", "10ms", "--latency", "measured"],
     "Error: --target-latency measured (timing on this CPU) needs torch: " + TORCH_HINT +
     ", or fit a --target-macs, --target-params or --target-acts"),
    (["export", "resnet50", "--to", "{tmp}/r50.pt2"], "Error: export needs torch: " + TORCH_HINT),
    (["export", "resnet50", "--to", "{tmp}/r50.onnx"],
     "Error: ONNX export needs torch: " + TORCH_HINT),
])
def test_a_command_that_needs_torch_says_what_to_install_in_one_line(tmp_path_factory, args,
                                                                      line):
    """(With an empty latency table: a warm one predicts without torch.)"""
    tmp, cache = tmp_path_factory.mktemp("out"), tmp_path_factory.mktemp("cache")
    r = run_without(NO_TORCH, *[a.replace("{tmp}", str(tmp)) for a in args],
                    env={"SCALEKIT_CACHE_DIR": str(cache)})
    assert r.returncode == 1
    assert r.stderr.splitlines() == [line], r.stderr
    assert r.stdout == "" and list(tmp.iterdir()) == []


def test_plots_and_optional_exports_name_their_own_extra(tmp_path):
    r = run_without(("matplotlib",), "sweep", "resnet50", "--plot", str(tmp_path / "s.svg"))
    assert (r.returncode, r.stderr.splitlines()) == (
        1, ["Error: --plot needs matplotlib: pip install 'scalekit-cnn[plot]'"])
    assert r.stdout == ""  # refused before any work
    if HAS_TORCH:  # (ONNX's own: tests/test_export.py)
        r = run_without(("safetensors",), "export", "resnet50", "--to",
                        str(tmp_path / "r.safetensors"))
        assert r.stderr.splitlines() == [
            "Error: safetensors export needs safetensors: pip install 'scalekit-cnn[safetensors]'"]
    assert list(tmp_path.iterdir()) == []


def test_the_library_raises_one_typed_error_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(extras.MissingDependency) as e:
        scalekit.build_model("resnet50")
    assert isinstance(e.value, ScalekitError)
    assert str(e.value) == "build_model needs torch: " + TORCH_HINT
    assert (e.value.modules, e.value.extra) == (["torch"], "torch")


def test_an_optional_import_nothing_asked_for_is_still_one_line():
    """The command line's last resort: a ModuleNotFoundError for an optional package."""
    code = ("import sys\nsys.argv = ['scalekit', 'list']\n"
            "import scalekit.queries as q\n"
            "def broken(p, run):\n    import onnxruntime\n"
            "q._RUNNERS['list'] = broken\nsys.modules['onnxruntime'] = None\n"
            "from scalekit.cli import main\nmain()\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        "Error: this command needs onnxruntime: pip install 'scalekit-cnn[onnx]'"]


# ---------------------------------------------------------------------------------------------
# start-up: a command imports its own module and what it uses, nothing else


def imported_after(*args: str) -> set[str]:
    code = ("import sys, io, contextlib\n"
            f"sys.argv = ['scalekit', *{list(args)!r}]\n"
            "from scalekit.cli import main\n"
            "try:\n    with contextlib.redirect_stdout(io.StringIO()):\n        main()\n"
            "except SystemExit as e:\n    assert e.code in (0, None), e.code\n"
            "print('\\n'.join(sorted(sys.modules)))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split())


def test_version_imports_no_command_and_no_spec_code():
    mods = imported_after("--version")
    ours = {m for m in mods if m.startswith("scalekit")}
    # the entry point, its error types, the command table, and the files and text helpers
    # the entry point cleans up and escapes with
    assert ours <= {"scalekit", "scalekit.cli", "scalekit.commands", "scalekit.errors",
                    "scalekit.extras", "scalekit.files", "scalekit.text"}, ours
    assert not mods & {"rich", "yaml", "torch", "json", "tempfile"}


def test_help_lists_every_command_from_the_table_without_importing_them():
    code = ("import sys, io, contextlib\nsys.argv = ['scalekit', '--help']\n"
            "from scalekit.cli import main\nbuf = io.StringIO()\n"
            "try:\n    with contextlib.redirect_stdout(buf):\n        main()\n"
            "except SystemExit:\n    pass\n"
            "loaded = [m for m in sys.modules if m.startswith('scalekit.commands.')]\n"
            "print(repr(loaded))\nprint(buf.getvalue())\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "COLUMNS": "100"})
    assert r.returncode == 0, r.stderr
    loaded, _, text = r.stdout.partition("\n")
    assert loaded == "[]"
    listed = text.split("Commands:\n", 1)[1].splitlines()
    assert [line.split()[0] for line in listed if line.strip()] == list(COMMANDS)
    for name, entry in COMMANDS.items():
        assert f"  {name.ljust(max(map(len, COMMANDS)))}  {entry.short_help}" in listed


def test_completing_a_command_name_imports_no_command():
    code = ("import os, sys\n"
            "os.environ.update(_SCALEKIT_COMPLETE='bash_complete', COMP_WORDS='scalekit c',"
            " COMP_CWORD='1')\n"
            "from scalekit.cli import cli\n"
            "try:\n    cli.main(args=[], prog_name='scalekit')\nexcept SystemExit:\n    pass\n"
            "print([m for m in sys.modules if m.startswith('scalekit.commands.')])\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    *items, loaded = r.stdout.splitlines()
    assert items == [f"plain,{n}" for n in COMMANDS if n.startswith("c")]
    assert loaded == "[]"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_table_row_loads_its_command(name):
    from scalekit.cli import cli

    command = cli.get_command(None, name)
    assert command is not None and command.name == name
    assert command.short_help == COMMANDS[name].short_help
    assert len(COMMANDS[name].short_help) <= 64  # one line of --help, never cut with "..."


def test_a_count_only_command_imports_its_command_module_alone():
    mods = imported_after("compare", "--no-latency")
    commands = {m for m in mods if m.startswith("scalekit.commands.")}
    assert commands == {"scalekit.commands.common", "scalekit.commands.compare"}
    # what a table needs none of: the JSON/CSV writers, package metadata, temporary files
    assert not mods & {"torch", "numpy", "json", "csv", "importlib.metadata", "tempfile",
                       "scalekit.latency", "scalekit.exporters", "scalekit.baseline"}, \
        mods & {"json", "csv", "importlib.metadata", "tempfile"}


def test_check_imports_no_package_metadata(tmp_path):
    """The CI command: reading and comparing a baseline needs no importlib.metadata."""
    base = tmp_path / "b.json"
    r = run_without((), "info", "resnet50", "--no-latency", "--format", "json", "-o", str(base))
    assert r.returncode == 0, r.stderr
    mods = imported_after("check", "--baseline", str(base))
    assert not mods & {"torch", "importlib.metadata", "email"}


# ---------------------------------------------------------------------------------------------
# the YAML fast path: scalekit's own files through libyaml, everyone else's as before


def ours() -> list[Path]:
    pkg = ROOT / "scalekit"
    return [pkg / "data" / "reference.yaml", *sorted((pkg / "specs").glob("*.yaml"))]


def outcome(text: str, fast: bool):
    """What load_spec makes of ``text`` before validating fields: the data, or the error."""
    try:
        data = spec_module.parse_yaml(text, path="x.yaml", fast=fast)
        spec_module._check_shape(data, "x.yaml")  # refuses a billion laughs before it is walked
        return "data", data
    except SpecError as e:
        return "error", str(e)


@pytest.mark.parametrize("path", [*ours(), *sorted((ROOT / "tests" / "bad_specs").glob("*.yaml"))],
                         ids=lambda p: p.name)
def test_the_fast_parser_reads_what_the_strict_one_reads(path):
    text = path.read_text(encoding="utf-8", errors="replace")
    assert outcome(text, fast=True) == outcome(text, fast=False)


def test_scalekit_own_files_take_the_fast_path():
    if getattr(yaml, "CSafeLoader", None) is None:
        pytest.skip("this PyYAML has no libyaml")
    for path in ours():
        assert spec_module.ours(path)
        assert spec_module._fast_parse(path.read_text(encoding="utf-8")) is not spec_module._SLOW
    assert not spec_module.ours(ROOT / "specs" / "resnet50.yaml")  # the repository's copy


def test_a_users_spec_is_read_by_pyyaml_as_before(tmp_path):
    """libyaml accepts a tab after a colon, PyYAML does not: a user's file must fail as it
    always has (only scalekit's own files are parsed by libyaml)."""
    text = (ROOT / "specs" / "mobilenet_v1.yaml").read_text(encoding="utf-8")
    text = text.replace("resolution: 224", "resolution:\t224")
    assert "resolution:\t224" in text
    user = tmp_path / "mine.yaml"
    user.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError, match="YAML syntax error"):
        spec_module.load_spec(user)
    if getattr(yaml, "CSafeLoader", None) is not None:
        assert spec_module._fast_parse(text)["resolution"] == 224


def test_the_depth_walk_counts_aliases_once_and_refuses_cycles():
    loader = yaml.SafeLoader("a: &x [[[1]]]\nb: [*x, *x]\n")
    node = loader.get_single_node()
    # root -> b -> x -> [[1]] -> [1] -> 1: six nodes deep (x's subtree is walked once)
    assert spec_module._deeper_than(node, 6) is False
    assert spec_module._deeper_than(node, 5) is True
    loader = yaml.SafeLoader("&x [*x]\n")
    assert spec_module._deeper_than(loader.get_single_node(), 20) is True  # a cycle
    deep = "v: " + "[" * 30 + "]" * 30 + "\n"
    assert outcome(deep, fast=True) == outcome(deep, fast=False)
    assert outcome(deep, fast=True)[0] == "error"


def test_json_reports_are_unchanged_by_the_lazy_imports():
    r = run_without((), "info", "efficientnet_b0", "--no-latency", "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["scalekit_version"] == scalekit.__version__
    assert doc["records"][0]["name"] == "EfficientNet-B0"

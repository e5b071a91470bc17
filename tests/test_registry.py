"""Every registered block kind is complete, and its counts are torch's.

One check per kind, run over the whole registry: its stage parses from YAML and round-trips;
analytic params == sum(p.numel()) of the built module and analytic MACs == FlopCounterMode / 2 on
the meta device, per block and per network; the tensors it declares for checkpoints
(``weights``) are its module's state_dict, names, shapes and order, and every checkpoint family
it names names all of them; width and depth scaling keep the baseline at 1.0 and grow
monotonically; the count path imports no torch. Registering a kind with a piece missing or
wrong makes the check fail (shown below with deliberately broken kinds).
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

# the whole module needs torch: skipped where only the light install is (CI's second venv)
torch = pytest.importorskip("torch", reason="needs the torch extra")
import yaml
from torch.utils.flop_counter import FlopCounterMode

from scalekit import modules
from scalekit.blocks import KINDS, BlockKind, stage_kinds
from scalekit.blocks.mbconv import MBConvKind
from scalekit.build import block_module, build_model
from scalekit.counting import count_block, count_plan
from scalekit.layouts import FAMILY_NAMES, tensors
from scalekit.ops import Conv
from scalekit.plan import expand
from scalekit.scaling import Coefficients, scale
from scalekit.spec import spec_from_dict, spec_to_yaml

from .conftest import ROOT


def network(stage: dict, resolution: int = 65) -> dict:
    """A spec with one stage (a pooled stem and a head conv, so that every plan-only kind is in
    it too) at an odd resolution, as YAML data."""
    return {"name": "One", "resolution": resolution, "num_classes": 7,
            "stem": {"out": 16, "kernel": 3, "stride": 2, "act": "relu",
                     "pool": {"kernel": 3, "stride": 2}},
            "stages": [stage], "head": {"conv": 48, "act": "silu"}}


def torch_macs(model: torch.nn.Module, shape: tuple[int, ...]) -> int:
    fc = FlopCounterMode(display=False)
    with torch.no_grad(), fc:
        model(torch.empty(shape, device="meta"))
    return fc.get_total_flops() // 2


def problems(k: BlockKind) -> list[str]:
    """What is missing or wrong about kind ``k`` (registered), checked against torch; a piece
    that raises (NotImplementedError: not written) is a problem too."""
    try:
        return _problems(k)
    except Exception as e:  # noqa: BLE001 - any failure is the finding
        return [f"{k.name}: {type(e).__name__}: {e}"]


def _problems(k: BlockKind) -> list[str]:
    out: list[str] = []
    if not getattr(modules, getattr(k, "module", ""), None):
        return [f"{k.name}: no torch class {getattr(k, 'module', None)!r} in scalekit.modules"]
    stages = [k.example] if k.stage is not None else [KINDS["conv"].example]
    if k.stage is not None and not k.example:
        return [f"{k.name}: no example stage"]
    for stage in stages:
        try:
            spec = spec_from_dict(network(stage))
            again = spec_from_dict(yaml.safe_load(spec_to_yaml(spec)))
        except Exception as e:  # noqa: BLE001 - any failure is the finding
            return [f"{k.name}: its stage does not parse: {type(e).__name__}: {e}"]
        if again != spec:
            out.append(f"{k.name}: the stage does not round-trip through YAML")
        plan = expand(spec)
        blocks = [b for b in plan.blocks() if b.kind == k.name]
        if not blocks:
            return out + [f"{k.name}: no block of this kind in the plan"]
        for b in blocks:
            if not k.label(b):
                out.append(f"{k.name}: empty label")
            with torch.device("meta"):
                m = block_module(b).eval()
            analytic = count_block(b)
            if analytic.params != sum(p.numel() for p in m.parameters()):
                out.append(f"{k.name}: params {analytic.params:,} != torch "
                           f"{sum(p.numel() for p in m.parameters()):,}")
            got = torch_macs(m, (1, b.cin, b.h, b.w))
            if analytic.macs != got:
                out.append(f"{k.name}: MACs {analytic.macs:,} != FlopCounterMode/2 {got:,}")
            out += weights_problems(k, b, m)
        model = build_model(plan, device="meta").eval()
        total = count_plan(plan).total
        if total.params != sum(p.numel() for p in model.parameters()):
            out.append(f"{k.name}: network params differ from torch")
        if total.macs != torch_macs(model, (1, 3, *plan.resolution)):
            out.append(f"{k.name}: network MACs differ from torch")
        if k.stage is not None:
            out += scaling_problems(k, spec)
    return out


def weights_problems(k: BlockKind, b, m: torch.nn.Module) -> list[str]:
    """The kind's declared tensors are its module's state_dict (names, shapes, order); each
    checkpoint family it names names every role, each once."""
    out = []
    declared = [t for w in k.weights(b) for t in tensors(w.path, w)]
    actual = [(key, tuple(v.shape)) for key, v in m.state_dict().items()]
    if declared != actual:
        out.append(f"{k.name}: weights() {declared[:4]}... != the module's state_dict "
                   f"{actual[:4]}...")
    roles = [w.role for w in k.weights(b)]
    if len(set(roles)) != len(roles):
        out.append(f"{k.name}: two layers share a role: {roles}")
    for family in FAMILY_NAMES:
        names = k.checkpoint_names(b, family)
        if names is None:
            continue
        missing = [r for r in roles if r not in names]
        named = [names[r] for r in roles if r in names]
        if missing or len(set(named)) != len(named):
            out.append(f"{k.name}: {family} names {named} for roles {roles}")
    return out


def scaling_problems(k: BlockKind, spec) -> list[str]:
    out = []
    if scale(spec, Coefficients(width=1.0, depth=1.0)) != spec:
        out.append(f"{k.name}: scaling by 1.0 changes the network")
    for dim in ("width", "depth"):
        counts = [count_plan(expand(scale(spec, Coefficients(**{dim: v})))).total
                  for v in (0.5, 0.75, 1.0, 1.5, 2.0, 3.0)]
        if any(b.params < a.params or b.macs < a.macs for a, b in zip(counts, counts[1:])):
            out.append(f"{k.name}: {dim} scaling is not monotone: {counts}")
        if counts[-1].macs <= counts[2].macs:
            out.append(f"{k.name}: {dim} x3 does not grow MACs")
    wide = scale(spec, Coefficients(width=2.0)).stages[0]
    for f in k.width_fields:
        if getattr(spec.stages[0], f) and getattr(wide, f) <= getattr(spec.stages[0], f):
            out.append(f"{k.name}: width scaling leaves {f} as it was")
    return out


@pytest.mark.parametrize("name", list(KINDS))
def test_every_registered_kind_is_complete_and_exact(name):
    assert problems(KINDS[name]) == []


def test_every_stage_kind_counts_without_torch():
    """Parsing, scaling and counting each kind's example imports no torch."""
    code = ("import sys\nfrom scalekit.blocks import KINDS\nfrom scalekit.counting import count_plan\n"
            "from scalekit.plan import expand\nfrom scalekit.scaling import Coefficients, scale\n"
            "from scalekit.spec import spec_from_dict\n"
            "for k in KINDS.values():\n"
            "    if k.stage is None:\n        continue\n"
            f"    d = {network({})!r}\n"
            "    d['stages'] = [k.example]\n"
            "    s = scale(spec_from_dict(d), Coefficients(width=1.5, depth=2))\n"
            "    assert count_plan(expand(s)).total.macs > 0\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\nprint('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_the_spec_accepts_exactly_the_registered_stage_kinds():
    assert set(stage_kinds()) == {n for n, k in KINDS.items() if k.stage is not None}
    assert {"conv", "dwsep", "mbconv", "bottleneck"} <= set(stage_kinds())


# ---------------------------------------------------------------------------------------------
# a kind with a piece missing or wrong fails the check


class _ForgetsSE(MBConvKind):
    """MBConv whose ops leave out the squeeze-excitation convs (its complexity is wrong)."""

    name = "broken_ops"

    def ops(self, b):
        return (op for op in super().ops(b) if not (isinstance(op, Conv) and op.h == 1))


class _NoTorchClass(MBConvKind):
    name = "broken_module"
    module = "NoSuchModule"


class _NoWiring(BlockKind):
    """A kind registered with only its stage: no wiring, no ops."""

    name = "broken_wire"
    stage = KINDS["conv"].stage
    module = "ConvBlock"
    example = {**KINDS["conv"].example}

    def parse(self, data, path):
        return {"kernel": data.get("kernel", 3)}


class _NoExample(MBConvKind):
    name = "broken_example"
    example: dict = {}


class _ForgetsSEWeights(MBConvKind):
    """MBConv whose checkpoint tensors leave out the squeeze-excitation's."""

    name = "broken_weights"

    def weights(self, b):
        return [w for w in super().weights(b) if not w.role.startswith("se.")]


class _NamesTwice(MBConvKind):
    """MBConv whose timm names give two roles one name."""

    name = "broken_names"

    def checkpoint_names(self, b, family):
        names = super().checkpoint_names(b, family)
        return names and {r: "conv_pw" for r in names}


@pytest.mark.parametrize("broken,words", [
    (_ForgetsSE, "MACs"), (_NoTorchClass, "no torch class"), (_NoWiring, "NotImplementedError"),
    (_NoExample, "no example"), (_ForgetsSEWeights, "state_dict"), (_NamesTwice, "timm"),
])
def test_a_kind_with_a_missing_or_wrong_piece_fails(monkeypatch, broken, words):
    k = broken()
    stage_cls = k.stage
    if stage_cls is not None and k.example:  # its stages name it
        k.stage = dataclasses.make_dataclass(f"{k.name}Stage", [("block", str, k.name)],
                                             bases=(stage_cls,), frozen=True, kw_only=True)
        k.example = {**k.example, "block": k.name}
    monkeypatch.setitem(KINDS, k.name, k)
    found = problems(k)
    assert found and any(words in p for p in found), found

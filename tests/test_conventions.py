"""Counting conventions (scalekit/conventions.py) against the tools they name, exactly.

Every profile is computed torch-free from the plan; each is checked here against the real tool's
total on the built module, called through the tool's own API (not scalekit's wrapper), for every
bundled spec and a few scaled ones. A tool that is not installed is skipped (the CI installs the
``reconcile`` extra, so there none is). ``full`` matches no tool: it is checked against an
aten-dispatch counter written here, which fails on any aten op it has no rule for. The paper
profile is scalekit's count, and published figures (pycls, torchvision) pin two profiles without
any tool at all.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import warnings
from collections import Counter

import pytest

from scalekit import conventions
from scalekit.blocks import KINDS
from scalekit.conventions import NAMES, TERMS, count_convention, get, terms_of
from scalekit.counting import count_plan
from scalekit.ops import Activation, Conv, Elementwise
from scalekit.plan import expand
from scalekit.scaling import scale_spec
from scalekit.spec import load_spec

from .conftest import FAMILY_NAMES, SPEC_NAMES, assert_no_torch, spec_path

SCALED = (("efficientnet_b0", {"phi": 1}), ("mobilenet_v2", {"width": 1.3}),
          ("resnet50", {"width": 1.3, "depth": 0.5}))


def bundled(name, res=None):
    return expand(load_spec(spec_path(name)), res)


def scaled(name, flags, res=None):
    s, _ = scale_spec(load_spec(spec_path(name)), **flags)
    return expand(s, res)


def label(plan) -> str:
    h, w = plan.resolution
    return f"{plan.name} {h}x{w}"


# meta-device tools: every bundled spec at its resolution and at an odd, non-square size, and the
# scaled specs at theirs. Real-forward tools (fvcore, ptflops' pytorch backend): small sizes.
META_CASES = ([(n, None) for n in SPEC_NAMES] + [(n, (97, 131)) for n in SPEC_NAMES]
              + [(n, f) for n, f in SCALED])
CPU_CASES = ([(n, (65, 97)) for n in SPEC_NAMES]
             + [("efficientnet_b0", {"phi": 1}), ("mobilenet_v2", {"width": 1.3})])


def plan_of(case):
    name, arg = case
    return scaled(name, arg) if isinstance(arg, dict) else bundled(name, arg)


def case_id(case):
    name, arg = case
    if isinstance(arg, dict):
        return name + " " + " ".join(f"{k}={v}" for k, v in arg.items())
    return f"{name} {'x'.join(map(str, arg)) if arg else 'own'}"


@contextlib.contextmanager
def quiet():
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(logging.NOTSET)


def model_and_input(plan, device):
    import torch

    from scalekit.build import build_model

    model = build_model(plan, device=device).eval()  # a fresh model: ptflops leaves state on it
    shape = (1, plan.in_channels, *plan.resolution)
    x = torch.empty(shape, device="meta") if device == "meta" else torch.randn(shape)
    return model, x


def thop_total(plan):
    import thop
    import torch

    model, x = model_and_input(plan, "meta")
    with quiet(), torch.no_grad():
        macs, _ = thop.profile(model, inputs=(x,), verbose=False)
    assert float(macs).is_integer()
    return int(macs)


def ptflops_total(plan, backend, device):
    import torch
    from ptflops import get_model_complexity_info

    model, _ = model_and_input(plan, device)
    with quiet(), torch.no_grad():
        macs, _ = get_model_complexity_info(model, (plan.in_channels, *plan.resolution),
                                            as_strings=False, print_per_layer_stat=False,
                                            verbose=False, backend=backend)
    assert macs is not None, "ptflops caught an exception (it prints it and returns None)"
    return int(macs)


def torchinfo_total(plan):
    from torchinfo import summary

    model, _ = model_and_input(plan, "meta")
    with quiet():
        s = summary(model, input_size=(1, plan.in_channels, *plan.resolution), device="meta",
                    verbose=0)
    return int(s.total_mult_adds)


def fvcore_analysis(plan):
    import torch
    from fvcore.nn import FlopCountAnalysis

    model, x = model_and_input(plan, "cpu")
    with quiet(), torch.no_grad():
        fa = FlopCountAnalysis(model, (x,))
        fa.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return int(fa.total()), dict(fa.unsupported_ops())


@pytest.mark.parametrize("case", META_CASES, ids=case_id)
def test_thop_profile_is_thop_exactly(case):
    pytest.importorskip("thop")
    plan = plan_of(case)
    want = count_convention(plan, "thop").total
    assert want < 2 ** 53  # thop sums in float64: exact below this
    assert thop_total(plan) == want, label(plan)


@pytest.mark.parametrize("case", META_CASES, ids=case_id)
def test_ptflops_aten_profile_is_ptflops_aten_backend_exactly(case):
    pytest.importorskip("ptflops")
    plan = plan_of(case)
    assert ptflops_total(plan, "aten", "meta") == count_convention(plan, "ptflops-aten").total


@pytest.mark.parametrize("case", META_CASES, ids=case_id)
def test_torchinfo_profile_is_torchinfo_exactly(case):
    pytest.importorskip("torchinfo")
    plan = plan_of(case)
    assert torchinfo_total(plan) == count_convention(plan, "torchinfo").total


@pytest.mark.parametrize("case", CPU_CASES, ids=case_id)
def test_ptflops_profile_is_ptflops_pytorch_backend_exactly(case, one_thread):
    pytest.importorskip("ptflops")
    plan = plan_of(case)
    want = count_convention(plan, "ptflops").total
    assert want < 2 ** 53
    assert ptflops_total(plan, "pytorch", "cpu") == want


@pytest.mark.parametrize("case", CPU_CASES, ids=case_id)
def test_fvcore_profile_is_fvcore_exactly(case, one_thread):
    pytest.importorskip("fvcore")
    plan = plan_of(case)
    total, unsupported = fvcore_analysis(plan)
    assert total == count_convention(plan, "fvcore").total
    # what fvcore skips with a warning is what the profile prices at 0: activations other than
    # ReLU (an ignored op), max pooling, the SE gate and the residual add
    assert set(unsupported) <= {"aten::silu_", "aten::sigmoid", "aten::mul", "aten::add",
                                "aten::add_", "aten::hardtanh_", "aten::max_pool2d"}
    prof = get("fvcore")
    for term in ("activation", "se", "add"):
        assert count_convention(plan, "fvcore").terms[term] == 0
        assert prof.rule(term).formula == "0"


def test_fvcore_counts_batchnorm_differently_in_train_mode(one_thread):
    """Why reconcile (and the test above) put the model in eval mode: fvcore's BatchNorm rule
    depends on it (2N in eval, 5N in train), and fvcore does not call eval() itself."""
    pytest.importorskip("fvcore")
    import torch
    from fvcore.nn import FlopCountAnalysis

    from scalekit.build import build_model

    plan = bundled("mobilenet_v2", 64)
    bn = sum(op.out for b in plan.blocks() for op in KINDS[b.kind].ops(b)
             if "bn" in terms_of(op))
    with quiet(), torch.no_grad():
        fa = FlopCountAnalysis(build_model(plan).train(), (torch.randn(1, 3, 64, 64),))
        train = int(fa.total())
    assert train == count_convention(plan, "fvcore").total + 3 * bn


class FullCounter:
    """Every aten op of a forward, priced by the ``full`` rules as an independent reading of the
    dispatched ops (not of scalekit's op lists); an aten op without a rule is recorded."""

    def __init__(self):
        import torch
        from torch.utils._python_dispatch import TorchDispatchMode

        aten = torch.ops.aten
        free = {aten.view, aten._unsafe_view, aten.reshape, aten.flatten, aten.t, aten.detach,
                aten.empty, aten.alias, aten.squeeze, aten.unsqueeze, aten.expand}
        elementwise = {aten.relu, aten.relu_, aten.hardtanh, aten.hardtanh_, aten.silu,
                       aten.silu_, aten.sigmoid, aten.mul, aten.add}
        norms = {aten._native_batch_norm_legit_no_training, aten.native_batch_norm}
        means = {aten.mean, aten._adaptive_avg_pool2d, aten.adaptive_avg_pool2d}
        counter = self
        self.total, self.unknown = 0, Counter()

        def numel(t):
            return math.prod(t.shape)

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                p = func._overloadpacket
                if p is aten.convolution:
                    x, w, b = args[0], args[1], args[2]
                    c = 2 * numel(w) * math.prod(out.shape[2:]) * x.shape[0] \
                        + (numel(out) if b is not None else 0)
                elif p is aten.addmm:
                    a, w = args[1], args[2]
                    c = 2 * a.shape[0] * a.shape[1] * w.shape[1] + a.shape[0] * w.shape[1]
                elif p in norms:
                    c = 2 * numel(args[0])
                elif p in elementwise:
                    c = numel(out)
                elif p is aten.max_pool2d_with_indices:
                    k = args[1]
                    c = (k[0] * k[1] - 1) * numel(out[0])
                elif p in means:
                    c = numel(args[0])
                elif p in free:
                    c = 0
                else:
                    counter.unknown[str(p)] += 1
                    c = 0
                counter.total += c
                return out

        self.mode = Mode()


@pytest.mark.parametrize("case", META_CASES, ids=case_id)
def test_full_is_every_dispatched_multiply_and_add(case):
    import torch

    plan = plan_of(case)
    model, x = model_and_input(plan, "meta")
    fc = FullCounter()
    with torch.no_grad(), fc.mode:
        model(x)
    assert not fc.unknown, f"aten ops without a rule: {dict(fc.unknown)}"
    assert fc.total == count_convention(plan, "full").total


@pytest.mark.parametrize("case", META_CASES, ids=case_id)
def test_paper_profile_is_scalekits_count_and_half_of_torch(case):
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    plan = plan_of(case)
    paper = count_convention(plan, "paper")
    assert paper.total == count_plan(plan).total.macs
    assert [m for _, m in paper.stages] == [s.counts.macs for s in count_plan(plan).stages]
    model, x = model_and_input(plan, "meta")
    fc = FlopCounterMode(display=False)
    with torch.no_grad(), fc:
        model(x)
    assert fc.get_total_flops() == 2 * paper.total
    # full's conv and linear part is exactly torch's FLOPs
    full = count_convention(plan, "full").terms
    assert full["conv"] + full["linear"] == fc.get_total_flops()


def test_published_figures_pin_two_profiles_without_any_tool(published):
    """pycls publishes exact counts that include bias adds: the ptflops-aten convention (paper +
    biases); torchvision's GMACs are the paper convention."""
    by_spec = {"EN-B0": ("efficientnet_b0", None), "EN-B1": ("efficientnet_b0", "b1"),
               "R-50-1x64d": ("resnet50", None)}
    for key, (name, preset) in by_spec.items():
        spec = load_spec(spec_path(name))
        if preset:
            spec, _ = scale_spec(spec, preset=preset)
        plan = expand(spec)
        assert count_convention(plan, "ptflops-aten").total == published["pycls"][key]["macs"]
    for key in ("efficientnet_b0", "resnet50", "mobilenet_v2"):
        tv = published["torchvision"][key]
        paper = count_convention(bundled(key), "paper").total
        assert round(paper / 1e9, 3) == tv["gmacs"]


# ---------------------------------------------------------------------------------------------
# the tables themselves


def every_op():
    """The ops every bundled spec's blocks list (every registered kind appears in them)."""
    seen = set()
    for name in SPEC_NAMES + FAMILY_NAMES:
        for b in bundled(name, (97, 131)).blocks():
            seen.add(b.kind)
            yield from KINDS[b.kind].ops(b)
    assert seen == set(KINDS), f"kinds no bundled spec uses: {set(KINDS) - seen}"


def test_every_convention_prices_every_op_every_kind_lists():
    ops = list(every_op())
    for name in NAMES:
        conv = get(name)
        for op in ops:
            assert conv.cost(op) >= 0
        # the breakdown is the total, term by term
        assert sum(conv.breakdown(ops).values()) == sum(map(conv.cost, ops))


def test_every_activation_a_model_can_build_has_a_rule_in_every_convention():
    from scalekit import modules

    for act in [*modules._ACTS, "sigmoid"]:  # noqa: SLF001 - the torch side's own list
        op = Activation(3, 5, 7, name=act)
        for name in NAMES:
            get(name).cost(op)  # raises for an activation a convention has no rule for


def test_a_new_op_type_is_an_error_not_free():
    class Unknown(Elementwise):
        pass

    with pytest.raises(TypeError, match="no counting convention covers"):
        terms_of(Unknown(2, 3, 3, op="div"))
    with pytest.raises(TypeError, match="no rule for activation"):
        get("full").cost(Activation(2, 3, 3, name="gelu"))


def test_rules_on_single_ops_by_hand():
    # a biased 3x3 conv, 4 -> 6 channels, 5x7 input, stride 2: 3x4 output
    c = Conv(4, 6, 3, 5, 7, stride=2, bias=True)
    m = 3 * 3 * 4 * 6 * 3 * 4
    assert [get(n).cost(c) for n in NAMES] == [m, m, m + 72, m + 72, m, m + 72, 2 * m + 72]
    assert get("full").breakdown([c]) == {**dict.fromkeys(TERMS, 0), "conv": 2 * m, "bias": 72}
    # the SE gate multiplies 6 x 5 x 7 elements: only full counts it
    gate = Elementwise(6, 5, 7, op="mul")
    assert [get(n).cost(gate) for n in NAMES] == [0, 0, 0, 0, 0, 0, 210]


def test_unknown_convention_names_the_known_ones():
    with pytest.raises(conventions.UnknownConvention) as e:
        get("fvcor")
    assert "fvcor" in str(e.value) and all(n in str(e.value) for n in NAMES)


def test_every_convention_has_a_unit_source_and_a_rule_for_what_it_counts():
    for name in NAMES:
        c = get(name)
        assert c.unit in ("MACs", "FLOPs") and c.source and c.about
        assert set(c.rules) <= set(TERMS)
        assert c.label.startswith(c.unit)
    assert get("paper").label == "MACs" and get("full").label == "FLOPs (full)"


def test_conventions_are_counted_without_torch():
    assert_no_torch(["info", "efficientnet_b0", "--no-latency", "--convention", "fvcore"],
                    ["info", "resnet50", "--no-latency", "--convention", "full"],
                    ["compare", "--no-latency", "--convention", "thop", "--table", "2"],
                    expect="convention")


# ---------------------------------------------------------------------------------------------
# the per-op table of docs/conventions.md is the code's


def doc_table(path):
    """The per-op table of a document (``path``, from the repository root): {op type:
    {convention: cell}}."""
    from .conftest import ROOT

    lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| op type |"))
    head = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(head[1:], cells[1:]))
    return head[1:], rows


@pytest.mark.parametrize("path", ["docs/conventions.md"])
def test_the_docs_table_is_the_code(path):
    from scalekit.ops import BatchNorm, Linear, Pool

    conv = Conv(4, 6, 3, 5, 7, stride=2)  # 3x4 output
    biased = Conv(4, 6, 3, 5, 7, stride=2, bias=True)
    # row -> (sample op, the term it is priced under)
    samples = {
        "conv weights": (conv, "conv"), "linear weights": (Linear(10, 3), "linear"),
        "bias (conv, linear)": (biased, "bias"), "BatchNorm (eval)": (BatchNorm(6, 5, 7), "bn"),
        "ReLU": (Activation(6, 5, 7, name="relu"), "activation"),
        "ReLU6": (Activation(6, 5, 7, name="relu6"), "activation"),
        "SiLU": (Activation(6, 5, 7, name="silu"), "activation"),
        "Sigmoid (the SE gate's)": (Activation(6, 5, 7, name="sigmoid"), "activation"),
        "global average pool": (Pool("avg", 6, 5, 7), "pooling"),
        "max pool": (Pool("max", 6, 9, 11, kernel=3, stride=2), "pooling"),
        "SE gate `x * s`": (Elementwise(6, 5, 7, op="mul"), "se"),
        "residual add": (Elementwise(6, 5, 7, op="add"), "add"),
    }

    def value(cell, op):
        M = conventions.weight_macs(op) if isinstance(op, (Conv, Linear)) else None
        N = op.out
        n_in = op.c * op.h * op.w if isinstance(op, Pool) else None
        return {"0": 0, "M": M, "2M": None if M is None else 2 * M, "I·O": M,
                "2·I·O": None if M is None else 2 * M, "N": N, "2N": 2 * N, "4N": 4 * N,
                "2C": 2 * getattr(op, "c", 0), "N_in": n_in,
                "2·N_in": None if n_in is None else 2 * n_in,
                "(H·W+1)·C": (op.h * op.w + 1) * op.c if isinstance(op, Pool) else None,
                "(k²−1)·N": (op.kernel ** 2 - 1) * N if isinstance(op, Pool) else None}[cell]

    names, rows = doc_table(path)
    assert names == list(NAMES)
    assert set(rows) == set(samples) | {"unit"}
    assert rows["unit"] == {n: get(n).unit for n in NAMES}
    for row, (op, term) in samples.items():
        for name in NAMES:
            got = get(name).breakdown([op])[term]
            assert got == value(rows[row][name], op), (row, name, rows[row][name], got)

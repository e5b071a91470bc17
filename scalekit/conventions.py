"""Counting conventions by name: what each popular FLOP counter counts, from the plan alone.

A convention is a table ``term -> rule``: for each type of op a block kind lists
(scalekit/ops.py: conv, linear, their bias, BatchNorm, activation, pooling, the SE gate, the
residual add), how much one op of that type costs, in the convention's unit (MACs or FLOPs). A
convention's count of a network is the sum of its rules over the ops every block's kind lists
(``BlockKind.ops``), so a new kind brings its conventions with it and nothing here names a kind.

``paper`` is scalekit's own count (counting.py: conv + linear weight multiply-accumulates); the
others reproduce, exactly, the total of a tool run on the built torch module (tests/test_conventions.py
runs each tool where it is installed; ``scalekit reconcile`` shows them side by side), and
``full`` counts every multiply and add of the forward pass. docs/conventions.md is the same table
for people, with each rule's source. No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

from .blocks import kind
from .errors import ScalekitError
from .ops import Activation, BatchNorm, Conv, Elementwise, Linear, Op, Pool
from .plan import NetworkPlan

DEFAULT = "paper"  # scalekit's own count, and what every report shows unless asked otherwise

# The op types a convention prices, in the order reports show them: key -> short label.
TERMS: dict[str, str] = {
    "conv": "conv",  # weight multiply-accumulates: k^2 * cin / groups per output element
    "linear": "linear",  # weight multiply-accumulates: cin * cout
    "bias": "bias",  # the bias of a conv or linear layer: one add per output element
    "bn": "BN",  # BatchNorm in eval mode
    "activation": "act",  # ReLU, ReLU6, SiLU, the SE gate's sigmoid
    "pooling": "pool",  # max pooling, global average pooling
    "se": "SE gate",  # the squeeze-excitation multiply x * s
    "add": "add",  # the residual sum
}


class UnknownConvention(ScalekitError):
    """A convention name that is not one of :data:`NAMES`."""


def terms_of(op: Op) -> tuple[str, ...]:
    """The terms an op is priced under (a biased conv: ``conv`` and ``bias``). An op type no
    term covers is an error, so that a new op in scalekit/ops.py cannot be counted as free."""
    if isinstance(op, Conv):
        return ("conv", "bias") if op.bias else ("conv",)
    if isinstance(op, Linear):
        return ("linear", "bias") if op.bias else ("linear",)
    if isinstance(op, BatchNorm):
        return ("bn",)
    if isinstance(op, Activation):
        return ("activation",)
    if isinstance(op, Pool):
        return ("pooling",)
    if isinstance(op, Elementwise):
        if op.op == "mul":
            return ("se",)
        if op.op == "add":
            return ("add",)
    raise TypeError(f"no counting convention covers {op!r}: add it to scalekit/conventions.py")


# ---------------------------------------------------------------------------------------------
# the quantities rules are written in (batch 1)


def weight_macs(op: Conv | Linear) -> int:
    """M: weight multiply-accumulates (a conv: k^2 * cin / groups * cout per output position)."""
    if isinstance(op, Conv):
        return op.weights * op.ho * op.wo
    return op.cin * op.cout


def numel(op: Op) -> int:
    """N: elements of the op's output (a pool: see :func:`pool_input`)."""
    return op.out


def pool_input(op: Pool) -> int:
    """Elements of a pool's input: c * h * w."""
    return op.c * op.h * op.w


@dataclass(frozen=True)
class Rule:
    """The cost of one op of a term, and the formula as docs print it (M = weight MACs, N =
    output elements, N_in = input elements, C = channels)."""

    cost: Callable[[Op], int]
    formula: str


def _per_activation(factors: Mapping[str, int], formula: str) -> Rule:
    """A rule whose factor of N depends on the activation function."""
    def cost(op: Op) -> int:
        name = op.name  # type: ignore[union-attr]
        if name not in factors:
            raise TypeError(f"no rule for activation {name!r} in this convention: add it to "
                            "scalekit/conventions.py")
        return factors[name] * op.out
    return Rule(cost, formula)


_ZERO = Rule(lambda op: 0, "0")
_M = Rule(weight_macs, "M")
_2M = Rule(lambda op: 2 * weight_macs(op), "2M")
_BIAS = Rule(numel, "N (one add per output element)")
_2N = Rule(lambda op: 2 * op.out, "2N")


@dataclass(frozen=True)
class Convention:
    """A named way of counting: a rule per term (a term left out costs 0), in ``unit``.

    ``tool``: the call whose total it reproduces exactly (None: no tool counts this way);
    ``about``: one line for tables; ``source``: where the rules come from."""

    name: str
    unit: str  # "MACs" or "FLOPs" (2 per multiply-accumulate)
    about: str
    source: str
    rules: Mapping[str, Rule] = field(default_factory=dict)
    tool: str | None = None
    notes: tuple[str, ...] = ()

    def rule(self, term: str) -> Rule:
        return self.rules.get(term, _ZERO)

    def cost(self, op: Op) -> int:
        """What one op costs under this convention."""
        return sum(self.rule(t).cost(op) for t in terms_of(op))

    def breakdown(self, ops: Iterable[Op]) -> dict[str, int]:
        """The cost of ``ops`` by term (every term of :data:`TERMS`, in order)."""
        out = dict.fromkeys(TERMS, 0)
        for op in ops:
            for t in terms_of(op):
                out[t] += self.rule(t).cost(op)
        return out

    @property
    def label(self) -> str:
        """How reports name a count under this convention: ``MACs`` (the paper's, scalekit's
        default), ``MACs (fvcore)``, ``FLOPs (full)``."""
        return self.unit if self.name == DEFAULT else f"{self.unit} ({self.name})"

    def header(self, scale: str) -> str:
        """A column header in ``scale`` (``G``, ``M``): ``MACs (G)``, ``MACs (G, fvcore)``."""
        return f"{self.unit} ({scale})" if self.name == DEFAULT else \
            f"{self.unit} ({scale}, {self.name})"

    @property
    def definition(self) -> str:
        """What a count under this convention is, in one line (for captions)."""
        return f"{self.label} = {self.about}"


_PAPER = Convention(
    "paper", "MACs",
    "conv + linear multiply-accumulates (the paper's FLOPS)",  # scalekit's captions, as ever
    "Tan & Le 2019 (FLOPS = multiply-adds); torchvision weight metadata; equals torch "
    "FlopCounterMode's total / 2",
    {"conv": _M, "linear": _M},
    tool="torch.utils.flop_counter.FlopCounterMode().get_total_flops() / 2")

_FVCORE = Convention(
    "fvcore", "MACs",
    "paper + 2 per BatchNorm element + 1 per global-pool input element (fvcore's 'flops' are "
    "multiply-adds)",
    "fvcore 0.1.5: nn/flop_count.py (_DEFAULT_SUPPORTED_OPS), nn/jit_handles.py "
    "(conv_flop_jit, batchnorm_flop_jit, elementwise_flop_counter(1, 0) for "
    "adaptive_avg_pool2d), nn/jit_analysis.py (_IGNORED_OPS)",
    {"conv": _M, "linear": _M,
     "bn": Rule(lambda op: 2 * op.out, "2N (eval mode; 5N if the model is left in train mode)"),
     "pooling": Rule(lambda op: pool_input(op) if op.is_global else 0,  # type: ignore[union-attr]
                     "global average pool: N_in; max pool: 0 (unsupported op)")},
    tool="fvcore.nn.FlopCountAnalysis(model.eval(), x).total()",
    notes=("biases are not counted (conv and linear handles count weights only)",
           "relu and dropout are ignored ops; hardtanh_ (ReLU6), silu_, sigmoid, max_pool2d, mul "
           "and add are unsupported ops, counted 0 with a warning",
           "it traces a real forward: eval mode matters (train-mode BatchNorm is 5N)"))

_PTFLOPS = Convention(
    "ptflops", "MACs",
    "paper + biases + 2 per BN element + activations and pooling as its module hooks and "
    "patched functionals see them (some twice)",
    "ptflops 0.7.5 backend='pytorch' (its default): pytorch_ops.py (MODULES_MAPPING, "
    "FUNCTIONAL_MAPPING, TENSOR_OPS_MAPPING), pytorch_engine.py; maintainer on the double "
    "count: sovrasov/flops-counter.pytorch#139",
    {"conv": _M, "linear": _M, "bias": _BIAS, "bn": _2N,
     "activation": _per_activation(
         {"relu": 2, "relu6": 1, "silu": 1, "sigmoid": 0},
         "ReLU 2N (module hook + patched F.relu); ReLU6 N (hook only: F.hardtanh is not "
         "patched); SiLU N (no hook; patched F.silu); Sigmoid 0"),
     "pooling": Rule(lambda op: (2 if op.op == "avg" else 1) * pool_input(op),  # type: ignore
                     "global average pool 2 N_in (hook + patched F.adaptive_avg_pool2d); max "
                     "pool N_in (scalekit's MaxPool subclass gets no hook; patched "
                     "F.max_pool2d)")},
    tool="ptflops.get_model_complexity_info(model, (C, H, W), backend='pytorch')",
    notes=("x * s and y + x run Tensor.__mul__ / __add__, which it does not patch: 0",
           "backend_specific_config={'count_functional': False} drops the patched functionals "
           "(ReLU and pools then count once, SiLU and max pool 0); not a profile here"))

_PTFLOPS_ATEN = Convention(
    "ptflops-aten", "MACs",
    "paper + biases: aten convolution and addmm only",
    "ptflops 0.7.5 backend='aten': aten_ops.py (ATEN_OPS_MAPPING), aten_engine.py",
    {"conv": _M, "linear": _M, "bias": _BIAS},
    tool="ptflops.get_model_complexity_info(model, (C, H, W), backend='aten')")

_THOP = Convention(
    "thop", "MACs",
    "paper + 4 per BN element + (H*W + 1) * C per global average pool",
    "thop 0.1.1.post2209072238: profile.py (register_hooks: rules by exact module type), "
    "vision/basic_hooks.py, vision/calc_func.py",
    {"conv": _M, "linear": _M,
     "bn": Rule(lambda op: 4 * op.out, "4N (calculate_norm 2N, doubled for affine)"),
     "pooling": Rule(lambda op: (op.h * op.w + 1) * op.c if op.is_global else 0,  # type: ignore
                     "global average pool (H*W + 1) * C (kernel adds + a divide per output); "
                     "max pool 0 (scalekit's MaxPool subclass has no rule)")},
    tool="thop.profile(model, inputs=(x,), verbose=False)[0]",
    notes=("biases are not counted; ReLU, ReLU6 and dropout are zero_ops; SiLU, Sigmoid and "
           "functional calls have no rule: 0",))

_TORCHINFO = Convention(
    "torchinfo", "MACs",
    "paper + biases + 2 per BN channel (parameter counts x output positions)",
    "torchinfo 1.8.0: layer_info.py (LayerInfo.calculate_macs), model_statistics.py",
    {"conv": _M, "linear": _M, "bias": _BIAS,
     "bn": Rule(lambda op: 2 * op.c, "2C (gamma and beta, times the batch; not spatial)")},  # type: ignore
    tool="torchinfo.summary(model, input_size=(1, C, H, W), device=..., verbose=0)"
         ".total_mult_adds",
    notes=("'mult-adds' are a module's parameters times its output positions (convs) or times "
           "the batch (other modules with parameters): parameter-free activations and pools "
           "count 0",))

_FULL = Convention(
    "full", "FLOPs",
    "every multiply and add of the forward pass: 2 per MAC, biases, BN, activations, pooling, "
    "the SE gate and residual adds",
    "scalekit's definition (docs/conventions.md); no tool counts this way",
    {"conv": _2M, "linear": _2M, "bias": _BIAS,
     "bn": Rule(lambda op: 2 * op.out, "2N (the folded per-channel a * x + b)"),
     "activation": _per_activation({"relu": 1, "relu6": 1, "silu": 1, "sigmoid": 1},
                                   "N (one op per output element, whatever the function)"),
     "pooling": Rule(lambda op: pool_input(op) if op.is_global  # type: ignore[union-attr]
                     else (op.kernel * op.kernel - 1) * op.out,  # type: ignore[union-attr]
                     "global average pool N_in ((H*W - 1) adds + 1 divide per channel); max "
                     "pool (k^2 - 1) N (comparisons)"),
     "se": Rule(numel, "N (one multiply per element of x)"),
     "add": Rule(numel, "N")},
    notes=("a dot product of length K counts 2K (not 2K - 1), so conv + linear equal torch "
           "FlopCounterMode's FLOPs exactly",))

CONVENTIONS: dict[str, Convention] = {c.name: c for c in (
    _PAPER, _FVCORE, _PTFLOPS, _PTFLOPS_ATEN, _THOP, _TORCHINFO, _FULL)}
NAMES: tuple[str, ...] = tuple(CONVENTIONS)


def get(name: str) -> Convention:
    """The convention called ``name``; :class:`UnknownConvention` lists the known ones."""
    try:
        return CONVENTIONS[name]
    except (KeyError, TypeError):
        raise UnknownConvention(f"unknown convention {name!r} (known: {', '.join(NAMES)})") \
            from None


@dataclass(frozen=True)
class ConventionCount:
    """A network counted under one convention: the total, each stage's, and each term's."""

    convention: str
    unit: str
    total: int
    stages: tuple[tuple[str, int], ...]
    terms: Mapping[str, int]


def count_convention(plan: NetworkPlan, name: str) -> ConventionCount:
    """``plan`` counted under the convention ``name`` (exact integers, batch 1)."""
    conv = get(name)
    stages = []
    terms = dict.fromkeys(TERMS, 0)
    for st in plan.stages:
        part = conv.breakdown(op for b in st.blocks for op in kind(b.kind).ops(b))
        for t, v in part.items():
            terms[t] += v
        stages.append((st.name, sum(part.values())))
    return ConventionCount(name, conv.unit, sum(terms.values()), tuple(stages), terms)


def count_all(plan: NetworkPlan) -> dict[str, ConventionCount]:
    """``plan`` under every convention, by name."""
    return {name: count_convention(plan, name) for name in NAMES}

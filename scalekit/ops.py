"""The primitive operations of a forward pass, as data (no torch).

Every block kind describes its forward pass as a sequence of these ops
(:meth:`scalekit.blocks.BlockKind.ops`), in the order its torch module runs them. Every count
scalekit reports is a sum over ops under a convention (counting.py: the paper's conv + linear
multiply-accumulates; params; pycls's activations), so a new kind brings its counts with it and
the analytic counter, the memory estimate and the torch module read one description.

Shapes are per image (batch 1); ``h`` x ``w`` is an op's input size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union


def out_size(size: int, kernel: int, stride: int) -> int:
    """Output size of a conv or pool with padding kernel // 2 (odd kernel): (H - 1) // s + 1."""
    pad = kernel // 2
    return (size + 2 * pad - kernel) // stride + 1


@dataclass(frozen=True)
class Conv:
    """A k x k conv with padding k // 2 over a ``cin`` x h x w input."""

    cin: int
    cout: int
    kernel: int
    h: int
    w: int
    stride: int = 1
    groups: int = 1
    bias: bool = False

    @property
    def ho(self) -> int:
        return out_size(self.h, self.kernel, self.stride)

    @property
    def wo(self) -> int:
        return out_size(self.w, self.kernel, self.stride)

    @property
    def weights(self) -> int:
        return self.kernel * self.kernel * (self.cin // self.groups) * self.cout

    @property
    def out(self) -> int:
        """Elements of the output."""
        return self.cout * self.ho * self.wo


@dataclass(frozen=True)
class _Elementwise:
    """An op over ``c`` x h x w elements whose output has that shape."""

    c: int
    h: int
    w: int

    @property
    def out(self) -> int:
        return self.c * self.h * self.w


@dataclass(frozen=True)
class BatchNorm(_Elementwise):
    """BatchNorm over ``c`` channels of h x w (eval: a per-channel affine map)."""


@dataclass(frozen=True)
class Activation(_Elementwise):
    """An elementwise nonlinearity ``name`` (relu, relu6, silu or sigmoid) over c x h x w."""

    name: str = "relu"


@dataclass(frozen=True)
class Pool:
    """Max or average pooling, k x k with padding k // 2; ``kernel`` 0 = global average pooling
    to 1 x 1."""

    op: str  # "max" | "avg"
    c: int
    h: int
    w: int
    kernel: int = 0
    stride: int = 1

    @property
    def is_global(self) -> bool:
        return self.kernel == 0

    @property
    def ho(self) -> int:
        return 1 if self.is_global else out_size(self.h, self.kernel, self.stride)

    @property
    def wo(self) -> int:
        return 1 if self.is_global else out_size(self.w, self.kernel, self.stride)

    @property
    def out(self) -> int:
        return self.c * self.ho * self.wo


@dataclass(frozen=True)
class Linear:
    """A fully connected layer."""

    cin: int
    cout: int
    bias: bool = True

    @property
    def out(self) -> int:
        return self.cout


@dataclass(frozen=True)
class Elementwise(_Elementwise):
    """``op`` "add" (a residual sum) or "mul" (a squeeze-excitation gate, broadcast from
    c x 1 x 1) of two tensors into a c x h x w output."""

    op: str = "add"


Op = Union[Conv, BatchNorm, Activation, Pool, Linear, Elementwise]

"""``classifier``: global average pooling, dropout, a linear layer (every head); not a stage kind."""

from __future__ import annotations

from dataclasses import dataclass

from ..ops import Linear, Pool
from .base import BlockKind, BlockPlan, Weights


@dataclass(frozen=True, kw_only=True)
class ClassifierPlan(BlockPlan):
    dropout: float = 0.0  # before the linear layer (training only)

    @property
    def ho(self) -> int:
        return 1

    @property
    def wo(self) -> int:
        return 1


class ClassifierKind(BlockKind):
    name = "classifier"
    about = "global average pooling, dropout, linear"
    module = "Classifier"

    def label(self, b):
        return "Pool + FC"

    def wire(self, stage, *, cin, h, w, stride, drop_path):
        raise TypeError("classifier is not a stage kind: it ends the head")

    def plan(self, cin: int, classes: int, h: int, w: int, dropout: float) -> ClassifierPlan:
        return ClassifierPlan(kind=self.name, cin=cin, cout=classes, h=h, w=w, dropout=dropout)

    def ops(self, b):
        yield Pool("avg", b.cin, b.h, b.w)  # global: dropout and flatten cost nothing
        yield Linear(b.cin, b.cout)

    def weights(self, b):
        return [Weights("fc", "fc", "linear", (b.cout, b.cin), bias=True)]


KIND = ClassifierKind()

"""``cost:USD``: keep every trace whose LM calls cost at least ``USD`` in total (``gen_ai.usage.cost``)."""

from __future__ import annotations

from dataclasses import dataclass

from dspy_otel._attributes import USAGE_COST
from dspy_otel.sampling._ratio import parse_positive
from dspy_otel.sampling.policies._base import TraceView, number_sum

NAME = "cost"


@dataclass(frozen=True)
class CostPolicy:
    """Keeps a trace whose LM spans cost at least ``min_usd`` together (as DSPy reports cost)."""

    min_usd: float

    def keeps(self, trace: TraceView) -> bool:
        """Whether the trace cost at least the threshold."""
        return number_sum(trace, (USAGE_COST,)) >= self.min_usd

    def __str__(self) -> str:
        return f"{NAME}:{self.min_usd:g}"


def parse(arg: str | None) -> CostPolicy:
    """``cost:USD`` with ``USD`` > 0."""
    try:
        return CostPolicy(parse_positive(arg or "", "US dollars"))
    except ValueError:
        raise ValueError("allowed: cost:USD with USD a number > 0 (e.g. cost:0.05)") from None

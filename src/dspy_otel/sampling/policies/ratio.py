"""``ratio:R``: keep a share ``R`` (0.0 to 1.0) of traces, decided by trace ID.

The decision is the one the SDK's ``TraceIdRatioBased`` sampler makes at the
same ratio, so other services sampling by ratio agree on which traces to keep.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dspy_otel.sampling._ratio import TRACE_ID_LIMIT, bound, parse_ratio
from dspy_otel.sampling.policies._base import TraceView

NAME = "ratio"


@dataclass(frozen=True)
class RatioPolicy:
    """Keeps the traces whose ID falls within ``ratio``."""

    ratio: float
    _bound: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_bound", bound(self.ratio))  # worked out once, not per trace

    def keeps(self, trace: TraceView) -> bool:
        """Whether the trace ID is within the ratio."""
        return trace.trace_id & TRACE_ID_LIMIT < self._bound

    def __str__(self) -> str:
        return f"{NAME}:{self.ratio:g}"


def parse(arg: str | None) -> RatioPolicy:
    """``ratio:R`` with ``R`` from 0.0 to 1.0."""
    try:
        return RatioPolicy(parse_ratio(arg or ""))
    except ValueError:
        raise ValueError("allowed: ratio:R with R a number from 0.0 to 1.0 (e.g. ratio:0.05)") from None

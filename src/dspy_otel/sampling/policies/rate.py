"""``rate:N``: keep at most ``N`` traces per second (of those no earlier policy kept)."""

from __future__ import annotations

from dataclasses import dataclass, field

from dspy_otel.sampling._bucket import TokenBucket
from dspy_otel.sampling._ratio import parse_positive
from dspy_otel.sampling.policies._base import TraceView

NAME = "rate"


@dataclass(frozen=True)
class RatePolicy:
    """Keeps traces while a token bucket refilled at ``traces_per_s`` has a token."""

    traces_per_s: float
    _bucket: TokenBucket = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_bucket", TokenBucket(self.traces_per_s))

    def keeps(self, trace: TraceView) -> bool:
        """Whether the rate still allows one more trace now."""
        return self._bucket.take()

    def __str__(self) -> str:
        return f"{NAME}:{self.traces_per_s:g}"


def parse(arg: str | None) -> RatePolicy:
    """``rate:N`` with ``N`` > 0 traces per second."""
    try:
        return RatePolicy(parse_positive(arg or "", "traces per second"))
    except ValueError:
        raise ValueError("allowed: rate:N with N > 0 traces per second (e.g. rate:10)") from None

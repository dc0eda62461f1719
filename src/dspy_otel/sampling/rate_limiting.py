"""``dspy_otel_rate_limiting``: at most N new traces per second, decided when the trace starts.

``OTEL_TRACES_SAMPLER=dspy_otel_rate_limiting`` with ``OTEL_TRACES_SAMPLER_ARG=N``
(a number > 0; ``0.5`` = one trace every two seconds; default 10). A token
bucket refills at N per second and holds up to ``max(N, 1)``, so a burst after a
quiet spell is kept up to that many. Spans below a root follow their parent,
so a trace is kept or dropped whole.

Example:
    >>> from dspy_otel.sampling.rate_limiting import RateLimitingSampler
    >>> RateLimitingSampler(5).get_description()
    'DSPyOtelRateLimiting{5/s}'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, TraceState
from opentelemetry.util.types import Attributes

from dspy_otel.sampling._bucket import TokenBucket
from dspy_otel.sampling._ratio import parse_positive

NAME = "dspy_otel_rate_limiting"
DEFAULT_PER_S = 10.0


def parse_arg(raw: str) -> float:
    """``OTEL_TRACES_SAMPLER_ARG`` for this sampler: new traces per second (> 0)."""
    return parse_positive(raw, "traces per second")


class RateLimitingSampler(Sampler):
    """Samples at most ``per_s`` root spans per second (wrap in ``ParentBased`` for whole traces).

    Args:
        per_s: New traces per second (> 0).
        clock: Monotonic seconds (a fake clock in tests).
    """

    def __init__(self, per_s: float, clock: Callable[[], float] | None = None) -> None:
        self._per_s = per_s
        self._bucket = TokenBucket(per_s) if clock is None else TokenBucket(per_s, clock)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        """Sample while the bucket has a token."""
        if self._bucket.take():
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)
        return SamplingResult(Decision.DROP)

    def get_description(self) -> str:
        """``DSPyOtelRateLimiting{N/s}``."""
        return f"DSPyOtelRateLimiting{{{self._per_s:g}/s}}"

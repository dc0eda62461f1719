"""What a tail policy sees and answers: a complete (or early-decided) trace, and keep or not."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from opentelemetry.sdk.trace import ReadableSpan


@dataclass(slots=True)  # not frozen: a frozen dataclass costs more to build, and one is built per trace
class TraceView:
    """The spans of one trace that this process buffered, at decision time.

    Attributes:
        trace_id: The trace ID.
        spans: Every buffered span of the trace, in the order they ended.
        duration_ns: The local root's duration; for a trace decided before its root ended (a bound
            was reached, the decision wait ran out, a flush), the time from its first start until now.
        complete: Whether the local root had ended.
    """

    trace_id: int
    spans: Sequence[ReadableSpan]
    duration_ns: int
    complete: bool


class Policy(Protocol):
    """A tail policy: a frozen, typed config whose ``keeps`` says whether it keeps a trace.

    ``str(policy)`` gives the policy back as written in ``DSPY_OTEL_TAIL_POLICIES`` (``latency:5000``).
    """

    def keeps(self, trace: TraceView) -> bool:
        """Whether this policy keeps ``trace`` (the trace is kept when any policy keeps it)."""


def number_sum(trace: TraceView, keys: Sequence[str]) -> float:
    """The sum over every span of the numeric attributes named ``keys``."""
    total = 0.0
    for span in trace.spans:
        attributes = span.attributes or {}
        for key in keys:
            value = attributes.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                total += value
    return total

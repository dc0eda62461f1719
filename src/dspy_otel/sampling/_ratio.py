"""Trace-ID based ratio decisions, the same as the SDK's ``TraceIdRatioBased``.

A trace kept at ratio R is kept at every ratio above R, and every service that
uses the standard ratio sampler with the same R makes the same decision for it.
"""

from __future__ import annotations

from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

TRACE_ID_LIMIT = TraceIdRatioBased.TRACE_ID_LIMIT


def bound(ratio: float) -> int:
    """The bound a trace ID (masked with :data:`TRACE_ID_LIMIT`) must be below to be kept at ``ratio``."""
    return TraceIdRatioBased.get_bound_for_rate(ratio)


def keeps(trace_id: int, ratio: float) -> bool:
    """Whether a trace-ID ratio sampler at ``ratio`` keeps ``trace_id``."""
    return trace_id & TRACE_ID_LIMIT < bound(ratio)


def parse_ratio(raw: str) -> float:
    """A ratio from 0.0 to 1.0; raises ``ValueError("allowed: ...")`` otherwise."""
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError("allowed: a number from 0.0 to 1.0") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError("allowed: a number from 0.0 to 1.0")
    return value


def parse_positive(raw: str, what: str) -> float:
    """A finite number > 0 (``what`` names it in the message); raises ``ValueError("allowed: ...")``."""
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError(f"allowed: {what}, a number > 0") from None
    if not 0.0 < value < float("inf"):
        raise ValueError(f"allowed: {what}, a number > 0")
    return value

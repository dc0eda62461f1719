"""The tail sampler's bounds: :class:`TailLimits`, and the memory estimate the byte bound is checked against.

:class:`~dspy_otel.sampling.tail.TailSamplingProcessor` adds :func:`estimate_bytes` of each span it
buffers, and :data:`DECISION_BYTES` for each decision it remembers, to its ``buffered_bytes``; past
``TailLimits.max_mib`` it decides the oldest traces early.
"""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.sdk.trace import ReadableSpan


@dataclass(frozen=True)
class TailLimits:
    """The bounds of the buffer.

    Attributes:
        decision_wait_ms: Longest wait for a trace's root to end, from its first buffered span.
        max_traces: Traces buffered at once (and decisions remembered for late spans).
        max_spans_per_trace: Spans buffered for one trace.
        max_mib: Estimated MiB buffered in all.
    """

    decision_wait_ms: int = 30_000
    max_traces: int = 10_000
    max_spans_per_trace: int = 1_000
    max_mib: int = 64


_SPAN_BYTES, _ATTRIBUTE_BYTES, _EVENT_BYTES = 2_700, 40, 600  # measured with tracemalloc on SDK 1.45 spans
DECISION_BYTES = 115  # one remembered decision (trace ID -> kept) in the ordered dict


def _attribute_bytes(attributes: object) -> int:
    """The per-attribute part plus the length of every text value."""
    plain = getattr(attributes, "_dict", attributes)  # the SDK's BoundedAttributes keeps a plain dict inside
    if not isinstance(plain, dict):
        return 0
    size = _ATTRIBUTE_BYTES * len(plain)
    for value in plain.values():
        if type(value) is str:
            size += len(value)
    return size


def estimate_bytes(span: ReadableSpan) -> int:
    """The memory a buffered span holds: a fixed part, a part per attribute and event, and every text.

    Calibrated with tracemalloc (SDK 1.45): a span with one attribute holds ~2.8 KB, a dspy-otel LM
    span with twelve ~3.3 KB, plus the length of each text. It reads the SDK's own fields, not the
    public properties, which copy (``events``) or wrap (``attributes``) on every read.
    """
    try:
        attributes, events = span._attributes, span._events
    except AttributeError:  # not the SDK's ReadableSpan
        attributes, events = span.attributes, span.events
    size = _SPAN_BYTES + (_attribute_bytes(attributes) if attributes is not None else 0)
    if len(events):  # iterating the SDK's bounded list copies it under a lock: only when there is something
        for event in events:
            size += _EVENT_BYTES + _attribute_bytes(event.attributes)
    return size

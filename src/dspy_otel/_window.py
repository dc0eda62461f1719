"""The optional development window: compact records of the last N LM calls.

It replaces ``dspy.inspect_history`` when DSPy's own history is switched off.
The window is a ``deque(maxlen=N)``, so it never grows past N records; with
``DSPY_OTEL_WINDOW=0`` (the production default) nothing is kept at all.

Example:
    >>> import dspy_otel
    >>> dspy_otel.configure(profile="development")  # doctest: +SKIP
    >>> program(question="...")                       # doctest: +SKIP
    >>> dspy_otel.inspect_history(1)                  # doctest: +SKIP
"""

from __future__ import annotations

import sys
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO


@dataclass(frozen=True)
class CallRecord:
    """One LM call, as the window keeps it.

    Attributes:
        timestamp: When the call started.
        model: The DSPy model string, e.g. ``openai/gpt-4o-mini``.
        messages: The request messages when content capture is on, else ``None``.
        outputs: The LM outputs when content capture is on, else ``None``.
        input_tokens: Billed input tokens (``None`` on a cache hit or when unknown).
        output_tokens: Billed output tokens.
        latency_ms: Wall time of the call.
        cache_hit: Whether DSPy answered from its cache.
        error: ``"Type: message"`` when the call failed.
        trace_id: The call's trace ID in hex, to find it in Jaeger.
        sampled: Whether the head sampler (or ``dspy_otel.debug()``) kept the call's trace; when it did
            not, the tail sampler may still keep it.
    """

    timestamp: datetime
    model: str
    messages: list[dict[str, Any]] | None
    outputs: list[Any] | None
    input_tokens: int | None
    output_tokens: int | None
    latency_ms: float
    cache_hit: bool
    error: str | None
    trace_id: str
    sampled: bool


class Window:
    """A bounded, thread-safe window of the last ``size`` call records (``deque.append`` is atomic)."""

    def __init__(self, size: int) -> None:
        self._records: deque[CallRecord] = deque(maxlen=size)

    def add(self, record: CallRecord) -> None:
        """Keep ``record``, dropping the oldest one when the window is full."""
        self._records.append(record)

    def last(self, n: int) -> list[CallRecord]:
        """The newest ``n`` records, oldest first."""
        records = list(self._records)
        return records[-n:] if n > 0 else []


_window: Window | None = None


def set_window(size: int) -> None:
    """Install a window of ``size`` records (``0`` removes it)."""
    global _window  # noqa: PLW0603 - the process-wide window is the point of this module
    _window = Window(size) if size > 0 else None


def remove_window() -> None:
    """Drop the window and its records."""
    set_window(0)


def current_window() -> Window | None:
    """The installed window, or ``None`` when the window is off."""
    return _window


def _text(parts: list[dict[str, Any]]) -> str:
    return "\n".join(str(p.get("content", f"<{p.get('type')}>")) for p in parts)


def trace_fate(record: CallRecord) -> str:
    """Whether the call's trace was exported: ``exported``, ``not exported (sampled out)`` or ``pending``."""
    if record.sampled:
        return "exported"
    from dspy_otel.sampling.tail import latest

    processor = latest()
    kept = processor.decision(int(record.trace_id, 16)) if processor is not None else False
    if kept is None:
        return "pending tail sampling"
    return "exported (kept by tail sampling)" if kept else "not exported (sampled out)"


def tokens(input_tokens: Any, output_tokens: Any) -> str:
    """``tokens in=12 out=34``, with ``-`` for a count that is not known (a failed call, a cache hit)."""
    shown = ["-" if count is None else str(count) for count in (input_tokens, output_tokens)]
    return f"tokens in={shown[0]} out={shown[1]}"


def summary_line(record: CallRecord) -> str:
    """The first line of :func:`format_record`: when, model, latency, tokens, trace ID and what became of it."""
    return (
        f"[{record.timestamp:%Y-%m-%dT%H:%M:%S}] {record.model}  {record.latency_ms:.1f} ms"
        f"  {tokens(record.input_tokens, record.output_tokens)}"
        f"{'  (cache hit)' if record.cache_hit else ''}  trace={record.trace_id} ({trace_fate(record)})"
    )


def format_record(record: CallRecord) -> str:
    """One record in the layout of ``dspy.inspect_history``."""
    lines = [summary_line(record)]
    if record.messages is None:
        lines.append("  (content not captured; set OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=SPAN_ONLY)")
    else:
        for message in record.messages:
            lines.append(f"{str(message.get('role', '')).capitalize()} message:\n\n{_text(message['parts'])}\n")
    if record.error:
        lines.append(f"Error: {record.error}")
    elif record.outputs is not None:
        lines.append("Response:\n")
        lines.extend(str(o.get("text") if isinstance(o, dict) else o) for o in record.outputs)
    return "\n".join(lines) + "\n"


def inspect_history(n: int = 1, file: TextIO | None = None) -> None:
    """Print the last ``n`` LM calls from the window, like ``dspy.inspect_history(n)``.

    Args:
        n: How many of the most recent calls to print.
        file: Where to print (default ``sys.stdout``).
    """
    out = file or sys.stdout
    if _window is None:
        out.write("dspy-otel: the call window is off (set DSPY_OTEL_WINDOW=N or profile=development).\n")
        return
    for record in _window.last(n):
        out.write("\n" + format_record(record))

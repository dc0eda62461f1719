"""The current trace and span IDs, for a response header or a log line, and log correlation.

With ``DSPY_OTEL_LOG_CORRELATION=true`` (or ``configure(log_correlation=True)``) every record of
the standard ``logging`` module carries ``otelTraceID``, ``otelSpanID``, ``otelTraceSampled`` and
``otelServiceName``, the names ``opentelemetry-instrumentation-logging`` uses (``"0"`` outside a
span), so a format such as ``%(message)s trace_id=%(otelTraceID)s`` works with either. That
package is not used itself: its recent versions also attach a log-export handler to the root
logger, and as an installed instrumentor ``opentelemetry-instrument`` would turn it on for
every user of dspy-otel.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from opentelemetry import trace


def trace_id() -> str | None:
    """The current trace's ID as 32 hex digits, or ``None`` outside any span.

    For a response header or an error message, so that a customer's report leads to the trace.
    Inside a trace that sampling drops the ID is still returned (logs correlate; the backend
    will not have the trace).

    Example:
        >>> import dspy_otel
        >>> dspy_otel.trace_id() is None   # no span is current here
        True
    """
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def span_id() -> str | None:
    """The current span's ID as 16 hex digits, or ``None`` outside any span."""
    context = trace.get_current_span().get_span_context()
    return format(context.span_id, "016x") if context.is_valid else None


def correlate_logs(service_name: str = "") -> Callable[[], None]:
    """Make every ``logging`` record carry the current trace and span IDs; return the function that undoes it.

    The record factory in place (the standard one or another library's) still builds each record.
    Undoing restores it when no one installed a factory over this one since, and otherwise makes
    this one pass records through untouched.
    """
    previous = logging.getLogRecordFactory()
    active = True

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if active:
            context = trace.get_current_span().get_span_context()
            valid = context.is_valid
            record.otelTraceID = format(context.trace_id, "032x") if valid else "0"
            record.otelSpanID = format(context.span_id, "016x") if valid else "0"
            record.otelTraceSampled = valid and context.trace_flags.sampled
            record.otelServiceName = service_name
        return record

    logging.setLogRecordFactory(factory)

    def undo() -> None:
        nonlocal active
        active = False
        if logging.getLogRecordFactory() is factory:
            logging.setLogRecordFactory(previous)

    return undo

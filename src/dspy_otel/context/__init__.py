"""Request context: who a run works for on every span, and the trace ID for a response or a log line.

Example:
    >>> import dspy_otel
    >>> with dspy_otel.attributes(user_id="u-42", session_id="s-7"):   # doctest: +SKIP
    ...     prediction = program(question="...")
    ...     response.headers["x-trace-id"] = dspy_otel.trace_id()

See ``docs/request-context.md``.
"""

from dspy_otel.context._ids import correlate_logs, span_id, trace_id
from dspy_otel.context._scope import AttributeScope, ContextAttributesProcessor, attributes

__all__ = ["AttributeScope", "ContextAttributesProcessor", "attributes", "correlate_logs", "span_id", "trace_id"]

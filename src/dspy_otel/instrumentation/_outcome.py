"""What the end of a call leaves behind: the error recorded on its span, the development window's record."""

from __future__ import annotations

import time
import traceback
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.trace import Span, Status, StatusCode

from dspy_otel._attributes import CACHE_HIT
from dspy_otel._window import CallRecord
from dspy_otel.instrumentation import _content

if TYPE_CHECKING:
    from dspy_otel.instrumentation._spans import LMCall


def call_record(
    span: Span, call: LMCall, messages: Any, outputs: Any, exception: BaseException | None, *, secrets: Iterable[str]
) -> CallRecord:
    """The window's record of one LM call."""
    attrs = call.attributes
    return CallRecord(
        timestamp=datetime.now(),
        model=str(getattr(call.lm, "model", "")),
        messages=messages,
        outputs=list(outputs) if outputs is not None else None,
        input_tokens=attrs.get(gen_ai.GEN_AI_USAGE_INPUT_TOKENS),
        output_tokens=attrs.get(gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS),
        latency_ms=(time.perf_counter_ns() - call.started_ns) / 1e6,
        cache_hit=bool(attrs.get(CACHE_HIT, False)),
        error=_content.scrub(f"{type(exception).__name__}: {exception}", secrets) if exception else None,
        trace_id=format(span.get_span_context().trace_id, "032x"),
        sampled=span.get_span_context().trace_flags.sampled,
    )


def record_error(span: Span, exception: BaseException, secrets: Iterable[str], limit: int) -> None:
    """ERROR status, ``error.type`` and an ``exception`` event, with credentials scrubbed and each text bounded.

    Exception messages can carry a whole prompt or LM response (DSPy's parse errors quote it), so
    the status description, message and stack trace are cut to the content limit like content.
    """
    try:
        raw = str(exception)
    except Exception:  # a buggy __str__: the status still says ERROR
        raw = "<str() failed>"
    message = _content.bounded(raw, limit, secrets)
    error_type = type(exception).__qualname__
    span.set_status(Status(StatusCode.ERROR, _content.bounded(f"{error_type}: {raw}", limit, secrets)))
    span.set_attribute(error_attributes.ERROR_TYPE, error_type)
    stack = "".join(traceback.format_exception(type(exception), exception, exception.__traceback__))
    span.add_event(
        "exception",
        {
            "exception.type": f"{type(exception).__module__}.{error_type}",
            "exception.message": message,
            "exception.stacktrace": _content.bounded(stack, limit, secrets),
        },
    )

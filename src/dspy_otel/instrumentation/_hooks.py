"""DSPy callback hooks that open and close spans for modules, LM calls, tools and evaluations.

Per-call state lives in a ``ContextVar`` stack of frames, so nothing outlives
the call, whatever path it ends on. DSPy's own worker threads (``Parallel``,
``Evaluate``) do not carry the OpenTelemetry context but do carry DSPy's
``ACTIVE_CALL_ID``; a weak-valued map from call id to open span lets a call in
a worker find its parent (entries vanish with the span, so it cannot leak).
"""

from __future__ import annotations

import logging
import time
import traceback
import weakref
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dspy.utils.callback import BaseCallback
from dspy.utils.callback_context import ACTIVE_CALL_ID
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from dspy_otel._window import CallRecord, current_window
from dspy_otel.instrumentation import _content, _lm

logger = logging.getLogger("dspy_otel")

MODULE_CLASS = "dspy.module.class"
CALL_ID = "dspy.call_id"
_DETAILS_EVENT = "gen_ai.client.inference.operation.details"


@dataclass
class _Frame:
    """One open DSPy call: its span, the context token to detach, and LM-call details."""

    call_id: str
    span: Span
    token: object
    lm: Any = None
    inputs: dict[str, Any] = field(default_factory=dict)
    started_ns: int = 0
    attributes: dict[str, Any] = field(default_factory=dict)
    finish_reasons: list[str] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)


_STACK: ContextVar[tuple[_Frame, ...]] = ContextVar("dspy_otel_frames", default=())
_failures_logged: set[str] = set()


def log_failure_once(where: str, exc: BaseException) -> None:
    """Log a telemetry failure once per place and exception type; never raise."""
    key = f"{where}:{type(exc).__name__}"
    if key not in _failures_logged:
        _failures_logged.add(key)
        logger.warning(
            "dspy-otel: %s failed (%s: %s); the span is kept, the app goes on", where, type(exc).__name__, exc
        )


class SpanHooks(BaseCallback):  # type: ignore[misc]  # dspy ships no type information
    """A DSPy callback that turns module, LM, tool and evaluation calls into spans.

    Args:
        tracer: The tracer spans are created with.
        capture_content: ``NO_CONTENT`` | ``SPAN_ONLY`` | ``EVENT_ONLY`` | ``SPAN_AND_EVENT``.
        content_max_length: Characters kept of each captured content attribute.
    """

    def __init__(self, tracer: trace.Tracer, capture_content: str, content_max_length: int) -> None:
        self._tracer = tracer
        self._on_span = _content.capture_on_span(capture_content)
        self._in_event = _content.capture_in_event(capture_content)
        self._capture = self._on_span or self._in_event
        self._max = content_max_length
        self._open: weakref.WeakValueDictionary[str, Span] = weakref.WeakValueDictionary()

    # -- span plumbing ---------------------------------------------------------------------------

    def _parent_context(self) -> otel_context.Context | None:
        """``None`` (use the current context), or the span of DSPy's active call when this thread lost it."""
        if trace.get_current_span().get_span_context().is_valid:
            return None
        active = ACTIVE_CALL_ID.get()
        parent = self._open.get(active) if active is not None else None
        return trace.set_span_in_context(parent) if parent is not None else None

    def _open_span(self, call_id: str, name: str, kind: SpanKind, attributes: dict[str, Any]) -> _Frame:
        parent = self._parent_context()
        span = self._tracer.start_span(name, context=parent, kind=kind, attributes=attributes)
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        frame = _Frame(call_id, span, token)
        _STACK.set((*_STACK.get(), frame))
        if kind is not SpanKind.CLIENT:
            self._open[call_id] = span
        return frame

    def _close(self, call_id: str) -> _Frame | None:
        stack = _STACK.get()
        for index in range(len(stack) - 1, -1, -1):
            if stack[index].call_id == call_id:
                frame = stack[index]
                _STACK.set(stack[:index])
                return frame
        return None

    def _finish(self, frame: _Frame, exception: BaseException | None, secrets: list[str] | None = None) -> None:
        try:
            if exception is not None:
                _record_error(frame.span, exception, secrets or [])
        finally:
            frame.span.end()
            otel_context.detach(frame.token)  # type: ignore[arg-type]

    # -- modules, tools, evaluate ----------------------------------------------------------------

    def on_module_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        """Open an INTERNAL span named after the module's class."""
        name = type(instance).__name__
        self._open_span(call_id, name, SpanKind.INTERNAL, {MODULE_CLASS: type(instance).__qualname__})

    def on_module_end(self, call_id: str, outputs: Any | None, exception: Exception | None = None) -> None:
        """Close the module's span, recording an exception as ERROR (scrubbed of the credentials of LMs under it)."""
        frame = self._close(call_id)
        if frame is not None:
            self._finish(frame, exception, sorted(frame.secrets, key=len, reverse=True))

    on_evaluate_start = on_module_start
    on_evaluate_end = on_module_end

    def on_tool_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        """Open an ``execute_tool {name}`` span."""
        name = str(getattr(instance, "name", None) or type(instance).__name__)
        self._open_span(
            call_id,
            f"execute_tool {name}",
            SpanKind.INTERNAL,
            {gen_ai.GEN_AI_OPERATION_NAME: "execute_tool", gen_ai.GEN_AI_TOOL_NAME: name},
        )

    on_tool_end = on_module_end

    # -- LM calls ---------------------------------------------------------------------------------

    def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        """Open the CLIENT span with the request attributes, before the request is sent."""
        try:
            attributes = _lm.request_attributes(instance, inputs.get("kwargs") or {})
        except Exception as exc:
            log_failure_once("reading LM request attributes", exc)
            attributes = {}
        frame = self._open_span(call_id, _lm.span_name(instance), SpanKind.CLIENT, attributes)
        frame.lm, frame.inputs, frame.started_ns = instance, inputs, time.perf_counter_ns()

    def on_lm_result(self, result: Any) -> None:
        """Put usage, cost, response model and cache hit of the innermost LM call onto its span."""
        stack = _STACK.get()
        if not stack or stack[-1].lm is None:
            return
        frame = stack[-1]
        try:
            frame.attributes, frame.finish_reasons = _lm.result_attributes(result)
            frame.span.set_attributes(frame.attributes)
        except Exception as exc:
            log_failure_once("reading LM usage", exc)

    def on_lm_end(self, call_id: str, outputs: Any | None, exception: Exception | None = None) -> None:
        """Record content (when captured) and the window record, then end the span."""
        frame = self._close(call_id)
        if frame is None:
            return
        secrets: list[str] = []
        try:
            secrets = _content.secret_values(getattr(frame.lm, "kwargs", None) or {})
            secrets += _content.secret_values(frame.inputs.get("kwargs") or {})
            for outer in _STACK.get():  # an LM error re-raised through modules must be scrubbed there too
                outer.secrets.update(secrets)
            self._record_content(frame, outputs, exception, secrets)
        except Exception as exc:
            log_failure_once("recording LM content", exc)
        finally:
            self._finish(frame, exception, secrets)

    def _record_content(self, frame: _Frame, outputs: Any, exception: BaseException | None, secrets: list[str]) -> None:
        window = current_window()
        recording = frame.span.is_recording()
        if not (window is not None or (self._capture and recording)):
            return
        messages = outputs_json = None
        if self._capture:
            messages = _content.input_messages(frame.inputs.get("prompt"), frame.inputs.get("messages"))
            if outputs is not None:
                outputs_json = _content.output_messages(outputs, frame.finish_reasons)
        if self._capture and recording:
            details: dict[str, str] = {}
            details[gen_ai.GEN_AI_INPUT_MESSAGES] = _content.scrub(_content.to_json(messages or [], self._max), secrets)
            if outputs_json is not None:
                details[gen_ai.GEN_AI_OUTPUT_MESSAGES] = _content.scrub(
                    _content.to_json(outputs_json, self._max), secrets
                )
            if self._on_span:
                frame.span.set_attributes(details)
            if self._in_event:
                frame.span.add_event(_DETAILS_EVENT, details)
        if window is not None:
            window.add(_call_record(frame, messages, outputs if self._capture else None, exception, secrets))


def _call_record(
    frame: _Frame, messages: Any, outputs: Any, exception: BaseException | None, secrets: list[str]
) -> CallRecord:
    attrs = frame.attributes
    return CallRecord(
        timestamp=datetime.now(),
        model=str(getattr(frame.lm, "model", "")),
        messages=messages,
        outputs=list(outputs) if outputs is not None else None,
        input_tokens=attrs.get(gen_ai.GEN_AI_USAGE_INPUT_TOKENS),
        output_tokens=attrs.get(gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS),
        latency_ms=(time.perf_counter_ns() - frame.started_ns) / 1e6,
        cache_hit=bool(attrs.get(_lm.CACHE_HIT, False)),
        error=_content.scrub(f"{type(exception).__name__}: {exception}", secrets) if exception else None,
        trace_id=format(frame.span.get_span_context().trace_id, "032x"),
    )


def _record_error(span: Span, exception: BaseException, secrets: list[str]) -> None:
    """ERROR status, ``error.type`` and an ``exception`` event, with credentials scrubbed."""
    message = _content.scrub(str(exception), secrets)
    error_type = type(exception).__qualname__
    span.set_status(Status(StatusCode.ERROR, f"{error_type}: {message}"))
    span.set_attribute(error_attributes.ERROR_TYPE, error_type)
    stack = "".join(traceback.format_exception(type(exception), exception, exception.__traceback__))
    span.add_event(
        "exception",
        {
            "exception.type": f"{type(exception).__module__}.{error_type}",
            "exception.message": message,
            "exception.stacktrace": _content.scrub(stack, secrets),
        },
    )

"""Content capture: prompts, outputs and module inputs, bounded, scrubbed and redacted, on spans and the window."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.trace import Span

from dspy_otel._window import Window
from dspy_otel.instrumentation import _content, _kinds, _outcome
from dspy_otel.instrumentation._failures import log_failure_once
from dspy_otel.sampling._scopes import debugging

if TYPE_CHECKING:
    from opentelemetry.context import Context

    from dspy_otel.instrumentation._spans import LMCall

_DETAILS_EVENT = "gen_ai.client.inference.operation.details"


class ContentCapture:
    """What is captured where, the credentials to scrub, and the redaction hook.

    Args:
        capture_content: ``NO_CONTENT`` | ``SPAN_ONLY`` | ``EVENT_ONLY`` | ``SPAN_AND_EVENT``.
        max_length: Characters kept of each captured text.
        redact: Rewrites each captured text before it is recorded (``None``: as it is).
    """

    def __init__(self, capture_content: str, max_length: int, redact: Callable[[str], str] | None) -> None:
        self.on_span = _content.capture_on_span(capture_content)
        self.in_event = _content.capture_in_event(capture_content)
        self.max = max_length
        self.redact = redact
        self.secrets: set[str] = set()  # credential values of traced LMs, scrubbed from every text

    def modes(self, context: Context) -> tuple[bool, bool]:
        """(on the span, in an event) for a call in ``context``: ``dspy_otel.debug()`` puts content on the span."""
        if not (self.on_span or self.in_event) and debugging(context):
            return True, False
        return self.on_span, self.in_event

    def learn(self, kwargs: Any) -> None:
        """Remember the credential values among an LM's or a call's keyword arguments."""
        self.secrets.update(_content.secret_values(kwargs or {}))

    def module_json(self, value: Any) -> str:
        """A module's inputs or outputs as bounded, scrubbed (and redacted) JSON.

        The credentials of DSPy's current LM are learnt first: a module's inputs are recorded before
        any LM call of the run has shown its key.
        """
        return self._text(value, as_json=True)

    def value_text(self, value: Any) -> tuple[str, str]:
        """A tool's result as bounded, scrubbed (and redacted) text, with its mime type.

        A string is kept as it is (``text/plain``), anything else becomes JSON (``application/json``).
        """
        if isinstance(value, str):
            return self._text(value, as_json=False), _kinds.TEXT
        return self._text(value, as_json=True), _kinds.JSON

    def _text(self, value: Any, *, as_json: bool) -> str:
        self.learn(getattr(_current_lm(), "kwargs", None))
        if as_json:
            text = _content.to_json(value, self.max, self.secrets)
        else:
            text = _content.bounded(value, self.max, self.secrets)
        if self.redact is not None:
            redacted = self.redacted(self.redact, [{"role": "module", "parts": [{"content": text}]}], None, None)
            text = str(redacted[0][0]["parts"][0]["content"]) if redacted else "(content dropped: redaction failed)"
        return text

    @staticmethod
    def redacted(
        redact: Callable[[str], str], messages: list[dict[str, Any]], outputs_json: Any, outputs: Any
    ) -> tuple[list[dict[str, Any]], Any, Any] | None:
        """Messages, output messages and raw outputs with every text redacted; ``None`` if the hook fails."""

        def text(value: str) -> str:
            out = redact(value)
            if not isinstance(out, str):
                raise TypeError(f"the redaction hook returned {type(out).__name__}, not str")
            return out

        try:
            return (
                _content.map_messages(messages, text),
                _content.map_messages(outputs_json, text) if outputs_json else None,
                _content.map_outputs(outputs, text) if outputs is not None else None,
            )
        except Exception as exc:  # a failing redaction hook drops the content, never the call
            log_failure_once("redacting content (the content is dropped)", exc)
            return None

    def limit(self, span: Span) -> int:
        """The content limit, lowered to the span's ``OTEL_[SPAN_]ATTRIBUTE_VALUE_LENGTH_LIMIT``.

        The SDK cuts longer values silently: cutting them here first keeps every cut marked.
        """
        limits = getattr(span, "_limits", None)  # an SDK span's SpanLimits; other spans have none
        lengths = (getattr(limits, "max_span_attribute_length", None), getattr(limits, "max_attribute_length", None))
        return min([self.max, *(n for n in lengths if isinstance(n, int))])

    def record_lm(
        self,
        span: Span,
        call: LMCall,
        outputs: Any,
        exception: BaseException | None,
        window: Window | None,
        modes: tuple[bool, bool],
    ) -> None:
        """Content on the span and/or an event (``modes``: on span, in event), and the window record."""
        on_span, in_event = modes
        capture = on_span or in_event
        recording = span.is_recording()
        if window is None and not (capture and recording):
            return
        messages = outputs_json = None
        if capture:
            messages = _content.input_messages(call.prompt, call.messages)
            if outputs is not None:
                outputs_json = _content.output_messages(outputs, call.finish_reasons)
            if self.redact is not None:
                redacted = self.redacted(self.redact, messages, outputs_json, outputs)
                capture = redacted is not None
                messages, outputs_json, outputs = redacted or (None, None, None)
        if capture and recording:
            limit = self.limit(span)
            details = {gen_ai.GEN_AI_INPUT_MESSAGES: _content.to_json(messages or [], limit, self.secrets)}
            if outputs_json is not None:
                details[gen_ai.GEN_AI_OUTPUT_MESSAGES] = _content.to_json(outputs_json, limit, self.secrets)
            if on_span:
                span.set_attributes(details)
            if in_event:
                span.add_event(_DETAILS_EVENT, details)
        if window is not None:  # the window keeps what a span would: bounded, scrubbed text
            if messages is not None:
                messages = _content.bounded_messages(messages, self.max, self.secrets)
            if capture and outputs is not None:
                outputs = _content.bounded_outputs(outputs, self.max, self.secrets)
            else:
                outputs = None
            window.add(_outcome.call_record(span, call, messages, outputs, exception, secrets=self.secrets))


def _current_lm() -> Any:
    """The LM DSPy would use now (``None`` when DSPy is not configured)."""
    try:
        import dspy

        return dspy.settings.lm
    except Exception:
        return None

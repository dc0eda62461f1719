"""Retries of LM calls: an event per failed attempt on the LM span, the attempts made, a retry counter.

DSPy 3.4 retries a failed LM request itself (``dspy.LM(num_retries=3)`` by
default), inside one ``BaseLM`` call and so inside one LM span. After each
failed attempt it asks ``dspy.clients.execution._retryable`` whether to try
again; dspy-otel observes that question and its answer, nothing else:

- an event ``dspy.lm.attempt_failed`` per failed attempt, with ``error.type``,
  ``dspy.lm.attempt`` (1 for the first request) and ``dspy.lm.will_retry``;
- ``dspy.lm.attempts`` on the LM span: how many requests the call made (set when
  an attempt failed; a span without it made one request);
- the ``dspy.lm.retries`` counter (the LM attribute set and ``error.type``).

With retries off (``num_retries=0``) nothing is added: the call's exception on its span says it all.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opentelemetry.semconv.attributes import error_attributes

from dspy_otel.instrumentation._failures import log_failure_once
from dspy_otel.instrumentation._hooks import _LM_CALL

if TYPE_CHECKING:
    from dspy_otel.instrumentation._hooks import SpanHooks

EVENT = "dspy.lm.attempt_failed"
ATTEMPT = "dspy.lm.attempt"
"""On the event: which attempt failed (1 for the first request)."""
WILL_RETRY = "dspy.lm.will_retry"
"""On the event: whether DSPy tries again."""
ATTEMPTS = "dspy.lm.attempts"
"""On the LM span: how many requests the call made, when one of them failed."""


def observe(original: Callable[..., bool], hooks: SpanHooks) -> Callable[..., bool]:
    """Wrap DSPy's ``_retryable(state, exc, attempt, retries)``; its answer is returned unchanged."""

    @functools.wraps(original)
    def retryable(state: Any, exc: Exception, attempt: int, retries: int) -> bool:
        retry = original(state, exc, attempt, retries)
        if retries > 0:  # with retries off, the exception on the span says it all
            try:
                _record(hooks, exc, attempt, retry)
            except Exception as failure:
                log_failure_once("recording an LM retry", failure)
        return retry

    return retryable


def _record(hooks: SpanHooks, exc: Exception, attempt: int, retry: bool) -> None:
    handle = _LM_CALL.get()
    if handle is None or handle.call is None:
        return  # no LM span (suppressed)
    error_type = type(exc).__qualname__
    span = handle.span
    if span.is_recording():
        span.add_event(EVENT, {error_attributes.ERROR_TYPE: error_type, ATTEMPT: attempt + 1, WILL_RETRY: retry})
        span.set_attribute(ATTEMPTS, attempt + 2 if retry else attempt + 1)
    if retry and hooks.instruments is not None:
        hooks.instruments.lm_retry(handle.call.request, error_type)

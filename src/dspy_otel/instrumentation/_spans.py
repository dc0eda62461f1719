"""Opening a span and making it current: the handle the hooks pass around, suppression, sampled-out parents.

:func:`open_span` is what every ``SpanHooks.start_*`` ends with. Below a local parent that the sampler
dropped (``skip_unsampled``) it makes no SDK span at all: the parent stands in, and the context flows on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextvars import Token
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import (
    _SUPPRESS_INSTRUMENTATION_KEY,  # what suppress_instrumentation() sets
    Context,
)
from opentelemetry.trace import Span, SpanKind

from dspy_otel.context._scope import with_scope
from dspy_otel.instrumentation._totals import Totals
from dspy_otel.sampling._scopes import debugging

# The context key the current span is kept under (the API's own, found without importing a private name).
_SPAN_KEY = next(iter(trace.set_span_in_context(trace.INVALID_SPAN, Context())))


def suppressed(context: Context) -> bool:
    """Whether ``context`` is inside ``dspy_otel.suppress()`` or any instrumentation suppression.

    What ``opentelemetry.instrumentation.utils.is_instrumentation_enabled()`` checks, on a context
    already read (the plain key is the one it also honours, for older instrumentations).
    """
    return bool(context.get(_SUPPRESS_INSTRUMENTATION_KEY) or context.get("suppress_instrumentation"))


@dataclass(slots=True)
class LMCall:
    """What the end of an LM span needs: the LM, its inputs, and what DSPy's call result said."""

    lm: Any
    prompt: Any
    messages: Any
    kwargs: dict[str, Any]
    token: Token[Handle | None]
    started_ns: int
    request: Mapping[str, Any]
    attributes: Mapping[str, Any] = field(default_factory=dict)
    finish_reasons: Sequence[str] = ()
    totals: Totals | None = None  # the run totals of the module the call is made in


@dataclass(slots=True)
class Handle:
    """An open span and the context token to restore.

    For LM spans the call; for module spans the class (metrics), whether content is captured and the
    run totals (its own and its parent's); for tool spans ``tool``.
    """

    span: Span
    token: object
    call: LMCall | None = None
    module: str | None = None
    started_ns: int = 0
    capture: bool = False
    owned: bool = True  # False: the span is the parent's, standing in (compact mode, a trace sampled out)
    tool: bool = False
    totals: Totals | None = None
    parent_totals: Totals | None = None


def open_span(
    tracer: trace.Tracer,
    name: str,
    kind: SpanKind,
    attributes: Mapping[str, Any],
    context: Context,
    values: dict[str, Any],
    skip_unsampled: bool,
) -> Handle:
    """Start a span under ``context`` and make it current, with ``values`` added to the context.

    The callers read the current context once, check suppression on it, and pass it here. With
    ``skip_unsampled`` (the sampler drops every child of an unsampled parent), a sampled-out local
    parent stands in for the span: no SDK span, the handle does not own it.
    """
    stand_in = _stand_in(context) if skip_unsampled else None
    if stand_in is not None:  # the trace is sampled out: no SDK span, the context flows on unchanged
        return Handle(stand_in, otel_context.attach(Context({**context, **values})), owned=False)
    span = tracer.start_span(name, context, kind, with_scope(context, attributes))
    return Handle(span, otel_context.attach(Context({**context, _SPAN_KEY: span, **values})))


def _stand_in(context: Context) -> Span | None:
    """The current span, if it is sampled out and the sampler would drop a child of it too.

    Only a local parent: its own decision came from the same sampler, so a child of it would be
    dropped. A remote parent, or a ``dspy_otel.debug()`` scope, is left to the sampler.
    """
    parent = trace.get_current_span(context)
    span_context = parent.get_span_context()
    if not span_context.is_valid or span_context.is_remote or span_context.trace_flags.sampled or parent.is_recording():
        return None
    return None if debugging(context) else parent

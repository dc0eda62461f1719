"""``attributes()``: who and which conversation a block of code works for, on every span it starts.

The attributes live in the OpenTelemetry context, like ``debug()``: they reach
nested modules, asyncio tasks started inside the block and the worker threads of
``dspy.Parallel`` / ``dspy.Evaluate``. dspy-otel's spans get them as *start*
attributes (head samplers see them); :class:`ContextAttributesProcessor` puts
them on every other span started in the block (your own spans, HTTP clients).
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType, TracebackType
from typing import Any, TypeVar, cast

from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv._incubating.attributes import session_attributes, user_attributes

MAX_ATTRIBUTES = 32
"""At most this many attributes in one scope, the enclosing scopes' included."""
MAX_KEY_LENGTH = 128
"""Characters of an attribute name."""
MAX_VALUE_LENGTH = 1024
"""Characters of a string value."""

ContextAttributes = Mapping[str, str | bool | int | float]
F = TypeVar("F", bound=Callable[..., Any])

_KEY = otel_context.create_key("dspy_otel.attributes")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_INT64 = range(-(2**63), 2**63)


def current(context: otel_context.Context | None = None) -> ContextAttributes | None:
    """The attributes of the innermost scope in ``context`` (default: the current one), or ``None``."""
    return cast("ContextAttributes | None", otel_context.get_value(_KEY, context))


def with_scope(context: otel_context.Context, attributes: Mapping[str, Any]) -> Mapping[str, Any]:
    """``attributes`` with the scope's in ``context`` added underneath (the span's own win).

    ``attributes`` itself when no scope is active: one context read is all it costs then.
    """
    scoped: ContextAttributes | None = context.get(_KEY)  # type: ignore[assignment]  # no cast() call here
    return attributes if scoped is None else {**scoped, **attributes}


def _validated(values: Mapping[str, Any]) -> dict[str, str | bool | int | float]:
    checked: dict[str, str | bool | int | float] = {}
    for key, value in values.items():
        if value is None:
            continue  # not known for this request: leave it out
        if not isinstance(key, str) or len(key) > MAX_KEY_LENGTH or not _NAME.fullmatch(key):
            raise ValueError(
                f"dspy_otel.attributes(): {key!r} is not a valid attribute name; use a dotted identifier of at most "
                f"{MAX_KEY_LENGTH} characters (letters, digits, '_', parts joined by '.', e.g. 'app.tenant_id')"
            )
        if not isinstance(value, (str, bool, int, float)):
            raise ValueError(
                f"dspy_otel.attributes(): {key}={value!r} has type {type(value).__name__}; "
                "allowed: str, bool, int, float (or None to leave it out)"
            )
        if isinstance(value, str) and len(value) > MAX_VALUE_LENGTH:
            raise ValueError(
                f"dspy_otel.attributes(): {key} has {len(value):,} characters; at most {MAX_VALUE_LENGTH:,} allowed"
            )
        if isinstance(value, int) and not isinstance(value, bool) and value not in _INT64:
            raise ValueError(f"dspy_otel.attributes(): {key}={value} does not fit in a signed 64-bit integer")
        checked[key] = value
    return checked


@contextmanager
def _entered(values: Mapping[str, str | bool | int | float]) -> Iterator[None]:
    merged = {**(current() or {}), **values}
    if len(merged) > MAX_ATTRIBUTES:
        raise ValueError(
            f"dspy_otel.attributes(): {len(merged)} attributes with the enclosing scopes' "
            f"({', '.join(sorted(merged))}); at most {MAX_ATTRIBUTES} allowed"
        )
    token = otel_context.attach(otel_context.set_value(_KEY, MappingProxyType(merged)))
    try:
        yield
    finally:
        otel_context.detach(token)


class AttributeScope:
    """What :func:`attributes` returns: a context manager, and a decorator for sync and async functions.

    As a decorator, every call of the function runs in a scope of its own. One object can also be
    entered by several threads or asyncio tasks at once (``with ROUTE_SCOPE:`` in concurrent handlers).
    """

    def __init__(self, values: Mapping[str, str | bool | int | float]) -> None:
        self._values = values
        # The blocks this object is in, per thread and task: each leaves its own.
        self._active: ContextVar[tuple[Any, ...]] = ContextVar("dspy_otel_attribute_scope", default=())

    def __enter__(self) -> None:
        scope = _entered(self._values)
        scope.__enter__()
        self._active.set((*self._active.get(), scope))

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        *outer, scope = self._active.get()
        self._active.set(tuple(outer))
        scope.__exit__(exc_type, exc, tb)

    def __call__(self, function: F) -> F:
        """Run each call of ``function`` (sync or ``async``) in this scope."""
        values = self._values
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def scoped_async(*args: Any, **kwargs: Any) -> Any:
                with _entered(values):
                    return await function(*args, **kwargs)

            return cast("F", scoped_async)

        @functools.wraps(function)
        def scoped(*args: Any, **kwargs: Any) -> Any:
            with _entered(values):
                return function(*args, **kwargs)

        return cast("F", scoped)


def attributes(
    *,
    user_id: str | None = None,
    session_id: str | None = None,
    conversation_id: str | None = None,
    **custom: str | bool | int | float | None,
) -> AttributeScope:
    """Put who and which conversation on every span started in a block, for grouping and search in a backend.

    ``user_id`` becomes ``user.id``, ``session_id`` ``session.id`` and ``conversation_id``
    ``gen_ai.conversation.id`` (Phoenix, MLflow and Langfuse group sessions by them). Other
    keywords are attributes of your own; pass dotted names with ``**{"app.tenant": "acme"}``.
    ``None`` leaves an attribute out. Nested scopes merge, the inner value winning. They are
    never put on metrics (their values are unbounded).

    Example:
        >>> import dspy_otel
        >>> with dspy_otel.attributes(user_id="u-42", session_id="s-7", plan="pro"):  # doctest: +SKIP
        ...     program(question="...")   # every span: user.id=u-42, session.id=s-7, plan=pro
        >>> @dspy_otel.attributes(**{"app.route": "/answer"})  # doctest: +SKIP
        ... async def answer(question: str) -> str: ...

    Raises:
        ValueError: A name that is not a dotted identifier of at most 128 characters, a value that is not
            ``str``, ``bool``, ``int`` or ``float``, a string over 1,024 characters, or more than 32
            attributes (enclosing scopes included, checked when the block is entered).
    """
    named = {
        user_attributes.USER_ID: user_id,
        session_attributes.SESSION_ID: session_id,
        gen_ai.GEN_AI_CONVERSATION_ID: conversation_id,
    }
    values = _validated({**custom, **named})
    if len(values) > MAX_ATTRIBUTES:
        raise ValueError(f"dspy_otel.attributes(): {len(values)} attributes given; at most {MAX_ATTRIBUTES} allowed")
    return AttributeScope(values)


def scope_values(context: otel_context.Context, values: Mapping[str, str | bool | int | float]) -> otel_context.Context:
    """``context`` with ``values`` merged into its attribute scope (for ``debug()``, which validates its own)."""
    return otel_context.set_value(_KEY, MappingProxyType({**(current(context) or {}), **values}), context)


class ContextAttributesProcessor(SpanProcessor):
    """Puts the active :func:`attributes` on every span started in the scope, whoever starts it.

    :func:`dspy_otel.configure` installs it. With a tracer provider of your own, add it yourself
    (``provider.add_span_processor(ContextAttributesProcessor())``) for your spans and other
    instrumentations' to carry them too; dspy-otel's spans carry them either way. An attribute
    the span already has is left as it is.
    """

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        """Add the scope's attributes that the span does not have yet."""
        scoped: ContextAttributes | None = (  # type: ignore[assignment]  # one context read, no call
            parent_context if parent_context is not None else otel_context.get_current()
        ).get(_KEY)
        if scoped is None:
            return
        own = span.attributes or {}
        missing = {key: value for key, value in scoped.items() if key not in own}
        if missing:
            span.set_attributes(missing)

    def on_end(self, span: ReadableSpan) -> None:
        """Nothing to do at the end."""

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered."""
        return True

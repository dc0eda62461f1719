"""``debug()`` and ``suppress()``: one block of code at full detail, or not traced at all.

Both are context managers that set a value in the OpenTelemetry context, so they
reach everything the block runs: nested modules, asyncio tasks started inside
it, and the worker threads of ``dspy.Parallel`` / ``dspy.Evaluate``.

Example:
    >>> import dspy_otel
    >>> with dspy_otel.debug():              # doctest: +SKIP
    ...     program(question="why did this fail?")   # recorded, kept and content captured
    >>> with dspy_otel.suppress():           # doctest: +SKIP
    ...     program(question="health check")        # no span at all
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import context as otel_context

from dspy_otel.context._scope import scope_values

_DEBUG = otel_context.create_key("dspy_otel.debug")
DEBUG_ATTRIBUTE = "dspy_otel.debug"
"""``True`` on every span started inside :func:`debug`, so forced traces can be searched for."""


@contextmanager
def debug() -> Iterator[None]:
    """Record and keep every span made in the block, whatever the samplers say, with content captured.

    For debugging one request in a production service. The samplers honour it when
    dspy-otel built the tracer provider (:func:`dspy_otel.configure`); content capture
    honours it everywhere. Credentials are scrubbed as always. Every span started in the block
    carries ``dspy_otel.debug = true``, so these traces can be searched for.
    """
    token = otel_context.attach(scope_values(otel_context.set_value(_DEBUG, True), {DEBUG_ATTRIBUTE: True}))
    try:
        yield
    finally:
        otel_context.detach(token)


def debugging(context: otel_context.Context | None = None) -> bool:
    """Whether ``context`` (default: the current one) is inside :func:`debug`."""
    return otel_context.get_value(_DEBUG, context) is True


@contextmanager
def suppress() -> Iterator[None]:
    """Record nothing in the block: no dspy-otel span, and no span of any OpenTelemetry instrumentation.

    The standard "suppress instrumentation" flag is set, which every OpenTelemetry
    instrumentation (HTTP clients, databases, ...) honours as well.
    """
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    with suppress_instrumentation():
        yield

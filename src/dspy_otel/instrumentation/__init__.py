"""``DSPyInstrumentor``: every DSPy module, LM call and tool call becomes a span.

One program run is one trace: module spans (INTERNAL, named after the class:
``ChainOfThought``, ``ReAct``, your own modules), LM spans (CLIENT, GenAI
semantic conventions, ``"chat gpt-4o-mini"``) under the module that made the
call (a ``ChainOfThought`` span also stands for its inner ``Predict``), and
tool spans (``execute_tool {name}``). Parenting holds across asyncio
tasks and across ``dspy.Parallel`` / ``dspy.Evaluate`` worker threads. Every
``dspy.BaseLM`` subclass is traced, cache hits included.

Most users call :func:`dspy_otel.configure` instead, which also builds the
tracer provider. Use the instrumentor directly to bring your own provider:

Example:
    >>> from opentelemetry.sdk.trace import TracerProvider
    >>> from dspy_otel import DSPyInstrumentor
    >>> DSPyInstrumentor().instrument(tracer_provider=TracerProvider())  # doctest: +SKIP

It also works with zero code change: ``opentelemetry-instrument python app.py``
(settings then come from the environment; see the Configuration page of the documentation).

Supported: DSPy 3.0 to 3.4 (``dspy >= 3.0, < 4``). Another installed DSPy is
instrumented as far as its classes are found, with one warning naming what its
spans go without (``docs/dspy-versions.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace
from opentelemetry.instrumentation.dependencies import DependencyConflict
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from dspy_otel._version import __version__
from dspy_otel.instrumentation._failures import log_failure_once
from dspy_otel.instrumentation._support import SUPPORTED

if TYPE_CHECKING:
    from dspy_otel.config import Settings
    from dspy_otel.instrumentation._hooks import SpanHooks

__all__ = ["DSPyInstrumentor", "make_hooks"]


def make_hooks(
    settings: Settings,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
    *,
    skip_unsampled: bool = False,
) -> SpanHooks:
    """The span and metric hooks ``instrument()`` installs, built from its keywords (see below).

    ``instrument()`` is the way to use them; this is for code that installs the hooks
    itself (the benchmark switches between configurations on every call).
    """
    from dspy_otel.instrumentation._hooks import SpanHooks
    from dspy_otel.metrics.instruments import Instruments

    tracer = trace.get_tracer(__name__, __version__, tracer_provider=tracer_provider)
    meter_provider = meter_provider or metrics.get_meter_provider()
    instruments = None
    if not isinstance(meter_provider, metrics.NoOpMeterProvider):
        instruments = Instruments(metrics.get_meter(__name__, __version__, meter_provider=meter_provider))
    return SpanHooks(
        tracer,
        settings.capture_content,
        settings.content_max_length,
        redact=settings.redact,
        instruments=instruments,
        compact=settings.spans == "compact",
        openinference="openinference" in settings.semconv,
        skip_unsampled=skip_unsampled,
    )


class DSPyInstrumentor(BaseInstrumentor):  # type: ignore[misc]  # BaseInstrumentor is untyped
    """OpenTelemetry instrumentor for DSPy (a ``BaseInstrumentor``; a process-wide singleton).

    ``instrument()`` keywords:
        tracer_provider: The provider spans are made with (default: the global one).
        meter_provider: The provider LM and module metrics are recorded with (default: the global
            one; a no-op one records nothing).
        skip_unsampled: The tracer provider's sampler drops every span under an unsampled parent (as
            the parent-based samplers do): below a sampled-out span no span is made at all. Set by
            :func:`dspy_otel.configure`, which knows its sampler; default ``False`` (the SDK decides).
        settings: A :class:`dspy_otel.config.Settings` (default: resolved from the environment).
            It decides content capture and its redaction, DSPy retention, the development window and
            log correlation.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        """The DSPy versions this instrumentation supports and tests."""
        return (SUPPORTED,)

    def _check_dependency_conflicts(self) -> DependencyConflict | None:
        """Refuse only when DSPy is missing: an installed DSPy outside the range gets what works.

        ``instrument()`` then hooks what this DSPy has and switches its retention off as configured;
        :func:`dspy_otel.instrumentation._support.report` names the version and what is missing.
        """
        conflict: DependencyConflict | None = super()._check_dependency_conflicts()
        return None if conflict is not None and conflict.found else conflict

    def _instrument(self, **kwargs: Any) -> None:
        from dspy_otel import _window, retention
        from dspy_otel.config import resolve
        from dspy_otel.instrumentation._patches import install

        settings = kwargs.get("settings") or resolve({})
        hooks = make_hooks(
            settings,
            kwargs.get("tracer_provider"),
            kwargs.get("meter_provider"),
            skip_unsampled=bool(kwargs.get("skip_unsampled", False)),
        )
        undo: list[Callable[[], None]] = [install(hooks)]
        if settings.dspy_history == "off":
            try:
                undo.append(retention.switch_off())
            except Exception as exc:  # a DSPy without the settings dspy-otel knows: say so, trace anyway
                log_failure_once("switching DSPy's history off (DSPY_OTEL_DSPY_HISTORY=off)", exc)
        if settings.log_correlation:
            undo.append(_log_correlation(kwargs.get("tracer_provider"), settings))
        _window.set_window(settings.window)
        undo.append(_window.remove_window)
        self._undo = undo

    def _uninstrument(self, **kwargs: Any) -> None:
        for step in reversed(getattr(self, "_undo", [])):
            step()
        self._undo = []


def _log_correlation(tracer_provider: Any, settings: Settings) -> Callable[[], None]:
    """Trace and span IDs on every ``logging`` record (``DSPY_OTEL_LOG_CORRELATION``)."""
    from dspy_otel.context import correlate_logs

    resource = getattr(tracer_provider or trace.get_tracer_provider(), "resource", None)
    service = resource.attributes.get("service.name") if resource is not None else settings.service_name
    return correlate_logs(str(service or ""))

"""``configure()`` and ``shutdown()``: the one-line setup for a DSPy application.

Example:
    >>> import dspy_otel
    >>> provider = dspy_otel.configure()   # doctest: +SKIP
    >>> ...                                 # run your DSPy program
    >>> dspy_otel.shutdown()               # doctest: +SKIP
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing.util
import os
import threading
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider, sampling
from opentelemetry.sdk.trace.export import SpanExporter

from dspy_otel import _signals
from dspy_otel.config import Settings, display, rejected, resolve
from dspy_otel.context import ContextAttributesProcessor
from dspy_otel.export.queue import CountingBatchSpanProcessor, report_left_at_exit
from dspy_otel.sampling.head import DSPyOtelSampler, build_head

logger = logging.getLogger("dspy_otel")

_lock = threading.Lock()
_provider: TracerProvider | None = None
_meter_provider: MeterProvider | None = None
_settings: Settings | None = None
_batches: list[CountingBatchSpanProcessor] = []


def build_sampler(settings: Settings) -> DSPyOtelSampler:
    """The head sampler named by ``settings.sampler``, honouring ``debug()`` and feeding the tail sampler.

    With tail policies on and no head sampler chosen (``OTEL_TRACES_SAMPLER`` unset and not set by
    the profile), the head keeps only what a sampled remote parent asks for: the tail decides.
    """
    tail = bool(settings.tail_policies)
    head: sampling.Sampler
    if tail and settings.sources["sampler"] == "default":
        head = sampling.DEFAULT_OFF
    else:
        head = build_head(settings.sampler, settings.sampler_arg)
    return DSPyOtelSampler(head, record_dropped=tail)


def describe_sampling(settings: Settings) -> str:
    """One line saying what is sampled where, for ``dspy-otel config``."""
    if not settings.tail_policies:
        return f"sampling: head {settings.sampler} {display(settings.sampler_arg)}".rstrip() + "; tail off"
    head = "parent's decision only" if settings.sources["sampler"] == "default" else settings.sampler
    return (
        f"sampling: head {head} {display(settings.sampler_arg)}".rstrip()
        + f"; tail keeps a trace when {' or '.join(map(str, settings.tail_policies))} keeps it (wait "
        f"{settings.tail_decision_wait_ms} ms, at most {settings.tail_max_traces} traces, "
        f"{settings.tail_max_spans_per_trace} spans/trace, {settings.tail_max_mib} MiB)"
    )


def configure(
    *, span_exporter: SpanExporter | None = None, metric_reader: MetricReader | None = None, **overrides: Any
) -> TracerProvider:
    """Trace DSPy: build a tracer provider from the environment, export in batches, instrument DSPy.

    Idempotent: a second call returns the provider of the first (call :func:`shutdown`
    first to change settings). The provider becomes the global one if none was set. At exit,
    queued spans get ``DSPY_OTEL_EXIT_TIMEOUT_MS`` to leave (see :func:`shutdown`).

    Args:
        span_exporter: Export to this exporter instead of the ones ``OTEL_TRACES_EXPORTER`` names
            (metrics then go nowhere unless ``OTEL_METRICS_EXPORTER`` or ``metric_reader`` says where).
        metric_reader: Also read the metrics with this reader (an ``InMemoryMetricReader`` in tests).
        **overrides: Any setting of the settings table by name (``profile="development"``,
            ``capture_content="SPAN_ONLY"``, ``sampler="parentbased_traceidratio"``,
            ``sampler_arg=0.1``, ``tail_policies="errors,ratio:0.05"``, ``window=100``,
            ``service_name="my-app"``, ``endpoint="http://collector:4317"``, ...). An argument beats
            the environment, which beats the profile.

    Returns:
        The tracer provider dspy-otel created.

    Raises:
        ValueError: An unknown setting name or an invalid value.
    """
    global _provider, _meter_provider, _settings
    with _lock:
        if "endpoint" in overrides:  # the name other tracing libraries use
            overrides = {
                **{k: v for k, v in overrides.items() if k != "endpoint"},
                "otlp_endpoint": overrides["endpoint"],
            }
        metrics_chosen = "metrics_exporter" in overrides or os.environ.get("OTEL_METRICS_EXPORTER", "").strip()
        if span_exporter is not None and not metrics_chosen:
            overrides = {**overrides, "metrics_exporter": "none"}  # the caller wires export itself
        settings = resolve(overrides)
        if _provider is not None:
            if settings != _settings or span_exporter is not None:
                logger.warning(
                    "dspy-otel: already configured, so configure() changes nothing (%s); "
                    "call dspy_otel.shutdown() first to change settings",
                    _differences(_settings, settings) or "another span_exporter",
                )
            return _provider
        from dspy_otel.export.otlp import build_exporters
        from dspy_otel.export.pipeline import build_processor
        from dspy_otel.instrumentation import DSPyInstrumentor
        from dspy_otel.metrics.provider import build_meter_provider

        attributes = settings.resource_attributes.as_dict() if settings.resource_attributes else {}
        if settings.service_name:
            attributes["service.name"] = settings.service_name
        resource = Resource.create(attributes)
        provider = TracerProvider(sampler=build_sampler(settings), resource=resource, shutdown_on_exit=False)
        instrumentor = _take_over(DSPyInstrumentor())
        meter_provider = None
        if not settings.sdk_disabled:
            bad_env = rejected()
            provider.add_span_processor(ContextAttributesProcessor())  # dspy_otel.attributes() on others' spans
            exporters = [span_exporter] if span_exporter is not None else build_exporters(settings, bad_env)
            if exporters:
                processor, _batches[:] = build_processor(settings, exporters)
                provider.add_span_processor(processor)
            readers = [metric_reader] if metric_reader is not None else []
            meter_provider = build_meter_provider(settings, resource, readers, bad_env)
            instrumentor.instrument(
                tracer_provider=provider,
                meter_provider=meter_provider or metrics.NoOpMeterProvider(),
                settings=settings,
                skip_unsampled=not settings.tail_policies,  # every head sampler here drops what is under a drop
            )
        if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            trace.set_tracer_provider(provider)
        _provider, _meter_provider, _settings = provider, meter_provider, settings
        atexit.register(shutdown)
        if settings.flush_on_signals and not settings.sdk_disabled:
            _signals.install(shutdown, settings.exit_timeout_ms / 1e3)
        multiprocessing.util.register_after_fork(provider, _in_multiprocessing_worker)
        return provider


def shutdown(timeout_millis: int | None = None) -> None:
    """Un-instrument DSPy, export what is queued and shut the provider down, in bounded time.

    Runs by itself at exit. It never holds the program up longer than ``timeout_millis``
    (default ``DSPY_OTEL_EXIT_TIMEOUT_MS``, 5 s): with the collector down or hanging, what
    could not leave by then is counted and reported in one line: spans never sent as
    ``export_spans_abandoned_at_exit`` (dropped), spans sent but not yet confirmed by the
    collector as ``export_spans_unconfirmed_at_exit`` (see :func:`dspy_otel.stats`).
    """
    global _provider, _meter_provider, _settings
    with _lock:
        if _provider is None or _settings is None:
            return
        from dspy_otel.instrumentation import DSPyInstrumentor

        providers = (_provider, _meter_provider)
        timeout_s = (_settings.exit_timeout_ms if timeout_millis is None else timeout_millis) / 1e3
        _provider, _meter_provider, _settings = None, None, None
        atexit.unregister(shutdown)
        _signals.uninstall()
        DSPyInstrumentor().uninstrument()
        worker = threading.Thread(target=_flush_and_shut, args=providers, name="dspy-otel-shutdown", daemon=True)
        worker.start()
        worker.join(timeout_s)
        if worker.is_alive():
            report_left_at_exit(_batches, timeout_s)
        _batches.clear()


def _differences(old: Settings | None, new: Settings) -> str:
    """``name: old -> new`` for each setting that differs (values as ``dspy-otel config`` shows them)."""
    if old is None:
        return ""
    changed = [
        f"{name}: {display(getattr(old, name)) or '-'} -> {display(getattr(new, name)) or '-'}"
        for name in old.__dataclass_fields__
        if name != "sources" and getattr(old, name) != getattr(new, name)
    ]
    return ", ".join(changed)


def _in_multiprocessing_worker(provider: TracerProvider) -> None:
    """Export what a ``multiprocessing`` worker made: it leaves through ``os._exit``, skipping ``atexit``.

    ``multiprocessing`` runs this in each new worker, which then runs its finalizers before leaving.
    """
    if provider is _provider:
        multiprocessing.util.Finalize(None, shutdown, exitpriority=10)


def _take_over(instrumentor: Any) -> Any:
    """Un-instrument DSPy if someone else instrumented it (``opentelemetry-instrument``), saying so."""
    if instrumentor.is_instrumented_by_opentelemetry:
        logger.warning(
            "dspy-otel: DSPy was already instrumented (by opentelemetry-instrument or DSPyInstrumentor()"
            ".instrument()); configure() re-instruments it with its own settings, and DSPy's spans go to "
            "the tracer provider configure() returns%s",
            ""
            if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
            else " (the global provider set earlier stays global for other instrumentations)",
        )
        instrumentor.uninstrument()
    return instrumentor


def _flush_and_shut(provider: TracerProvider, meter_provider: MeterProvider | None) -> None:
    from dspy_otel.export.otlp import give_up_where_refused

    try:
        give_up_where_refused()
        provider.force_flush()
        provider.shutdown()
        if meter_provider is not None:
            meter_provider.shutdown()  # exports the last metrics
    except Exception as exc:  # an exporter must never crash the app on exit
        logger.warning("dspy-otel: shutdown failed (%s: %s)", type(exc).__name__, exc)

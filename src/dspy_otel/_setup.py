"""``configure()`` and ``shutdown()``: the one-line setup for a DSPy application.

Example:
    >>> import dspy_otel
    >>> provider = dspy_otel.configure()   # doctest: +SKIP
    >>> ...                                 # run your DSPy program
    >>> dspy_otel.shutdown()               # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider, sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from dspy_otel._config import Settings, display, resolve
from dspy_otel.sampling.head import DSPyOtelSampler, build_head

logger = logging.getLogger("dspy_otel")

_lock = threading.Lock()
_provider: TracerProvider | None = None
_settings: Settings | None = None


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


def build_processor(settings: Settings, exporter: SpanExporter) -> SpanProcessor:
    """A batch processor for ``exporter``, behind the tail sampler when tail policies are set."""
    batch = BatchSpanProcessor(exporter)
    if not settings.tail_policies:
        return batch
    from dspy_otel.sampling.tail import TailLimits, TailSamplingProcessor

    limits = TailLimits(
        settings.tail_decision_wait_ms,
        settings.tail_max_traces,
        settings.tail_max_spans_per_trace,
        settings.tail_max_mib,
    )
    return TailSamplingProcessor(batch, settings.tail_policies, limits, tick_s=min(1.0, limits.decision_wait_ms / 4000))


def build_exporter(settings: Settings) -> SpanExporter | None:
    """The span exporter named by ``settings.exporter`` (``None`` for ``none``).

    The OTLP exporters read ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``, ``_HEADERS``,
    ``_TIMEOUT``, ``_COMPRESSION`` and ``_INSECURE`` themselves.
    """
    if settings.exporter == "none":
        return None
    if settings.exporter == "console":
        return ConsoleSpanExporter()
    if settings.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter()


def configure(*, span_exporter: SpanExporter | None = None, **overrides: Any) -> TracerProvider:
    """Trace DSPy: build a tracer provider from the environment, export in batches, instrument DSPy.

    Idempotent: a second call returns the provider of the first (call :func:`shutdown`
    first to change settings). The provider becomes the global one if none was set.

    Args:
        span_exporter: Export to this exporter instead of the one ``OTEL_TRACES_EXPORTER`` names.
        **overrides: Any setting of the README's table by name (``profile="development"``,
            ``capture_content="SPAN_ONLY"``, ``sampler="parentbased_traceidratio"``,
            ``sampler_arg=0.1``, ``tail_policies="errors,ratio:0.05"``, ``window=100``, ...). An argument
            beats the environment, which beats the profile.

    Returns:
        The tracer provider dspy-otel created.

    Raises:
        ValueError: An unknown setting name or an invalid value.
    """
    global _provider, _settings
    with _lock:
        settings = resolve(overrides)
        if _provider is not None:
            if settings != _settings or span_exporter is not None:
                logger.warning("dspy-otel: already configured; call dspy_otel.shutdown() first to change settings")
            return _provider
        from dspy_otel.instrumentation import DSPyInstrumentor

        provider = TracerProvider(sampler=build_sampler(settings), resource=Resource.create())
        if not settings.sdk_disabled:
            exporter = span_exporter if span_exporter is not None else build_exporter(settings)
            if exporter is not None:
                provider.add_span_processor(build_processor(settings, exporter))
            DSPyInstrumentor().instrument(tracer_provider=provider, settings=settings)
        if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            trace.set_tracer_provider(provider)
        _provider, _settings = provider, settings
        return provider


def shutdown(timeout_millis: int = 10_000) -> None:
    """Flush pending spans (waiting at most ``timeout_millis``), un-instrument DSPy, shut the provider down."""
    global _provider, _settings
    with _lock:
        if _provider is None:
            return
        from dspy_otel.instrumentation import DSPyInstrumentor

        DSPyInstrumentor().uninstrument()
        try:
            _provider.force_flush(timeout_millis)
            _provider.shutdown()
        except Exception as exc:  # an exporter must never crash the app on exit
            logger.warning("dspy-otel: shutdown failed (%s: %s)", type(exc).__name__, exc)
        _provider, _settings = None, None

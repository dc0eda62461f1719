"""From exporters to the span processor ``configure()`` installs: batch, count, tail-sample."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.trace import SpanProcessor, SynchronousMultiSpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter

from dspy_otel.config import Settings
from dspy_otel.export.queue import CountingBatchSpanProcessor
from dspy_otel.export.reporting import ReportingExporter


def build_processor(
    settings: Settings, exporters: Sequence[SpanExporter]
) -> tuple[SpanProcessor, list[CountingBatchSpanProcessor]]:
    """A counting batch processor per exporter (``OTEL_BSP_*``), behind the tail sampler when it is on.

    Returns:
        The processor to add to the tracer provider, and the batch processors (to count what is queued).
    """
    batches = [
        CountingBatchSpanProcessor(
            ReportingExporter(exporter),
            max_queue_size=settings.bsp_max_queue_size,
            schedule_delay_millis=settings.bsp_schedule_delay_ms,
            max_export_batch_size=min(settings.bsp_max_export_batch_size, settings.bsp_max_queue_size),
            export_timeout_millis=settings.bsp_export_timeout_ms,
        )
        for exporter in exporters
    ]
    processor: SpanProcessor = batches[0]
    if len(batches) > 1:
        processor = SynchronousMultiSpanProcessor()  # type: ignore[no-untyped-call]  # the SDK leaves it untyped
        for batch in batches:
            processor.add_span_processor(batch)
    if not settings.tail_policies:
        return processor, batches
    from dspy_otel.sampling.tail import TailLimits, TailSamplingProcessor

    limits = TailLimits(
        settings.tail_decision_wait_ms,
        settings.tail_max_traces,
        settings.tail_max_spans_per_trace,
        settings.tail_max_mib,
    )
    tick_s = min(1.0, limits.decision_wait_ms / 4000)
    return TailSamplingProcessor(processor, settings.tail_policies, limits, tick_s=tick_s), batches

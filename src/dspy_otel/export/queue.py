"""The SDK's batch span processor, counting what it drops because its queue is full."""

from __future__ import annotations

from collections.abc import Sized

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from dspy_otel import _stats
from dspy_otel.export.reporting import ReportingExporter


class CountingBatchSpanProcessor(BatchSpanProcessor):
    """A ``BatchSpanProcessor`` that adds ``export_spans_dropped_queue_full`` to :func:`dspy_otel.stats`.

    The queue is bounded (``OTEL_BSP_MAX_QUEUE_SIZE``): when the exporter cannot keep up (a collector
    that is down or slow), the oldest queued span is dropped for each new one, and counted here. The
    count is taken as the SDK takes its own (queue full when the span arrives), so it can be off by a
    span when the exporter takes a batch, or another thread queues one, at that very moment.
    """

    def on_end(self, span: ReadableSpan) -> None:
        """Queue a sampled span, counting the span the full queue drops for it."""
        if span.context is not None and span.context.trace_flags.sampled and self.queue_full():
            _stats.add({"export_spans_dropped_queue_full": 1})
        super().on_end(span)

    def queue_full(self) -> bool:
        """Whether the queue is at its bound."""
        return len(self._queue()) >= self._batch_processor._max_queue_size

    def unexported(self) -> int:
        """How many spans wait for export now, or are being exported."""
        exporter = self.span_exporter
        return len(self._queue()) + (exporter.in_flight if isinstance(exporter, ReportingExporter) else 0)

    def _queue(self) -> Sized:
        queue: Sized = self._batch_processor._queue  # the SDK's deque; read only
        return queue

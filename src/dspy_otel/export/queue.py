"""The SDK's batch span processor, counting what it drops because its queue is full, and what is left at exit."""

from __future__ import annotations

import logging
from collections.abc import Sequence, Sized

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from dspy_otel import _stats
from dspy_otel.export.reporting import ReportingExporter, line

logger = logging.getLogger("dspy_otel")


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
            if isinstance(self.span_exporter, ReportingExporter):
                self.span_exporter.report.lost(1)
        super().on_end(span)

    def queue_full(self) -> bool:
        """Whether the queue is at its bound."""
        return len(self._queue()) >= self._batch_processor._max_queue_size

    def queued(self) -> int:
        """How many spans wait for export now (not sent yet)."""
        return len(self._queue())

    def in_flight(self) -> int:
        """How many spans are being exported now: sent, or being sent, and not confirmed yet."""
        exporter = self.span_exporter
        return exporter.in_flight if isinstance(exporter, ReportingExporter) else 0

    def _queue(self) -> Sized:
        queue: Sized = self._batch_processor._queue  # the SDK's deque; read only
        return queue


def report_left_at_exit(batches: Sequence[CountingBatchSpanProcessor], timeout_s: float) -> None:
    """After the exit bound ran out: count and say what was never sent and what was sent but not confirmed.

    A batch in flight may well reach the collector (a slow backend answers late), so it is
    ``export_spans_unconfirmed_at_exit``, not a loss; what was still queued is
    ``export_spans_abandoned_at_exit``.
    """
    queued = sum(batch.queued() for batch in batches)
    in_flight = sum(batch.in_flight() for batch in batches)
    if not queued and not in_flight:
        return
    counts = {"export_spans_abandoned_at_exit": queued, "export_spans_unconfirmed_at_exit": in_flight}
    _stats.add({key: count for key, count in counts.items() if count})
    parts = [f"{queued:,} spans not yet sent are dropped"] if queued else []
    if in_flight:
        parts.append(f"{in_flight:,} sent are not confirmed (they may still arrive)")
    logger.warning(line("shutdown waited %.1f s (DSPY_OTEL_EXIT_TIMEOUT_MS): %s", timeout_s, "; ".join(parts)))

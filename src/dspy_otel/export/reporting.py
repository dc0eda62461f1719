"""Count exported and failed spans, and report failures in one line per interval.

The OTLP exporters log a line for every failed batch and retry ("Transient error
... retrying", "Failed to export ..."): with a collector down, a busy service
prints that several times a second. While dspy-otel's exporter is installed
those lines are held back; their last message becomes the reason in dspy-otel's
own summary, logged once when exports start failing and then at most once per
interval::

    dspy-otel: 1,536 spans could not be exported in the last 60 s (last error: Failed to export
    traces to localhost:4317, error code: StatusCode.UNAVAILABLE); the program goes on

Counts: ``export_spans_exported`` and ``export_spans_failed`` in :func:`dspy_otel.stats`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from dspy_otel import _stats

logger = logging.getLogger("dspy_otel")

EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http._common",
    "opentelemetry.sdk._shared_internal",  # "Queue full, dropping Span."
)


class _HoldBack(logging.Filter):
    """Swallows the exporters' per-batch warnings, keeping the last one as the reason.

    One filter for the process, attached while any :class:`ReportingExporter` is open.
    """

    def __init__(self) -> None:
        super().__init__()
        self.last: str | None = None
        self._users = 0
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.CRITICAL:
            return True
        self.last = record.getMessage().split(". Error details")[0]
        return False

    def hold(self, users: int) -> None:
        """Add (``+1``) or remove (``-1``) a user; attached to the exporters' loggers while there is one."""
        with self._lock:
            self._users += users
            for name in EXPORTER_LOGGERS:
                if self._users > 0:
                    logging.getLogger(name).addFilter(self)  # adding twice keeps one
                else:
                    logging.getLogger(name).removeFilter(self)


_HOLD_BACK = _HoldBack()


class FailureReport:
    """Sums up export failures: one warning line when they start, then at most one per ``interval_s``.

    Args:
        what: What failed to export, for the line (``spans``, ``metric batches``).
        interval_s: Least seconds between two lines.
        clock: Monotonic seconds (a fake clock in tests).
    """

    def __init__(self, what: str, interval_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._what = what
        self._interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failed = 0
        self._last_line: float | None = None
        self._open = True
        _HOLD_BACK.hold(+1)

    @staticmethod
    def reason() -> str | None:
        """The exporters' last held-back message: why the last export failed."""
        return _HOLD_BACK.last

    def failed(self, count: int, reason: str | None) -> None:
        """Count ``count`` items that could not be exported; log the sum when a line is due."""
        with self._lock:
            self._failed += count
            now = self._clock()
            if self._last_line is not None and now - self._last_line < self._interval_s:
                return
            failed, self._failed = self._failed, 0
            window = "so far" if self._last_line is None else f"in the last {now - self._last_line:.0f} s"
            self._last_line = now
        logger.warning(
            "dspy-otel: %s %s could not be exported %s (last error: %s); the program goes on, "
            "and failures are summed up here at most every %.0f s",
            f"{failed:,}",
            self._what,
            window,
            reason or "the exporter reported a failure",
            self._interval_s,
        )

    def close(self) -> None:
        """Report failures not yet reported; stop holding the exporters' lines back."""
        with self._lock:
            failed, self._failed = self._failed, 0
            was_open, self._open = self._open, False
        if failed:
            logger.warning("dspy-otel: %s more %s could not be exported before shutdown", f"{failed:,}", self._what)
        if was_open:
            _HOLD_BACK.hold(-1)


class ReportingExporter(SpanExporter):
    """Wraps a span exporter: counts its results, reports failures through a :class:`FailureReport`.

    Args:
        inner: The exporter that sends the spans.
        interval_s: Least seconds between two failure lines.
        clock: Monotonic seconds (a fake clock in tests).
    """

    def __init__(self, inner: SpanExporter, interval_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.inner = inner
        self._report = FailureReport("spans", interval_s, clock)
        self._lock = threading.Lock()
        self.in_flight = 0  # spans handed to the inner exporter that it has not returned yet

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export through the inner exporter; never raises."""
        with self._lock:
            self.in_flight += len(spans)
        try:
            result = self.inner.export(spans)
            reason = self._report.reason()
        except Exception as exc:
            result, reason = SpanExportResult.FAILURE, f"{type(exc).__name__}: {exc}"
        finally:
            with self._lock:
                self.in_flight -= len(spans)
        if result is SpanExportResult.SUCCESS:
            _stats.add({"export_spans_exported": len(spans)})
        else:
            _stats.add({"export_spans_failed": len(spans)})
            self._report.failed(len(spans), reason)
        return result

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the inner exporter."""
        return self.inner.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Report failures not yet reported, shut the inner exporter down."""
        self._report.close()
        self.inner.shutdown()

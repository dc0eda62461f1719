"""Count exported and failed spans, and report failures in one line per interval, per exporter.

The OTLP exporters log a line for every failed batch and retry ("Transient error
... retrying", "Failed to export ..."): with a collector down, a busy service
prints that several times a second. While dspy-otel's exporter is installed
those lines are held back; the last one an exporter logged while exporting
becomes the reason in that exporter's own summary (a span exporter never quotes
the metrics exporter), logged once when exports start failing, then at most once
per interval, and once more when exports work again::

    dspy-otel: 1,536 spans could not be exported so far (last error: StatusCode.UNAVAILABLE while
    exporting traces to localhost:4317); next report in 60 s at most
    dspy-otel: exporting spans again; 1,536 spans were lost while the collector was unreachable

Every line fits in 200 characters, and starts ``dspy-otel[pid 1234]:`` in a worker process
(see :func:`prefix`). Counts: ``export_spans_exported`` and ``export_spans_failed`` in
:func:`dspy_otel.stats`.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from dspy_otel import _stats

logger = logging.getLogger("dspy_otel")

MAX_LINE = 200
EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http._common",
    "opentelemetry.exporter.otlp.common.http",
    "opentelemetry.sdk._shared_internal",  # "Queue full, dropping Span."
)
# What an exporter logs when it stops: not a reason the collector gave
_NOT_A_REASON = ("Shutdown in progress", "Exporter already shutdown", "Failed to export spans batch due to timeout")
# "Transient error X encountered while exporting traces to Y, retrying in 1.02s.": the retry did not happen
_TRANSIENT = re.compile(r"^Transient error (.*) encountered while exporting (.*?)(?:, retrying in [\d.]+s)?\.?$", re.S)
_forked = False


def _mark_forked() -> None:
    global _forked  # noqa: PLW0603 - set once, in a forked child
    _forked = True


os.register_at_fork(after_in_child=_mark_forked)


def in_worker() -> bool:
    """Whether this process is one of several workers that may write to the same log.

    True when it was forked after dspy-otel was imported (gunicorn ``--preload``, Celery prefork),
    was started by ``multiprocessing`` (uvicorn ``--workers``, pools), or its parent process runs the
    same Python executable (gunicorn's arbiter, a supervisor written in Python).
    """
    if _forked or multiprocessing.parent_process() is not None:
        return True
    try:
        return os.readlink(f"/proc/{os.getppid()}/exe") == os.readlink("/proc/self/exe")
    except OSError:  # not Linux, or the parent is gone
        return False


def prefix() -> str:
    """``dspy-otel:``, or ``dspy-otel[pid 1234]:`` in a worker process (:func:`in_worker`)."""
    return f"dspy-otel[pid {os.getpid()}]:" if in_worker() else "dspy-otel:"


def line(template: str, *args: Any, cut: str = "") -> str:
    """``template % args`` after :func:`prefix`, with ``cut`` (the ``%(cut)s`` part) shortened to fit 200 characters.

    ``cut`` loses its middle, not its end: an error says what failed first and why last (kept longer).
    """
    text = f"{prefix()} {template % args}"
    cut = re.sub(r"<[^<>]* at 0x[0-9a-f]+>:? ?", "", " ".join(cut.split()))  # object reprs say nothing
    room = MAX_LINE - len(text.replace("%(cut)s", ""))
    if len(cut) > room:
        head = max(room // 3, 1)
        cut = f"{cut[: head - 1]}…{cut[len(cut) - (room - head) :]}" if room > 1 else ""
    return text.replace("%(cut)s", cut)


class _HoldBack(logging.Filter):
    """Swallows the exporters' per-batch warnings, giving each to the report of the export running in its thread.

    One filter for the process, attached while any :class:`FailureReport` is open.
    """

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()
        self._users = 0
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.CRITICAL:
            return True
        report: FailureReport | None = getattr(self._local, "report", None)
        if report is not None:
            report.heard(record.getMessage().split(". Error details")[0])
        return False

    @contextmanager
    def attributing(self, report: FailureReport) -> Iterator[None]:
        """While the block runs, the exporters' lines logged in this thread belong to ``report``."""
        before = getattr(self._local, "report", None)
        self._local.report = report
        try:
            yield
        finally:
            self._local.report = before

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
_OPEN: weakref.WeakSet[FailureReport] = weakref.WeakSet()


def open_exporters() -> list[Any]:
    """The exporters whose reports are open (not shut down yet)."""
    return [report.exporter for report in list(_OPEN) if report.exporter is not None]


class FailureReport:
    """Sums up one exporter's failures: a line when they start, at most one per ``interval_s``, one on recovery.

    Args:
        what: What failed to export, for the line (``spans``, ``metric batches``).
        interval_s: Least seconds between two lines.
        clock: Monotonic seconds (a fake clock in tests).
        exporter: The exporter reported on (found again at shutdown by :func:`open_exporters`).
    """

    def __init__(
        self, what: str, interval_s: float = 60.0, clock: Callable[[], float] = time.monotonic, exporter: Any = None
    ) -> None:
        self._what = what
        self._interval_s = interval_s
        self._clock = clock
        self.exporter = exporter
        self._lock = threading.Lock()
        self._failed = 0  # not reported yet
        self._lost: int | None = None  # since exports started failing; None while they work
        self._last_line: float | None = None
        self._reason: str | None = None
        self._open = True
        _OPEN.add(self)
        _HOLD_BACK.hold(+1)

    @contextmanager
    def exporting(self) -> Iterator[None]:
        """Run one export: what the exporters log in this thread meanwhile becomes this report's :meth:`reason`."""
        self._reason = None
        with _HOLD_BACK.attributing(self):
            yield

    def heard(self, message: str) -> None:
        """Keep an exporter's message as the reason, unless it only says that the exporter stopped."""
        if self._reason is None or not message.startswith(_NOT_A_REASON):
            self._reason = _TRANSIENT.sub(r"\1 while exporting \2", message)

    def reason(self) -> str | None:
        """Why the last export failed, as the exporter logged it (``None`` if it logged nothing)."""
        return self._reason

    def failed(self, count: int, reason: str | None) -> None:
        """Count ``count`` items that could not be exported; log the sum when a line is due."""
        with self._lock:
            self._failed += count
            self._lost = (self._lost or 0) + count
            now = self._clock()
            if self._last_line is not None and now - self._last_line < self._interval_s:
                return
            failed, self._failed = self._failed, 0
            window = "so far" if self._last_line is None else f"in the last {now - self._last_line:.0f} s"
            self._last_line = now
        logger.warning(
            line(
                "%s %s could not be exported %s (last error: %%(cut)s); next report in %.0f s at most",
                f"{failed:,}",
                self._what,
                window,
                self._interval_s,
                cut=reason or "the exporter reported a failure",
            )
        )

    def lost(self, count: int) -> None:
        """Count items lost otherwise (a full queue) while exports fail, for the recovery line."""
        with self._lock:
            if self._lost is not None:
                self._lost += count

    def succeeded(self) -> None:
        """An export worked: after failures, say so once with what was lost meanwhile."""
        with self._lock:
            lost, self._lost = self._lost, None
            if lost is None:
                return
            self._failed, self._last_line = 0, None  # the next failure is reported at once
        logger.warning(
            line(
                "exporting %s again; %s %s were lost while the collector was unreachable",
                self._what,
                f"{lost:,}",
                self._what,
            )
        )

    def close(self) -> None:
        """Report failures not yet reported; stop holding the exporters' lines back."""
        with self._lock:
            failed, self._failed = self._failed, 0
            was_open, self._open = self._open, False
        if failed:
            logger.warning(line("%s more %s could not be exported before shutdown", f"{failed:,}", self._what))
        if was_open:
            _OPEN.discard(self)
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
        self.report = FailureReport("spans", interval_s, clock, exporter=inner)
        self._lock = threading.Lock()
        self.in_flight = 0  # spans handed to the inner exporter that it has not returned yet

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export through the inner exporter; never raises."""
        with self._lock:
            self.in_flight += len(spans)
        try:
            with self.report.exporting():
                result = self.inner.export(spans)
            reason = self.report.reason()
        except Exception as exc:
            result, reason = SpanExportResult.FAILURE, f"{type(exc).__name__}: {exc}"
        finally:
            with self._lock:
                self.in_flight -= len(spans)
        if result is SpanExportResult.SUCCESS:
            _stats.add({"export_spans_exported": len(spans)})
            self.report.succeeded()
        else:
            _stats.add({"export_spans_failed": len(spans)})
            self.report.failed(len(spans), reason)
        return result

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the inner exporter."""
        return self.inner.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Report failures not yet reported, shut the inner exporter down."""
        self.report.close()
        self.inner.shutdown()

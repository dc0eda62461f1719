"""The tail sampler: a span processor that decides per trace, once the trace is complete.

It buffers the ended spans of each trace that the head sampler did not keep,
and when the trace's local root ends it asks the policies
(``DSPY_OTEL_TAIL_POLICIES``): a trace any policy keeps is handed, whole and
marked sampled, to the exporting processor; the others are dropped. Traces the
head sampler kept pass straight through, so head and tail together export what
each keeps.

Bounded whatever the span pattern, each with a variable:

- ``DSPY_OTEL_TAIL_DECISION_WAIT_MS`` — a trace whose root has not ended this
  long after its first span ended is decided on what it has (``timed_out``);
- ``DSPY_OTEL_TAIL_MAX_TRACES`` — traces in flight; past it, and past
  ``DSPY_OTEL_TAIL_MAX_MIB`` (an estimate of the bytes buffered), the oldest
  trace is **decided early** on what it has (``evicted``), so an error already
  seen is still kept;
- ``DSPY_OTEL_TAIL_MAX_SPANS_PER_TRACE`` — a trace that reaches it is decided
  early (``evicted``).

Spans that end after their trace was decided (a late thread, a background
task) follow the decision, remembered for the last ``DSPY_OTEL_TAIL_MAX_TRACES``
decided traces; a span of a trace decided before that starts a new buffered
trace of its own. ``force_flush()`` and ``shutdown()`` decide every pending
trace and export what is kept. Counts go to :func:`dspy_otel.stats`.

Example:
    >>> from opentelemetry.sdk.trace.export import BatchSpanProcessor
    >>> from dspy_otel.sampling.policies import parse_policies
    >>> processor = TailSamplingProcessor(  # doctest: +SKIP
    ...     BatchSpanProcessor(exporter), parse_policies("errors,ratio:0.05"))
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import SpanContext, TraceFlags

from dspy_otel import _stats
from dspy_otel.sampling._tail_limits import DECISION_BYTES, TailLimits, estimate_bytes
from dspy_otel.sampling.policies import Policy, TraceView

__all__ = ["TailLimits", "TailSamplingProcessor", "estimate_bytes", "latest"]

_MIB = 1 << 20
_NOTHING: list[ReadableSpan] = []  # shared, never changed: nothing to export
# the counter names for a decision (kept: True), precomputed for the hot path
_TRACES = {True: "tail_traces_kept", False: "tail_traces_dropped"}
_SPANS = {True: "tail_spans_kept", False: "tail_spans_dropped"}
_LATE_SPANS = {True: "tail_late_spans_kept", False: "tail_late_spans_dropped"}
_FLUSH_EVERY = 512  # at a flush, kept spans go to the exporting processor in chunks its queue can hold
_latest: weakref.ref[TailSamplingProcessor] | None = None


@dataclass(slots=True)
class _Pending:
    first_ns: int
    spans: list[ReadableSpan] = field(default_factory=list)
    size: int = 0


def _as_sampled(span: ReadableSpan) -> ReadableSpan:
    """The same span with its sampled flag set, so the exporting processor takes it."""
    ctx = span.context
    assert ctx is not None  # every span the SDK ends has one
    sampled = SpanContext(ctx.trace_id, ctx.span_id, ctx.is_remote, TraceFlags(TraceFlags.SAMPLED), ctx.trace_state)
    return ReadableSpan(
        name=span.name,
        context=sampled,
        parent=span.parent,
        resource=span.resource,
        attributes=span.attributes,
        events=span.events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class TailSamplingProcessor(SpanProcessor):
    """Buffers unsampled spans per trace and exports the traces that a policy keeps.

    Use it with a sampler that records what it does not sample (``configure()`` sets
    that up when ``DSPY_OTEL_TAIL_POLICIES`` is set).

    Args:
        inner: The exporting processor (a ``BatchSpanProcessor``); called outside any lock.
        policies: Keep a trace when any keeps it (:func:`dspy_otel.sampling.policies.parse_policies`).
        limits: The buffer's bounds.
        clock: Epoch nanoseconds (a fake clock in tests).
        tick_s: How often a background thread decides traces past the decision wait;
            ``None`` for no thread (call :meth:`decide_expired` yourself).
    """

    def __init__(
        self,
        inner: SpanProcessor,
        policies: Sequence[Policy],
        limits: TailLimits | None = None,
        clock: Callable[[], int] = time.time_ns,
        tick_s: float | None = 1.0,
    ) -> None:
        global _latest  # noqa: PLW0603 - the window asks the newest processor what became of a trace
        self.inner = inner
        self._policies = tuple(policies)
        self._limits = limits or TailLimits()
        self._wait_ns = self._limits.decision_wait_ms * 1_000_000
        self._max_bytes = self._limits.max_mib * _MIB
        self._max_traces, self._max_spans = self._limits.max_traces, self._limits.max_spans_per_trace
        self._clock = clock
        self._tick_s = tick_s
        self._unpublished: Counter[str] = Counter()  # kept apart from the lock-free parts: shared with a finalizer
        self._reset()
        _stats.register(self)
        weakref.finalize(self, _stats.add, self._unpublished)  # a processor dropped unflushed still counts
        _latest = weakref.ref(self)
        reset = weakref.WeakMethod(self._reset)
        os.register_at_fork(after_in_child=lambda: (method := reset()) is not None and method())

    def _reset(self) -> None:
        """Start empty (at creation, and in a forked child, which must not export its parent's spans)."""
        self._lock = threading.Lock()
        self._unpublished.clear()
        self._pending: OrderedDict[int, _Pending] = OrderedDict()
        self._decided: OrderedDict[int, bool] = OrderedDict()
        self._bytes = 0
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    @property
    def buffered_bytes(self) -> int:
        """The estimated bytes held now: buffered spans and remembered decisions."""
        return self._bytes

    def decision(self, trace_id: int) -> bool | None:
        """Whether a trace the tail decided on was kept; ``None`` while pending or long forgotten."""
        with self._lock:
            return self._decided.get(trace_id)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Pass the start on to the exporting processor."""
        self.inner.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        """Pass head-sampled spans on; buffer the others, deciding their trace when its root ends."""
        context, parent = span.context, span.parent
        root = parent is None or parent.is_remote  # a local root: its end completes the trace here
        if context is None or context.trace_flags & TraceFlags.SAMPLED:  # the flag itself: the property costs more
            if root:
                _stats.add({"tail_traces_kept_by_head": 1})
            self.inner.on_end(span)
            return
        trace_id, size = context.trace_id, estimate_bytes(span)
        with self._lock:  # counts go to _unpublished under it, published when stats() is read (or a tick, a flush)
            late = self._decided.get(trace_id)
            if late is None:
                out = self._buffer(trace_id, span, size, root)
            else:
                out = [_as_sampled(span)] if late else []
                self._unpublished[_LATE_SPANS[late]] += 1
        if out:
            self._emit(out)
        if self._ticker is None and self._tick_s is not None:
            self._start_ticker()

    def _buffer(self, trace_id: int, span: ReadableSpan, size: int, root: bool) -> list[ReadableSpan]:
        """Add ``span`` to its trace and decide what is due (under the lock); returns the spans to export."""
        pending = self._pending.get(trace_id)
        if pending is None:
            pending = self._pending[trace_id] = _Pending(self._clock())
        pending.spans.append(span)
        pending.size += size
        self._bytes += size
        if (
            not root
            and len(pending.spans) < self._max_spans
            and len(self._pending) <= self._max_traces
            and self._bytes <= self._max_bytes
        ):
            return _NOTHING  # the common case: buffered, nothing due
        out: list[ReadableSpan] = []
        if root:
            duration = 0 if span.start_time is None or span.end_time is None else span.end_time - span.start_time
            self._decide(trace_id, duration, True, out)
        elif len(pending.spans) >= self._max_spans:
            self._decide_early(trace_id, self._clock(), "evicted", out)
        while self._pending and (len(self._pending) > self._max_traces or self._bytes > self._max_bytes):
            self._decide_early(next(iter(self._pending)), self._clock(), "evicted", out)
        while self._decided and self._bytes > self._max_bytes:  # decisions alone past the bound: forget the oldest
            self._decided.popitem(last=False)
            self._bytes -= DECISION_BYTES
        return out

    def _decide_early(self, trace_id: int, now: int, why: str, out: list[ReadableSpan]) -> None:
        start = min(now if s.start_time is None else s.start_time for s in self._pending[trace_id].spans)
        self._unpublished[f"tail_traces_{why}"] += 1
        self._decide(trace_id, now - start, False, out)

    def _decide(self, trace_id: int, duration_ns: int, complete: bool, out: list[ReadableSpan]) -> None:
        """Pop a pending trace, ask the policies, remember the decision; kept spans go to ``out`` (under the lock)."""
        pending = self._pending.pop(trace_id)
        self._bytes -= pending.size
        view = TraceView(trace_id, pending.spans, duration_ns, complete)
        kept = False
        for policy in self._policies:
            if policy.keeps(view):
                kept = True
                break
        if trace_id not in self._decided:
            self._bytes += DECISION_BYTES
        self._decided[trace_id] = kept
        while len(self._decided) > self._max_traces:  # pending spans go first when bytes run short (_buffer)
            self._decided.popitem(last=False)  # the oldest decision is forgotten first
            self._bytes -= DECISION_BYTES
        unpublished = self._unpublished
        unpublished[_TRACES[kept]] += 1
        unpublished[_SPANS[kept]] += len(pending.spans)
        if kept:
            out.extend(_as_sampled(s) for s in pending.spans)

    def publish_counts(self) -> None:
        """Add what this processor counted since the last time to :func:`dspy_otel.stats`."""
        with self._lock:
            counts = dict(self._unpublished)
            self._unpublished.clear()
        if counts:
            _stats.add(counts)

    def _emit(self, spans: list[ReadableSpan], flush_every: int = 0) -> None:
        """Hand the kept spans on (flushing every ``flush_every`` so a burst fits the queue)."""
        for done, span in enumerate(spans, 1):
            self.inner.on_end(span)
            if flush_every and done % flush_every == 0:
                self.inner.force_flush()

    def decide_expired(self) -> None:
        """Decide every trace whose decision wait has run out (the background thread calls this)."""
        self._decide_oldest("timed_out", self._wait_ns)

    def _decide_all(self) -> None:
        self._decide_oldest("flushed", 0, flush_every=_FLUSH_EVERY)

    def _decide_oldest(self, why: str, min_age_ns: int, flush_every: int = 0) -> None:
        """Decide pending traces, oldest first, while they are at least ``min_age_ns`` old."""
        out: list[ReadableSpan] = []
        with self._lock:
            now = self._clock()
            while self._pending:
                trace_id, pending = next(iter(self._pending.items()))
                if now - pending.first_ns < min_age_ns:
                    break
                self._decide_early(trace_id, now, why, out)
        self.publish_counts()
        self._emit(out, flush_every)

    def _start_ticker(self) -> None:
        with self._lock:
            if self._ticker is not None:
                return
            stop, tick_s, this = self._stop, self._tick_s or 1.0, weakref.ref(self)

            def tick() -> None:
                while not stop.wait(tick_s):
                    processor = this()
                    if processor is None:
                        return
                    processor.decide_expired()
                    del processor

            self._ticker = threading.Thread(target=tick, name="dspy-otel-tail-sampler", daemon=True)
            self._ticker.start()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Decide every pending trace now, then flush the exporting processor."""
        self._decide_all()
        return self.inner.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Decide and export every pending trace, stop the background thread, shut the exporter down."""
        self._decide_all()
        self._stop.set()
        self.inner.shutdown()


def latest() -> TailSamplingProcessor | None:
    """The newest tail sampler still in use, if any (the development window asks it about traces)."""
    return _latest() if _latest is not None else None

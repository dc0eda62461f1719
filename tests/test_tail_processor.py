"""The tail-sampling processor with real SDK spans, fixed ids and a fake clock: decisions, bounds, late spans."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, DEFAULT_OFF
from opentelemetry.trace import Span, Status, StatusCode

from dspy_otel import _stats
from dspy_otel.sampling._tail_limits import DECISION_BYTES
from dspy_otel.sampling.head import DSPyOtelSampler
from dspy_otel.sampling.policies import parse_policies
from dspy_otel.sampling.tail import TailLimits, TailSamplingProcessor, estimate_bytes

MS = 1_000_000


class FixedIds(IdGenerator):
    """Trace ids 1, 2, 3, ... and span ids 1, 2, 3, ...: the same every run."""

    def __init__(self) -> None:
        self._traces = itertools.count(1)
        self._spans = itertools.count(1)

    def generate_trace_id(self) -> int:
        return next(self._traces)

    def generate_span_id(self) -> int:
        return next(self._spans)


@dataclass
class FakeClock:
    now: int = 1_000 * MS

    def __call__(self) -> int:
        return self.now


@dataclass
class Setup:
    tracer: trace.Tracer
    tail: TailSamplingProcessor
    exporter: InMemorySpanExporter
    clock: FakeClock
    before: dict[str, int] = field(default_factory=_stats.stats)

    def exported(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def exported_traces(self) -> set[int]:
        return {s.context.trace_id for s in self.exported() if s.context is not None}

    def counted(self, name: str) -> int:
        return _stats.stats().get(name, 0) - self.before.get(name, 0)

    def child(self, parent: Span, name: str = "child", error: bool = False) -> Span:
        span = self.tracer.start_span(name, context=trace.set_span_in_context(parent))
        if error:
            span.set_status(Status(StatusCode.ERROR, "boom"))
        return span


def nothing_pending(s: Setup) -> bool:
    """No span is buffered; what is held is the remembered decisions alone."""
    return not s.tail._pending and s.tail.buffered_bytes == len(s.tail._decided) * DECISION_BYTES


def make(policies: str = "errors", head_on: bool = False, **limits: int) -> Setup:
    exporter, clock = InMemorySpanExporter(), FakeClock()
    tail = TailSamplingProcessor(
        SimpleSpanProcessor(exporter), parse_policies(policies), TailLimits(**limits), clock=clock, tick_s=None
    )
    sampler = DSPyOtelSampler(ALWAYS_ON if head_on else DEFAULT_OFF, record_dropped=True)
    provider = TracerProvider(sampler=sampler, id_generator=FixedIds())
    provider.add_span_processor(tail)
    return Setup(provider.get_tracer("test"), tail, exporter, clock)


def run_trace(s: Setup, error: bool = False, children: int = 2) -> int:
    root = s.tracer.start_span("root")
    for i in range(children):
        s.child(root, error=error and i == children - 1).end()
    root.end()
    return root.get_span_context().trace_id


def test_a_trace_with_an_error_is_exported_whole_and_sampled() -> None:
    s = make("errors")
    failed = run_trace(s, error=True)
    run_trace(s)
    spans = s.exported()
    assert {sp.context.trace_id for sp in spans if sp.context} == {failed}
    assert sorted(sp.name for sp in spans) == ["child", "child", "root"]
    assert all(sp.context is not None and sp.context.trace_flags.sampled for sp in spans)
    assert (s.counted("tail_traces_kept"), s.counted("tail_traces_dropped")) == (1, 1)
    assert (s.counted("tail_spans_kept"), s.counted("tail_spans_dropped")) == (3, 3)
    assert nothing_pending(s)


def test_head_sampled_traces_pass_straight_through() -> None:
    s = make("errors", head_on=True)
    run_trace(s)
    assert len(s.exported()) == 3
    assert nothing_pending(s)
    assert s.counted("tail_traces_kept_by_head") == 1


def test_latency_uses_the_root_duration() -> None:
    s = make("latency:500")
    slow = s.tracer.start_span("root", start_time=0)
    slow.end(end_time=600 * MS)
    fast = s.tracer.start_span("root", start_time=0)
    fast.end(end_time=400 * MS)
    assert s.exported_traces() == {slow.get_span_context().trace_id}


def test_late_spans_follow_the_decision() -> None:
    s = make("errors")
    kept_root = s.tracer.start_span("root")
    kept_late = s.child(kept_root, "late")
    s.child(kept_root, error=True).end()
    kept_root.end()
    dropped_root = s.tracer.start_span("root")
    dropped_late = s.child(dropped_root, "late", error=True)  # fails after its trace was dropped
    dropped_root.end()
    kept_late.end()
    dropped_late.end()
    assert sorted(sp.name for sp in s.exported()) == ["child", "late", "root"]
    assert s.exported_traces() == {kept_root.get_span_context().trace_id}
    assert (s.counted("tail_late_spans_kept"), s.counted("tail_late_spans_dropped")) == (1, 1)
    assert s.tail.decision(dropped_root.get_span_context().trace_id) is False


def test_a_root_that_never_ends_is_decided_after_the_decision_wait() -> None:
    s = make("errors", decision_wait_ms=1_000)
    root = s.tracer.start_span("root")
    s.child(root, error=True).end()
    s.clock.now += 999 * MS
    s.tail.decide_expired()
    assert s.exported() == []
    s.clock.now += 1 * MS
    s.tail.decide_expired()
    assert [sp.name for sp in s.exported()] == ["child"]
    assert s.counted("tail_traces_timed_out") == 1
    root.end()  # late: follows the decision
    assert sorted(sp.name for sp in s.exported()) == ["child", "root"]


def test_past_max_traces_the_oldest_is_decided_early() -> None:
    s = make("errors", max_traces=2)
    roots = [s.tracer.start_span("root") for _ in range(3)]
    s.child(roots[0], error=True).end()
    s.child(roots[1]).end()
    assert s.exported() == []
    s.child(roots[2]).end()  # a third trace in flight: the first is decided on what it has, and kept
    assert s.exported_traces() == {roots[0].get_span_context().trace_id}
    assert s.counted("tail_traces_evicted") == 1
    roots[0].end()
    assert len(s.exported()) == 2


def test_a_trace_reaching_max_spans_is_decided_early() -> None:
    s = make("errors", max_spans_per_trace=3)
    root = s.tracer.start_span("root")
    for _ in range(3):
        s.child(root).end()
    assert s.counted("tail_traces_evicted") == 1
    assert s.counted("tail_traces_dropped") == 1
    assert nothing_pending(s)


def test_the_byte_bound_holds() -> None:
    s = make("errors", max_mib=1)
    root = s.tracer.start_span("root")
    for _ in range(40):
        child = s.child(root)
        child.set_attribute("gen_ai.input.messages", "x" * 50_000)
        child.end()
        assert s.tail.buffered_bytes <= 1 << 20
    assert s.counted("tail_traces_evicted") >= 1


def test_force_flush_decides_everything_pending() -> None:
    s = make("errors")
    root = s.tracer.start_span("root")
    s.child(root, error=True).end()
    assert s.tail.force_flush()
    assert [sp.name for sp in s.exported()] == ["child"]
    assert s.counted("tail_traces_flushed") == 1
    assert nothing_pending(s)


def test_byte_estimate_counts_string_content() -> None:
    s = make("errors", head_on=True)
    small = s.tracer.start_span("s")
    small.end()
    big = s.tracer.start_span("s", attributes={"content": "y" * 10_000})
    big.end()
    sizes = [estimate_bytes(sp) for sp in s.exported()]
    assert sizes[1] - sizes[0] >= 10_000


# Hypothesis: traces built from a random schedule of span ends, with random errors.
Schedule = list[tuple[int, int, bool]]  # (trace index, child index or -1 for the root, error)


@st.composite
def schedules(draw: st.DrawFn, max_traces: int = 6) -> Schedule:
    n = draw(st.integers(1, max_traces))
    events: Schedule = []
    for t in range(n):
        children = draw(st.integers(0, 4))
        events += [(t, c, draw(st.booleans())) for c in range(children)]
        events.append((t, -1, draw(st.booleans())))
    return draw(st.permutations(events))


def play(s: Setup, schedule: Schedule) -> Iterator[tuple[int, int, int, bool]]:
    """End spans in the schedule's order (children of a root that already ended are late); yield each end."""
    roots: dict[int, Span] = {}
    for t, _, _ in schedule:
        roots.setdefault(t, s.tracer.start_span("root"))
    children = {(t, c): s.child(roots[t]) for t, c, _ in schedule if c >= 0}
    for t, c, error in schedule:
        span = roots[t] if c < 0 else children[(t, c)]
        if error:
            span.set_status(Status(StatusCode.ERROR, "boom"))
        span.end()
        yield t, c, roots[t].get_span_context().trace_id, error


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(schedules())
def test_errors_are_exported_whole_and_dropped_traces_never_leak(schedule: Schedule) -> None:
    s = make("errors")
    root_ended: set[int] = set()
    error_in_time: dict[int, bool] = {}  # an error span ended no later than its root (not late)
    ends: dict[int, int] = {}
    for _, c, trace_id, error in play(s, schedule):
        error_in_time[trace_id] = error_in_time.get(trace_id, False) or (error and trace_id not in root_ended)
        ends[trace_id] = ends.get(trace_id, 0) + 1
        if c < 0:
            root_ended.add(trace_id)
    exported: dict[int, int] = {}
    for sp in s.exported():
        assert sp.context is not None
        exported[sp.context.trace_id] = exported.get(sp.context.trace_id, 0) + 1
    for trace_id, failed in error_in_time.items():
        if failed:
            assert exported.get(trace_id) == ends[trace_id], "a trace with an error was not exported whole"
        else:
            assert trace_id not in exported, "a span of a dropped trace was exported"


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(schedules(max_traces=12), st.integers(1, 4), st.integers(1, 3))
def test_bounds_hold_for_any_schedule(schedule: Schedule, max_traces: int, max_spans: int) -> None:
    s = make("errors", max_traces=max_traces, max_spans_per_trace=max_spans)
    for _ in play(s, schedule):
        assert len(s.tail._pending) <= max_traces
        assert all(len(p.spans) < max_spans for p in s.tail._pending.values())
    s.tail.force_flush()
    assert nothing_pending(s)
    assert not s.tail._pending


def test_a_forked_child_starts_with_an_empty_buffer() -> None:
    s = make("errors")
    root = s.tracer.start_span("root")
    s.child(root).end()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it holds, never run pytest's teardown
        os.write(write, f"{len(s.tail._pending)},{s.tail.buffered_bytes},{len(s.tail._decided)}".encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 100) == b"0,0,0"
    assert len(s.tail._pending) == 1


def test_the_background_thread_decides_expired_traces() -> None:
    exporter = InMemorySpanExporter()
    tail = TailSamplingProcessor(
        SimpleSpanProcessor(exporter), parse_policies("errors"), TailLimits(decision_wait_ms=50), tick_s=0.02
    )
    provider = TracerProvider(sampler=DSPyOtelSampler(DEFAULT_OFF, record_dropped=True))
    provider.add_span_processor(tail)
    tracer = provider.get_tracer("test")
    root = tracer.start_span("root")
    child = tracer.start_span("child", context=trace.set_span_in_context(root))
    child.set_status(Status(StatusCode.ERROR))
    child.end()
    for _ in range(200):
        if exporter.get_finished_spans():
            break
        time.sleep(0.01)
    assert [sp.name for sp in exporter.get_finished_spans()] == ["child"]
    provider.shutdown()


def test_the_byte_estimate_follows_the_memory_really_held() -> None:
    import tracemalloc

    s = make("errors", max_traces=5_000)
    attributes = {f"gen_ai.attribute.{i}": "value" for i in range(12)}
    roots = [s.tracer.start_span("root") for _ in range(1_000)]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for n, root in enumerate(roots):
        for _ in range(2):
            context = trace.set_span_in_context(root)
            child = s.tracer.start_span("chat gpt-4o-mini", context=context, attributes=attributes)
            child.set_attribute("gen_ai.input.messages", f"message {n} " + "m" * 2_000)  # new text, as in real use
            child.end()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert 0.75 <= held / s.tail.buffered_bytes <= 1.33, (held, s.tail.buffered_bytes)


def test_a_small_byte_bound_evicts_spans_before_it_forgets_decisions() -> None:
    s = make("errors", max_mib=1)
    roots = [s.tracer.start_span("root") for _ in range(600)]
    for root in roots:
        child = s.child(root)
        child.set_attribute("gen_ai.input.messages", "m" * 4_000)
        child.end()
    assert s.counted("tail_traces_evicted") > 0
    evicted = s.counted("tail_traces_evicted")
    for root in roots:
        root.end()  # late roots of evicted traces follow their trace's decision, not a new one
    assert s.counted("tail_late_spans_dropped") >= evicted - 5
    assert s.tail.buffered_bytes <= 1 << 20

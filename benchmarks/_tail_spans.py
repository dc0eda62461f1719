"""The in-process tail sampler as the benchmark sets it up, and spans shaped like the workload's.

Shared by ``breakdown.py`` (its cost per call and per span) and ``tail_memory.py``
(its buffer). The spans carry the attributes dspy-otel's production profile puts
on the workload's two spans (``ChainOfThought`` and its LM call, no content).
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider, sampling

from dspy_otel.sampling.head import DSPyOtelSampler
from dspy_otel.sampling.policies import parse_policies
from dspy_otel.sampling.tail import TailLimits, TailSamplingProcessor

POLICIES = "errors,ratio:0.05"
ROOT_NAME = "ChainOfThought"
ROOT_ATTRIBUTES = {"dspy.module.class": "ChainOfThought"}
LM_NAME = "chat fake-model"
LM_ATTRIBUTES: dict[str, str | int | bool | tuple[str, ...]] = {  # as recorded for one workload call
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "fake-model",
    "gen_ai.provider.name": "openai",
    "server.address": "127.0.0.1",
    "server.port": 45163,
    "gen_ai.response.id": "chatcmpl-fake-1",
    "gen_ai.response.finish_reasons": ("stop",),
    "gen_ai.response.model": "fake-model-2025-01-01",
    "gen_ai.usage.input_tokens": 1208,
    "gen_ai.usage.output_tokens": 532,
}


class CountingProcessor(SpanProcessor):
    """Keeps nothing; counts the spans handed to it."""

    def __init__(self) -> None:
        self.ended = 0

    def on_end(self, span: ReadableSpan) -> None:
        self.ended += 1


class CollectingProcessor(SpanProcessor):
    """Keeps every ended span, in the order they ended."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


def tail_processor(inner: SpanProcessor, limits: TailLimits | None = None) -> TailSamplingProcessor:
    """:data:`POLICIES` in front of ``inner``, with no background thread (every root ends, or we flush)."""
    return TailSamplingProcessor(inner, parse_policies(POLICIES), limits, tick_s=None)


def record_only_provider(processor: SpanProcessor) -> TracerProvider:
    """What ``configure(tail_policies=...)`` builds with no head sampler: nothing sampled, everything recorded."""
    sampler = DSPyOtelSampler(sampling.DEFAULT_OFF, record_dropped=True)
    provider = TracerProvider(sampler=sampler, shutdown_on_exit=False)  # no atexit reference: it can be freed
    provider.add_span_processor(processor)
    return provider


def start_root(tracer: trace.Tracer) -> Span:
    """The root span of one workload call, started."""
    span = tracer.start_span(ROOT_NAME, attributes=ROOT_ATTRIBUTES)
    assert isinstance(span, Span)
    return span


def start_lm_span(tracer: trace.Tracer, root: Span) -> Span:
    """An LM-call span under ``root``, started."""
    span = tracer.start_span(LM_NAME, trace.set_span_in_context(root), trace.SpanKind.CLIENT, attributes=LM_ATTRIBUTES)
    assert isinstance(span, Span)
    return span


def workload_traces(traces: int) -> list[ReadableSpan]:
    """``traces`` record-only traces of two spans each (LM call, then root), ended, in the order they ended."""
    collected = CollectingProcessor()
    provider = record_only_provider(collected)
    tracer = provider.get_tracer("benchmark")
    for _ in range(traces):
        root = start_root(tracer)
        start_lm_span(tracer, root).end()
        root.end()
    return collected.spans

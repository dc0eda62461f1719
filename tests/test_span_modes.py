"""Compact span mode, and sampled-out runs that make no SDK span below their root yet keep the trace context."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dspy
import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from conftest import Traced, parent_id
from dspy_otel._attributes import MODULE_CLASS
from dspy_otel.instrumentation._modules import MODULE_NAME, SIGNATURE
from dspy_otel.sampling.head import DSPyOtelSampler
from metric_points import total
from programs import QA

LM_SPAN = "chat gpt-4o-mini"


def test_compact_mode_puts_the_predictor_on_its_lm_span(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced(spans="compact")
    QA()(question="why?")
    spans = t.spans()
    assert sorted(s.name for s in spans) == ["QA", LM_SPAN, LM_SPAN]  # half the spans of full mode
    (root,) = t.named("QA")
    lm_spans = t.named(LM_SPAN)
    assert all(parent_id(s) == root.context.span_id for s in lm_spans)
    identities = sorted(
        ((s.attributes or {})[MODULE_CLASS], (s.attributes or {})[MODULE_NAME], (s.attributes or {})[SIGNATURE])
        for s in lm_spans
    )
    assert identities == [
        ("ChainOfThought", "think", "question -> reasoning, answer"),
        ("Predict", "check", "question, answer -> verdict"),
    ]


def test_compact_mode_top_level_predictor_is_just_its_lm_span(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced(spans="compact")
    dspy.Predict("question -> answer")(question="q")
    (span,) = t.spans()
    assert span.name == LM_SPAN
    assert span.parent is None
    assert (span.attributes or {})[MODULE_CLASS] == "Predict"


def test_full_mode_is_the_default(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()
    QA()(question="why?")
    assert len(t.spans()) == 5


@pytest.fixture
def should_sample_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the spans the SDK was asked to sample (every SDK span creation asks)."""
    asked: list[str] = []
    original = DSPyOtelSampler.should_sample

    def counting(self: DSPyOtelSampler, parent_context: Any, trace_id: int, name: str, *args: Any, **kw: Any) -> Any:
        asked.append(name)
        return original(self, parent_context, trace_id, name, *args, **kw)

    monkeypatch.setattr(DSPyOtelSampler, "should_sample", counting)
    return asked


def test_a_sampled_out_run_makes_no_sdk_span_below_its_root(
    traced: Callable[..., Traced], lm: Any, should_sample_calls: list[str]
) -> None:
    reader = InMemoryMetricReader()
    t = traced(sampler="parentbased_traceidratio", sampler_arg=0.0, metric_reader=reader)
    seen: list[trace.SpanContext] = []

    def lookup(city: str) -> str:
        """Where a downstream HTTP instrumentation would run: it must see the run's trace."""
        seen.append(trace.get_current_span().get_span_context())
        return "sunny"

    react = dspy.ReAct("question -> answer", tools=[lookup])
    react(question="weather?")
    assert t.spans() == []
    assert should_sample_calls == ["invoke_agent ReAct"]  # asked once, at the root; nothing below it touched the SDK
    (downstream,) = seen
    assert downstream.is_valid
    assert not downstream.trace_flags.sampled
    assert total_calls(reader) == 3  # the metrics still count every LM call


def total_calls(reader: InMemoryMetricReader) -> float:
    from metric_points import points

    return total(points(reader), "dspy.lm.calls")


def test_with_the_tail_sampler_every_span_is_still_recorded(
    traced: Callable[..., Traced], lm: Any, should_sample_calls: list[str]
) -> None:
    traced(tail_policies="errors")
    QA()(question="why?")
    assert len(should_sample_calls) == 5  # the tail sampler must see every span


def test_debug_inside_a_sampled_out_trace_asks_the_sampler(
    traced: Callable[..., Traced], lm: Any, should_sample_calls: list[str]
) -> None:
    import dspy_otel

    t = traced(sampler="always_off")
    tracer = t.provider.get_tracer("app")
    with tracer.start_as_current_span("request"), dspy_otel.debug():
        dspy.Predict("question -> answer")(question="q")
    assert sorted(s.name for s in t.spans()) == sorted([LM_SPAN, "Predict"])

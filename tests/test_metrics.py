"""Metrics are exact whatever the samplers keep: tokens, durations, cost, cache hits, failures, module durations."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import dspy
import pytest
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader, NumberDataPoint

import dspy_otel
from conftest import Traced
from dspy_otel._fake_lm import FakeOpenAIServer
from dspy_otel.metrics.instruments import DURATION_BUCKETS, TOKEN_BUCKETS
from metric_points import count, points, total


@pytest.mark.parametrize(
    "sampling",
    [{"sampler": "always_on"}, {"sampler": "always_off"}, {"tail_policies": "ratio:0"}],
    ids=["everything", "head 0 %", "tail drops all"],
)
def test_token_usage_and_calls_are_exact_whatever_the_sampling(
    traced: Callable[..., Traced], lm: Any, fake_server: FakeOpenAIServer, sampling: dict[str, str]
) -> None:
    reader = InMemoryMetricReader()
    t = traced(metric_reader=reader, **sampling)
    before = fake_server.billed_tokens
    program = dspy.ChainOfThought("question -> answer")
    for i in range(5):
        program(question=f"sync {i}")
    asyncio.run(program.acall(question="async"))
    requests = fake_server.requests
    with pytest.raises(Exception) as raised:  # noqa: PT011  # DSPy's LMServerError (3.4) or LiteLLM's error (3.0-3.3)
        program(question="FAIL please")
    failed = fake_server.requests - requests  # one call; before DSPy 3.4 the JSONAdapter fallback calls again
    after = fake_server.billed_tokens
    found = points(reader)
    assert total(found, "gen_ai.client.token.usage", gen_ai__token__type="input") == after[0] - before[0]
    assert total(found, "gen_ai.client.token.usage", gen_ai__token__type="output") == after[1] - before[1]
    assert count(found, "gen_ai.client.token.usage", gen_ai__token__type="input") == 6
    assert count(found, "gen_ai.client.operation.duration") == 6 + failed
    error_type = type(raised.value).__qualname__
    assert count(found, "gen_ai.client.operation.duration", error__type=error_type) == failed
    assert total(found, "dspy.lm.calls") == 6 + failed
    assert count(found, "dspy.module.duration", dspy__module__class="ChainOfThought") == 7
    if sampling != {"sampler": "always_on"}:
        assert t.spans() == []  # the traces were sampled away; the metrics were not


def test_suppress_drops_the_metrics_too(traced: Callable[..., Traced], lm: Any) -> None:
    reader = InMemoryMetricReader()
    traced(metric_reader=reader)
    program = dspy.ChainOfThought("question -> answer")
    with dspy_otel.suppress():
        program(question="health check")
    program(question="counted")
    found = points(reader)
    assert total(found, "dspy.lm.calls") == 1
    assert count(found, "dspy.module.duration", dspy__module__class="ChainOfThought") == 1


def test_attributes_are_the_small_bounded_set(traced: Callable[..., Traced], lm: Any) -> None:
    reader = InMemoryMetricReader()
    traced(metric_reader=reader)
    dspy.Predict("question -> answer")(question="what attributes?")
    ((attrs, point),) = points(reader)["gen_ai.client.operation.duration"]
    assert set(attrs) == {
        "gen_ai.operation.name",
        "gen_ai.provider.name",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "server.address",
        "server.port",
    }
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.response.model"] == "gpt-4o-mini-2025-01-01"
    assert isinstance(point, HistogramDataPoint)
    assert tuple(point.explicit_bounds) == DURATION_BUCKETS
    ((_, tokens),) = [p for p in points(reader)["gen_ai.client.token.usage"] if p[0]["gen_ai.token.type"] == "input"]
    assert isinstance(tokens, HistogramDataPoint)
    assert tuple(tokens.explicit_bounds) == TOKEN_BUCKETS


def test_cache_hits_are_counted_and_bill_no_tokens(
    traced: Callable[..., Traced], fake_server: FakeOpenAIServer, tmp_path: Any
) -> None:
    reader = InMemoryMetricReader()
    traced(metric_reader=reader)
    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=True)
    cached = dspy.LM("openai/gpt-4o-mini", api_base=fake_server.base_url, api_key="k", cache=True, num_retries=0)
    with dspy.context(lm=cached):
        for _ in range(3):
            dspy.Predict("question -> answer")(question="the same question, cached")
    found = points(reader)
    assert total(found, "dspy.lm.calls", dspy__lm__cache_hit=True) == 2
    assert total(found, "dspy.lm.calls", dspy__lm__cache_hit=False) == 1
    assert count(found, "gen_ai.client.token.usage", gen_ai__token__type="input") == 1


def test_health_counters_read_dspy_otel_stats(traced: Callable[..., Traced], lm: Any) -> None:
    reader = InMemoryMetricReader()
    traced(metric_reader=reader, tail_policies="errors")
    dspy.Predict("question -> answer")(question="dropped by the tail")
    found = points(reader)
    stats = dspy_otel.stats()
    assert total(found, "dspy_otel.tail.traces", decision="dropped") == stats["tail_traces_dropped"]
    exported = [p for a, p in found["dspy_otel.telemetry.spans"] if a == {"outcome": "exported"}]
    assert all(isinstance(p, NumberDataPoint) for p in exported)


def test_no_metrics_reader_means_no_metrics_recorded(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()  # span_exporter given, no metric reader, OTEL_METRICS_EXPORTER unset: metrics off
    dspy.Predict("question -> answer")(question="no metrics")
    assert len(t.spans()) == 2
    from dspy_otel import _setup

    assert _setup._meter_provider is None


def test_queued_calls_stay_bounded_and_every_call_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.sdk.metrics import MeterProvider

    from dspy_otel.metrics.instruments import MAX_QUEUED, Instruments

    # The background thread applies queued calls too, holding the lock meanwhile; if the scheduler pauses
    # it there, callers cannot help and the queue passes the bound by as many calls: whether that happens
    # depends on the machine's load, so it stays off, and the bound callers keep is checked exactly.
    monkeypatch.setattr(Instruments, "_start_worker", lambda self: None)
    reader = InMemoryMetricReader()
    instruments = Instruments(MeterProvider(metric_readers=[reader]).get_meter("t"))
    request = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"}
    result = {"gen_ai.usage.input_tokens": 3, "gen_ai.usage.output_tokens": 2, "dspy.lm.cache_hit": False}
    calls = MAX_QUEUED * 2 + 7
    for _ in range(calls):
        instruments.lm_call(request, result, 0.01, None)
        assert len(instruments._queued) <= MAX_QUEUED + 1  # past the bound, each new call applies two
    instruments.apply()  # here, not in the collection's callback, which the SDK stops after 10 s
    found = points(reader)
    assert total(found, "dspy.lm.calls") == calls
    assert total(found, "gen_ai.client.token.usage", gen_ai__token__type="input") == 3 * calls
    assert total(found, "dspy_otel.telemetry.calls") == calls


def test_queued_calls_are_applied_in_the_background_without_a_collection() -> None:
    import time

    from opentelemetry.sdk.metrics import MeterProvider

    from dspy_otel.metrics.instruments import APPLY_EVERY_S, Instruments

    instruments = Instruments(MeterProvider(metric_readers=[InMemoryMetricReader()]).get_meter("t"))
    for _ in range(50):
        instruments.module_call("QA", 0.01, None)
    deadline = time.monotonic() + APPLY_EVERY_S * 5
    while instruments._queued and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not instruments._queued

"""Retries of an LM call: an event per failed attempt on its span, the attempts made, a retry counter."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import dspy
import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

import dspy_otel
from conftest import CANARY_KEY, Traced, attr
from dspy_otel._fake_lm import FakeOpenAIServer
from metric_points import points, total

LM_SPAN = "chat gpt-4o-mini"


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as fresh:  # its own server: failures set here never reach another test
        yield fresh


def retrying_lm(server: FakeOpenAIServer, retries: int) -> Any:
    return dspy.LM("openai/gpt-4o-mini", api_base=server.base_url, api_key=CANARY_KEY, cache=False, num_retries=retries)


def failed_attempts(span: ReadableSpan) -> list[tuple[Any, ...]]:
    return [
        (e.attributes["dspy.lm.attempt"], e.attributes["dspy.lm.will_retry"], e.attributes["error.type"])
        for e in span.events
        if e.name == "dspy.lm.attempt_failed" and e.attributes is not None
    ]


def test_a_call_that_succeeds_on_the_third_attempt(traced: Callable[..., Traced], server: FakeOpenAIServer) -> None:
    reader = InMemoryMetricReader()
    t = traced(metric_reader=reader)
    server.fail_next(2)
    with dspy.context(lm=retrying_lm(server, 3)):
        dspy.Predict("question -> answer")(question="q")
    assert server.requests == 3
    (span,) = t.named(LM_SPAN)
    assert span.status.status_code is StatusCode.UNSET
    assert attr(span, "dspy.lm.attempts") == 3
    assert failed_attempts(span) == [(1, True, "LMServerError"), (2, True, "LMServerError")]
    found = points(reader)
    assert total(found, "dspy.lm.retries", error__type="LMServerError", gen_ai__request__model="gpt-4o-mini") == 2
    keys = {key for attributes, _ in found["dspy.lm.retries"] for key in attributes}
    assert "dspy.lm.attempt" not in keys


def test_a_call_that_runs_out_of_retries(traced: Callable[..., Traced], server: FakeOpenAIServer) -> None:
    reader = InMemoryMetricReader()
    t = traced(metric_reader=reader)
    server.fail_next(10)
    with dspy.context(lm=retrying_lm(server, 2)), pytest.raises(dspy.utils.exceptions.LMServerError):
        dspy.Predict("question -> answer")(question="q")
    assert server.requests == 3
    (span,) = t.named(LM_SPAN)
    assert span.status.status_code is StatusCode.ERROR
    assert attr(span, "dspy.lm.attempts") == 3
    assert [a[:2] for a in failed_attempts(span)] == [(1, True), (2, True), (3, False)]
    assert total(points(reader), "dspy.lm.retries") == 2  # two requests sent again; the third failure ends it


def test_async_calls_record_their_attempts(traced: Callable[..., Traced], server: FakeOpenAIServer) -> None:
    t = traced()
    server.fail_next(1)
    with dspy.context(lm=retrying_lm(server, 3)):
        asyncio.run(dspy.Predict("question -> answer").acall(question="q"))
    (span,) = t.named(LM_SPAN)
    assert attr(span, "dspy.lm.attempts") == 2
    assert failed_attempts(span) == [(1, True, "LMServerError")]


def test_a_call_without_failure_has_no_attempts_attribute(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()
    dspy.Predict("question -> answer")(question="q")
    (span,) = t.named(LM_SPAN)
    assert attr(span, "dspy.lm.attempts") is None
    assert failed_attempts(span) == []


def test_without_retries_a_failure_is_the_exception_alone(
    traced: Callable[..., Traced], server: FakeOpenAIServer
) -> None:
    t = traced()
    server.fail_next(1)
    with dspy.context(lm=retrying_lm(server, 0)), pytest.raises(dspy.utils.exceptions.LMServerError):
        dspy.Predict("question -> answer")(question="q")
    (span,) = t.named(LM_SPAN)
    assert [e.name for e in span.events] == ["exception"]
    assert attr(span, "dspy.lm.attempts") is None


def test_retries_in_parallel_threads_land_on_the_span_of_their_call(
    traced: Callable[..., Traced], server: FakeOpenAIServer
) -> None:
    t = traced()
    server.fail_next(3)
    with dspy.context(lm=retrying_lm(server, 3)):
        dspy.Parallel(num_threads=3, disable_progress_bar=True)(
            [(dspy.Predict("question -> answer"), {"question": f"q{i}"}) for i in range(4)]
        )
    spans = t.named(LM_SPAN)
    assert len(spans) == 4
    assert server.requests == 7
    assert sum(len(failed_attempts(s)) for s in spans) == 3
    for span in spans:
        assert attr(span, "dspy.lm.attempts") == (len(failed_attempts(span)) + 1 if failed_attempts(span) else None)


def test_suppressed_calls_still_retry(traced: Callable[..., Traced], server: FakeOpenAIServer) -> None:
    t = traced()
    server.fail_next(1)
    with dspy.context(lm=retrying_lm(server, 3)), dspy_otel.suppress():
        dspy.Predict("question -> answer")(question="q")
    assert server.requests == 2
    assert t.spans() == []

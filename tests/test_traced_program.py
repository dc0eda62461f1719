"""A whole DSPy program traced on every supported DSPy release (the version matrix runs this file on each).

A module with a ``ChainOfThought`` and a ``Predict`` (``programs.QA``), a ``ReAct`` with a tool, a failing
call, an async run and a streamed run: their spans, parenting and usage (tokens, cost, response model, cache
hits), the token metrics and a token-based tail policy are asserted with nothing specific to one DSPy release.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import dspy
import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.trace import StatusCode

from conftest import Traced, attr, parent_id
from dspy_otel._attributes import CACHE_HIT, USAGE_COST
from dspy_otel._fake_lm import FakeOpenAIServer
from dspy_otel.instrumentation._support import dspy_version, supported
from dspy_otel.retention import SwitchedOffHistory
from metric_points import count, points, total
from programs import QA
from test_lm_spans import _drain, make_lm, memory_cache, sse_base_url  # noqa: F401  # fixtures used below
from test_parenting import assert_one_trace

LM_SPAN = "chat gpt-4o-mini"


def weather(city: str) -> str:
    """Today's weather in a city."""
    return f"sunny in {city}"


def assert_billed(span: ReadableSpan) -> None:
    """Usage, cost and the response model are on the LM span (the fake server's model has a date suffix)."""
    assert attr(span, gen_ai.GEN_AI_USAGE_INPUT_TOKENS) > 0
    assert attr(span, gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS) > 0
    assert attr(span, USAGE_COST) > 0
    assert attr(span, gen_ai.GEN_AI_RESPONSE_MODEL) == "gpt-4o-mini-2025-01-01"
    assert attr(span, CACHE_HIT) is None  # set on cache hits only


def test_the_installed_dspy_is_supported() -> None:
    assert supported(dspy_version()), f"DSPy {dspy_version()} is not in the range the matrix tests"


def test_a_module_with_predict_and_chain_of_thought(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced(profile="production")
    QA()(question="What is DSPy?")
    spans = t.spans()
    root = assert_one_trace(spans, "QA")
    (think,) = t.named("ChainOfThought think")
    (check,) = t.named("Predict check")
    assert {parent_id(think), parent_id(check)} == {root.context.span_id}
    assert attr(check, "dspy.signature") == "question, answer -> verdict"
    lms = t.named(LM_SPAN)
    assert {parent_id(s) for s in lms} == {think.context.span_id, check.context.span_id}
    assert len(lms) == 2
    for span in lms:
        assert_billed(span)
    assert isinstance(lm.history, SwitchedOffHistory)
    assert len(lm.history) == 0


def test_react_with_a_tool(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()
    dspy.ReAct("question -> answer", tools=[weather])(question="Weather in Paris?")
    spans = t.spans()
    root = assert_one_trace(spans, "invoke_agent ReAct")
    (tool,) = t.named("execute_tool weather")
    assert parent_id(tool) == root.context.span_id
    assert attr(tool, gen_ai.GEN_AI_TOOL_NAME) == "weather"
    lms = t.named(LM_SPAN)
    assert len(lms) >= 3  # two ReAct steps and the extraction
    for span in lms:
        assert_billed(span)


def test_a_failing_call_is_an_error_span(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()
    with pytest.raises(Exception) as raised:  # noqa: PT011  # the exception type is DSPy's or LiteLLM's, by release
        dspy.Predict("question -> answer")(question="FAIL please")
    failed = [s for s in t.named(LM_SPAN) if s.status.status_code is StatusCode.ERROR]
    assert failed
    assert all(attr(s, error_attributes.ERROR_TYPE) for s in failed)
    (predict,) = t.named("Predict")
    assert predict.status.status_code is StatusCode.ERROR
    assert attr(predict, error_attributes.ERROR_TYPE) == type(raised.value).__qualname__


def test_async_run(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()
    asyncio.run(QA().acall(question="async?"))
    assert_one_trace(t.spans(), "QA")
    lms = t.named(LM_SPAN)
    assert len(lms) == 2
    for span in lms:
        assert_billed(span)


def test_streamed_run(traced: Callable[..., Traced], sse_base_url: str) -> None:  # noqa: F811  # the fixture
    t = traced()
    listener = dspy.streaming.StreamListener(signature_field_name="answer")
    program = dspy.streamify(dspy.Predict("question -> answer"), stream_listeners=[listener])
    with dspy.context(lm=make_lm(sse_base_url)):
        values = asyncio.run(_drain(program(question="stream please")))
    assert any(isinstance(v, dspy.streaming.StreamResponse) for v in values)
    (span,) = t.named(LM_SPAN)
    (predict,) = t.named("Predict")
    assert parent_id(span) == predict.context.span_id
    assert attr(span, gen_ai.GEN_AI_USAGE_INPUT_TOKENS) == 11
    assert attr(span, gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS) == 7


@pytest.mark.usefixtures("memory_cache")
def test_a_cache_hit_is_marked_and_not_billed(traced: Callable[..., Traced], fake_server: FakeOpenAIServer) -> None:
    t = traced()
    with dspy.context(lm=make_lm(fake_server.base_url, cache=True)):
        for _ in range(2):
            dspy.Predict("question -> answer")(question="cache me")
    first, second = sorted(t.named(LM_SPAN), key=lambda s: s.start_time or 0)
    assert_billed(first)
    assert attr(second, CACHE_HIT) is True
    assert attr(second, gen_ai.GEN_AI_USAGE_INPUT_TOKENS) is None


def test_token_metrics_match_what_the_server_billed(
    traced: Callable[..., Traced], lm: Any, fake_server: FakeOpenAIServer
) -> None:
    reader = InMemoryMetricReader()
    traced(metric_reader=reader, sampler="always_off")
    before = fake_server.billed_tokens
    QA()(question="metrics?")
    after = fake_server.billed_tokens
    found = points(reader)
    assert total(found, "gen_ai.client.token.usage", gen_ai__token__type="input") == after[0] - before[0]
    assert total(found, "gen_ai.client.token.usage", gen_ai__token__type="output") == after[1] - before[1]
    assert count(found, "gen_ai.client.operation.duration") == 2


@pytest.mark.parametrize(("policy", "kept"), [("tokens:1", True), ("tokens:100000000", False)])
def test_a_token_tail_policy_sees_the_usage(traced: Callable[..., Traced], lm: Any, policy: str, kept: bool) -> None:
    t = traced(tail_policies=policy)
    QA()(question="tail?")
    assert bool(t.spans()) is kept

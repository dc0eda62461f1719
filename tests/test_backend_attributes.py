"""What LLM backends type spans by: tool and agent spans, OpenInference kinds, run totals, LM cost."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

import dspy
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.trace import StatusCode

from conftest import CANARY_KEY, Traced, attr, configured_lm, parent_id
from dspy_otel._attributes import RUN_COST, RUN_INPUT_TOKENS, RUN_OUTPUT_TOKENS, USAGE_COST
from dspy_otel._fake_lm import FakeOpenAIServer
from dspy_otel.instrumentation._totals import Totals
from programs import QA
from test_parenting import Fanout

LM_SPAN = "chat gpt-4o-mini"
KIND = "openinference.span.kind"


def weather(city: str) -> str:
    """Today's weather in a city."""
    return f"It is sunny in {city}."


def _lm_spans_under(spans: list[ReadableSpan], root: ReadableSpan) -> list[ReadableSpan]:
    """The LM spans anywhere beneath ``root``."""
    by_id = {s.context.span_id: s for s in spans}

    def beneath(span: ReadableSpan) -> bool:
        parent = parent_id(span)
        while parent is not None:
            if parent == root.context.span_id:
                return True
            parent = parent_id(by_id[parent]) if parent in by_id else None
        return False

    return [s for s in spans if s.name == LM_SPAN and beneath(s)]


def _assert_totals_match_lm_spans(spans: list[ReadableSpan], root: ReadableSpan) -> None:
    lms = _lm_spans_under(spans, root)
    assert lms
    assert attr(root, RUN_INPUT_TOKENS) == sum(attr(s, gen_ai.GEN_AI_USAGE_INPUT_TOKENS) or 0 for s in lms)
    assert attr(root, RUN_OUTPUT_TOKENS) == sum(attr(s, gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS) or 0 for s in lms)
    assert attr(root, RUN_COST) == pytest.approx(sum(attr(s, USAGE_COST) or 0.0 for s in lms))


def test_a_tool_span_follows_execute_tool_with_its_arguments_and_result(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced(capture_content="SPAN_ONLY")
    dspy.ReAct("question -> answer", tools=[weather])(question="Weather in Paris?")
    (tool,) = t.named("execute_tool weather")
    attributes = dict(tool.attributes or {})
    assert attributes[gen_ai.GEN_AI_OPERATION_NAME] == "execute_tool"
    assert attributes[gen_ai.GEN_AI_TOOL_NAME] == "weather"
    assert attributes[gen_ai.GEN_AI_TOOL_DESCRIPTION] == "Today's weather in a city."
    assert attributes[gen_ai.GEN_AI_TOOL_TYPE] == "function"
    assert json.loads(str(attributes[gen_ai.GEN_AI_TOOL_CALL_ARGUMENTS])) == {"city": "Paris"}
    assert attributes[gen_ai.GEN_AI_TOOL_CALL_RESULT] == "It is sunny in Paris."
    assert attributes[KIND] == "TOOL"
    assert attributes["input.value"] == attributes[gen_ai.GEN_AI_TOOL_CALL_ARGUMENTS]
    assert attributes["input.mime_type"] == "application/json"
    assert attributes["output.value"] == "It is sunny in Paris."
    assert attributes["output.mime_type"] == "text/plain"


def test_a_tool_call_run_by_execute_is_one_span_with_its_call_id(traced: Callable[..., Traced]) -> None:
    t = traced(capture_content="SPAN_ONLY")
    call = dspy.ToolCalls.ToolCall(name="weather", args={"city": "Paris"}, id="call_42")
    assert call.execute(functions=[dspy.Tool(weather)]) == "It is sunny in Paris."  # runs the function itself
    assert call.execute(functions={"weather": dspy.Tool(weather)}) == "It is sunny in Paris."  # calls the Tool
    spans = t.named("execute_tool weather")
    assert len(spans) == 2  # one per call: the Tool called inside execute() opens no second span
    for span in spans:
        assert parent_id(span) is None
        assert attr(span, gen_ai.GEN_AI_TOOL_CALL_ID) == "call_42"
        assert json.loads(str(attr(span, gen_ai.GEN_AI_TOOL_CALL_ARGUMENTS))) == {"city": "Paris"}
        assert attr(span, gen_ai.GEN_AI_TOOL_CALL_RESULT) == "It is sunny in Paris."
        assert attr(span, KIND) == "TOOL"


def test_tool_content_is_scrubbed_redacted_and_cut(traced: Callable[..., Traced], lm: Any) -> None:
    def leak(city: str) -> dict[str, str]:
        """Returns secrets."""
        return {"key": CANARY_KEY, "mail": "ann@example.com", "long": "y" * 500}

    t = traced(capture_content="SPAN_ONLY", redact="redact_hooks:mask_emails", content_max_length=200)
    dspy.ReAct("question -> answer", tools=[leak])(question="Weather in Paris?")
    (tool,) = t.named("execute_tool leak")
    result = str(attr(tool, gen_ai.GEN_AI_TOOL_CALL_RESULT))
    assert CANARY_KEY not in result
    assert "[REDACTED]" in result
    assert "ann@example.com" not in result
    assert "<email>" in result
    assert len(result) <= 200
    assert "truncated" in result
    assert attr(tool, "output.mime_type") == "application/json"


def test_without_content_capture_tools_and_modules_carry_their_kind_but_no_content(
    traced: Callable[..., Traced], lm: Any
) -> None:
    t = traced()
    dspy.ReAct("question -> answer", tools=[weather])(question="Weather in Paris?")
    spans = t.spans()
    (tool,) = t.named("execute_tool weather")
    assert attr(tool, KIND) == "TOOL"
    content = (gen_ai.GEN_AI_TOOL_CALL_ARGUMENTS, gen_ai.GEN_AI_TOOL_CALL_RESULT, "input.value", "output.value")
    assert all(attr(s, key) is None for s in spans for key in content)


class Assistant(dspy.Module):  # type: ignore[misc]  # dspy ships no type information
    """A module holding a ReAct agent."""

    def __init__(self) -> None:
        super().__init__()
        self.agent = dspy.ReAct("question -> answer", tools=[weather])

    def forward(self, question: str) -> Any:
        return self.agent(question=question)


def test_react_is_an_invoke_agent_span_that_still_says_which_module_it_is(
    traced: Callable[..., Traced], lm: Any
) -> None:
    t = traced(capture_content="SPAN_ONLY")
    Assistant()(question="Weather in Paris?")
    (root,) = t.named("Assistant")
    assert attr(root, KIND) == "CHAIN"
    assert attr(root, gen_ai.GEN_AI_OPERATION_NAME) is None
    (agent,) = t.named("invoke_agent agent")
    assert parent_id(agent) == root.context.span_id
    assert attr(agent, gen_ai.GEN_AI_OPERATION_NAME) == "invoke_agent"
    assert attr(agent, gen_ai.GEN_AI_AGENT_NAME) == "agent"
    assert attr(agent, "dspy.module.class") == "ReAct"
    assert attr(agent, "dspy.module.name") == "agent"
    assert attr(agent, KIND) == "AGENT"
    assert json.loads(str(attr(agent, "input.value"))) == {"question": "Weather in Paris?"}
    assert "answer" in json.loads(str(attr(agent, "output.value")))


def test_module_spans_carry_inputs_and_outputs_and_lm_spans_no_openinference_kind(
    traced: Callable[..., Traced], lm: Any
) -> None:
    t = traced(capture_content="SPAN_ONLY")
    QA()(question="What is 6 x 7?")
    (check,) = t.named("Predict check")
    assert attr(check, KIND) == "CHAIN"
    assert json.loads(str(attr(check, "input.value")))["question"] == "What is 6 x 7?"
    assert "verdict" in json.loads(str(attr(check, "output.value")))
    assert attr(check, "output.mime_type") == "application/json"
    for span in t.spans():  # the content is on a span once: under OpenInference's names, not also under dspy's
        assert attr(span, "dspy.module.inputs") is None
        assert attr(span, "dspy.module.outputs") is None
    lms = t.named(LM_SPAN)
    assert len(lms) == 2
    for span in lms:
        assert not any(key.startswith(("openinference.", "input.", "output.")) for key in span.attributes or {})
        assert isinstance(attr(span, USAGE_COST), float)
        assert attr(span, "dspy.lm.cost") is None  # the cost is said once, under the key Langfuse reads


def test_semconv_genai_alone_emits_no_openinference_attribute(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced(capture_content="SPAN_ONLY", semconv="genai")
    dspy.ReAct("question -> answer", tools=[weather])(question="Weather in Paris?")
    spans = t.spans()
    assert spans
    for span in spans:
        assert not any(key.startswith(("openinference.", "input.", "output.")) for key in span.attributes or {})
    (agent,) = t.named("invoke_agent ReAct")
    assert attr(agent, gen_ai.GEN_AI_OPERATION_NAME) == "invoke_agent"
    (tool,) = t.named("execute_tool weather")
    assert attr(tool, gen_ai.GEN_AI_TOOL_CALL_RESULT) == "It is sunny in Paris."
    assert json.loads(str(attr(agent, "dspy.module.inputs"))) == {"question": "Weather in Paris?"}  # dspy's names


def test_every_module_span_totals_the_lm_calls_beneath_it(
    traced: Callable[..., Traced], fake_server: FakeOpenAIServer, lm: Any
) -> None:
    t = traced()
    billed_before = fake_server.billed_tokens
    Assistant()(question="Weather in Paris?")
    billed_after = fake_server.billed_tokens
    spans = t.spans()
    (root,) = t.named("Assistant")
    assert (attr(root, RUN_INPUT_TOKENS), attr(root, RUN_OUTPUT_TOKENS)) == (
        billed_after[0] - billed_before[0],
        billed_after[1] - billed_before[1],
    )
    assert float(attr(root, RUN_COST)) > 0
    for name in ("Assistant", "invoke_agent agent", "ChainOfThought agent.extract"):
        (span,) = t.named(name)
        _assert_totals_match_lm_spans(spans, span)
    for predict in t.named("Predict agent.react"):
        _assert_totals_match_lm_spans(spans, predict)
    for tool in t.named("execute_tool weather"):
        assert attr(tool, RUN_INPUT_TOKENS) is None


def test_in_compact_mode_the_module_totals_its_predictors_calls(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced(spans="compact")
    QA()(question="What is 6 x 7?")
    spans = t.spans()
    (root,) = t.named("QA")
    assert [s.name for s in spans if s.name != LM_SPAN] == ["QA"]  # the predictors have no span of their own
    _assert_totals_match_lm_spans(spans, root)


def test_parallel_worker_threads_add_up_to_the_run_total(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()
    program = Fanout()
    program(questions=[f"q{i}" for i in range(12)])
    assert len(program.threads) > 1
    spans = t.spans()
    (root,) = t.named("Fanout")
    assert len(_lm_spans_under(spans, root)) == 12
    _assert_totals_match_lm_spans(spans, root)


def test_cache_hits_add_nothing(traced: Callable[..., Traced], fake_server: FakeOpenAIServer) -> None:
    cached = dspy.LM("openai/gpt-4o-mini", api_base=fake_server.base_url, api_key="x", num_retries=0)
    t = traced()
    question = f"cache me {uuid.uuid4()}"  # DSPy's cache outlives the test run
    with dspy.context(lm=cached):
        QA()(question=question)
        QA()(question=question)
    first, second = sorted(t.named("QA"), key=lambda s: s.start_time or 0)
    assert int(attr(first, RUN_INPUT_TOKENS)) > 0
    assert attr(second, RUN_INPUT_TOKENS) == 0
    assert attr(second, RUN_OUTPUT_TOKENS) == 0
    assert attr(second, RUN_COST) is None  # no call reported a cost


class AnswerThenFail(dspy.Module):  # type: ignore[misc]  # dspy ships no type information
    """One LM call that is billed, then one that fails."""

    def __init__(self) -> None:
        super().__init__()
        self.first = dspy.Predict("question -> answer")
        self.second = dspy.Predict("question -> answer")

    def forward(self, question: str) -> Any:
        self.first(question=question)
        return self.second(question="FAIL " + question)


def test_a_failed_run_totals_what_was_billed(traced: Callable[..., Traced], fake_server: FakeOpenAIServer) -> None:
    gen = configured_lm(fake_server)
    next(gen)
    try:
        t = traced()
        with pytest.raises(Exception, match="failed on purpose"):
            AnswerThenFail()(question="why?")
    finally:
        next(gen, None)
    spans = t.spans()
    (root,) = t.named("AnswerThenFail")
    assert root.status.status_code is StatusCode.ERROR
    (first,) = t.named("Predict first")
    assert attr(root, RUN_INPUT_TOKENS) == attr(first, RUN_INPUT_TOKENS) > 0
    assert attr(root, RUN_COST) == attr(first, RUN_COST)
    (second,) = t.named("Predict second")
    assert attr(second, RUN_INPUT_TOKENS) is None  # its one call billed nothing
    _assert_totals_match_lm_spans(spans, root)


def test_totals_lose_no_update_under_concurrent_threads() -> None:
    totals = Totals()
    start = threading.Barrier(8)

    def add() -> None:
        start.wait()
        for _ in range(2000):
            totals.add(1, 3, 2, 0.5, 1)

    threads = [threading.Thread(target=add) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert totals.sums() == (16000, 48000, 32000, 8000.0, 16000)

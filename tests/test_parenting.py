"""One program run is one trace: module, tool and LM spans nest across modules, threads and asyncio tasks."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import dspy
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.trace import SpanKind, StatusCode

from conftest import Traced, parent_id
from dspy_otel._attributes import MODULE_CLASS
from programs import QA

LM_SPAN = "chat gpt-4o-mini"


def by_id(spans: list[ReadableSpan]) -> dict[int, ReadableSpan]:
    return {s.context.span_id: s for s in spans}


def parent_name(span: ReadableSpan, spans: list[ReadableSpan]) -> str | None:
    pid = parent_id(span)
    return by_id(spans)[pid].name if pid is not None else None


def assert_one_trace(spans: list[ReadableSpan], root: str) -> ReadableSpan:
    """All spans share one trace, every parent is among them, and ``root`` is the only root."""
    assert len({s.context.trace_id for s in spans}) == 1
    ids = by_id(spans)
    roots = [s for s in spans if parent_id(s) is None]
    assert [r.name for r in roots] == [root]
    assert all(parent_id(s) in ids for s in spans if s is not roots[0])
    return roots[0]


def assert_each_lm_under_its_own_predictor(spans: list[ReadableSpan]) -> None:
    """Every LM span's parent is a Predict or ChainOfThought span, and none of them made two LM calls."""
    lm_parents = [parent_id(s) for s in spans if s.name == LM_SPAN]
    assert lm_parents
    classes = {(by_id(spans)[p].attributes or {}).get(MODULE_CLASS) for p in lm_parents if p is not None}
    assert classes <= {"Predict", "ChainOfThought"}
    assert len(set(lm_parents)) == len(lm_parents)


def test_user_module_chain_of_thought_and_predict_form_one_trace(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()
    QA()(question="Why?")
    spans = t.spans()
    root = assert_one_trace(spans, "QA")
    assert root.kind is SpanKind.INTERNAL
    assert (root.attributes or {})[MODULE_CLASS] == "QA"
    (cot,) = t.named("ChainOfThought think")  # two modules under one parent: told apart by their names in it
    assert parent_id(cot) == root.context.span_id
    (check,) = t.named("Predict check")
    assert parent_id(check) == root.context.span_id
    assert (check.attributes or {})["dspy.module.name"] == "check"
    assert (check.attributes or {})["dspy.signature"] == "question, answer -> verdict"
    assert (cot.attributes or {})["dspy.signature"] == "question -> reasoning, answer"
    assert sorted(parent_name(s, spans) or "" for s in t.named(LM_SPAN)) == ["ChainOfThought think", "Predict check"]
    assert_each_lm_under_its_own_predictor(spans)


def test_each_program_run_is_its_own_trace(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()
    program = dspy.Predict("question -> answer")
    program(question="one")
    program(question="two")
    roots = t.named("Predict")
    assert len(roots) == 2
    assert all(parent_id(r) is None for r in roots)
    assert len({s.context.trace_id for s in t.spans()}) == 2


@pytest.mark.parametrize("run", ["sync", "async"])
def test_react_tool_calls_are_spans_in_the_run(traced: Callable[..., Traced], lm: Any, run: str) -> None:
    calls: list[str] = []

    def weather(city: str) -> str:
        """Today's weather in a city."""
        calls.append(city)
        return f"sunny in {city}"

    t = traced()
    react = dspy.ReAct("question -> answer", tools=[weather])
    if run == "sync":
        react(question="Weather in Paris?")
    else:
        asyncio.run(react.acall(question="Weather in Paris?"))
    assert calls == ["Paris"]
    spans = t.spans()
    root = assert_one_trace(spans, "ReAct")
    (tool,) = t.named("execute_tool weather")
    assert parent_id(tool) == root.context.span_id
    assert tool.kind is SpanKind.INTERNAL
    assert (tool.attributes or {})[gen_ai.GEN_AI_TOOL_NAME] == "weather"
    assert (tool.attributes or {})[gen_ai.GEN_AI_OPERATION_NAME] == "execute_tool"
    (finish,) = t.named("execute_tool finish")
    assert parent_id(finish) == root.context.span_id
    assert len(t.named(LM_SPAN)) == 3  # two ReAct steps and the extraction
    assert_each_lm_under_its_own_predictor(spans)


def test_a_failing_tool_span_is_an_error_and_react_goes_on(traced: Callable[..., Traced], lm: Any) -> None:
    def broken(city: str) -> str:
        """Always fails."""
        raise ValueError("tool broke")

    t = traced()
    dspy.ReAct("question -> answer", tools=[broken], max_iters=2)(question="Weather?")
    (tool,) = t.named("execute_tool broken")
    assert tool.status.status_code is StatusCode.ERROR
    assert (tool.attributes or {})["error.type"] == "ValueError"
    (root,) = t.named("ReAct")
    assert root.status.status_code is StatusCode.UNSET


class Fanout(dspy.Module):  # type: ignore[misc]  # dspy ships no type information
    """Runs one Predict per question in dspy.Parallel worker threads."""

    def __init__(self) -> None:
        super().__init__()
        self.predict = dspy.Predict("question -> answer")
        self.threads: set[str] = set()

    def ask(self, question: str) -> Any:
        self.threads.add(threading.current_thread().name)
        return self.predict(question=question)

    def forward(self, questions: list[str]) -> Any:
        parallel = dspy.Parallel(num_threads=4, disable_progress_bar=True)
        return parallel([(self.ask, {"question": q}) for q in questions])


def test_parallel_workers_stay_in_the_trace_under_the_calling_module(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()
    program = Fanout()
    results = program(questions=[f"q{i}" for i in range(6)])
    assert len(results) == 6
    assert threading.current_thread().name not in program.threads
    spans = t.spans()
    root = assert_one_trace(spans, "Fanout")
    predicts = t.named("Predict predict")
    assert len(predicts) == 6
    assert all(parent_id(p) == root.context.span_id for p in predicts)
    assert_each_lm_under_its_own_predictor(spans)


def test_parallel_under_a_user_span_stays_in_that_trace(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()
    predict = dspy.Predict("question -> answer")
    with t.provider.get_tracer("app").start_as_current_span("request") as request:
        dspy.Parallel(num_threads=3, disable_progress_bar=True)([(predict, {"question": f"q{i}"}) for i in range(3)])
    spans = t.spans()
    assert_one_trace(spans, "request")
    predicts = t.named("Predict")
    assert len(predicts) == 3
    assert all(parent_id(p) == request.get_span_context().span_id for p in predicts)
    assert_each_lm_under_its_own_predictor(spans)


def _devset(n: int) -> list[Any]:
    return [dspy.Example(question=f"q{i}", answer="42").with_inputs("question") for i in range(n)]


def _metric(example: Any, prediction: Any, trace: Any = None) -> bool:
    return bool(prediction.answer.startswith(example.answer))


def test_evaluate_threads_are_one_trace_under_the_evaluate_span(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()
    evaluate = dspy.Evaluate(devset=_devset(4), metric=_metric, num_threads=4, display_progress=False)
    result = evaluate(dspy.ChainOfThought("question -> answer"))
    assert result.score == 100.0
    spans = t.spans()
    root = assert_one_trace(spans, "Evaluate")
    examples = t.named("Evaluate example")  # one per example, carrying its score, under Evaluate
    assert len(examples) == 4
    assert all(parent_id(e) == root.context.span_id for e in examples)
    cots = t.named("ChainOfThought")
    assert len(cots) == 4
    assert sorted(parent_id(c) or 0 for c in cots) == sorted(e.context.span_id for e in examples)
    assert t.named("Predict") == []
    assert len(t.named(LM_SPAN)) == 4
    assert_each_lm_under_its_own_predictor(spans)


class Gather(dspy.Module):  # type: ignore[misc]  # dspy ships no type information
    def __init__(self) -> None:
        super().__init__()
        self.predict = dspy.Predict("question -> answer")

    async def aforward(self, questions: list[str]) -> Any:
        return await asyncio.gather(*(self.predict.acall(question=q) for q in questions))


def test_asyncio_gather_inside_a_module_nests_each_task(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()
    results = asyncio.run(Gather().acall(questions=["a", "b", "c"]))
    assert len(results) == 3
    spans = t.spans()
    root = assert_one_trace(spans, "Gather")
    predicts = t.named("Predict predict")
    assert len(predicts) == 3
    assert all(parent_id(p) == root.context.span_id for p in predicts)
    assert_each_lm_under_its_own_predictor(spans)


def test_asyncio_gather_inside_a_user_span_nests_each_task(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()
    predict = dspy.ChainOfThought("question -> answer")

    async def handler() -> None:
        with t.provider.get_tracer("app").start_as_current_span("request"):
            await asyncio.gather(*(predict.acall(question=q) for q in ("a", "b", "c")))

    asyncio.run(handler())
    spans = t.spans()
    root = assert_one_trace(spans, "request")
    cots = t.named("ChainOfThought")
    assert len(cots) == 3
    assert all(parent_id(c) == root.context.span_id for c in cots)
    assert t.named("Predict") == []
    assert_each_lm_under_its_own_predictor(spans)

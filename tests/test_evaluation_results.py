"""dspy.Evaluate: each example's metric result as a gen_ai.evaluation.result event, the aggregate on Evaluate."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import dspy
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

import dspy_otel
from conftest import Traced, attr, parent_id

LM_SPAN = "chat gpt-4o-mini"


def devset(*questions: str) -> list[Any]:
    return [dspy.Example(question=q, answer="x").with_inputs("question") for q in questions]


def even(example: Any, prediction: Any, trace: Any = None) -> bool:
    return int(example.question[1:]) % 2 == 0


def result_event(span: ReadableSpan) -> dict[str, Any]:
    (event,) = [e for e in span.events if e.name == "gen_ai.evaluation.result"]
    return dict(event.attributes or {})


def by_index(spans: list[ReadableSpan]) -> dict[int, ReadableSpan]:
    return {int(attr(s, "dspy.evaluate.example.index")): s for s in spans}


def test_each_example_records_its_boolean_result_and_evaluate_the_aggregate(
    traced: Callable[..., Traced], lm: Any
) -> None:
    t = traced()
    evaluate = dspy.Evaluate(devset=devset("q0", "q1", "q2", "q3", "q4"), metric=even, num_threads=3)
    result = evaluate(dspy.ChainOfThought("question -> answer"))
    assert result.score == 60.0
    (root,) = t.named("Evaluate")
    assert (attr(root, "dspy.evaluate.score"), attr(root, "dspy.evaluate.metric")) == (60.0, "even")
    examples = by_index(t.named("Evaluate example"))
    assert sorted(examples) == [0, 1, 2, 3, 4]
    for index, span in examples.items():
        passed = index % 2 == 0
        assert parent_id(span) == root.context.span_id
        assert result_event(span) == {
            "gen_ai.evaluation.name": "even",
            "gen_ai.evaluation.score.value": 1.0 if passed else 0.0,
            "gen_ai.evaluation.score.label": "pass" if passed else "fail",
        }
        assert attr(span, "dspy.evaluate.example.score") == (1.0 if passed else 0.0)
        (program,) = [s for s in t.named("ChainOfThought") if parent_id(s) == span.context.span_id]
        assert program.context.trace_id == root.context.trace_id


class Graded:
    """A metric object returning a GEPA-style prediction with a score and feedback."""

    def __call__(self, example: Any, prediction: Any, trace: Any = None) -> Any:
        return dspy.Prediction(score=0.25, feedback="too short")


def scaled(example: Any, prediction: Any, trace: Any = None, *, factor: float) -> float:
    return factor


@pytest.mark.parametrize(
    ("metric", "name", "value"),
    [(Graded(), "Graded", 0.25), (functools.partial(scaled, factor=0.5), "scaled", 0.5)],
)
def test_numeric_scores_and_metric_names(
    traced: Callable[..., Traced], lm: Any, metric: Any, name: str, value: float
) -> None:
    t = traced()
    dspy.Evaluate(devset=devset("q0", "q1"), num_threads=2)(dspy.Predict("question -> answer"), metric=metric)
    for span in t.named("Evaluate example"):
        assert result_event(span) == {"gen_ai.evaluation.name": name, "gen_ai.evaluation.score.value": value}
    (root,) = t.named("Evaluate")
    assert attr(root, "dspy.evaluate.metric") == name


def test_a_failed_example_has_an_error_span_and_an_event_without_score(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()
    result = dspy.Evaluate(devset=devset("q0", "FAIL q1"), metric=lambda e, p, trace=None: True, num_threads=1)(
        dspy.Predict("question -> answer")
    )
    assert result.score == 50.0
    examples = by_index(t.named("Evaluate example"))
    assert examples[1].status.status_code is StatusCode.ERROR
    assert result_event(examples[1]) == {"gen_ai.evaluation.name": "<lambda>", "error.type": "LMServerError"}
    assert result_event(examples[0])["gen_ai.evaluation.score.value"] == 1.0
    (root,) = t.named("Evaluate")
    assert attr(root, "dspy.evaluate.score") == 50.0


class Fan(dspy.Module):  # type: ignore[misc]  # dspy ships no type information
    def __init__(self) -> None:
        super().__init__()
        self.predict = dspy.Predict("question -> answer")

    def forward(self, question: str) -> Any:
        parallel = dspy.Parallel(num_threads=2, disable_progress_bar=True)
        results = parallel([(self.predict, {"question": f"{question} {i}"}) for i in range(2)])
        return results[0]


def test_a_parallel_inside_the_evaluated_program_is_not_taken_for_examples(
    traced: Callable[..., Traced], lm: Any
) -> None:
    t = traced()
    dspy.Evaluate(devset=devset("q0", "q2"), metric=even, num_threads=2)(Fan())
    examples = t.named("Evaluate example")
    assert len(examples) == 2
    assert len(t.named("Predict predict")) == 4
    assert {parent_id(s) for s in t.named("Fan")} == {s.context.span_id for s in examples}


def test_suppressed_evaluate_makes_no_span(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()
    with dspy_otel.suppress():
        evaluate = dspy.Evaluate(devset=devset("q0", "q1"), metric=even, num_threads=2)
        result = evaluate(dspy.Predict("question -> answer"))
    assert result.score == 50.0
    assert t.spans() == []


def test_a_tail_policy_keeps_the_evaluations_with_a_failed_example(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced(tail_policies="attribute:dspy.evaluate.example.score=0.0")
    for questions in (("q0", "q2"), ("q0", "q1"), ("q2", "q4")):
        dspy.Evaluate(devset=devset(*questions), metric=even, num_threads=2)(dspy.Predict("question -> answer"))
    (root,) = t.named("Evaluate")  # only the run with a failed example, whole
    assert attr(root, "dspy.evaluate.score") == 50.0
    assert len(t.named("Evaluate example")) == 2
    assert len(t.named(LM_SPAN)) == 2

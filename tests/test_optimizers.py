"""Optimizers stay traced: each run a compile makes is a trace of its own; suppress() and tail policies hold."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dspy

import dspy_otel
from conftest import Traced, attr, parent_id

LM_SPAN = "chat gpt-4o-mini"


def trainset(*questions: str) -> list[Any]:
    return [dspy.Example(question=q, answer="42").with_inputs("question") for q in questions]


def always(example: Any, prediction: Any, trace: Any = None) -> bool:
    return True


class Picky(dspy.Module):  # type: ignore[misc]  # dspy ships no type information
    """Fails on the question ``bad`` before any LM call (the fake server fails every prompt quoting FAIL)."""

    def __init__(self) -> None:
        super().__init__()
        self.predict = dspy.Predict("question -> answer")

    def forward(self, question: str) -> Any:
        if question == "bad":
            raise ValueError("bad question")
        return self.predict(question=question)


def compile_program(*questions: str, program: Any = None) -> Any:
    optimizer = dspy.BootstrapFewShot(metric=always, max_bootstrapped_demos=len(questions), max_rounds=1)
    student = program if program is not None else dspy.Predict("question -> answer")
    return optimizer.compile(student, trainset=trainset(*questions))


def test_each_bootstrap_run_is_a_trace_of_its_own_tagged_by_the_scope(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()
    with dspy_otel.attributes(**{"app.phase": "compile"}):
        compiled = compile_program("q1", "q2", "q3")
    assert len(compiled.demos) == 3
    spans = t.spans()
    roots = [s for s in spans if parent_id(s) is None]
    assert len(roots) == 3  # one trace per teacher run
    assert len({s.context.trace_id for s in spans}) == 3
    assert len([s for s in spans if s.name == LM_SPAN]) == 3
    assert {attr(s, "app.phase") for s in spans} == {"compile"}


def test_suppress_around_compile_traces_nothing_and_compiles_the_same(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()
    with dspy_otel.suppress():
        compiled = compile_program("q1", "q2")
    assert len(compiled.demos) == 2
    assert t.spans() == []


def test_tail_policies_decide_each_compile_run_on_its_own(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced(tail_policies="errors")
    compiled = compile_program("q1", "bad", "q3", program=Picky())
    bootstrapped = [d for d in compiled.predict.demos if d.get("augmented")]
    assert len(bootstrapped) == 2  # the failing example is skipped, as without tracing
    spans = t.spans()
    assert len({s.context.trace_id for s in spans}) == 1  # only the failed run's trace is kept
    (root,) = spans
    assert root.name == "Picky"
    assert root.status.status_code.name == "ERROR"

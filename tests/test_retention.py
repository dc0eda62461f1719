"""Issue 3: with retention off nothing stays in process, and DSPy's optimizers keep working."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai

from conftest import Traced, attr, parent_id
from dspy_otel.retention import NOTICE, DiscardingTrace, SwitchedOffHistory


def _run_many(n: int) -> Any:
    import dspy

    program = dspy.ChainOfThought("question -> answer")
    for i in range(n):
        program(question=f"question {i}")
    dspy.Parallel(num_threads=4, disable_progress_bar=True)([(program, {"question": f"p{i}"}) for i in range(8)])
    return program


def _retained(lm: Any, program: Any) -> dict[str, int]:
    import dspy
    from dspy.clients.base_lm import GLOBAL_HISTORY

    return {
        "GLOBAL_HISTORY": len(GLOBAL_HISTORY),
        "lm.history": len(lm.history),
        "module.history": len(program.history) + len(program.predict.history),
        "settings.trace": len(dspy.settings.trace),
    }


def test_production_keeps_nothing_and_spans_keep_usage(traced: Callable[..., Traced], lm: Any) -> None:
    from dspy.clients.base_lm import GLOBAL_HISTORY

    GLOBAL_HISTORY.clear()
    t = traced(profile="production")
    program = _run_many(40)
    assert _retained(lm, program) == dict.fromkeys(_retained(lm, program), 0)
    llm_spans = t.named("chat gpt-4o-mini")
    assert len(llm_spans) == 48
    assert all(attr(s, gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS) > 0 for s in llm_spans)
    assert all(attr(s, "gen_ai.usage.cost") > 0 for s in llm_spans)


def test_dspy_otel_itself_holds_no_per_call_state(traced: Callable[..., Traced], lm: Any) -> None:
    from opentelemetry import trace

    from dspy_otel._window import current_window
    from dspy_otel.instrumentation import _hooks

    traced(profile="production")
    _run_many(10)
    assert _hooks._LM_CALL.get() is None
    assert not trace.get_current_span().get_span_context().is_valid
    assert current_window() is None


def test_development_keeps_dspy_history(traced: Callable[..., Traced], lm: Any) -> None:
    traced(profile="development")
    program = _run_many(3)
    assert len(lm.history) == 11
    assert len(program.predict.history) == 11


def test_history_setting_overrides_the_profile(traced: Callable[..., Traced], lm: Any) -> None:
    traced(profile="development", dspy_history="off")
    program = _run_many(3)
    assert _retained(lm, program)["lm.history"] == 0


def test_shutdown_restores_dspy_retention(traced: Callable[..., Traced], lm: Any) -> None:
    import dspy

    import dspy_otel

    before = (dspy.settings.disable_history, dspy.settings.trace)
    traced(profile="production")
    assert dspy.settings.disable_history is True
    assert isinstance(dspy.settings.trace, DiscardingTrace)
    dspy_otel.shutdown()
    assert dspy.settings.disable_history is before[0]
    assert dspy.settings.trace is before[1]


def test_discarding_trace_stays_empty() -> None:
    trace = DiscardingTrace()
    trace.append(1)
    trace.extend([2, 3])
    trace.insert(0, 4)
    trace += [5]
    assert list(trace) == []
    assert len(trace) == 0


def test_bootstrap_fewshot_still_finds_demos(traced: Callable[..., Traced], lm: Any) -> None:
    import dspy

    traced(profile="production")
    trainset = [dspy.Example(question=f"q{i}", answer="42").with_inputs("question") for i in range(4)]
    optimizer = dspy.BootstrapFewShot(
        metric=lambda example, prediction, trace=None: prediction.answer.startswith("42"),
        max_bootstrapped_demos=2,
        max_labeled_demos=0,
    )
    compiled = optimizer.compile(dspy.ChainOfThought("question -> answer"), trainset=trainset)
    assert len(compiled.predict.demos) == 2
    assert len(lm.history) == 0


def test_best_of_n_works_with_retention_off(traced: Callable[..., Traced], lm: Any) -> None:
    import dspy

    traced(profile="production")
    best = dspy.BestOfN(dspy.Predict("question -> answer"), N=2, reward_fn=lambda args, pred: 1.0, threshold=1.0)
    assert best(question="q").answer.startswith("42")
    assert len(dspy.settings.trace) == 0


def test_evaluate_works_and_parents_each_example(traced: Callable[..., Traced], lm: Any) -> None:
    import dspy

    t = traced(profile="production")
    devset = [dspy.Example(question=f"q{i}", answer="42").with_inputs("question") for i in range(6)]
    evaluate = dspy.Evaluate(devset=devset, num_threads=3, display_progress=False)
    result = evaluate(dspy.Predict("question -> answer"), metric=lambda e, p, trace=None: p.answer.startswith("42"))
    assert result.score == 100.0
    (root,) = t.named("Evaluate")
    examples = t.named("Evaluate example")
    assert {parent_id(e) for e in examples} == {root.context.span_id}
    predicts = t.named("Predict")
    assert len(predicts) == 6
    assert {parent_id(p) for p in predicts} == {e.context.span_id for e in examples}
    assert {p.context.trace_id for p in predicts} == {root.context.trace_id}


def test_code_reading_the_history_is_told_why_it_is_empty(
    traced: Callable[..., Traced], lm: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import dspy
    from dspy.clients.base_lm import GLOBAL_HISTORY

    GLOBAL_HISTORY.clear()  # what earlier tests kept with retention on
    traced(profile="production")
    program = dspy.Predict("question -> answer")
    program(question="q")
    for history in (lm.history, program.history):
        assert isinstance(history, SwitchedOffHistory)
        assert len(history) == 0
        assert history[-3:] == []
        with pytest.raises(IndexError, match="DSPY_OTEL_DSPY_HISTORY=keep") as raised:
            history[-1]
        assert str(raised.value) == NOTICE
        assert "dspy-otel inspect" in NOTICE
        assert "dspy_otel.inspect_history()" in NOTICE
    capsys.readouterr()
    dspy.inspect_history()
    lm.inspect_history()
    assert capsys.readouterr().out.splitlines() == [NOTICE, NOTICE]


def test_switched_off_history_keeps_nothing_and_copies(traced: Callable[..., Traced], lm: Any) -> None:
    import dspy

    traced(profile="production")
    lm.history.append({"kept": False})
    lm.update_history({"kept": False})
    assert len(lm.history) == 0
    for clone in (copy.deepcopy(lm), pickle.loads(pickle.dumps(lm)), lm.copy(temperature=0.5)):
        assert len(clone.history) == 0
        with pytest.raises(IndexError, match="switched it off"):
            clone.history[-1]
    program = copy.deepcopy(dspy.ChainOfThought("question -> answer"))
    program(question="q")
    assert len(program.predict.history) == 0


def test_history_comes_back_when_the_app_turns_it_on_or_dspy_otel_shuts_down(
    traced: Callable[..., Traced], lm: Any
) -> None:
    import dspy

    import dspy_otel

    traced(profile="production")
    program = dspy.Predict("question -> answer")
    with dspy.context(disable_history=False):
        program(question="q")
        assert len(lm.history) == 1
        assert lm.history[-1]["outputs"]
    unpickled = object.__new__(type(program))  # what unpickling does; DSPy's __getstate__ drops the history
    unpickled.__setstate__(program.__getstate__())
    assert isinstance(unpickled.history, SwitchedOffHistory)
    dspy_otel.shutdown()
    assert type(unpickled.history) is list
    lm.history.clear()
    assert type(lm.history) is list
    program(question="q")
    assert len(lm.history) == 1

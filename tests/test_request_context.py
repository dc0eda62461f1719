"""dspy_otel.attributes(): user, session, conversation and custom keys on every span, samplers included."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import dspy
import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import dspy_otel
import dspy_otel.context
from conftest import Traced, attr
from dspy_otel.context._scope import MAX_ATTRIBUTES, with_scope
from metric_points import points
from programs import QA

WHO = {"user.id": "u-42", "session.id": "s-7", "gen_ai.conversation.id": "c-1"}


def who(span: Any) -> dict[str, Any]:
    return {key: attr(span, key) for key in WHO}


def test_every_span_of_a_run_carries_user_session_and_conversation(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()
    with dspy_otel.attributes(user_id="u-42", session_id="s-7", conversation_id="c-1", plan="pro"):
        QA()(question="who?")
    spans = t.spans()
    assert len(spans) == 5  # QA, ChainOfThought, Predict, two LM calls
    assert all(who(s) == WHO and attr(s, "plan") == "pro" for s in spans)
    QA()(question="outside")
    outside = [s for s in t.spans() if s not in spans]
    assert len(outside) == 5
    assert all(attr(s, "user.id") is None and attr(s, "plan") is None for s in outside)


def test_nested_scopes_merge_and_the_inner_value_wins(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()
    with (
        dspy_otel.attributes(user_id="outer", session_id="s-1"),
        dspy_otel.attributes(user_id="inner", **{"app.tenant": "acme"}),
    ):
        dspy.Predict("question -> answer")(question="q")
    with dspy_otel.attributes(user_id="outer", session_id="s-1"):
        dspy.Predict("question -> answer")(question="q")
    first, second = sorted(t.named("Predict"), key=lambda s: s.start_time or 0)
    assert (attr(first, "user.id"), attr(first, "session.id"), attr(first, "app.tenant")) == ("inner", "s-1", "acme")
    assert (attr(second, "user.id"), attr(second, "app.tenant")) == ("outer", None)


def test_decorator_scopes_each_call_of_sync_and_async_functions(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()

    @dspy_otel.attributes(session_id="sync-session")
    def answer(question: str) -> Any:
        return dspy.Predict("question -> answer")(question=question)

    @dspy_otel.attributes(session_id="async-session")
    async def aanswer(question: str) -> Any:
        return await dspy.Predict("question -> answer").acall(question=question)

    answer("one")
    asyncio.run(aanswer("two"))
    assert answer.__name__ == "answer"
    assert sorted(attr(s, "session.id") for s in t.spans()) == ["async-session"] * 2 + ["sync-session"] * 2


def test_asyncio_tasks_started_in_the_scope_carry_it(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()
    predict = dspy.Predict("question -> answer")

    async def run(user: str) -> None:
        with dspy_otel.attributes(user_id=user):
            await asyncio.gather(*(predict.acall(question=f"{user} {i}") for i in range(3)))

    async def main() -> None:
        await asyncio.gather(run("alice"), run("bob"))

    asyncio.run(main())
    spans = t.spans()
    assert len(spans) == 12
    by_user: dict[str, set[int]] = {}
    for span in spans:
        by_user.setdefault(str(attr(span, "user.id")), set()).add(span.context.trace_id)
    assert sorted(by_user) == ["alice", "bob"]
    assert all(len(ids) == 3 for ids in by_user.values())  # three runs each, none mixed up


def test_parallel_and_evaluate_threads_carry_the_scope(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()
    devset = [dspy.Example(question=f"q{i}", answer="x").with_inputs("question") for i in range(4)]
    with dspy_otel.attributes(session_id="batch-1"):
        dspy.Parallel(num_threads=3, disable_progress_bar=True)(
            [(dspy.Predict("question -> answer"), {"question": f"p{i}"}) for i in range(4)]
        )
        dspy.Evaluate(devset=devset, metric=lambda *a: True, num_threads=3, display_progress=False)(
            dspy.Predict("question -> answer")
        )
    spans = t.spans()
    assert len([s for s in spans if s.name == "chat gpt-4o-mini"]) == 8
    assert {attr(s, "session.id") for s in spans} == {"batch-1"}


def test_spans_of_other_instrumentations_carry_the_scope(traced: Callable[..., Traced]) -> None:
    t = traced()
    tracer = trace.get_tracer("my-app", tracer_provider=t.provider)
    with (
        dspy_otel.attributes(user_id="u-1"),
        tracer.start_as_current_span("handler", attributes={"user.id": "mine"}),
        tracer.start_as_current_span("db query"),
    ):
        pass
    by_name = {s.name: s for s in t.spans()}
    assert attr(by_name["db query"], "user.id") == "u-1"
    assert attr(by_name["handler"], "user.id") == "mine"  # an attribute the span has is left as it is


def test_head_rules_match_the_scope_at_span_start(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced(sampler="dspy_otel_rules", sampler_arg="user.id=vip-*:1;*:0")
    for user in ("vip-1", "anonymous", "vip-2"):
        with dspy_otel.attributes(user_id=user):
            dspy.Predict("question -> answer")(question="q")
    dspy.Predict("question -> answer")(question="no user")
    assert sorted(attr(s, "user.id") for s in t.named("Predict")) == ["vip-1", "vip-2"]
    assert len(t.named("chat gpt-4o-mini")) == 2


def test_tail_attribute_policy_keeps_the_traces_of_one_session(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced(tail_policies="attribute:session.id=keep-me")
    for session in ("drop", "keep-me", "drop"):
        with dspy_otel.attributes(session_id=session):
            QA()(question="q")
    spans = t.spans()
    assert len(spans) == 5
    assert {attr(s, "session.id") for s in spans} == {"keep-me"}


def test_the_scope_never_reaches_metrics(traced: Callable[..., Traced], lm: Any) -> None:
    reader = InMemoryMetricReader()
    traced(metric_reader=reader)
    with dspy_otel.attributes(user_id="u-42", session_id="s-7", **{"app.tenant": "acme"}):
        QA()(question="q")
    found = points(reader)
    assert found["gen_ai.client.operation.duration"]
    assert found["dspy.module.duration"]
    keys = {key for series in found.values() for attributes, _ in series for key in attributes}
    assert keys.isdisjoint({"user.id", "session.id", "app.tenant"})


def test_debug_spans_are_marked(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced(sampler="always_off")
    with dspy_otel.debug():
        QA()(question="why?")
    spans = t.spans()
    assert len(spans) == 5
    assert all(attr(s, "dspy_otel.debug") is True for s in spans)


def test_one_scope_object_entered_by_concurrent_tasks_and_threads(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()
    route = dspy_otel.attributes(**{"app.route": "/answer"})
    predict = dspy.Predict("question -> answer")

    async def handle(user: str) -> None:
        with route, dspy_otel.attributes(user_id=user):
            await asyncio.sleep(0)  # the other task enters the same object meanwhile
            await predict.acall(question=user)

    async def main() -> None:
        await asyncio.gather(*(handle(f"u{i}") for i in range(4)))

    asyncio.run(main())
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda user: asyncio.run(handle(user)), ["t1", "t2"]))
    spans = t.named("Predict")
    assert len(spans) == 6
    assert {attr(s, "app.route") for s in spans} == {"/answer"}
    assert sorted(str(attr(s, "user.id")) for s in spans) == ["t1", "t2", "u0", "u1", "u2", "u3"]
    assert dspy_otel.context.attributes is dspy_otel.attributes
    assert with_scope(otel_context.get_current(), {}) == {}  # every block left


def test_none_leaves_an_attribute_out(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()
    with dspy_otel.attributes(user_id=None, session_id="s", tier=None):
        dspy.Predict("question -> answer")(question="q")
    (span,) = t.named("Predict")
    assert (attr(span, "user.id"), attr(span, "session.id"), attr(span, "tier")) == (None, "s", None)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"**bad key": "x"}, "'**bad key' is not a valid attribute name"),
        ({"a..b": "x"}, "is not a valid attribute name"),
        ({"x" * 129: "x"}, "at most 128 characters"),
        ({"tags": ["a", "b"]}, "has type list; allowed: str, bool, int, float"),
        ({"user_id": {"id": 1}}, "has type dict"),
        ({"note": "x" * 1025}, "1,025 characters; at most 1,024 allowed"),
        ({"big": 2**63}, "signed 64-bit integer"),
        ({f"k{i}": i for i in range(MAX_ATTRIBUTES + 1)}, "33 attributes given; at most 32 allowed"),
    ],
)
def test_bad_attributes_raise_a_clear_value_error(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=r"dspy_otel\.attributes\(\)") as info:
        dspy_otel.attributes(**kwargs)
    assert fragment in str(info.value)


def test_nesting_past_the_bound_raises_when_entered() -> None:
    outer: dict[str, Any] = {f"outer{i}": i for i in range(20)}
    inner: dict[str, Any] = {f"inner{i}": i for i in range(20)}
    with dspy_otel.attributes(**outer):
        scope = dspy_otel.attributes(**inner)
        with pytest.raises(ValueError, match="40 attributes with the enclosing scopes'"), scope:
            pass
        with dspy_otel.attributes(outer0="again"):  # overriding a key adds none
            pass


def test_without_a_scope_the_start_attributes_are_passed_as_they_are() -> None:
    attributes = {"gen_ai.request.model": "m"}
    assert with_scope(otel_context.get_current(), attributes) is attributes
    with dspy_otel.attributes(user_id="u"):
        assert with_scope(otel_context.get_current(), attributes) == {"user.id": "u", **attributes}

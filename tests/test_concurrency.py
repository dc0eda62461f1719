"""Concurrency: 1,000 asyncio tasks and ``dspy.Parallel(num_threads=16)`` over one shared LM.

Every run is one trace ``Task -> Predict -> chat``: each LM span hangs under the
Predict span of its own run, which hangs under that run's ``Task`` span, and no
span is lost or exported twice. Each run says who it is twice, independently:
its ``Task`` span carries ``app.task`` (set from inside the module, on the span
the instrumentation made current) and its LM span's captured prompt contains
``<task N>``; the two must agree for every one of the 1,000 runs.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import dspy
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.trace import StatusCode

from conftest import Traced, attr, configured_lm, parent_id
from dspy_otel import _fake_lm
from dspy_otel._fake_lm import FakeOpenAIServer

RUNS = 1_000
LM_SPAN = "chat gpt-4o-mini"
TASK_IN_PROMPT = re.compile(r"<task (\d+)>")
TIME_BUDGET_S = 600.0  # a guard against a hang, not a speed requirement: CI machines are slow and shared


class Task(dspy.Module):  # type: ignore[misc]  # dspy ships no type information
    """One run: names itself on its own span, then asks the shared LM once."""

    def __init__(self) -> None:
        super().__init__()
        self.predict = dspy.Predict("question -> answer")

    def forward(self, number: int) -> Any:
        trace.get_current_span().set_attribute("app.task", number)
        return self.predict(question=f"<task {number}>")

    async def aforward(self, number: int) -> Any:
        trace.get_current_span().set_attribute("app.task", number)
        return await self.predict.acall(question=f"<task {number}>")


@pytest.fixture(scope="module")
def busy_server() -> Iterator[FakeOpenAIServer]:
    """The fake server with a listen backlog for 1,000 concurrent connects (socketserver's default is 5)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_fake_lm._Server, "request_queue_size", 1024)
        server = FakeOpenAIServer(answer_size=16)
    with server:
        yield server


@pytest.fixture
def shared_lm(busy_server: FakeOpenAIServer) -> Iterator[Any]:
    yield from configured_lm(busy_server)


def assert_one_trace_per_run(spans: list[ReadableSpan], runs: int) -> None:
    """Each run exactly once: a root ``Task`` span, its Predict, the Predict's LM call, all in the run's own trace."""
    assert [i for i, n in Counter(s.context.span_id for s in spans).items() if n > 1] == []
    assert Counter(s.name for s in spans) == {"Task": runs, "Predict predict": runs, LM_SPAN: runs}
    assert all(s.status.status_code is StatusCode.UNSET for s in spans)
    by_id = {s.context.span_id: s for s in spans}
    tasks = {attr(s, "app.task"): s for s in spans if s.name == "Task"}
    assert sorted(tasks) == list(range(runs)), "every Task span names its run, each run once"
    assert all(parent_id(t) is None for t in tasks.values())
    assert len({s.context.trace_id for s in spans}) == runs
    for lm_span in (s for s in spans if s.name == LM_SPAN):
        found = TASK_IN_PROMPT.search(str(attr(lm_span, gen_ai.GEN_AI_INPUT_MESSAGES)))
        assert found, "the LM span's prompt names its run"
        task = tasks[int(found.group(1))]
        predict = by_id[parent_id(lm_span)]
        assert predict.name == "Predict predict"
        assert parent_id(predict) == task.context.span_id, "the LM call hangs under the Predict of its own run"
        assert lm_span.context.trace_id == predict.context.trace_id == task.context.trace_id


def test_a_thousand_concurrent_asyncio_tasks_each_get_their_own_trace(
    traced: Callable[..., Traced], shared_lm: Any
) -> None:
    t = traced(capture_content="SPAN_ONLY")
    program = Task()

    async def serve_all() -> list[Any]:
        return await asyncio.gather(*(program.acall(number=n) for n in range(RUNS)))

    started = time.monotonic()
    results = asyncio.run(asyncio.wait_for(serve_all(), TIME_BUDGET_S))
    assert time.monotonic() - started < TIME_BUDGET_S
    assert len(results) == RUNS
    assert all(r.answer.startswith("42") for r in results)
    assert_one_trace_per_run(t.spans(), RUNS)


def test_parallel_with_sixteen_threads_gives_each_item_its_own_trace(
    traced: Callable[..., Traced], shared_lm: Any
) -> None:
    t = traced(capture_content="SPAN_ONLY")
    program = Task()
    parallel = dspy.Parallel(num_threads=16, disable_progress_bar=True, max_errors=0, timeout=TIME_BUDGET_S)
    started = time.monotonic()
    results = parallel([(program, {"number": n}) for n in range(RUNS)])
    assert time.monotonic() - started < TIME_BUDGET_S
    assert all(r is not None and r.answer.startswith("42") for r in results)
    assert_one_trace_per_run(t.spans(), RUNS)

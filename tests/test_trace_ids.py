"""dspy_otel.trace_id() / span_id() for responses, and trace IDs on standard logging records."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import Any

import dspy
import pytest

import dspy_otel
from conftest import Traced
from dspy_otel.context import correlate_logs

log = logging.getLogger("myapp")


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    yield handler
    log.removeHandler(handler)


class Answer(dspy.Module):  # type: ignore[misc]  # dspy ships no type information
    """Logs, and returns the IDs it sees, as a handler putting them in a response would."""

    def __init__(self) -> None:
        super().__init__()
        self.predict = dspy.Predict("question -> answer")

    def forward(self, question: str) -> Any:
        log.info("answering %s", question)
        return dspy.Prediction(ids=(dspy_otel.trace_id(), dspy_otel.span_id()), answer=self.predict(question=question))


def test_ids_are_none_outside_a_span() -> None:
    assert dspy_otel.trace_id() is None
    assert dspy_otel.span_id() is None


def test_ids_name_the_current_trace_and_span(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()
    trace_hex, span_hex = Answer()(question="q").ids
    (root,) = t.named("Answer")
    assert trace_hex == format(root.context.trace_id, "032x")
    assert span_hex == format(root.context.span_id, "016x")


def test_ids_reach_asyncio_tasks_and_threads(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()

    class Async(Answer):
        async def aforward(self, question: str) -> Any:
            return dspy.Prediction(ids=(dspy_otel.trace_id(), dspy_otel.span_id()))

    (prediction,) = dspy.Parallel(num_threads=2, disable_progress_bar=True)([(Answer(), {"question": "t"})])
    async_ids = asyncio.run(Async().acall(question="a")).ids
    spans = {s.name: s for s in t.spans()}
    assert prediction.ids[0] == format(spans["Answer"].context.trace_id, "032x")
    assert async_ids == (
        format(spans["Async"].context.trace_id, "032x"),
        format(spans["Async"].context.span_id, "016x"),
    )


def test_log_records_carry_trace_and_span_ids_when_the_setting_is_on(
    traced: Callable[..., Traced], lm: Any, records: Records
) -> None:
    t = traced(log_correlation=True, service_name="answers")
    Answer()(question="q")
    log.info("outside")
    (root,) = t.named("Answer")
    inside, outside = records.records
    assert inside.otelTraceID == format(root.context.trace_id, "032x")  # type: ignore[attr-defined]
    assert inside.otelSpanID == format(root.context.span_id, "016x")  # type: ignore[attr-defined]
    assert inside.otelTraceSampled is True  # type: ignore[attr-defined]
    assert inside.otelServiceName == "answers"  # type: ignore[attr-defined]
    assert (outside.otelTraceID, outside.otelSpanID) == ("0", "0")  # type: ignore[attr-defined]
    formatted = logging.Formatter("%(message)s trace_id=%(otelTraceID)s").format(inside)
    assert formatted == f"answering q trace_id={inside.otelTraceID}"  # type: ignore[attr-defined]
    dspy_otel.shutdown()
    log.info("after shutdown")
    assert not hasattr(records.records[-1], "otelTraceID")


def test_log_records_are_untouched_by_default(traced: Callable[..., Traced], lm: Any, records: Records) -> None:
    traced()
    Answer()(question="q")
    (record,) = records.records
    assert not hasattr(record, "otelTraceID")


def test_undo_keeps_a_factory_installed_later() -> None:
    original = logging.getLogRecordFactory()
    undo = correlate_logs()
    ours = logging.getLogRecordFactory()

    def later(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = ours(*args, **kwargs)
        record.later = True
        return record

    logging.setLogRecordFactory(later)
    try:
        undo()
        record = logging.getLogRecordFactory()("x", logging.INFO, __file__, 1, "msg", None, None)
        assert record.later is True  # type: ignore[attr-defined]
        assert not hasattr(record, "otelTraceID")  # ours passes records through once undone
    finally:
        logging.setLogRecordFactory(original)

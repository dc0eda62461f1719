"""Errors reach the app unchanged, telemetry failures never do, and tracing survives what apps do to DSPy."""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable, Iterator
from typing import Any

import dspy
import pytest
from dspy.utils.callback import BaseCallback
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.trace import StatusCode

import dspy_otel
from conftest import CANARY_KEY, Traced, parent_id
from dspy_otel._attributes import USAGE_COST
from dspy_otel._fake_lm import FakeOpenAIServer
from dspy_otel.instrumentation import _failures, _lm

LM_SPAN = "chat gpt-4o-mini"
PATCHED = (
    ("dspy.clients.base_lm", "BaseLM", ("__call__", "acall")),
    ("dspy.primitives.module", "Module", ("__call__", "acall")),
    ("dspy.adapters.types.tool", "Tool", ("__call__", "acall")),
    ("dspy.evaluate.evaluate", "Evaluate", ("__call__",)),
    ("dspy.utils.parallelizer", "ParallelExecutor", ("execute",)),
    ("dspy.clients.execution", "", ("finalize", "_retryable")),
)


def patched_attributes() -> dict[str, Any]:
    import importlib

    found = {}
    for module_name, class_name, names in PATCHED:
        module = importlib.import_module(module_name)
        owner = getattr(module, class_name) if class_name else module
        for name in names:
            found[f"{module_name}.{class_name}.{name}"] = owner.__dict__[name]
    return found


@pytest.fixture
def failing_lm(fake_server: FakeOpenAIServer) -> Iterator[Any]:
    """The fake server's LM without retries, so a ``FAIL`` question fails at once."""
    model = dspy.LM("openai/gpt-4o-mini", api_base=fake_server.base_url, api_key=CANARY_KEY, cache=False, num_retries=0)
    with dspy.context(lm=model):
        yield model


def assert_error_span(span: ReadableSpan, error_type: type[BaseException]) -> None:
    assert span.status.status_code is StatusCode.ERROR
    assert (span.status.description or "").startswith(f"{error_type.__qualname__}: ")
    assert (span.attributes or {})[error_attributes.ERROR_TYPE] == error_type.__qualname__
    (event,) = [e for e in span.events if e.name == "exception"]
    attrs = event.attributes or {}
    assert attrs["exception.type"] == f"{error_type.__module__}.{error_type.__qualname__}"
    assert "failed on purpose" in str(attrs["exception.message"])
    assert "Traceback" in str(attrs["exception.stacktrace"])


def test_lm_error_is_recorded_and_reraised_unchanged(traced: Callable[..., Traced], failing_lm: Any) -> None:
    t = traced()
    with pytest.raises(dspy.LMServerError, match="failed on purpose") as caught:
        dspy.ChainOfThought("question -> answer")(question="please FAIL")
    assert type(caught.value) is dspy.LMServerError
    (span,) = t.named(LM_SPAN)
    assert_error_span(span, dspy.LMServerError)
    assert not {gen_ai.GEN_AI_USAGE_INPUT_TOKENS, USAGE_COST} & set(span.attributes or {})
    (cot,) = t.named("ChainOfThought")
    assert_error_span(cot, dspy.LMServerError)
    assert parent_id(span) == cot.context.span_id


def test_async_lm_error_is_recorded_and_reraised_unchanged(traced: Callable[..., Traced], failing_lm: Any) -> None:
    t = traced()
    with pytest.raises(dspy.LMServerError) as caught:
        asyncio.run(failing_lm.acall("FAIL asynchronously"))
    assert type(caught.value) is dspy.LMServerError
    (span,) = t.named(LM_SPAN)
    assert_error_span(span, dspy.LMServerError)


def test_a_failing_attribute_extraction_is_logged_once_and_the_call_goes_on(
    traced: Callable[..., Traced], lm: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("attribute extraction broke")

    monkeypatch.setattr(_lm, "request_attributes", broken)
    monkeypatch.setattr(_lm, "result_attributes", broken)
    monkeypatch.setattr(_failures, "_failures_logged", set())
    t = traced()
    with caplog.at_level(logging.WARNING, logger="dspy_otel"):
        answers = [dspy.Predict("question -> answer")(question=f"q{i}").answer for i in range(2)]
    assert all(a.startswith("42") for a in answers)
    spans = t.named(LM_SPAN)
    assert len(spans) == 2
    assert all(s.end_time is not None and s.status.status_code is StatusCode.UNSET for s in spans)
    assert len(t.named("Predict")) == 2
    messages = [r.getMessage() for r in caplog.records if r.name == "dspy_otel"]
    assert sum("reading LM request attributes" in m for m in messages) == 1
    assert sum("reading LM usage" in m for m in messages) == 1
    assert all("attribute extraction broke" in m for m in messages)


def test_a_failing_span_start_never_reaches_the_app(
    traced: Callable[..., Traced], lm: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(lm: Any, *args: Any) -> str:
        raise RuntimeError("span name broke")

    monkeypatch.setattr(_lm, "request_attributes", broken)  # the span name then comes from span_name() ...
    monkeypatch.setattr(_lm, "span_name", broken)  # ... which fails too: the span cannot be opened
    monkeypatch.setattr(_failures, "_failures_logged", set())
    t = traced()
    with caplog.at_level(logging.WARNING, logger="dspy_otel"):
        assert dspy.Predict("question -> answer")(question="q").answer.startswith("42")
    assert t.named(LM_SPAN) == []
    (predict,) = t.named("Predict")
    assert predict.status.status_code is StatusCode.UNSET
    assert any("span name broke" in r.getMessage() for r in caplog.records)


def test_deep_copied_lms_and_programs_are_still_traced(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()
    program = dspy.ChainOfThought("question -> answer")
    copy.deepcopy(lm)("direct call on a deep copy")
    lm.copy(temperature=0.4)("direct call on lm.copy()")
    clone = program.deepcopy()
    with dspy.context(lm=copy.deepcopy(lm)):
        clone(question="via a deep-copied program and LM")
    direct, copied, via_program = sorted(t.named(LM_SPAN), key=lambda s: s.start_time or 0)
    assert parent_id(direct) is None
    assert (copied.attributes or {})[gen_ai.GEN_AI_REQUEST_TEMPERATURE] == 0.4
    (cot,) = t.named("ChainOfThought")
    assert parent_id(via_program) == cot.context.span_id
    assert t.named("Predict") == [], "the clone's own Predict is folded into its ChainOfThought span"


class Recorder(BaseCallback):  # type: ignore[misc]  # dspy ships no type information
    """A user's own DSPy callback."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def on_module_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        self.events.append(f"module:{type(instance).__name__}")

    def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        self.events.append("lm")


def test_callbacks_configured_after_instrumenting_keep_both_working(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()
    recorder = Recorder()
    before = list(dspy.settings.callbacks)
    dspy.configure(callbacks=[recorder])
    try:
        dspy.Predict("question -> answer")(question="q")
    finally:
        dspy.configure(callbacks=before)
    assert recorder.events == ["module:Predict", "lm"]
    (span,) = t.named(LM_SPAN)
    (predict,) = t.named("Predict")
    assert parent_id(span) == predict.context.span_id


def test_callbacks_in_a_dspy_context_keep_both_working(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()
    recorder = Recorder()
    with dspy.context(callbacks=[recorder]):
        asyncio.run(dspy.Predict("question -> answer").acall(question="q"))
    assert recorder.events == ["module:Predict", "lm"]
    assert len(t.named(LM_SPAN)) == 1
    assert len(t.named("Predict")) == 1


def _is_ours(callback: Any) -> bool:
    return type(callback).__module__.startswith("dspy_otel")


def test_shutdown_restores_dspy_exactly(traced: Callable[..., Traced], lm: Any) -> None:
    originals = patched_attributes()
    from dspy.dsp.utils.settings import main_thread_config as config

    settings_before = {key: config.get(key) for key in ("callbacks", "disable_history", "trace")}
    t = traced()
    instrumented = patched_attributes()
    assert all(instrumented[name] is not original for name, original in originals.items())
    dspy.Predict("question -> answer")(question="traced")
    assert len(t.named(LM_SPAN)) == 1
    dspy_otel.shutdown()
    restored = patched_attributes()
    assert all(restored[name] is original for name, original in originals.items())
    assert {key: config.get(key) for key in settings_before} == settings_before
    assert not any(_is_ours(c) for c in dspy.settings.callbacks or [])


def test_uninstrument_stops_spans_on_a_live_provider(lm: Any) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = dspy_otel.DSPyInstrumentor()
    originals = patched_attributes()
    instrumentor.instrument(tracer_provider=provider)
    try:
        dspy.Predict("question -> answer")(question="traced")
        assert {s.name for s in exporter.get_finished_spans()} == {LM_SPAN, "Predict"}
    finally:
        instrumentor.uninstrument()
    exporter.clear()
    dspy.Predict("question -> answer")(question="not traced")
    asyncio.run(dspy.Predict("question -> answer").acall(question="not traced either"))
    assert exporter.get_finished_spans() == ()
    assert patched_attributes() == originals
    provider.shutdown()

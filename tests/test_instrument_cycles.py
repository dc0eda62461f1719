"""Instrument, uninstrument, instrument again: DSPy ends exactly as it was, and each call is one span.

"Exactly as it was" is checked on everything, not on a list: every attribute of
every loaded ``dspy`` module and of every class defined in one is compared by
identity before instrumenting and after uninstrumenting. While instrumented,
the attributes that differ must be exactly the patch targets ``_patches``
documents, each one wrapper deep around the original.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import inspect
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import dspy
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import dspy_otel
from conftest import Traced
from dspy_otel.retention import dspy_defaults

LM_SPAN = "chat gpt-4o-mini"
PATCH_TARGETS = {
    "dspy.clients.base_lm.BaseLM.__call__",
    "dspy.clients.base_lm.BaseLM.acall",
    "dspy.primitives.module.Module.__call__",
    "dspy.primitives.module.Module.acall",
    "dspy.adapters.types.tool.Tool.__call__",
    "dspy.adapters.types.tool.Tool.acall",
    "dspy.evaluate.evaluate.Evaluate.__call__",
    "dspy.utils.parallelizer.ParallelExecutor.execute",
    "dspy.clients.execution.finalize",
    "dspy.clients.execution._retryable",
}
RETENTION_OFF_TARGETS = {"dspy.clients.base_lm.pretty_print_history", "dspy.primitives.module.pretty_print_history"}
"""With retention off (the default), an empty history is explained where DSPy prints it."""
PATCHED_MODULES = (
    "dspy.clients.base_lm",
    "dspy.primitives.module",
    "dspy.adapters.types.tool",
    "dspy.evaluate.evaluate",
    "dspy.utils.parallelizer",
    "dspy.clients.execution",
)
ROUNDS = 3
THREADS, CALLS_PER_CYCLE = 4, 8

Snapshot = dict[str, Any]


def dspy_state() -> Snapshot:
    """Every attribute of every loaded ``dspy`` module and of the classes they define, by qualified name."""
    state: Snapshot = {}
    for name, module in list(sys.modules.items()):
        if not (name == "dspy" or name.startswith("dspy.")) or module is None:
            continue
        for key, value in list(vars(module).items()):
            state[f"{name}.{key}"] = value
            if inspect.isclass(value) and value.__module__ == name:
                state.update({f"{name}.{key}.{k}": v for k, v in list(vars(value).items())})
    return state


def changed(before: Snapshot, after: Snapshot) -> set[str]:
    """Names bound to another object (names only one side has are not compared: lazy imports add some)."""
    return {name for name in before.keys() & after.keys() if before[name] is not after[name]}


def assert_patched_once(before: Snapshot, *, retention_off: bool = True) -> None:
    """The patch targets, and only they, are replaced, each by one wrapper around the original."""
    after = dspy_state()
    targets = PATCH_TARGETS | (RETENTION_OFF_TARGETS if retention_off else set())
    assert changed(before, after) == targets
    for name in targets:
        assert after[name].__wrapped__ is before[name], f"{name} is wrapped more than once"


def settings_now() -> dict[str, Any]:
    return {key: dspy_defaults().get(key) for key in ("callbacks", "disable_history", "trace", "lm")}


def search(city: str) -> str:
    """Look a city up."""
    return f"sunny in {city}"


def one_of_each(lm: Any) -> dict[str, int]:
    """A direct LM call, a Predict, an async Predict, a tool call, a Parallel and an Evaluate of two items each.

    Returns the spans each kind must make, once each.
    """
    lm("direct")
    dspy.Predict("question -> answer")(question="sync")
    asyncio.run(dspy.Predict("question -> answer").acall(question="async"))
    dspy.Tool(search)(city="Paris")
    dspy.Parallel(num_threads=2, disable_progress_bar=True)(
        [(dspy.Predict("question -> answer"), {"question": q}) for q in ("p1", "p2")]
    )
    devset = [dspy.Example(question=q, answer="42").with_inputs("question") for q in ("e1", "e2")]
    evaluate = dspy.Evaluate(devset=devset, metric=lambda *args: True, num_threads=2, display_progress=False)
    evaluate(dspy.Predict("question -> answer"))
    return {LM_SPAN: 7, "Predict": 6, "execute_tool search": 1, "Evaluate": 1, "Evaluate example": 2}


def span_counts(exporter: InMemorySpanExporter) -> dict[str, int]:
    counts: dict[str, int] = {}
    for span in exporter.get_finished_spans():
        counts[span.name] = counts.get(span.name, 0) + 1
    return counts


@pytest.fixture(autouse=True)
def _warm(lm: Any) -> None:
    """Load every patch target's module and let DSPy fill its lazy module-level caches before any snapshot."""
    for module in PATCHED_MODULES:
        importlib.import_module(module)
    one_of_each(lm)


@pytest.fixture
def instrumentor() -> Iterator[Any]:
    instance = dspy_otel.DSPyInstrumentor()
    yield instance
    instance.uninstrument()


def new_provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_instrumentor_cycles_restore_dspy_and_trace_each_call_once(lm: Any, instrumentor: Any) -> None:
    original, settings = dspy_state(), settings_now()
    for _ in range(ROUNDS):
        provider, exporter = new_provider()
        instrumentor.instrument(tracer_provider=provider)
        assert_patched_once(original)
        assert span_counts(exporter) == {}
        expected = one_of_each(lm)
        assert span_counts(exporter) == expected
        instrumentor.uninstrument()
        assert changed(original, dspy_state()) == set()
        assert settings_now() == settings
        exporter.clear()
        one_of_each(lm)
        assert span_counts(exporter) == {}, "nothing is traced once uninstrumented"
        provider.shutdown()


def test_instrumenting_twice_wraps_once_and_one_uninstrument_undoes_it(lm: Any, instrumentor: Any) -> None:
    original = dspy_state()
    first, first_spans = new_provider()
    second, second_spans = new_provider()
    instrumentor.instrument(tracer_provider=first)
    instrumentor.instrument(tracer_provider=second)  # already instrumented: ignored
    assert_patched_once(original)
    expected = one_of_each(lm)
    assert span_counts(first_spans) == expected
    assert span_counts(second_spans) == {}
    instrumentor.uninstrument()
    instrumentor.uninstrument()  # already uninstrumented: ignored
    assert changed(original, dspy_state()) == set()


def test_reinstrumenting_with_another_provider_sends_spans_there_only(lm: Any, instrumentor: Any) -> None:
    old, old_spans = new_provider()
    instrumentor.instrument(tracer_provider=old)
    instrumentor.uninstrument()
    new, new_spans = new_provider()
    instrumentor.instrument(tracer_provider=new)
    expected = one_of_each(lm)
    assert span_counts(new_spans) == expected
    assert span_counts(old_spans) == {}


def test_configure_shutdown_cycles_restore_dspy_and_settings(traced: Callable[..., Traced], lm: Any) -> None:
    original, settings = dspy_state(), settings_now()
    for profile in ("production", "development", "staging", "production"):
        t = traced(profile=profile, capture_content="SPAN_ONLY", sampler="parentbased_always_on")
        assert_patched_once(original, retention_off=profile != "development")
        expected = one_of_each(lm)
        assert {name: len(t.named(name)) for name in expected} == expected
        dspy_otel.shutdown()
        assert changed(original, dspy_state()) == set()
        assert settings_now() == settings, f"after the {profile} profile"


def test_nothing_keeps_an_uninstrumented_provider_alive(lm: Any, instrumentor: Any) -> None:
    provider, exporter = new_provider()
    instrumentor.instrument(tracer_provider=provider)
    one_of_each(lm)
    assert exporter.get_finished_spans()
    instrumentor.uninstrument()
    provider.shutdown()
    gone = weakref.ref(provider)
    del provider
    gc.collect()
    assert gone() is None, "a wrapper, hook or context still holds the provider"


def test_configure_shutdown_cycles_while_threads_keep_calling(traced: Callable[..., Traced], lm: Any) -> None:
    original, settings = dspy_state(), settings_now()
    stop, lock, errors, done = threading.Event(), threading.Lock(), [], [0]

    def keep_calling() -> None:
        predict = dspy.Predict("question -> answer")
        while not stop.is_set():
            try:
                assert predict(question="in flight across cycles").answer.startswith("42")
            except BaseException as exc:  # anything telemetry lets through is a failure of this test
                errors.append(exc)
                return
            with lock:
                done[0] += 1

    threads = [threading.Thread(target=keep_calling, daemon=True) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    cycles: list[list[ReadableSpan]] = []
    try:
        for _ in range(ROUNDS):
            t = traced(sampler="always_on")
            target = done[0] + CALLS_PER_CYCLE
            while done[0] < target and not errors:
                time.sleep(0.01)
            dspy_otel.shutdown()
            cycles.append(list(t.exporter.get_finished_spans()))
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert errors == []
    assert not any(thread.is_alive() for thread in threads)
    assert changed(original, dspy_state()) == set()
    assert settings_now() == settings
    ids = [s.context.span_id for spans in cycles for s in spans]
    assert len(ids) == len(set(ids)), "no span is exported twice"
    for spans in cycles:  # of the calls done in a cycle, at most one per thread began before it
        assert sum(s.name == LM_SPAN for s in spans) >= CALLS_PER_CYCLE - THREADS

"""Sampling with real DSPy programs over the real dspy.LM path: tail errors, head + tail, debug(), suppress()."""

from __future__ import annotations

import asyncio
import io
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import dspy
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.trace import StatusCode

import dspy_otel
from conftest import Traced
from dspy_otel.cli import main
from dspy_otel.sampling._ratio import keeps

LM_SPAN = "chat gpt-4o-mini"


class Pipeline(dspy.Module):  # type: ignore[misc]  # dspy is untyped
    """A ChainOfThought, then a Predict that checks its answer; records each run's trace id."""

    def __init__(self) -> None:
        super().__init__()
        self.think = dspy.ChainOfThought("question -> answer")
        self.check = dspy.Predict("question, answer -> verdict")
        self.trace_ids: list[int] = []

    def forward(self, question: str) -> Any:
        self.trace_ids.append(trace.get_current_span().get_span_context().trace_id)
        answer = self.think(question=question).answer
        return self.check(question=question, answer=answer)


def run_all(program: Pipeline, runs: int, fail_every: int) -> dict[int, bool]:
    """Run ``program`` ``runs`` times, every ``fail_every``-th failing; trace id -> failed."""
    failed: dict[int, bool] = {}
    for i in range(runs):
        fails = i % fail_every == 0
        try:
            program(question=f"run {i}{' FAIL' if fails else ''}")
        except Exception:
            assert fails
        failed[program.trace_ids[-1]] = fails
    return failed


def by_trace(spans: list[ReadableSpan]) -> dict[int, list[ReadableSpan]]:
    traces: dict[int, list[ReadableSpan]] = defaultdict(list)
    for span in spans:
        assert span.context is not None
        traces[span.context.trace_id].append(span)
    return traces


WHOLE_FAILED = sorted(["Pipeline", "ChainOfThought think", LM_SPAN])  # the Predict never runs
WHOLE_OK = sorted(["Pipeline", "ChainOfThought think", LM_SPAN, "Predict check", LM_SPAN])


def test_tail_errors_exports_exactly_the_failed_runs_each_whole(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced(tail_policies="errors")
    before = dspy_otel.stats()
    failed = run_all(Pipeline(), runs=1_000, fail_every=10)
    traces = by_trace(t.spans())
    assert set(traces) == {tid for tid, fails in failed.items() if fails}
    assert len(traces) == 100
    for spans in traces.values():
        assert sorted(s.name for s in spans) == WHOLE_FAILED
        assert all(s.context is not None and s.context.trace_flags.sampled for s in spans)
        (lm_span,) = [s for s in spans if s.name == LM_SPAN]
        assert lm_span.status.status_code is StatusCode.ERROR
    after = dspy_otel.stats()
    assert after["tail_traces_kept"] - before.get("tail_traces_kept", 0) == 100
    assert after["tail_traces_dropped"] - before.get("tail_traces_dropped", 0) == 900
    assert after["tail_spans_dropped"] - before.get("tail_spans_dropped", 0) == 900 * 5


def test_head_ratio_and_tail_errors_export_what_each_keeps(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced(sampler="parentbased_traceidratio", sampler_arg=0.1, tail_policies="errors")
    failed = run_all(Pipeline(), runs=300, fail_every=10)
    traces = by_trace(t.spans())
    expected = {tid for tid, fails in failed.items() if fails or keeps(tid, 0.1)}
    assert set(traces) == expected
    assert len(expected) > 30  # the head kept some successful runs too
    for tid, spans in traces.items():
        assert sorted(s.name for s in spans) == (WHOLE_FAILED if failed[tid] else WHOLE_OK)


def test_tail_latency_policy_on_real_runs(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced(tail_policies="latency:150")
    program = Pipeline()
    for i in range(3):
        program(question=f"fast {i}")
    program(question="SLOW please")  # the fake server waits 0.2 s on SLOW
    (kept,) = by_trace(t.spans()).values()
    assert sorted(s.name for s in kept) == WHOLE_OK


def test_debug_keeps_everything_with_content_even_when_sampled_out(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced(sampler="always_off")
    program = Pipeline()
    program(question="not kept")
    with dspy_otel.debug():
        program(question="kept in full")
        dspy.Parallel(num_threads=2)([(dspy.Predict("question -> answer"), {"question": f"p{i}"}) for i in range(3)])
        asyncio.run(dspy.Predict("question -> answer").acall(question="async"))
    program(question="not kept either")
    spans = t.spans()
    assert len(by_trace(spans)) == 3 + 1 + 1  # the pipeline, three Parallel items, the async call
    lm_spans = [s for s in spans if s.name == LM_SPAN]
    assert len(lm_spans) == 2 + 3 + 1
    assert all(gen_ai.GEN_AI_INPUT_MESSAGES in (s.attributes or {}) for s in lm_spans)
    assert any("kept in full" in str((s.attributes or {})[gen_ai.GEN_AI_INPUT_MESSAGES]) for s in lm_spans)


def test_debug_overrides_the_tail_sampler(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced(tail_policies="errors")
    with dspy_otel.debug():
        Pipeline()(question="fine")
    Pipeline()(question="fine, not kept")
    (kept,) = by_trace(t.spans()).values()
    assert sorted(s.name for s in kept) == WHOLE_OK


def test_suppress_records_nothing_in_the_block(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()
    with dspy_otel.suppress():
        Pipeline()(question="health check")
        asyncio.run(dspy.Predict("question -> answer").acall(question="async health check"))
    assert t.spans() == []
    Pipeline()(question="real work")
    assert sorted(s.name for s in t.spans()) == WHOLE_OK


def test_window_says_whether_each_call_was_exported(traced: Callable[..., Traced], lm: Any) -> None:
    traced(profile="development", tail_policies="errors")
    program = Pipeline()
    program(question="fine")
    with pytest.raises(Exception, match="fail"):
        program(question="FAIL now")
    out = io.StringIO()
    dspy_otel.inspect_history(3, file=out)
    lines = [line for line in out.getvalue().splitlines() if "trace=" in line]
    assert len(lines) == 3
    assert lines[0].endswith("(not exported (sampled out))")
    assert lines[1].endswith("(not exported (sampled out))")
    assert lines[2].endswith("(exported (kept by tail sampling))")


def test_window_says_exported_for_head_sampled_calls(traced: Callable[..., Traced], lm: Any) -> None:
    traced(profile="development")
    dspy.Predict("question -> answer")(question="q")
    out = io.StringIO()
    dspy_otel.inspect_history(1, file=out)
    assert "(exported)" in out.getvalue()


def test_a_bad_policy_list_is_named_and_the_app_runs(
    traced: Callable[..., Traced],
    lm: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DSPY_OTEL_TAIL_POLICIES", "errors,latncy:5000")
    with caplog.at_level(logging.WARNING, logger="dspy_otel"):
        t = traced()
    (record,) = caplog.records
    message = record.getMessage()
    assert "DSPY_OTEL_TAIL_POLICIES='errors,latncy:5000': ignoring part of it" in message
    assert "'latncy:5000' is not a known policy" in message
    assert "allowed: none, or a comma-separated list of errors, latency:..." in message
    assert message.endswith("using errors, dropping 'latncy:5000'")
    dropped = dspy_otel.stats().get("tail_traces_dropped", 0)
    Pipeline()(question="still traced")
    assert t.spans() == []  # the valid policy still applies: a trace without errors is not kept
    assert dspy_otel.stats()["tail_traces_dropped"] == dropped + 1
    assert main(["check"]) == 1
    assert "DSPY_OTEL_TAIL_POLICIES='errors,latncy:5000': allowed: none, or a comma-separated list" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DSPY_OTEL_TAIL_DECISION_WAIT_MS", "0"),
        ("DSPY_OTEL_TAIL_MAX_TRACES", "lots"),
        ("DSPY_OTEL_TAIL_MAX_SPANS_PER_TRACE", "-5"),
        ("DSPY_OTEL_TAIL_MAX_MIB", "1.5"),
    ],
)
def test_bad_tail_bounds_are_named_and_replaced(
    variable: str, value: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(variable, value)
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")  # no metrics exporter left aimed at localhost at exit
    with caplog.at_level(logging.WARNING, logger="dspy_otel"):
        dspy_otel.configure(tail_policies="errors", exporter="none")
    (record,) = caplog.records
    assert f"ignoring {variable}={value!r} (allowed: an integer >= 1); using " in record.getMessage()
    assert main(["check"]) == 1


def test_tail_errors_from_parallel_worker_threads(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced(tail_policies="errors")
    program = Pipeline()
    items = [(program, {"question": f"item {i}{' FAIL' if i % 5 == 0 else ''}"}) for i in range(60)]
    dspy.Parallel(num_threads=8, provide_traceback=False, max_errors=100)(items)
    traces = by_trace(t.spans())
    assert len(traces) == 12
    for spans in traces.values():
        assert sorted(s.name for s in spans) == WHOLE_FAILED

"""In-process tail sampling end to end: ``DSPY_OTEL_TAIL_POLICIES=errors`` → collector → Jaeger.

A separate Python process (this module run with ``-m``, configured only from
the environment) runs a two-step DSPy module ``RUNS`` times against the fake
LM; ``FAILED`` runs fail, half in the ``ChainOfThought`` (the ``Predict`` never
runs) and half in the ``Predict`` (after a successful ``ChainOfThought``). A
span processor added next to dspy-otel's records every span the process made,
sampled or not, and the process prints them with the trace ID of each run.

The collector keeps 100 % of what it receives, so Jaeger holds exactly what the
process exported: it must hold the failed runs' traces, each whole, and nothing
else.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dspy_otel._fake_lm import FakeOpenAIServer
from dspy_otel._jaeger import span_attributes
from integration.processes import Jaeger, StartCollector, report, run_program, wait_for

pytestmark = pytest.mark.integration

RUNS, FAILED = 200, 20
DECISION_WAIT_S = 1
MODULE, COT, PREDICT, LM = "Pipeline", "ChainOfThought draft", "Predict check", "chat gpt-4o-mini"
_STATUS_ERROR = 2


def _fails_at(run: int) -> str | None:
    """Where run ``run`` fails: every ``RUNS // FAILED``-th run, alternately in the CoT and the Predict."""
    step = RUNS // FAILED
    if run % step != step - 1:
        return None
    return COT if (run // step) % 2 == 0 else PREDICT


@dataclass(frozen=True)
class Made:
    """What the traced process made and printed.

    Attributes:
        runs: Trace ID (hex) of each run -> where it failed (``None``: it succeeded).
        spans: Trace ID -> span ID -> ``{"name", "parent", "error"}`` for every span the process ended.
        stats: ``dspy_otel.stats()`` at the end.
    """

    runs: dict[str, str | None]
    spans: dict[str, dict[str, dict[str, Any]]]
    stats: dict[str, int]

    @property
    def failed(self) -> set[str]:
        """Trace IDs of the failed runs."""
        return {trace_id for trace_id, where in self.runs.items() if where is not None}


def _run_program(base_url: str, endpoint: str, service: str, cwd: Path) -> Made:
    """Run :func:`main` in a fresh process configured only from the environment, tail policy ``errors``."""
    env = {
        "FAKE_LM_BASE_URL": base_url,
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_SERVICE_NAME": service,
        "DSPY_OTEL_TAIL_POLICIES": "errors",
    }
    printed = run_program("integration.test_tail_sampling", cwd, env)
    return Made(printed["runs"], printed["spans"], printed["stats"])


def _assert_whole(made: Made, stored: Mapping[str, Mapping[str, Any]], trace_id: str) -> None:
    """Jaeger holds every span the process made for ``trace_id``, with the same parents, names and statuses."""
    spans = made.spans[trace_id]
    assert set(stored) == set(spans), f"trace {trace_id} arrived incomplete or with extra spans"
    for span_id, span in spans.items():
        got = stored[span_id]
        assert got["name"] == span["name"]
        assert (got.get("parentSpanId") or None) == span["parent"]
        assert (got.get("status", {}).get("code") == _STATUS_ERROR) == span["error"]


def _assert_shape(stored: Mapping[str, Mapping[str, Any]], fails_at: str) -> None:
    """Module span at the root, ChainOfThought and (if it ran) Predict under it, each with its failed LM calls."""
    children: dict[str | None, list[Mapping[str, Any]]] = {}
    for span in stored.values():
        children.setdefault(span.get("parentSpanId") or None, []).append(span)
    ((root,),) = (children[None],)
    assert root["name"] == MODULE
    assert root["status"]["code"] == _STATUS_ERROR
    steps = {span["name"]: span for span in children[root["spanId"]]}
    assert set(steps) == ({COT} if fails_at == COT else {COT, PREDICT})
    for name, step in steps.items():
        calls = children[step["spanId"]]
        assert calls, f"no LM span under {name}"
        assert {call["name"] for call in calls} == {LM}
        assert all(call["kind"] == 3 for call in calls)  # CLIENT
        failed = [call for call in calls if call.get("status", {}).get("code") == _STATUS_ERROR]
        if name == fails_at:
            assert step["status"]["code"] == _STATUS_ERROR
            assert failed == calls, f"an LM call under the failing {name} did not fail"
            for call in failed:
                assert span_attributes(call)["error.type"] == "LMServerError"
        else:
            assert step.get("status", {}).get("code") != _STATUS_ERROR
            assert len(calls) == 1
            assert not failed


def test_errors_policy_exports_exactly_the_failed_traces_whole(
    jaeger: Jaeger,
    start_collector: StartCollector,
    fake_lm: FakeOpenAIServer,
    tmp_path: Path,
    pytestconfig: pytest.Config,
) -> None:
    started = time.monotonic()
    collector = start_collector(
        "otel-collector.yaml",
        DSPY_OTEL_COLLECTOR_JAEGER_ENDPOINT=jaeger.otlp_grpc,
        DSPY_OTEL_COLLECTOR_DECISION_WAIT=f"{DECISION_WAIT_S}s",
        DSPY_OTEL_COLLECTOR_SAMPLE_PERCENT="100",
        DSPY_OTEL_COLLECTOR_BATCH_TIMEOUT="200ms",
    )
    service = f"tail-errors-{uuid.uuid4().hex[:8]}"
    made = _run_program(fake_lm.base_url, collector.otlp_endpoint("grpc"), service, tmp_path)
    ran = time.monotonic()

    # The process made what the test expects: RUNS traces, FAILED of them failed, all decided at their root.
    assert len(made.runs) == RUNS
    assert set(made.spans) == set(made.runs)
    assert len(made.failed) == FAILED
    for trace_id, where in made.runs.items():
        names = sorted(span["name"] for span in made.spans[trace_id].values())
        if where is None:
            assert names == sorted([MODULE, COT, LM, PREDICT, LM]), f"successful run {trace_id}: {names}"
    kept_spans = sum(len(made.spans[trace_id]) for trace_id in made.failed)
    tail_stats = {name: count for name, count in made.stats.items() if name.startswith("tail_")}
    assert tail_stats == {  # nothing evicted, timed out, flushed or kept by the head sampler
        "tail_traces_kept": FAILED,
        "tail_traces_dropped": RUNS - FAILED,
        "tail_spans_kept": kept_spans,
        "tail_spans_dropped": 5 * (RUNS - FAILED),
    }

    waited = wait_for("the failed traces, whole, in Jaeger", lambda: _all_arrived(jaeger, service, made))
    time.sleep(DECISION_WAIT_S + 2)  # anything else the process sent would have been decided and stored by now
    stored = jaeger.traces(service)

    assert set(stored) == made.failed, (
        f"Jaeger holds {len(set(stored) - made.failed)} traces of successful runs and "
        f"misses {len(made.failed - set(stored))} failed ones"
    )
    for trace_id in made.failed:
        _assert_whole(made, stored[trace_id], trace_id)
        fails_at = made.runs[trace_id]
        assert fails_at is not None
        _assert_shape(stored[trace_id], fails_at)
    report(
        pytestconfig,
        f"[integration] tail errors: {RUNS} runs in {ran - started:.1f} s, {FAILED} failed traces "
        f"({kept_spans} spans) in Jaeger {waited:.1f} s later, none of the {RUNS - FAILED} others; "
        f"{time.monotonic() - started:.1f} s in all",
    )


def _all_arrived(jaeger: Jaeger, service: str, made: Made) -> bool:
    stored = jaeger.traces(service)
    return all(set(stored.get(trace_id, {})) == set(made.spans[trace_id]) for trace_id in made.failed)


def main() -> None:
    """The traced program: run the module ``RUNS`` times and print runs, spans and stats as one JSON line."""
    import dspy
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
    from opentelemetry.trace import StatusCode

    import dspy_otel

    class Recorder(SpanProcessor):
        """Every span the process ends, sampled or not (the tail sampler decides after this sees it)."""

        def __init__(self) -> None:
            self.spans: list[ReadableSpan] = []

        def on_end(self, span: ReadableSpan) -> None:
            self.spans.append(span)

    class Pipeline(dspy.Module):  # type: ignore[misc]  # dspy is untyped
        """Drafts an answer with a ChainOfThought, then checks it with a Predict."""

        def __init__(self) -> None:
            super().__init__()
            self.draft = dspy.ChainOfThought("question -> answer")
            self.check = dspy.Predict("question, answer, note -> verdict")

        def forward(self, question: str, note: str) -> Any:
            draft = self.draft(question=question)
            return self.check(question=question, answer=draft.answer, note=note)

    provider = dspy_otel.configure()
    recorder = Recorder()
    provider.add_span_processor(recorder)
    lm = dspy.LM("openai/gpt-4o-mini", api_base=os.environ["FAKE_LM_BASE_URL"], api_key="x", cache=False, num_retries=0)
    program = Pipeline()
    runs: dict[str, str | None] = {}
    with dspy.context(lm=lm):
        for run in range(RUNS):
            fails_at = _fails_at(run)
            question = f"FAIL {run}" if fails_at == COT else f"What is {run}?"
            note = f"FAIL {run}" if fails_at == PREDICT else "none"
            try:
                program(question=question, note=note)
            except Exception as exc:
                if fails_at is None or "the fake model failed on purpose" not in str(exc):
                    raise
            else:
                assert fails_at is None, f"run {run} should have failed in {fails_at}"
            root = recorder.spans[-1]  # the root span ends last
            assert root.parent is None
            assert root.context is not None
            runs[format(root.context.trace_id, "032x")] = fails_at
    dspy_otel.shutdown()
    spans: dict[str, dict[str, dict[str, Any]]] = {}
    for span in recorder.spans:
        assert span.context is not None
        spans.setdefault(format(span.context.trace_id, "032x"), {})[format(span.context.span_id, "016x")] = {
            "name": span.name,
            "parent": format(span.parent.span_id, "016x") if span.parent is not None else None,
            "error": span.status.status_code is StatusCode.ERROR,
        }
    print(json.dumps({"runs": runs, "spans": spans, "stats": dspy_otel.stats()}))


if __name__ == "__main__":
    main()

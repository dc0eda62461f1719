"""A collector that is down or refuses spans never breaks or stalls the instrumented program."""

from __future__ import annotations

import time
from typing import Any

import pytest

import dspy_otel
from conftest import closed_port


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_calls_succeed_and_shutdown_returns_when_the_collector_is_down(
    protocol: str, lm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dspy

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    dspy_otel.configure()
    program = dspy.ChainOfThought("question -> answer")
    answers = [program(question=f"q{i}").answer for i in range(20)]
    assert all(a.startswith("42") for a in answers)
    started = time.monotonic()
    dspy_otel.shutdown(timeout_millis=2000)
    assert time.monotonic() - started < 60  # bounded by the exporter's retry deadline, never a hang


def test_an_exporter_that_raises_never_reaches_the_app(lm: Any) -> None:
    import dspy
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class Exploding(SpanExporter):
        calls = 0

        def export(self, spans: Any) -> SpanExportResult:
            Exploding.calls += 1
            raise RuntimeError("exporter bug")

    dspy_otel.configure(span_exporter=Exploding())
    assert dspy.Predict("question -> answer")(question="q").answer.startswith("42")
    dspy_otel.shutdown()
    assert Exploding.calls >= 1

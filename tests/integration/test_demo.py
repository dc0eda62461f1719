"""The README's promise: with the collector running, ``dspy-otel demo`` lands in Jaeger, errors included."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from conftest import run_demo
from integration.processes import Jaeger, StartCollector, wait_for

pytestmark = pytest.mark.integration


def test_demo_exports_to_the_collector_and_reaches_jaeger(
    jaeger: Jaeger, start_collector: StartCollector, tmp_path: Path
) -> None:
    collector = start_collector(
        "otel-collector.yaml",
        DSPY_OTEL_COLLECTOR_JAEGER_ENDPOINT=jaeger.otlp_grpc,
        DSPY_OTEL_COLLECTOR_DECISION_WAIT="1s",
        DSPY_OTEL_COLLECTOR_SAMPLE_PERCENT="100",
    )
    service = f"demo-{uuid.uuid4().hex[:8]}"
    stdout = run_demo(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=collector.otlp_endpoint("grpc"), OTEL_SERVICE_NAME=service)
    assert "exporting over OTLP to the collector at 127.0.0.1" in stdout
    assert not (tmp_path / "dspy-otel-demo-traces.jsonl").exists()

    wait_for("the demo's 6 traces in Jaeger", lambda: len(jaeger.traces(service)) == 6)
    traces = jaeger.traces(service)
    names = [{span["name"] for span in spans.values()} for spans in traces.values()]
    assert {"invoke_agent ReAct", "execute_tool _weather", "chat gpt-4o-mini"} <= set().union(*names)
    failed = [spans for spans in traces.values() if any(s.get("status", {}).get("code") == 2 for s in spans.values())]
    assert len(failed) == 1
    assert {s["name"] for s in failed[0].values()} == {"ChainOfThought", "chat gpt-4o-mini"}

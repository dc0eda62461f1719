"""The collector stops and comes back mid-run: export resumes by itself and what was made after arrives."""

from __future__ import annotations

import time
from typing import Any

import dspy
import pytest

import dspy_otel
from receivers import grpc_receiver, http_receiver, receiver_answering


def wait_for(condition: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_export_resumes_when_the_collector_is_back(protocol: str, lm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    receiver = grpc_receiver if protocol == "grpc" else http_receiver
    program = dspy.Predict("question -> answer")
    with receiver() as (endpoint, before):
        port = int(endpoint.rsplit(":", 1)[1])
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
        dspy_otel.configure(capture_content="SPAN_ONLY")
        program(question="before the outage")
        assert wait_for(lambda: b"before the outage" in b"".join(before.bodies), 10)
    failed_before = dspy_otel.stats().get("export_spans_failed", 0)
    program(question="during the outage")
    assert wait_for(lambda: dspy_otel.stats().get("export_spans_failed", 0) > failed_before, 10)
    with receiver(port) as (_, after):
        calls = iter(range(1_000))

        def a_call_got_through() -> bool:  # a call each poll: the exporter finds out by itself that it is back
            program(question=f"after the restart {next(calls)}")
            return b"after the restart" in b"".join(after.bodies)

        assert wait_for(a_call_got_through, 30), "export did not resume within 30 s of the collector's return"
        for i in range(3):
            program(question=f"once back {i}")
        got = wait_for(lambda: all(f"once back {i}".encode() in b"".join(after.bodies) for i in range(3)), 10)
        assert got, "spans made after export resumed did not arrive"


@pytest.mark.parametrize("status", [500, 503])
def test_a_collector_that_answers_errors_never_reaches_the_program(
    status: int, lm: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    with receiver_answering(status) as endpoint:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
        before = dspy_otel.stats().get("export_spans_failed", 0)
        with caplog.at_level(logging.WARNING):
            dspy_otel.configure(exit_timeout_ms=3_000)
            for i in range(20):
                assert dspy.Predict("question -> answer")(question=f"q{i}").answer
            assert wait_for(lambda: dspy_otel.stats().get("export_spans_failed", 0) > before, 10)
            dspy_otel.shutdown()
    lines = [r.getMessage() for r in caplog.records if " spans could not be exported" in r.getMessage()]
    assert 1 <= len(lines) <= 2  # when failures start, and what was left at shutdown; not one line per batch
    assert dspy_otel.stats()["export_spans_failed"] - before == 40  # every span counted, none silently lost

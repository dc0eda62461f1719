"""Safe to switch on: bad standard exporter variables, a collector that is down or hangs, a full queue."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import dspy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import dspy_otel
from conftest import closed_port, env_without_settings
from dspy_otel import _setup
from dspy_otel._fake_lm import FakeOpenAIServer
from dspy_otel.cli import main
from dspy_otel.config import rejected, resolve
from dspy_otel.export import reporting
from dspy_otel.export.otlp import build_exporters
from dspy_otel.export.pipeline import build_processor
from dspy_otel.export.reporting import ReportingExporter

BAD_STANDARD_VALUES = [
    ("OTEL_EXPORTER_OTLP_TIMEOUT", "abc", "a number of seconds > 0"),
    ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "10s", "a number of seconds > 0"),
    ("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd", "gzip, deflate, none"),
    ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "brotli", "gzip, deflate, none"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://[::1", "an http:// or https:// URL"),
    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "not-a-url", "an http:// or https:// URL"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:99999", "an http:// or https:// URL"),
    ("OTEL_EXPORTER_OTLP_HEADERS", "authorization Bearer x", "key=value pairs"),
    ("OTEL_EXPORTER_OTLP_INSECURE", "yes", "true, false"),
    ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem", "the path of a readable file"),
    ("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "/nonexistent/key.pem", "the path of a readable file"),
    ("OTEL_BSP_MAX_QUEUE_SIZE", "abc", "an integer >= 1"),
    ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "0", "an integer >= 1"),
    ("OTEL_BSP_SCHEDULE_DELAY", "5s", "an integer >= 1"),
    ("OTEL_BSP_EXPORT_TIMEOUT", "abc", "an integer >= 0"),
    ("OTEL_RESOURCE_ATTRIBUTES", "service.version", "key=value pairs"),
    ("OTEL_TRACES_EXPORTER", "otlp,zipkin", "a comma-separated list of otlp, console, none"),
    ("DSPY_OTEL_EXIT_TIMEOUT_MS", "-1", "an integer >= 0"),
]


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
@pytest.mark.parametrize(("variable", "value", "allowed"), BAD_STANDARD_VALUES)
def test_a_bad_standard_variable_is_named_replaced_and_the_app_runs(
    variable: str,
    value: str,
    allowed: str,
    protocol: str,
    lm: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    monkeypatch.setenv("DSPY_OTEL_EXIT_TIMEOUT_MS", "0")  # no collector here: do not wait at teardown
    monkeypatch.setenv(variable, value)
    with caplog.at_level(logging.WARNING, logger="dspy_otel"):
        dspy_otel.configure()
    (record,) = [r for r in caplog.records if "ignoring" in r.getMessage()]
    message = record.getMessage()
    assert f"ignoring {variable}={value!r} (allowed: {allowed}" in message
    assert "; using " in message
    assert dspy.Predict("question -> answer")(question="still works").answer
    assert main(["check"]) == 1
    assert f"{variable}={value!r}: allowed: {allowed}" in capsys.readouterr().err


def test_batch_size_above_the_queue_size_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "100")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "512")
    assert main(["check"]) == 1
    assert "allowed: an integer from 1 to OTEL_BSP_MAX_QUEUE_SIZE (100)" in capsys.readouterr().err


def test_bad_explicit_arguments_raise_with_the_same_wording() -> None:
    with pytest.raises(ValueError, match=r"otlp_timeout_s='10s' is not valid; allowed: a number of seconds > 0"):
        dspy_otel.configure(otlp_timeout_s="10s")
    with pytest.raises(ValueError, match=r"exporter='otlp,zipkin' is not valid; allowed: a comma-separated list"):
        dspy_otel.configure(exporter="otlp,zipkin")


def test_headers_are_masked_in_dspy_otel_config(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20sk-SECRET,x-team=ml")
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "authorization=***,x-team=***" in out
    assert "sk-SECRET" not in out


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Failing(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        logging.getLogger("opentelemetry.exporter.otlp.proto.grpc.exporter").warning("Failed to export: UNAVAILABLE")
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        pass


def test_failures_are_counted_and_reported_once_per_interval(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reporting, "in_worker", lambda: False)  # pytest may run under a Python parent
    clock = Clock()
    before = dspy_otel.stats().get("export_spans_failed", 0)
    reporter = ReportingExporter(Failing(), interval_s=60, clock=clock)
    spans: Sequence[ReadableSpan] = [ReadableSpan("s")] * 10
    with caplog.at_level(logging.WARNING):
        for _ in range(50):  # a minute of failing batches
            reporter.export(spans)
            clock.now += 1
        clock.now += 11
        reporter.export(spans)
        reporter.shutdown()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith(
        "dspy-otel: 10 spans could not be exported so far (last error: Failed to export: UNAVAILABLE)"
    )
    assert lines[1].startswith("dspy-otel: 500 spans could not be exported in the last 61 s")
    assert len(lines) == 2  # the exporter's own 51 lines were held back
    assert dspy_otel.stats()["export_spans_failed"] - before == 510


class Slow(SpanExporter):
    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        time.sleep(0.05)
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def test_spans_dropped_on_a_full_queue_are_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "8")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4")
    before = dspy_otel.stats()
    slow = Slow()
    tracer = dspy_otel.configure(span_exporter=slow).get_tracer("t")
    for _ in range(500):
        tracer.start_span("s").end()
    dspy_otel.shutdown(timeout_millis=10_000)
    after = dspy_otel.stats()
    dropped = after["export_spans_dropped_queue_full"] - before.get("export_spans_dropped_queue_full", 0)
    exported = after["export_spans_exported"] - before.get("export_spans_exported", 0)
    assert dropped > 0
    assert exported == slow.exported
    # A drop is counted when the queue is full as a span arrives, as the SDK counts it: with one thread making
    # spans, the exporter taking a batch in that instant can make the count over by a span or two, never under.
    assert 500 <= dropped + exported <= 503


@pytest.fixture
def hanging_port() -> Iterator[int]:
    """A TCP port that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


APP = """
import atexit, sys, time
import dspy, dspy_otel
atexit.register(lambda: print(f"SHUT {time.monotonic()}", flush=True))  # runs after dspy-otel's own shutdown
dspy_otel.configure()
dspy.configure(lm=dspy.LM("openai/gpt-4o-mini", api_base=sys.argv[1], api_key="x", cache=False, num_retries=0))
program = dspy.ChainOfThought("question -> answer")
for i in range(int(sys.argv[2])):
    program(question=f"q{i}")
print(f"DONE {time.monotonic()}", flush=True)
"""


def run_app(fake_server: FakeOpenAIServer, tmp_path: Path, calls: int, **env: str) -> tuple[float, str]:
    """Run a traced program in a subprocess; return the seconds from its last call to the end of dspy-otel's
    shutdown at exit (the interpreter's own teardown follows; it is slow on a loaded machine), and stderr."""
    script = tmp_path / "app.py"
    script.write_text(APP)
    env = {**env_without_settings(), "LITELLM_LOCAL_MODEL_COST_MAP": "True", **env}
    done = subprocess.run(
        [sys.executable, str(script), fake_server.base_url, str(calls)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    times = {
        line.split()[0]: float(line.split()[1]) for line in done.stdout.splitlines() if line[:5] in ("DONE ", "SHUT ")
    }
    return times["SHUT"] - times["DONE"], done.stderr


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
@pytest.mark.parametrize("collector", ["closed port", "hanging"])
def test_exit_with_the_collector_down_or_hanging_takes_at_most_the_exit_timeout(
    fake_server: FakeOpenAIServer, tmp_path: Path, hanging_port: int, protocol: str, collector: str
) -> None:
    port = closed_port() if collector == "closed port" else hanging_port
    shutdown_s, stderr = run_app(
        fake_server,
        tmp_path,
        300,
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}",
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_BSP_SCHEDULE_DELAY="100",
    )
    assert shutdown_s <= 5.0 + 3.0, f"shutdown took {shutdown_s:.1f} s"  # DSPY_OTEL_EXIT_TIMEOUT_MS, plus scheduling
    assert "Transient error" not in stderr
    assert "Failed to export" not in stderr.replace("last error: Failed to export", "")
    for what in ("spans", "metric batches"):  # each exporter: its first failure, then at most one line a minute
        assert stderr.count(f"{what} could not be exported") <= 2
    assert all(len(line) <= 200 for line in stderr.splitlines())
    if collector == "closed port":  # nothing listens: the last exports gave up at once, within the bound
        assert "more spans could not be exported before shutdown" in stderr
        assert "shutdown waited" not in stderr
    else:
        assert "not yet sent are dropped" in stderr or "sent are not confirmed" in stderr


def test_exporting_to_console_and_otlp_together(lm: Any, capsys: pytest.CaptureFixture[str]) -> None:
    dspy_otel.configure(
        exporter="console,otlp", otlp_endpoint=f"http://127.0.0.1:{closed_port()}", exit_timeout_ms=3000
    )
    dspy.Predict("question -> answer")(question="both")
    dspy_otel.shutdown()  # the console's batch processor is flushed first
    assert '"name": "chat gpt-4o-mini"' in capsys.readouterr().out


STANDARD_VARIABLES = sorted({variable for variable, _, _ in BAD_STANDARD_VALUES} | {"OTEL_EXPORTER_OTLP_PROTOCOL"})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(STANDARD_VARIABLES), st.text(max_size=16).filter(lambda v: "\0" not in v)))
def test_any_standard_values_build_exporters_without_raising(values: dict[str, str]) -> None:
    with mock.patch.dict(os.environ, values):
        settings = resolve({"exit_timeout_ms": 0})
        exporters = build_exporters(settings, rejected())
        processor, _ = build_processor(settings, exporters)
        processor.shutdown()


class Blocked(SpanExporter):
    """A collector that does not answer until released (then accepts: no line is logged after the test)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.release.wait()  # however long the calls take: the test releases it when done
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.set()


def test_memory_stays_bounded_by_the_queue_while_exports_fail(lm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "200")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "50")
    blocked = Blocked()
    dspy_otel.configure(span_exporter=blocked, exit_timeout_ms=0)
    try:
        dropped, grown = _calls_while_the_exporter_hangs(blocked)
    finally:
        blocked.release.set()
    assert dropped == 2_000  # the queue stayed full: each new span dropped one
    assert grown < 2**20, f"{grown / 2**20:.2f} MiB grown while the queue was already full"


def _calls_while_the_exporter_hangs(blocked: Blocked) -> tuple[int, int]:
    """Fill the queue, then make 2,000 more spans: how many were dropped, and how much memory grew meanwhile."""
    import tracemalloc

    (batch,) = _setup._batches
    program = dspy.Predict("question -> answer")
    for i in range(300):  # 600 spans: one batch of 50 is stuck in the exporter (a hanging collector), the queue fills
        program(question=f"fill {i}")
    assert blocked.entered.wait(60)
    assert batch.queue_full()
    dropped_before = dspy_otel.stats().get("export_spans_dropped_queue_full", 0)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(1_000):  # 2,000 more spans
        program(question=f"more {i}")
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return dspy_otel.stats()["export_spans_dropped_queue_full"] - dropped_before, grown

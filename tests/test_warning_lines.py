"""Warning lines that are true: each exporter's own error, short lines, the worker's pid, recovery, exit counts."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import dspy_otel
from conftest import closed_port
from dspy_otel import _setup
from dspy_otel.cli import main
from dspy_otel.export import otlp, reporting
from dspy_otel.export.reporting import ReportingExporter
from dspy_otel.metrics.provider import ReportingMetricExporter
from receivers import Received, receiver_answering

ROOT = Path(__file__).resolve().parents[1]
SHELL = ["sh", "-c", '"$0" "$@"; exit $?']  # runs the command as its child (no exec: a command follows)
GRPC_LOGGER = logging.getLogger("opentelemetry.exporter.otlp.proto.grpc.exporter")


@pytest.fixture(autouse=True)
def _not_a_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reporting, "in_worker", lambda: False)  # pytest may run under a Python parent


class LoggingSpans(SpanExporter):
    """Fails, logging like the gRPC exporter; ``between`` runs after the log line and before returning."""

    def __init__(self, between: Any = None) -> None:
        self.between = between
        self.results = [SpanExportResult.FAILURE]

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.results[0] is SpanExportResult.FAILURE:
            GRPC_LOGGER.error("Failed to export traces to collector:4317, error code: StatusCode.UNAVAILABLE")
        if self.between is not None:
            self.between()
        return self.results.pop(0) if len(self.results) > 1 else self.results[0]

    def shutdown(self) -> None:
        pass


class LoggingMetrics(MetricExporter):
    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        GRPC_LOGGER.error("Failed to export metrics to collector:4317, error code: StatusCode.DEADLINE_EXCEEDED")
        return MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "dspy_otel"]


def test_each_exporter_reports_its_own_last_error(caplog: pytest.LogCaptureFixture) -> None:
    metrics = ReportingMetricExporter(LoggingMetrics())
    # the metrics exporter logs its error on another thread while the span export is still running
    spans = ReportingExporter(LoggingSpans(between=lambda: run_in_thread(metrics.export, None)))
    with caplog.at_level(logging.WARNING):
        spans.export([ReadableSpan("s")])
    spans.shutdown()
    metrics.shutdown()
    span_line, metric_line = sorted(warnings(caplog), key=lambda line: "metric" in line)
    assert "spans could not be exported so far (last error: Failed to export traces to collector:4317" in span_line
    assert "metrics" not in span_line
    assert "metric batches could not be exported so far (last error: Failed to export metrics" in metric_line


def run_in_thread(target: Any, *args: Any) -> None:
    thread = threading.Thread(target=target, args=args)
    thread.start()
    thread.join()


def test_a_line_fits_200_characters_and_keeps_both_ends_of_a_long_error(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reporting, "in_worker", lambda: True)
    error = (
        "Transient error HTTPConnectionPool(host='collector.example.internal', port=4318): Max retries exceeded "
        "with url: /v1/traces (Caused by NewConnectionError('<urllib3.connection.HTTPConnection object at "
        f"0x7f3a2c1b9d50>: Failed to establish a new connection: {'x' * 300} [Errno 111] Connection refused')) "
        "encountered while exporting spans batch, retrying in 1.04s."
    )

    class Long(LoggingSpans):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            logging.getLogger("opentelemetry.exporter.otlp.proto.http.trace_exporter").warning(error)
            return SpanExportResult.FAILURE

    exporter = ReportingExporter(Long())
    with caplog.at_level(logging.WARNING):
        exporter.export([ReadableSpan("s")] * 1234)
    exporter.shutdown()
    (line,) = warnings(caplog)
    assert len(line) <= 200
    assert re.match(r"dspy-otel\[pid \d+\]: 1,234 spans could not be exported so far \(last error: HTTPConn", line)
    assert "Connection refused" in line  # the cause, at the end of the error, is kept
    assert "…" in line
    assert "object at 0x" not in line  # noise
    assert "retrying" not in line  # a retry that did not happen


def test_exporting_again_after_failures_says_how_many_spans_were_lost(caplog: pytest.LogCaptureFixture) -> None:
    inner = LoggingSpans()
    inner.results = [SpanExportResult.FAILURE, SpanExportResult.FAILURE, SpanExportResult.SUCCESS]
    exporter = ReportingExporter(inner)
    with caplog.at_level(logging.WARNING):
        exporter.export([ReadableSpan("s")] * 10)
        exporter.export([ReadableSpan("s")] * 10)  # within the minute: no line
        exporter.report.lost(5)  # dropped on the full queue meanwhile
        exporter.export([ReadableSpan("s")] * 10)
        exporter.export([ReadableSpan("s")] * 10)  # working: no line
    exporter.shutdown()
    assert warnings(caplog) == [
        "dspy-otel: 10 spans could not be exported so far (last error: Failed to export traces to collector:4317, "
        "error code: StatusCode.UNAVAILABLE); next report in 60 s at most",
        "dspy-otel: exporting spans again; 25 spans were lost while the collector was unreachable",
    ]


@pytest.mark.parametrize(
    ("launcher", "worker"),
    [(SHELL, False), ([], True)],
    ids=["started by a shell", "started by a Python process"],
)
def test_the_pid_is_shown_in_a_worker_process(launcher: list[str], worker: bool) -> None:
    code = "import os, sys; from dspy_otel.export.reporting import prefix; print(os.getpid(), prefix())"
    done = subprocess.run([*launcher, sys.executable, "-c", code], capture_output=True, text=True, check=True)
    pid, prefix = done.stdout.split(maxsplit=1)
    assert prefix.strip() == (f"dspy-otel[pid {pid}]:" if worker else "dspy-otel:")


FORK_AND_SPAWN = """
import multiprocessing, os
from dspy_otel.export import reporting

if __name__ == "__main__":
    print("self", reporting.in_worker(), flush=True)
    if os.fork() == 0:
        print("forked", reporting.in_worker(), flush=True)
        os._exit(0)
    os.wait()
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        print("spawned", pool.apply(reporting.in_worker), flush=True)
"""


def test_a_forked_or_spawned_child_is_a_worker(tmp_path: Path) -> None:
    script = tmp_path / "workers.py"
    script.write_text(FORK_AND_SPAWN)
    done = subprocess.run([*SHELL, sys.executable, str(script)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["self", "False", "forked", "True", "spawned", "True"]


@pytest.mark.parametrize(
    ("variable", "suggestion"),
    [
        ("DSPY_OTEL_PROFLE", "did you mean DSPY_OTEL_PROFILE?"),
        ("DSPY_OTEL_TAIL_POLICY", "did you mean DSPY_OTEL_TAIL_POLICIES?"),
        ("DSPY_OTEL_EXIT_TIMEOUT", "did you mean DSPY_OTEL_EXIT_TIMEOUT_MS?"),
        ("DSPY_OTEL_SOMETHING_ELSE_ENTIRELY", "dspy-otel config lists the settings"),
    ],
)
def test_a_misspelled_name_is_named_with_the_closest_setting(
    variable: str,
    suggestion: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(variable, "development")
    expected = f"{variable} is not a dspy-otel setting; {suggestion}"
    assert main(["check"]) == 1
    assert f"invalid: {expected}" in capsys.readouterr().err.splitlines()
    with caplog.at_level(logging.WARNING, logger="dspy_otel"):
        dspy_otel.configure(exporter="none", metrics_exporter="none")
    assert warnings(caplog) == [f"dspy-otel: {expected}"]


def test_variables_read_outside_the_settings_table_are_not_misspellings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    used = set()
    for folder in ("collector-config", "scripts", "src", "tests", "docker-compose.yml", "Makefile"):
        for path in [ROOT / folder] if (ROOT / folder).is_file() else (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix in ("", ".py", ".yaml", ".yml", ".sh"):
                used |= set(re.findall(r"DSPY_OTEL_[A-Z0-9_]*[A-Z0-9]\b", path.read_text(errors="replace")))
    used -= {"DSPY_OTEL_PROFLE", "DSPY_OTEL_TAIL_POLICY", "DSPY_OTEL_EXIT_TIMEOUT", "DSPY_OTEL_SOMETHING_ELSE_ENTIRELY"}
    assert {"DSPY_OTEL_BIN_CACHE", "DSPY_OTEL_COLLECTOR_JAEGER_ENDPOINT", "DSPY_OTEL_JAEGER_URL"} <= used
    for name in used:
        monkeypatch.setenv(name, "1")
    from dspy_otel.config import unknown_names

    assert unknown_names(dict.fromkeys(used, "1")) == []


@pytest.mark.parametrize(
    "sampler", ["traceidratoi", "always_on", "parentbased_traceidratio", "traceidratio", "not-a-sampler"]
)
def test_a_sampler_argument_is_checked_whatever_the_sampler(
    sampler: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", sampler)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "1.5")
    assert main(["check"]) == 1
    (line,) = [line for line in capsys.readouterr().err.splitlines() if "OTEL_TRACES_SAMPLER_ARG" in line]
    assert line.startswith("invalid: OTEL_TRACES_SAMPLER_ARG='1.5': allowed: ")


def test_an_unread_sampler_argument_says_which_samplers_would_read_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_on")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.5")
    assert main(["check"]) == 1
    assert (
        "OTEL_TRACES_SAMPLER_ARG='0.5': allowed: unset, since the sampler in use, always_on, reads no argument; "
        "'0.5' would suit traceidratio, parentbased_traceidratio, dspy_otel_rate_limiting"
    ) in capsys.readouterr().err


def test_a_bad_tail_token_is_dropped_and_the_rest_applies(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("DSPY_OTEL_TAIL_POLICIES", "errors,latncy:100,ratio:2")
    with caplog.at_level(logging.WARNING, logger="dspy_otel"):
        provider = dspy_otel.configure(exporter="none", metrics_exporter="none")
    assert provider is not None
    assert _setup._settings is not None
    assert [str(p) for p in _setup._settings.tail_policies] == ["errors"]
    (line,) = warnings(caplog)
    assert line.startswith("dspy-otel: DSPY_OTEL_TAIL_POLICIES='errors,latncy:100,ratio:2': ignoring part of it")
    assert "'latncy:100' is not a known policy" in line
    assert "allowed: ratio:R with R a number" in line
    assert line.endswith("using errors, dropping 'latncy:100,ratio:2'")
    assert main(["check"]) == 1
    assert "DSPY_OTEL_TAIL_POLICIES='errors,latncy:100,ratio:2'" in capsys.readouterr().err


class SpyEvent(threading.Event):
    """An exporter's retry event that records whether each wait slept out its timeout."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[bool] = []

    def wait(self, timeout: float | None = None) -> bool:
        woken = super().wait(timeout)
        self.waits.append(woken)
        return woken


def spy_on_retries(exporter: Any) -> SpyEvent:
    """Put a spy in place of the event an OTLP exporter's retry back-off waits on (its own, or its HTTP client's)."""
    owner, name = next(
        (owner, name)
        for owner in (exporter, getattr(exporter, "_client", None))
        for name in ("_shutdown_in_progress", "_shutdown_event")
        if isinstance(getattr(owner, name, None), threading.Event)
    )
    spy = SpyEvent()
    setattr(owner, name, spy)
    return spy


@pytest.mark.parametrize("encoder", ["dspy_otel", "sdk"])
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_an_export_at_shutdown_gives_up_at_once_when_nothing_listens(protocol: str, encoder: str) -> None:
    before = dspy_otel.stats()
    provider = dspy_otel.configure(
        otlp_endpoint=f"http://127.0.0.1:{closed_port()}",
        protocol=protocol,
        otlp_encoder=encoder,
        metrics_exporter="none",
        exit_timeout_ms=120_000,  # the bound is not what ends the export here
    )
    exporter = _setup._batches[0].span_exporter.inner
    assert (type(exporter).__module__.startswith("dspy_otel.")) is (encoder == "dspy_otel")
    spy = spy_on_retries(exporter)
    for _ in range(7):
        provider.get_tracer("t").start_span("s").end()
    dspy_otel.shutdown()
    after = dspy_otel.stats()
    assert after["export_spans_failed"] - before.get("export_spans_failed", 0) == 7
    assert all(spy.waits), "a retry back-off was slept out at shutdown"  # gRPC waits on the set event, HTTP skips it


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_the_metrics_export_at_shutdown_gives_up_at_once_when_nothing_listens(protocol: str) -> None:
    before = dspy_otel.stats().get("export_metric_batches_failed", 0)
    dspy_otel.configure(
        otlp_endpoint=f"http://127.0.0.1:{closed_port()}",
        protocol=protocol,
        metrics_exporter="otlp",
        metric_export_interval_ms=3_600_000,  # only the export at shutdown
        exit_timeout_ms=120_000,  # the bound is not what ends the export here
    )
    (guard,) = [exporter for exporter in reporting.open_exporters() if hasattr(exporter, "inner")]
    spy = spy_on_retries(guard.inner)
    dspy_otel.shutdown()
    assert dspy_otel.stats()["export_metric_batches_failed"] > before  # the last metrics were sent, and failed
    assert all(spy.waits), "a retry back-off was slept out at shutdown"  # gRPC waits on the set event, HTTP skips it


def test_a_listening_collector_is_not_given_up() -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as server:
        assert not otlp._refuses(("127.0.0.1", server.server_address[1]))
    assert otlp._refuses(("127.0.0.1", closed_port()))


def test_a_batch_in_flight_when_the_bound_runs_out_is_not_confirmed_rather_than_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release, received = threading.Event(), Received()
    with receiver_answering(200, hold=release, received=received) as endpoint:
        _shutdown_while_a_batch_is_held(endpoint, release, received, caplog)


def _shutdown_while_a_batch_is_held(
    endpoint: str, release: threading.Event, received: Received, caplog: pytest.LogCaptureFixture
) -> None:
    before = dspy_otel.stats()
    provider = dspy_otel.configure(
        otlp_endpoint=endpoint, protocol="http/protobuf", metrics_exporter="none", bsp_schedule_delay_ms=600_000
    )
    for _ in range(14):
        provider.get_tracer("t").start_span("s").end()
    threading.Thread(target=provider.force_flush, daemon=True).start()  # one batch of 14, held by the receiver
    deadline = time.monotonic() + 60
    while not received.bodies:
        assert time.monotonic() < deadline, "the batch never reached the receiver"
        time.sleep(0.02)
    with caplog.at_level(logging.WARNING, logger="dspy_otel"):
        dspy_otel.shutdown(timeout_millis=200)  # the receiver holds the batch: the bound runs out
    after = dspy_otel.stats()
    assert after["export_spans_unconfirmed_at_exit"] - before.get("export_spans_unconfirmed_at_exit", 0) == 14
    assert after.get("export_spans_abandoned_at_exit", 0) == before.get("export_spans_abandoned_at_exit", 0)
    (line,) = warnings(caplog)
    assert line == (
        "dspy-otel: shutdown waited 0.2 s (DSPY_OTEL_EXIT_TIMEOUT_MS): "
        "14 sent are not confirmed (they may still arrive)"
    )
    release.set()  # the backend answers late: the spans did arrive
    deadline = time.monotonic() + 60
    while dspy_otel.stats().get("export_spans_exported", 0) - before.get("export_spans_exported", 0) < 14:
        assert time.monotonic() < deadline, "the late answer was never counted"
        time.sleep(0.05)
    assert len(received.bodies) == 1

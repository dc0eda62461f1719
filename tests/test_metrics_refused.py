"""A backend that takes no metrics (gRPC UNIMPLEMENTED, HTTP 404/405) is told once, then sent none."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

import dspy_otel
from dspy_otel.metrics import refusal


def _export_three_times(guard: refusal.RefusalGuard) -> None:
    """Record a point and export it, twice, then shut down (a third export; the reader's interval never comes)."""
    provider = MeterProvider(metric_readers=[PeriodicExportingMetricReader(guard, 3_600_000)], shutdown_on_exit=False)
    counter = provider.get_meter("test").create_counter("calls")
    try:
        for _ in range(2):
            counter.add(1)
            assert provider.force_flush(60_000)
    finally:
        provider.shutdown()


@pytest.fixture
def grpc_without_metrics() -> Iterator[str]:
    """A gRPC server on 127.0.0.1 with no service at all: every call is UNIMPLEMENTED."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop(grace=None)


class _NotFound(BaseHTTPRequestHandler):
    status = 404
    posts = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).posts += 1
        self.send_response(self.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the server quiet."""


@pytest.fixture
def http_server() -> Iterator[Callable[[int], tuple[str, type[_NotFound]]]]:
    """``http_server(status)``: an HTTP server on 127.0.0.1 answering every POST with ``status``."""
    servers: list[ThreadingHTTPServer] = []

    def make(status: int) -> tuple[str, type[_NotFound]]:
        handler = type("Handler", (_NotFound,), {"status": status, "posts": 0})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/v1/metrics", handler

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


def _refused() -> int:
    return dspy_otel.stats().get("export_metric_batches_refused", 0)


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "does not accept OTLP metrics" in r.getMessage()]


def test_grpc_unimplemented_is_said_once_and_no_more_metrics_are_sent(
    grpc_without_metrics: str, caplog: pytest.LogCaptureFixture
) -> None:
    before = _refused()
    guard = refusal.grpc_exporter({"endpoint": grpc_without_metrics, "insecure": True, "timeout": 10})
    with caplog.at_level(logging.WARNING, "dspy_otel"):
        _export_three_times(guard)
    (line,) = _lines(caplog)
    assert "gRPC UNIMPLEMENTED" in line
    assert "OTEL_METRICS_EXPORTER=none" in line
    assert _refused() - before == 3  # the refused batch and the two never sent


@pytest.mark.parametrize("status", [404, 405])
def test_http_404_or_405_is_said_once_and_no_more_metrics_are_sent(
    http_server: Callable[[int], tuple[str, type[_NotFound]]], status: int, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint, handler = http_server(status)
    before = _refused()
    with caplog.at_level(logging.WARNING, "dspy_otel"):
        _export_three_times(refusal.http_exporter({"endpoint": endpoint, "timeout": 10}))
    (line,) = _lines(caplog)
    assert f"HTTP {status}" in line
    assert handler.posts == 1
    assert _refused() - before == 3


def test_other_failures_are_not_a_refusal(http_server: Callable[[int], tuple[str, type[_NotFound]]]) -> None:
    endpoint, handler = http_server(400)  # a bad request is not retried and says nothing about metrics
    before = _refused()
    _export_three_times(refusal.http_exporter({"endpoint": endpoint, "timeout": 10}))
    assert handler.posts == 3
    assert _refused() == before

"""Fixtures for the integration tests: the binaries, Jaeger, collectors and a traced DSPy program.

Without Go the integration tests are skipped, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import dspy_otel
from dspy_otel._fake_lm import FakeOpenAIServer
from integration.processes import (
    CONFIG_DIR,
    SLOW_S,
    Binaries,
    Collector,
    Jaeger,
    Process,
    RunDSPy,
    Sent,
    StartCollector,
    free_port,
    load_build_script,
    report,
    start,
)

# A cold build of both binaries takes about 10 minutes on 2 cores and happens in
# the setup of the first integration test; every wait inside the tests is
# bounded on its own (process start, trace arrival, subprocess calls).
COLD_BUILD_TIMEOUT_S = 1800
# Read at collection: the suite's autouse fixture clears DSPY_OTEL_* variables before each test.
CACHE_ROOT = load_build_script().cache_root()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give integration tests room for the one-off cold build (pytest-timeout's default is 300 s)."""
    for item in items:
        if item.get_closest_marker("integration") is not None:
            item.add_marker(pytest.mark.timeout(COLD_BUILD_TIMEOUT_S))


@pytest.fixture(scope="session")
def binaries(pytestconfig: pytest.Config) -> Binaries:
    """Both binaries, built on first use (skipped without Go, except under CI=true)."""
    if shutil.which("go") is None:
        message = "Go is not installed: the collector and Jaeger are built from Go modules (Go 1.26 or newer)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; under CI=true these tests must run")
        pytest.skip(message)
    started = time.monotonic()

    def log(line: str) -> None:
        report(pytestconfig, f"[integration] build {line}")

    built = load_build_script().build_all(root=CACHE_ROOT, log=log)
    report(pytestconfig, f"[integration] collector and Jaeger ready in {time.monotonic() - started:.1f} s")
    return Binaries(Path(built.collector), Path(built.jaeger), Path(built.jaeger_ui))


@pytest.fixture(scope="session")
def jaeger(binaries: Binaries, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jaeger]:
    """Jaeger v2 running ``collector-config/jaeger.yaml`` with in-memory storage."""
    ports = {name: free_port() for name in ("grpc", "http", "query", "query_grpc", "health", "metrics")}
    env = {
        "DSPY_OTEL_JAEGER_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{ports['grpc']}",
        "DSPY_OTEL_JAEGER_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{ports['http']}",
        "DSPY_OTEL_JAEGER_QUERY_HTTP_ENDPOINT": f"127.0.0.1:{ports['query']}",
        "DSPY_OTEL_JAEGER_QUERY_GRPC_ENDPOINT": f"127.0.0.1:{ports['query_grpc']}",
        "DSPY_OTEL_JAEGER_HEALTH_ENDPOINT": f"127.0.0.1:{ports['health']}",
        "DSPY_OTEL_JAEGER_METRICS_HOST": "127.0.0.1",
        "DSPY_OTEL_JAEGER_METRICS_PORT": str(ports["metrics"]),
        "DSPY_OTEL_JAEGER_UI_ASSETS": str(binaries.jaeger_ui),
    }
    process = start(
        "jaeger",
        [str(binaries.jaeger), "--config", str(CONFIG_DIR / "jaeger.yaml")],
        env,
        f"http://127.0.0.1:{ports['health']}/status",
        tmp_path_factory.mktemp("jaeger"),
    )
    yield Jaeger(f"127.0.0.1:{ports['grpc']}", f"http://127.0.0.1:{ports['query']}")
    process.stop()


@pytest.fixture
def start_collector(binaries: Binaries, tmp_path: Path) -> Iterator[StartCollector]:
    """``start_collector(config_name, name=..., **env)`` runs the collector on free ports (stopped after the test)."""
    running: list[Process] = []

    def make(config_name: str, name: str = "collector", **env: str) -> Collector:
        ports = {key: free_port() for key in ("grpc", "http", "health", "metrics", "prometheus")}
        full_env = {
            "DSPY_OTEL_COLLECTOR_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{ports['grpc']}",
            "DSPY_OTEL_COLLECTOR_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{ports['http']}",
            "DSPY_OTEL_COLLECTOR_HEALTH_ENDPOINT": f"127.0.0.1:{ports['health']}",
            "DSPY_OTEL_COLLECTOR_METRICS_HOST": "127.0.0.1",
            "DSPY_OTEL_COLLECTOR_METRICS_PORT": str(ports["metrics"]),
            "DSPY_OTEL_COLLECTOR_PROMETHEUS_ENDPOINT": f"127.0.0.1:{ports['prometheus']}",
            **env,
        }
        process = start(
            name,
            [str(binaries.collector), "--config", str(CONFIG_DIR / config_name)],
            full_env,
            f"http://127.0.0.1:{ports['health']}/",
            tmp_path,
        )
        running.append(process)
        return Collector(
            process,
            f"127.0.0.1:{ports['grpc']}",
            f"127.0.0.1:{ports['http']}",
            f"http://127.0.0.1:{ports['prometheus']}/metrics",
        )

    yield make
    for process in reversed(running):
        process.stop()


@pytest.fixture(scope="module")
def fake_lm() -> Iterator[FakeOpenAIServer]:
    """The fake OpenAI-compatible server, with SLOW questions delayed by ``SLOW_S``."""
    with FakeOpenAIServer(answer_size=16, slow_seconds=SLOW_S) as server:
        yield server


@pytest.fixture
def run_dspy(fake_lm: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> RunDSPy:
    """``run_dspy(endpoint, protocol, service, plain=, failed=, slow=)`` runs ChainOfThought, exporting over OTLP.

    dspy-otel is configured from the standard ``OTEL_*`` variables, with content
    capture on (``settings``: more ``configure()`` arguments); a second span processor
    keeps an in-memory copy of every span so the test knows what was sent. ``also``
    makes more spans on the provider after the program. Returns after
    ``dspy_otel.shutdown()`` flushed.
    """
    import dspy

    def run(
        endpoint: str,
        protocol: str,
        service: str,
        *,
        plain: int = 0,
        failed: int = 0,
        slow: int = 0,
        also: Callable[[TracerProvider], None] | None = None,
        **settings: Any,
    ) -> Sent:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
        monkeypatch.setenv("OTEL_SERVICE_NAME", service)
        provider = dspy_otel.configure(capture_content="SPAN_ONLY", **settings)
        memory = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(memory))
        lm = dspy.LM("openai/gpt-4o-mini", api_base=fake_lm.base_url, api_key="x", cache=False, num_retries=0)
        program = dspy.ChainOfThought("question -> answer")
        sent = Sent()
        with dspy.context(lm=lm):
            for kind, count, question in (
                (sent.plain, plain, "What is {}?"),
                (sent.failed, failed, "FAIL {}"),
                (sent.slow, slow, "SLOW {}"),
            ):
                for index in range(count):
                    if kind is sent.failed:
                        with pytest.raises(Exception, match="the fake model failed on purpose"):
                            program(question=question.format(index))
                    else:
                        program(question=question.format(index))
                    root = memory.get_finished_spans()[-1]  # the root span ends last
                    assert root.parent is None
                    kind.append(format(root.context.trace_id, "032x"))
        if also is not None:
            also(provider)
        dspy_otel.shutdown()
        for span in memory.get_finished_spans():
            sent.spans.setdefault(format(span.context.trace_id, "032x"), {})[format(span.context.span_id, "016x")] = (
                span.name
            )
        return sent

    return run

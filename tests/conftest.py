"""Shared fixtures: a local OpenAI-compatible server, a DSPy LM that talks to it, and traced setups."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import dspy_otel
from dspy_otel._fake_lm import FakeOpenAIServer
from dspy_otel.config import TABLE

CANARY_KEY = "sk-CANARY-6f1d2c9e8b7a"


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (it was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def env_without_settings() -> dict[str, str]:
    """This process's environment minus every ``OTEL_*`` and ``DSPY_OTEL_*`` variable, for subprocesses."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DSPY_OTEL_"))}


def venv_or_skip(ensure: Callable[[str], Path], version: str, what: str) -> Path:
    """``ensure(version)``: a cached venv's Python; the test is skipped if it cannot be built, except under CI=true."""
    try:
        return ensure(version)
    except (subprocess.CalledProcessError, SystemExit) as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"the venv for {what} {version} could not be built ({exc}); under CI=true this fails")


def run_demo(cwd: Path, *args: str, **env: str) -> str:
    """Run ``dspy-otel demo ARGS`` in a subprocess with a settings-free environment plus ``env``; return its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "dspy_otel.cli", "demo", *args],
        cwd=cwd,
        env={**env_without_settings(), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def parent_id(span: ReadableSpan) -> int | None:
    """The span ID of ``span``'s parent, or ``None`` for a root span."""
    return span.parent.span_id if span.parent is not None else None


def attr(span: ReadableSpan, key: str) -> Any:
    """One attribute of ``span`` (``None`` when absent), typed loosely for comparisons in tests."""
    return (span.attributes or {}).get(key)


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(answer_size=64, slow_seconds=0.2) as server:
        yield server


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's OTEL_* / DSPY_OTEL_* settings; every test ends un-configured."""
    for name in list(os.environ):
        if name.startswith(("OTEL_", "DSPY_OTEL_")):
            monkeypatch.delenv(name)
    assert {s.env for s in TABLE}.isdisjoint(os.environ)
    yield
    dspy_otel.shutdown()


def configured_lm(server: FakeOpenAIServer) -> Iterator[Any]:
    """A real ``dspy.LM`` (cache off) pointed at ``server``, set as DSPy's LM until the generator resumes."""
    import dspy

    model = dspy.LM("openai/gpt-4o-mini", api_base=server.base_url, api_key=CANARY_KEY, cache=False, num_retries=0)
    # dspy.configure, not dspy.context: a context snapshots every setting, hiding what configure() changes later.
    dspy.configure(lm=model)
    yield model
    dspy.configure(lm=None)


@pytest.fixture
def lm(fake_server: FakeOpenAIServer) -> Iterator[Any]:
    """A real ``dspy.LM`` (cache off) pointed at the fake server, set as DSPy's LM for the test."""
    yield from configured_lm(fake_server)


@dataclass
class Traced:
    """A ``dspy_otel.configure()`` setup that exports into memory."""

    provider: TracerProvider
    exporter: InMemorySpanExporter

    def spans(self) -> list[ReadableSpan]:
        """Every span finished so far (the batch processor is flushed first)."""
        self.provider.force_flush()
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        """The finished spans called ``name``."""
        return [s for s in self.spans() if s.name == name]


@pytest.fixture
def traced() -> Callable[..., Traced]:
    """``traced(**overrides)`` configures dspy-otel with an in-memory exporter (shut down after the test)."""

    def make(**overrides: Any) -> Traced:
        exporter = InMemorySpanExporter()
        provider = dspy_otel.configure(span_exporter=exporter, **overrides)
        return Traced(provider, exporter)

    return make

"""Helpers for the integration tests: free ports, processes with bounded start-up, Jaeger queries.

The binaries come from ``scripts/build_otel_binaries.py`` (cached outside the
repository). Every process listens on free ports on 127.0.0.1, must be healthy
within a bounded time, and is killed at teardown; its output goes to a log file
that a failing test prints.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from conftest import env_without_settings
from dspy_otel._jaeger import fetch_traces, iter_spans, query_url

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / "collector-config"
START_TIMEOUT_S = 60.0


def load_build_script() -> ModuleType:
    """``scripts/build_otel_binaries.py`` as a module, loaded once."""
    return load_script("build_otel_binaries")


@functools.cache
def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` as a module (scripts/ is not a package), loaded once."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_status(url: str, timeout_s: float) -> int:
    """The status of a GET (HTTP errors included; connection errors raise ``OSError``)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code


def report(config: pytest.Config, line: str) -> None:
    """Print a line in pytest's output whatever the capture mode (build and run durations)."""
    capture = config.pluginmanager.get_plugin("capturemanager")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if capture is None or reporter is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(line)


@dataclass(frozen=True)
class Binaries:
    """The built executables and the Jaeger UI's assets."""

    collector: Path
    jaeger: Path
    jaeger_ui: Path


@dataclass
class Process:
    """A running binary with its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        """Everything the process has written so far."""
        return self.log.read_text(errors="replace")

    group: bool = False  # started in a session of its own: stop its whole process group (its workers too)

    def stop(self) -> None:
        """Terminate, then kill if it does not exit within 10 s."""
        if self.group:
            self._signal_group(signal.SIGTERM)
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        if self.group:
            self._signal_group(signal.SIGKILL)  # workers that outlived their parent

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signum)


def start(
    name: str,
    command: list[str],
    env: Mapping[str, str],
    health_url: str,
    log_dir: Path,
    timeout_s: float = START_TIMEOUT_S,
    *,
    new_session: bool = False,
) -> Process:
    """Start ``command`` and wait until ``health_url`` answers 200 (failing the test after ``timeout_s``).

    ``new_session``: run it in a process group of its own, which :meth:`Process.stop` ends whole.
    """
    log = log_dir / f"{name}.log"
    with log.open("wb") as sink:
        popen = subprocess.Popen(
            command, env={**os.environ, **env}, stdout=sink, stderr=subprocess.STDOUT, start_new_session=new_session
        )
    process = Process(name, popen, log, group=new_session)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            pytest.fail(f"{name} exited with {popen.returncode}:\n{process.output()[-4000:]}")
        try:
            if http_status(health_url, timeout_s=1.0) == 200:
                return process
        except OSError:
            pass
        time.sleep(0.2)
    process.stop()
    pytest.fail(f"{name} was not healthy at {health_url} within {timeout_s:.0f} s:\n{process.output()[-4000:]}")


@dataclass(frozen=True)
class Jaeger:
    """A running Jaeger: where to send OTLP and where to query."""

    otlp_grpc: str
    query_url: str

    def traces(self, service: str) -> dict[str, dict[str, Mapping[str, Any]]]:
        """Every span Jaeger holds for ``service`` in the last 10 minutes: trace ID -> span ID -> span."""
        url = query_url(self.query_url, service, timedelta(minutes=10), 1000, datetime.now(timezone.utc))
        by_trace: dict[str, dict[str, Mapping[str, Any]]] = {}
        for span in iter_spans(fetch_traces(url)):
            by_trace.setdefault(span["traceId"], {})[span["spanId"]] = span
        return by_trace


@dataclass(frozen=True)
class Collector:
    """A running collector: its OTLP endpoints, its Prometheus exporter's URL and its output."""

    process: Process
    grpc_endpoint: str
    http_endpoint: str
    prometheus_url: str  # the metrics pipeline's exporter (unused by loadbalancer.yaml)

    def otlp_endpoint(self, protocol: str) -> str:
        """The ``OTEL_EXPORTER_OTLP_ENDPOINT`` for ``protocol`` (``grpc`` or ``http/protobuf``)."""
        return f"http://{self.grpc_endpoint if protocol == 'grpc' else self.http_endpoint}"


StartCollector = Callable[..., Collector]


def wait_for(what: str, check: Callable[[], bool], timeout_s: float = 30.0) -> float:
    """Poll ``check`` until it is true; return the seconds waited, or fail the test after ``timeout_s``."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout_s:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.5)
    return time.monotonic() - started


SLOW_S = 1.0  # the fake LM's delay for a SLOW question; the collector's latency threshold is below it


@dataclass
class Sent:
    """The traces a DSPy run exported, as dspy-otel produced them (read from an in-memory copy).

    Attributes:
        spans: Trace ID (hex) -> span ID (hex) -> span name.
        plain: Trace IDs of runs that succeeded quickly.
        failed: Trace IDs of runs whose LM call failed.
        slow: Trace IDs of runs whose LM call took ``SLOW_S``.
    """

    spans: dict[str, dict[str, str]] = field(default_factory=dict)
    plain: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    slow: list[str] = field(default_factory=list)


RunDSPy = Callable[..., Sent]


PROGRAM_TIMEOUT_S = 120


def run_program(module: str, cwd: Path, env: Mapping[str, str]) -> Any:
    """Run ``python -m module`` (a traced program in a test module) and return the JSON it printed last.

    The program sees no dspy-otel or OTel setting of this process, ``tests/`` on its path, and ``env``.
    """
    done = subprocess.run(
        [sys.executable, "-m", module],
        cwd=cwd,
        env={
            **env_without_settings(),
            "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]),
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=PROGRAM_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, f"the traced program failed:\n{done.stderr[-4000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])

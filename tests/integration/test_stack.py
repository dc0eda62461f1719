"""``make stack`` (scripts/run_stack.py): the tests' collector and Jaeger on localhost, without Docker.

The tests marked ``integration`` start the real script on free ports, send it
the demo, find the traces in Jaeger through the URL it printed, and stop it;
the others check its settings and its refusal of a busy port without binaries.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import run_demo
from integration.processes import CONFIG_DIR, Binaries, Jaeger, wait_for
from integration.stack import SCRIPT, STOP_TIMEOUT_S, RunningStack, free_ports, launch_stack, run_stack_module

StartStack = Callable[..., RunningStack]


def _refused(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def start_stack(binaries: Binaries, tmp_path: Path) -> Iterator[StartStack]:
    """``start_stack(**env)`` runs the script on free ports and waits for its ready line (stopped after the test)."""
    running: list[RunningStack] = []

    def start(**env: str) -> RunningStack:
        running.append(launch_stack(binaries, tmp_path, **env))
        return running[-1]

    yield start
    for one in running:
        one.kill()


def test_the_stack_sets_every_endpoint_the_configs_read() -> None:
    script = run_stack_module()
    ports = script.Ports("127.0.0.1", *range(4317, 4328))
    collector, jaeger = script.collector_env(ports, {}), script.jaeger_env(ports, Path("/ui"))
    for config, env in (("otel-collector.yaml", collector), ("jaeger.yaml", jaeger)):
        read = set(re.findall(r"\$\{env:(DSPY_OTEL_\w+(?:ENDPOINT|HOST|PORT)):-", (CONFIG_DIR / config).read_text()))
        assert read <= set(env), f"{config} reads {sorted(read - set(env))}, which the stack leaves at their defaults"
    assert collector["DSPY_OTEL_COLLECTOR_JAEGER_ENDPOINT"] == jaeger["DSPY_OTEL_JAEGER_OTLP_GRPC_ENDPOINT"]
    listening = [v for v in [*collector.values(), *jaeger.values()] if re.fullmatch(r"[\d.]+:\d+", v)]
    listening.remove(collector["DSPY_OTEL_COLLECTOR_JAEGER_ENDPOINT"])  # where the collector sends, not listens
    ports_used = [v.rsplit(":", 1)[1] for v in listening]
    ports_used += [collector["DSPY_OTEL_COLLECTOR_METRICS_PORT"], jaeger["DSPY_OTEL_JAEGER_METRICS_PORT"]]
    assert len(ports_used) == len(set(ports_used)) == 11
    assert collector["DSPY_OTEL_COLLECTOR_SAMPLE_PERCENT"] == "100"
    assert (
        script.collector_env(ports, {"DSPY_OTEL_COLLECTOR_SAMPLE_PERCENT": "10"})["DSPY_OTEL_COLLECTOR_SAMPLE_PERCENT"]
        == "10"
    )


def test_the_readme_ports_are_the_defaults() -> None:
    defaults = {flag: port for flag, port, _ in run_stack_module().PORTS}
    assert defaults == {
        "otlp-grpc-port": 4317,
        "otlp-http-port": 4318,
        "ui-port": 16686,
        "prometheus-port": 8889,
        "health-port": 13133,
        "telemetry-port": 8888,
    }


def test_a_busy_port_is_named_and_nothing_starts(tmp_path: Path) -> None:
    ports = free_ports()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", ports["ui-port"]))
        busy.listen()
        args = [f"--{flag}={port}" for flag, port in ports.items()]
        done = subprocess.run(
            [
                sys.executable,
                str(SCRIPT),
                *args,
                "--collector",
                str(tmp_path / "none"),
                "--jaeger",
                str(tmp_path / "none"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    assert f"stack: in use on 127.0.0.1: {ports['ui-port']} (Jaeger UI and query API, --ui-port)" in done.stderr
    assert not (tmp_path / "logs").exists()


@pytest.mark.integration
def test_the_demo_reaches_jaeger_through_the_stack_and_ctrl_c_stops_it(start_stack: StartStack, tmp_path: Path) -> None:
    stack = start_stack(DSPY_OTEL_COLLECTOR_DECISION_WAIT="1s")
    ports = stack.ports
    # What the script tells the user is what works: the demo command and the UI's address.
    endpoint = stack.line(r"`OTEL_EXPORTER_OTLP_ENDPOINT=(\S+) dspy-otel demo`")[1]
    assert endpoint == f"http://localhost:{ports['otlp-grpc-port']}"
    ui = stack.line(r"Jaeger UI +(\S+)")[1]
    assert ui == f"http://localhost:{ports['ui-port']}"
    service = f"stack-{uuid.uuid4().hex[:8]}"
    stdout = run_demo(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_SERVICE_NAME=service)
    assert f"exporting over OTLP to the collector at localhost:{ports['otlp-grpc-port']}" in stdout

    jaeger = Jaeger("", ui)

    def arrived() -> bool:
        traces = jaeger.traces(service)
        names = {span["name"] for spans in traces.values() for span in spans.values()}
        failed = [t for t in traces.values() if any(s.get("status", {}).get("code") == 2 for s in t.values())]
        return {"invoke_agent ReAct", "execute_tool _weather", "chat gpt-4o-mini"} <= names and len(failed) == 1

    wait_for("the demo's traces in the stack's Jaeger", arrived, timeout_s=60)

    pids = stack.pids()
    assert stack.stop(signal.SIGINT) == 0  # what Ctrl-C sends
    assert stack.text().rstrip().splitlines()[-1].startswith("stack: stopped")
    assert all(_gone(pid) for pid in pids)
    assert all(_refused(port) for port in ports.values())


@pytest.mark.integration
def test_sigterm_stops_both(start_stack: StartStack) -> None:
    stack = start_stack()
    pids = stack.pids()
    assert stack.stop(signal.SIGTERM) == 0
    assert all(_gone(pid) for pid in pids)
    assert all(_refused(port) for port in stack.ports.values())


@pytest.mark.integration
def test_a_process_that_dies_stops_the_other_and_fails(start_stack: StartStack) -> None:
    stack = start_stack()
    collector, jaeger = stack.pids()
    os.kill(collector, signal.SIGKILL)
    assert stack.popen.wait(timeout=STOP_TIMEOUT_S) == 1
    assert f"stack: collector exited with status -{signal.SIGKILL.value}" in stack.text()
    assert _gone(jaeger)

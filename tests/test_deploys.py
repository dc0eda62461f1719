"""A deploy ends the service with SIGTERM: real servers lose no span of a finished request, and exit as before.

Each case serves ``deploy_app.py`` on 127.0.0.1 (``uvicorn --workers 2``, gunicorn
with 2 uvicorn workers, with and without ``--preload``, gunicorn with 2 sync workers,
or runs it as a plain script), sends it requests, then SIGTERM to the master. The batch processor's delay
and the metric interval are 10 minutes, and the script's tail sampler waits 10
minutes to decide, so nothing leaves before the signal: what the receiver gets was
exported because of it. Every wait is bounded by a deadline.
"""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import closed_port, env_without_settings
from dspy_otel._fake_lm import FakeOpenAIServer
from receivers import otlp_receiver

TESTS = Path(__file__).parent
REQUESTS = 12
START_S = 180.0  # two workers importing DSPy on a loaded 2-core machine
STOP_S = 120.0
EXIT_TIMEOUT_MS = 2000
LONG_MS = "600000"

UVICORN_WORKERS = "-m gunicorn -w 2 -k uvicorn_worker.UvicornWorker"
SERVERS = {  # the arguments after ``python``; the servers' listening address comes last
    "uvicorn-workers": shlex.split("-m uvicorn deploy_app:asgi --workers 2 --no-access-log --port"),
    "gunicorn-uvicorn-workers": shlex.split(f"{UVICORN_WORKERS} deploy_app:asgi -b"),
    "gunicorn-uvicorn-workers-preload": shlex.split(f"{UVICORN_WORKERS} --preload deploy_app:asgi -b"),
    "gunicorn-sync-workers": shlex.split("-m gunicorn -w 2 deploy_app:wsgi -b"),
    "script": [str(TESTS / "deploy_app.py"), str(REQUESTS)],
}


@dataclass
class Run:
    """One run of a server: its exit status, what it wrote to stderr, how long it took to exit after SIGTERM."""

    status: int
    stderr: str
    stop_s: float
    served: Counter[int]  # pid -> requests it answered
    pid: int


def run(kind: str, tmp_path: Path, lm_base: str, **env: str) -> Run:
    """Start ``kind``, send it :data:`REQUESTS` requests (the script makes its calls), SIGTERM it; bounded waits."""
    port = closed_port()  # free a moment ago: the server listens on it
    server = kind != "script"
    args = (
        [*SERVERS[kind], f"127.0.0.1:{port}" if kind.startswith("gunicorn") else str(port)] if server else SERVERS[kind]
    )
    stdout, stderr = tmp_path / f"{kind}.out", tmp_path / f"{kind}.err"
    with stdout.open("w") as out, stderr.open("w") as err:
        process = subprocess.Popen(
            [sys.executable, *args],
            cwd=TESTS,
            env={**env_without_settings(), "PYTHONPATH": str(TESTS), "FAKE_LM_BASE": lm_base, **env},
            stdout=out,
            stderr=err,
        )
    try:
        wait_ready(process, stdout, f"http://127.0.0.1:{port}/ready" if server else None)
        served: Counter[int] = Counter({process.pid: REQUESTS}) if not server else ask_all(port)
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        status = process.wait(STOP_S)
        return Run(status, stderr.read_text(), time.monotonic() - started, served, process.pid)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def wait_ready(process: subprocess.Popen[bytes], stdout: Path, url: str | None) -> None:
    """Until the script printed ``ready`` or the server answers ``url``; fails when it exits or the deadline passes."""
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        assert process.poll() is None, f"exited with {process.returncode} before it was ready"
        if url is None and "ready" in stdout.read_text():
            return
        if url is not None:
            try:
                with urllib.request.urlopen(url, timeout=5):
                    return
            except OSError:
                pass
        time.sleep(0.1)
    pytest.fail(f"not ready within {START_S:.0f} s")


def ask_all(port: int) -> Counter[int]:
    """Send the requests, four at a time so that both workers get some; pid -> how many it answered."""

    def ask(request_id: int) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ask?id={request_id}", timeout=STOP_S) as response:
            return int(response.read())

    with ThreadPoolExecutor(4) as pool:
        return Counter(pool.map(ask, range(REQUESTS)))


@pytest.fixture(scope="module")
def status_without_dspy_otel(
    tmp_path_factory: pytest.TempPathFactory, fake_server: FakeOpenAIServer
) -> Callable[[str], int]:
    """How each server exits on SIGTERM when the app does not configure dspy-otel (learnt once per server)."""
    statuses: dict[str, int] = {}

    def status(kind: str) -> int:
        if kind not in statuses:
            statuses[kind] = run(kind, tmp_path_factory.mktemp(kind), fake_server.base_url, DEPLOY_APP_PLAIN="1").status
        return statuses[kind]

    return status


def settings(kind: str, endpoint: str) -> dict[str, str]:
    """Nothing is exported before the signal; the script's tail sampler keeps its failed calls."""
    tail = {"DSPY_OTEL_TAIL_POLICIES": "errors", "DSPY_OTEL_TAIL_DECISION_WAIT_MS": LONG_MS} if kind == "script" else {}
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_BSP_SCHEDULE_DELAY": LONG_MS,
        "OTEL_METRIC_EXPORT_INTERVAL": LONG_MS,
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY",
        "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "process",  # each span and metric says which process sent it
        **tail,
    }


@pytest.mark.parametrize("kind", list(SERVERS))
def test_sigterm_exports_every_span_of_every_finished_request(
    kind: str, tmp_path: Path, fake_server: FakeOpenAIServer, status_without_dspy_otel: Callable[[str], int]
) -> None:
    baseline = status_without_dspy_otel(kind)
    with otlp_receiver() as receiver:
        outcome = run(
            kind, tmp_path, fake_server.base_url, **settings(kind, receiver.endpoint.removesuffix("/v1/traces"))
        )
        with receiver.lock:
            records, metric_pids = list(receiver.records), set(receiver.metric_pids)
    assert outcome.status == baseline, outcome.stderr[-3000:]
    questions = Counter(m.group() for r in records if (m := QUESTION.search(r["content"])))
    if kind == "script":  # the tail sampler keeps the failed calls, the odd ones
        assert questions == Counter(f"pid {outcome.pid} request {n} FAIL" for n in range(1, REQUESTS, 2))
    else:
        asked = Counter(int(q.split()[1]) for q in questions)
        assert asked == outcome.served, "every answered request's LM span arrived, once, from the worker that answered"
        assert sorted(int(q.split()[-1]) for q in questions) == list(range(REQUESTS))
    assert Counter(r["name"] for r in records) == {"Predict": len(questions), "chat gpt-4o-mini": len(questions)}
    assert all(r["pid"] in outcome.served for r in records)
    assert set(outcome.served) <= metric_pids, "each process that served requests exported its metrics"


def spans_made(kind: str) -> int:
    """The spans a run makes: Predict and LM for each request; the script's tail sampler keeps its failed calls."""
    return 2 * (REQUESTS // 2 if kind == "script" else REQUESTS)


QUESTION = re.compile(r"pid \d+ request \d+( FAIL)?")
SPANS_LOST = re.compile(
    r"dspy-otel: .*?([\d,]+) (?:more spans could not|spans could not|not yet exported|not confirmed)"
)


@pytest.mark.parametrize("kind", list(SERVERS))
def test_sigterm_with_the_collector_down_exits_in_bounded_time_saying_what_was_lost(
    kind: str, tmp_path: Path, fake_server: FakeOpenAIServer, status_without_dspy_otel: Callable[[str], int]
) -> None:
    baseline = status_without_dspy_otel(kind)
    down = {
        **settings(kind, f"http://127.0.0.1:{closed_port()}"),
        "DSPY_OTEL_EXIT_TIMEOUT_MS": str(EXIT_TIMEOUT_MS),
        "OTEL_EXPORTER_OTLP_TIMEOUT": "60",  # an unbounded export would retry for a minute
    }
    outcome = run(kind, tmp_path, fake_server.base_url, **down)
    assert outcome.status == baseline, outcome.stderr[-3000:]
    assert outcome.stop_s <= EXIT_TIMEOUT_MS / 1e3 + 20.0, "the exit timeout, then graceful shutdowns on a slow machine"
    lost = [int(m.group(1).replace(",", "")) for m in map(SPANS_LOST.search, outcome.stderr.splitlines()) if m]
    assert len(lost) == len(outcome.served), f"one line per process that had spans queued:\n{outcome.stderr[-3000:]}"
    assert sum(lost) == spans_made(kind)


def test_the_setting_turns_it_off(tmp_path: Path, fake_server: FakeOpenAIServer) -> None:
    with otlp_receiver() as receiver:
        off = {
            **settings("script", receiver.endpoint.removesuffix("/v1/traces")),
            "DSPY_OTEL_FLUSH_ON_SIGNALS": "false",
        }
        outcome = run("script", tmp_path, fake_server.base_url, **off)
        with receiver.lock:
            assert receiver.records == [], "nothing is exported when SIGTERM kills the script"
    assert outcome.status == -signal.SIGTERM
    assert "dspy-otel" not in outcome.stderr

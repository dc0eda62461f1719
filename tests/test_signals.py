"""The signal handler ``configure()`` installs: what it chains, leaves alone and puts back; edge cases in subprocesses.

The real servers are in ``test_deploys.py``; here, handlers in this process (SIGHUP
only, raised by the test itself) and small scripts that end by a signal.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from types import FrameType

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import dspy_otel
from conftest import env_without_settings
from dspy_otel import _signals

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")


@pytest.fixture
def sighup() -> Iterator[list[int]]:
    """An application handler on SIGHUP that records what it got; the handler before it is put back after."""
    got: list[int] = []

    def app_handler(signum: int, frame: FrameType | None) -> None:
        got.append(signum)

    before = signal.signal(signal.SIGHUP, app_handler)
    yield got
    dspy_otel.shutdown()
    signal.signal(signal.SIGHUP, before)


def test_the_app_handler_runs_and_shutdown_puts_it_back(sighup: list[int]) -> None:
    app_handler, real_signal = signal.getsignal(signal.SIGHUP), signal.signal
    provider = dspy_otel.configure(span_exporter=InMemorySpanExporter())
    assert signal.getsignal(signal.SIGHUP) is not app_handler
    signal.raise_signal(signal.SIGHUP)
    assert sighup == [signal.SIGHUP], "the application's handler got the signal, once"
    assert "signal_flushes" not in dspy_otel.stats(), "the application handles it: nothing is exported yet"
    with provider.get_tracer("t").start_as_current_span("still traced"):
        pass
    assert signal.signal is not real_signal, "armed: a default action put back would export first"
    dspy_otel.shutdown()
    assert signal.getsignal(signal.SIGHUP) is app_handler
    assert signal.signal is real_signal


def test_a_default_action_put_back_by_the_server_exports_before_it_happens(
    sighup: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = InMemorySpanExporter()
    died: list[tuple[int, int]] = []  # (signal, spans exported by then): the default action is recorded, not taken
    monkeypatch.setattr(_signals, "_die", lambda signum: died.append((signum, len(exporter.get_finished_spans()))))
    provider = dspy_otel.configure(span_exporter=exporter, bsp_schedule_delay_ms=600_000)
    with provider.get_tracer("t").start_as_current_span("request"):
        pass
    flushes = dspy_otel.stats().get("signal_flushes", 0)
    signal.raise_signal(signal.SIGHUP)  # the server's handler starts its graceful shutdown
    assert (sighup, exporter.get_finished_spans()) == ([signal.SIGHUP], ())
    signal.signal(signal.SIGHUP, signal.SIG_DFL)  # as uvicorn does once its graceful shutdown is over
    signal.raise_signal(signal.SIGHUP)
    assert died == [(signal.SIGHUP, 1)], "exported, then the default action"
    assert dspy_otel.stats()["signal_flushes"] == flushes + 1


def test_an_ignored_signal_stays_ignored_and_the_setting_turns_it_off(sighup: list[int]) -> None:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    dspy_otel.configure(span_exporter=InMemorySpanExporter())
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    dspy_otel.shutdown()
    terminate = signal.getsignal(signal.SIGTERM)
    dspy_otel.configure(span_exporter=InMemorySpanExporter(), flush_on_signals=False)
    assert signal.getsignal(signal.SIGTERM) is terminate


def test_outside_the_main_thread_one_line_says_so(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_signals._state, "said_not_main", False)
    terminate = signal.getsignal(signal.SIGTERM)

    def configure_twice() -> None:
        for _ in range(2):
            dspy_otel.configure(span_exporter=InMemorySpanExporter())
            assert signal.getsignal(signal.SIGTERM) is terminate
            dspy_otel.shutdown()

    thread = threading.Thread(target=configure_twice)
    thread.start()
    thread.join(60)
    lines = [r.getMessage() for r in caplog.records if "main thread" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "not when SIGTERM kills the process" in lines[0]


SCRIPT = """
import os, signal, sys, threading, time
import dspy_otel
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

class Hanging(SpanExporter):
    def export(self, spans):
        print("exporting", flush=True)
        threading.Event().wait()  # a collector that never answers
        return SpanExportResult.SUCCESS

plain = sys.argv[1] == "plain"
if not plain:
    exporter = Hanging() if sys.argv[1] in ("hang", "lock") else None
    provider = dspy_otel.configure(exporter="console", span_exporter=exporter, exit_timeout_ms=int(sys.argv[2]))
    with provider.get_tracer("t").start_as_current_span("work"):
        pass
    if sys.argv[1] == "lock":
        dspy_otel._setup._lock.acquire()  # the signal arrives while the main thread holds a lock shutdown needs
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


def start(*args: str) -> subprocess.Popen[str]:
    """The script above, started and waited for (bounded) until it is ready."""
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SCRIPT), *args],
        env={**env_without_settings(), "OTEL_BSP_SCHEDULE_DELAY": "600000"},  # export only when told to
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n", process.communicate(timeout=60)
    return process


def test_python_default_sigint_still_raises_keyboardinterrupt_and_atexit_exports() -> None:
    plain = start("plain")
    plain.send_signal(signal.SIGINT)
    _, plain_err = plain.communicate(timeout=60)
    traced = start("console", "5000")
    traced.send_signal(signal.SIGINT)
    out, err = traced.communicate(timeout=60)
    assert traced.returncode == plain.returncode
    assert "KeyboardInterrupt" in err
    assert "KeyboardInterrupt" in plain_err
    assert '"name": "work"' in out


def test_a_second_sigterm_while_exporting_ends_the_process_at_once() -> None:
    process = start("hang", "600000")
    process.send_signal(signal.SIGTERM)
    assert process.stdout is not None
    assert process.stdout.readline() == "exporting\n"
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGTERM
    assert time.monotonic() - started < 60, "well before the 10 min exit timeout"


def test_a_lock_held_by_the_interrupted_main_thread_does_not_hold_the_exit_up() -> None:
    process = start("lock", "1000")
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == -signal.SIGTERM
    assert "dspy-otel: export on SIGTERM did not end in 1.0 s; the rest is lost" in err

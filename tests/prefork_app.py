"""A pre-fork server in miniature, run as a subprocess by ``test_prefork.py`` (not a test module).

``python prefork_app.py API_BASE MODE WORKERS CALLS TAIL EXPORT``: the master
calls ``dspy_otel.configure()``, runs ``CALLS`` ``dspy.Predict`` calls, starts a
thread that keeps tracing (spans ``Busy`` > ``tick`` through the same provider,
batch processor and tail sampler) so spans are in flight in another thread at
every fork, forks ``WORKERS`` workers that each run ``CALLS`` calls, reaps them
within a deadline, and prints a JSON summary as its last line. The thread uses
the OpenTelemetry API, not DSPy: a thread inside DSPy at fork time can leave a
lock of DSPy (the lm15 engine's ``RLock``) or of pydantic (``functools.
cached_property``'s on Python 3.11) held in the child, which then hangs for
good; both were seen here, and neither is dspy-otel's to fix. A worker that
hangs anyway dumps its threads' stacks to stderr before its deadline. Every question names
its process (``master call 3``, ``worker-1 call 0``); content capture is on, so
each exported LM span says who made it. With ``TAIL=1`` the tail policy is
``errors`` and every other call fails.

``EXPORT`` is a directory (an exporter appends one JSON line per span to
``<dir>/<pid of the exporting process>.jsonl``) or ``otlp`` (the OTLP/HTTP
exporter, to ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``; the master exports once
before forking, so its workers inherit a pooled connection).

``MODE`` is how the workers are forked and how they leave:

- ``fork``: ``os.fork()``; the worker waits until the batch processor's thread
  (re-created in the child) has exported its spans, with no flush, then ``os._exit``;
- ``gunicorn``: ``os.fork()``; the worker leaves with ``sys.exit(0)``, so the
  interpreter's exit handlers (the provider's shutdown) flush;
- ``multiprocessing``: ``multiprocessing`` with the ``fork`` start method; the
  worker's target returns and ``multiprocessing`` leaves with ``os._exit``;
- ``multiprocessing-flush``: the same, and the target flushes the provider last.
"""

from __future__ import annotations

import faulthandler
import json
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dspy
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import dspy_otel

DEADLINE_S = 60.0


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """What the tests check of an exported span."""
    assert span.context is not None
    return {
        "name": span.name,
        "trace_id": format(span.context.trace_id, "032x"),
        "span_id": format(span.context.span_id, "016x"),
        "parent_id": format(span.parent.span_id, "016x") if span.parent is not None else None,
        "error": span.status.status_code.name == "ERROR",
        "content": str((span.attributes or {}).get("gen_ai.input.messages", "")),
    }


class JsonLinesExporter(SpanExporter):
    """Appends each span as a JSON line to ``<directory>/<pid>.jsonl``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self) -> Path:
        return self.directory / f"{os.getpid()}.jsonl"

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self.path().open("a", encoding="utf-8") as file:
            file.write("".join(json.dumps(span_record(s)) + "\n" for s in spans))
        return SpanExportResult.SUCCESS


def run_calls(who: str, calls: int, tail: bool) -> int:
    """Run ``calls`` Predict calls (every other one failing with ``tail``); return how many LM spans to expect."""
    predict = dspy.Predict("question -> answer")
    expected = 0
    for index in range(calls):
        fail = tail and index % 2 == 1
        try:
            predict(question=f"{who} call {index}{' FAIL' if fail else ''}")
        except Exception:
            if not fail:
                raise
        expected += fail or not tail
    return expected


def wait_until_exported(exporter: JsonLinesExporter, lm_spans: int) -> bool:
    """Wait (bounded) until this process's file holds ``lm_spans`` LM spans and as many Predict spans."""
    deadline = time.monotonic() + DEADLINE_S / 2
    while time.monotonic() < deadline:
        lines = exporter.path().read_text(encoding="utf-8").splitlines() if exporter.path().exists() else []
        if len(lines) >= 2 * lm_spans:
            return len(lines) == 2 * lm_spans
        time.sleep(0.05)
    return False


def worker(mode: str, who: str, calls: int, tail: bool, exporter: SpanExporter | None) -> None:
    """One worker's life, in the forked child."""
    faulthandler.dump_traceback_later(DEADLINE_S * 0.75, exit=True)  # a hung worker says where, then leaves
    if mode == "fork":
        code = 1
        try:
            assert isinstance(exporter, JsonLinesExporter)
            code = 0 if wait_until_exported(exporter, run_calls(who, calls, tail)) else 3
        finally:
            os._exit(code)
    run_calls(who, calls, tail)
    if mode == "multiprocessing-flush":
        provider = trace.get_tracer_provider()
        assert isinstance(provider, TracerProvider)
        provider.force_flush()


def wait_all(pids: list[int]) -> bool:
    """Reap every child; ``False`` when one failed or missed the deadline (it is killed then)."""
    deadline = time.monotonic() + DEADLINE_S
    ok, waiting = True, set(pids)
    while waiting:
        for pid in list(waiting):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                waiting.discard(pid)
                ok = ok and os.waitstatus_to_exitcode(status) == 0
        if waiting and time.monotonic() > deadline:
            for pid in waiting:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            print(f"workers {sorted(waiting)} missed the deadline", file=sys.stderr)
            return False
        time.sleep(0.02)
    return ok


def fork_workers(mode: str, workers: int, calls: int, tail: bool, exporter: SpanExporter | None) -> bool:
    """Fork the workers the way ``mode`` says; whether all of them exited 0 in time."""
    if mode.startswith("multiprocessing"):
        context = multiprocessing.get_context("fork")
        processes = [
            context.Process(target=worker, args=(mode, f"worker-{n}", calls, tail, exporter)) for n in range(workers)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join(DEADLINE_S)
        return all(p.exitcode == 0 for p in processes)
    pids = []
    for n in range(workers):
        pid = os.fork()
        if pid == 0:
            worker(mode, f"worker-{n}", calls, tail, exporter)
            sys.exit(0)  # gunicorn: SystemExit unwinds the worker and the interpreter's exit handlers run
        pids.append(pid)
    return wait_all(pids)


def main(argv: list[str]) -> int:
    api_base, mode, workers, calls, tail, export = argv[0], argv[1], int(argv[2]), int(argv[3]), argv[4] == "1", argv[5]
    settings: dict[str, Any] = {"capture_content": "SPAN_ONLY"}
    if tail:
        settings.update(tail_policies="errors", tail_decision_wait_ms=1000)
    exporter = None if export == "otlp" else JsonLinesExporter(Path(export))
    if exporter is None:
        provider = dspy_otel.configure(exporter="otlp", protocol="http/protobuf", **settings)
    else:
        provider = dspy_otel.configure(span_exporter=exporter, **settings)
    dspy.configure(lm=dspy.LM("openai/gpt-4o-mini", api_base=api_base, api_key="k", cache=False, num_retries=0))
    master = run_calls("master", calls, tail)
    if exporter is None:
        provider.force_flush()
    pending = exporter is not None and not exporter.path().exists()  # the master's spans are queued at fork time
    stop, busy_runs = threading.Event(), [0]

    def keep_calling() -> None:
        tracer = provider.get_tracer("prefork-app")
        while not stop.is_set():
            with tracer.start_as_current_span("Busy"), tracer.start_as_current_span("tick"):
                time.sleep(0.001)
            busy_runs[0] += 1

    busy = threading.Thread(target=keep_calling, daemon=True)
    busy.start()
    ok = fork_workers(mode, workers, calls, tail, exporter)
    stop.set()
    busy.join(DEADLINE_S)
    dspy_otel.shutdown()
    expected = {"master": master, **{f"worker-{n}": calls // 2 if tail else calls for n in range(workers)}}
    summary = {"ok": ok, "master_pid": os.getpid(), "pending_at_fork": pending, "lm_spans": expected}
    print(json.dumps({**summary, "busy_runs": 0 if tail else busy_runs[0]}))
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Pre-fork servers: a process configures dspy-otel, then forks workers; every span is exported exactly once.

Each case runs ``prefork_app.py`` (a master that configures, traces, and forks
three workers while another thread keeps tracing) in a subprocess and reads
back what was exported: to one JSON-lines file per exporting process, or over
OTLP/HTTP to a receiver on 127.0.0.1. SDK 1.45's ``BatchProcessor`` empties its
queue and starts a new worker thread in a forked child (``_at_fork_reinit``,
registered with ``os.register_at_fork``), and the tail sampler empties its
buffer; these tests check the outcome end to end rather than assume it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from conftest import env_without_settings
from dspy_otel._fake_lm import FakeOpenAIServer

APP = Path(__file__).with_name("prefork_app.py")
WORKERS, CALLS = 3, 4
LM_SPAN = "chat gpt-4o-mini"
BUSY_TOOL = "tick"
WHO = re.compile(r"(master|worker-\d+) call \d+")


class _ReceiverHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a collector does: forked workers inherit pooled connections
    server: OtlpReceiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path != "/v1/traces":  # other signals (metrics) get an empty success, as from a collector
            self._reply(b"")
            return
        request = ExportTraceServiceRequest.FromString(body)
        records = [
            {
                "name": span.name,
                "trace_id": span.trace_id.hex(),
                "span_id": span.span_id.hex(),
                "parent_id": span.parent_span_id.hex() or None,
                "error": span.status.code == Status.STATUS_CODE_ERROR,
                "content": next(
                    (a.value.string_value for a in span.attributes if a.key == "gen_ai.input.messages"), ""
                ),
            }
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]
        with self.server.lock:
            self.server.records.extend(records)
        self._reply(ExportTraceServiceResponse().SerializeToString())

    def _reply(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the receiver quiet."""


class OtlpReceiver(ThreadingHTTPServer):
    """An OTLP/HTTP (protobuf) trace receiver on 127.0.0.1 that keeps every span it is sent."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)
        self.lock = threading.Lock()
        self.records: list[dict[str, Any]] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1/traces"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def run_app(server: FakeOpenAIServer, mode: str, tail: bool, export: str, **env: str) -> dict[str, Any]:
    """Run the pre-fork app; return its summary (it must succeed within the time bound)."""
    args = [server.base_url, mode, str(WORKERS), str(CALLS), "1" if tail else "0", export]
    done = subprocess.run(
        [sys.executable, str(APP), *args],
        env={**env_without_settings(), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return summary


def read_files(directory: Path) -> dict[int, list[dict[str, Any]]]:
    """The spans each process exported, by pid."""
    return {
        int(path.stem): [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        for path in directory.glob("*.jsonl")
    }


def who(record: dict[str, Any]) -> str:
    found = WHO.search(record["content"])
    assert found, record
    return found.group(1)


def assert_exported_once(records: list[dict[str, Any]], summary: dict[str, Any], tail: bool) -> None:
    """Each span once; each run one whole trace (Predict -> LM, Busy -> tool); all of them there; tail: errors only."""
    assert summary["ok"]
    assert [i for i, n in Counter(r["span_id"] for r in records).items() if n > 1] == []
    by_id = {r["span_id"]: r for r in records}
    busy = [r for r in records if r["name"] == "Busy"]
    ticks = [r for r in records if r["name"] == BUSY_TOOL]
    assert len(busy) == len(ticks) == summary["busy_runs"], "every run of the master's thread, once"
    assert all(by_id[t["parent_id"]]["name"] == "Busy" for t in ticks)
    records = [r for r in records if r["name"] not in ("Busy", BUSY_TOOL)]
    assert {r["name"] for r in records} == {"Predict", LM_SPAN}
    lm_spans = [r for r in records if r["name"] == LM_SPAN]
    assert Counter(who(r) for r in lm_spans) == Counter(summary["lm_spans"])
    for lm_span in lm_spans:
        parent = by_id[lm_span["parent_id"]]
        assert (parent["name"], parent["trace_id"]) == ("Predict", lm_span["trace_id"])
    predicts = [r for r in records if r["name"] == "Predict"]
    assert all(p["parent_id"] is None for p in predicts)
    assert len(predicts) == len(lm_spans) == len({r["trace_id"] for r in records})
    assert len({r["trace_id"] for r in busy + ticks}) == len(busy)
    if tail:
        assert all(r["error"] for r in records), "the tail sampler keeps the failed calls only"


def assert_each_process_exported_its_own(files: dict[int, list[dict[str, Any]]], summary: dict[str, Any]) -> None:
    """One file per process; a file holds the spans of the process that wrote it, its Predict spans included."""
    owners = {}
    busy_runs = {pid: sum(r["name"] == "Busy" for r in records) for pid, records in files.items()}
    assert busy_runs[summary["master_pid"]] == sum(busy_runs.values()), "the master's thread ran in the master only"
    for pid, records in files.items():
        (owner,) = {who(r) for r in records if r["name"] == LM_SPAN}
        lm_parents = {r["parent_id"] for r in records if r["name"] == LM_SPAN}
        assert lm_parents == {r["span_id"] for r in records if r["name"] == "Predict"}
        owners[pid] = owner
    assert owners.pop(summary["master_pid"]) == "master"
    assert sorted(owners.values()) == [f"worker-{n}" for n in range(WORKERS)]


FILE_CASES = [
    pytest.param("fork", False, id="os.fork-no-flush"),
    pytest.param("fork", True, id="os.fork-no-flush-tail"),
    pytest.param("gunicorn", False, id="gunicorn-sys.exit"),
    pytest.param("gunicorn", True, id="gunicorn-sys.exit-tail"),
    pytest.param("multiprocessing-flush", False, id="multiprocessing-worker-flushes"),
    pytest.param("multiprocessing-flush", True, id="multiprocessing-worker-flushes-tail"),
]


@pytest.mark.parametrize(("mode", "tail"), FILE_CASES)
def test_every_worker_exports_its_spans_once(
    fake_server: FakeOpenAIServer, tmp_path: Path, mode: str, tail: bool
) -> None:
    summary = run_app(fake_server, mode, tail, str(tmp_path))
    assert summary["pending_at_fork"], "the master's spans were still queued when it forked"
    assert tail or summary["busy_runs"] > 0, "the master's thread was tracing across the forks"
    files = read_files(tmp_path)
    assert_exported_once([r for records in files.values() for r in records], summary, tail)
    assert_each_process_exported_its_own(files, summary)


def test_multiprocessing_workers_export_without_flushing(fake_server: FakeOpenAIServer, tmp_path: Path) -> None:
    summary = run_app(fake_server, "multiprocessing", False, str(tmp_path))
    assert_exported_once([r for records in read_files(tmp_path).values() for r in records], summary, False)


def test_gunicorn_workers_export_over_otlp_http_on_inherited_connections(
    fake_server: FakeOpenAIServer, receiver: OtlpReceiver
) -> None:
    summary = run_app(fake_server, "gunicorn", False, "otlp", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=receiver.endpoint)
    with receiver.lock:
        records = list(receiver.records)
    assert_exported_once(records, summary, False)

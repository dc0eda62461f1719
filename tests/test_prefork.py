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
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import env_without_settings
from dspy_otel._fake_lm import FakeOpenAIServer
from receivers import OtlpReceiver, otlp_receiver

APP = Path(__file__).with_name("prefork_app.py")
WORKERS, CALLS = 3, 4
LM_SPAN = "chat gpt-4o-mini"
BUSY_TOOL = "tick"
WHO = re.compile(r"(master|worker-\d+) call \d+")


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with otlp_receiver() as server:
        yield server


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

"""``dspy-otel inspect`` parsing and printing, on a response recorded from Jaeger 2.13's ``/api/v3/traces``.

The recorded file holds two traces of ``dspy.ChainOfThought`` run by dspy-otel with
content capture on: one that succeeded and one whose LM call failed (HTTP 500).
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from dspy_otel._inspect_command import add_inspect_parser, format_calls, run_inspect
from dspy_otel._jaeger import URL_ENV, iter_spans, lm_calls, query_url

RECORDED = Path(__file__).parent / "data" / "jaeger_api_v3_traces.json"
OK_TRACE = "85179458c930927abf07eadde67ffa42"
FAILED_TRACE = "5448ed28ad05d427f9559c4031d7d296"


@pytest.fixture
def payload() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(RECORDED.read_text())
    return data


def _lm_span(payload: dict[str, Any], trace_id: str) -> Any:
    return next(s for s in iter_spans(payload) if s["traceId"] == trace_id and s["kind"] == 3)


def test_lm_calls_picks_the_client_spans_oldest_first(payload: dict[str, Any]) -> None:
    assert len(list(iter_spans(payload))) == 6  # 2 traces x (ChainOfThought, Predict, chat)
    ok, failed = lm_calls(payload)
    assert (ok.record.trace_id, failed.record.trace_id) == (OK_TRACE, FAILED_TRACE)
    assert ok.start_ns < failed.start_ns
    assert ok.record.model == "openai/gpt-4o-mini"
    assert (ok.record.input_tokens, ok.record.output_tokens) == (187, 25)
    assert ok.record.error is None
    assert 0 < ok.record.latency_ms < 10_000
    assert [m["role"] for m in ok.record.messages or []] == ["system", "user"]
    assert ok.record.outputs is not None
    assert "42 xxx" in ok.record.outputs[0]
    assert failed.record.error == "LMServerError: [openai/gpt-4o-mini] the fake model failed on purpose"
    assert failed.record.outputs is None


def test_errors_only_keeps_failed_calls(payload: dict[str, Any]) -> None:
    (call,) = lm_calls(payload, errors_only=True)
    assert call.record.trace_id == FAILED_TRACE


def test_format_groups_by_trace_like_inspect_history(payload: dict[str, Any]) -> None:
    text = format_calls(lm_calls(payload))
    assert text.index(f"=== trace {OK_TRACE} (1 LM call) ===") < text.index(f"=== trace {FAILED_TRACE} (1 LM call) ===")
    assert "openai/gpt-4o-mini" in text
    assert "tokens in=187 out=25" in text
    assert "System message:\n\nYour input fields are:" in text
    assert "User message:\n\n[[ ## question ## ]]\nWhat is 6*7?" in text
    assert "Response:\n\n[[ ## reasoning ## ]]" in text
    assert "Error: LMServerError: [openai/gpt-4o-mini] the fake model failed on purpose" in text


def test_format_puts_calls_of_one_trace_together(payload: dict[str, Any]) -> None:
    second = copy.deepcopy(_lm_span(payload, OK_TRACE))
    second["startTimeUnixNano"] = str(int(second["startTimeUnixNano"]) + 10**12)  # after the failed trace
    payload["result"]["resourceSpans"][0]["scopeSpans"][0]["spans"].append(second)
    text = format_calls(lm_calls(payload))
    assert f"=== trace {OK_TRACE} (2 LM calls) ===" in text
    assert text.count("=== trace") == 2


def test_uncaptured_and_truncated_content(payload: dict[str, Any]) -> None:
    span = _lm_span(payload, OK_TRACE)
    span["attributes"] = [a for a in span["attributes"] if a["key"] != "gen_ai.output.messages"]
    for attribute in span["attributes"]:
        if attribute["key"] == "gen_ai.input.messages":
            attribute["value"] = {"stringValue": '[{"role": "user", "parts": [{"type": "text", "content": "cut…'}
    failed = _lm_span(payload, FAILED_TRACE)
    failed["attributes"] = [a for a in failed["attributes"] if not a["key"].startswith("gen_ai.input")]
    ok, bad = lm_calls(payload)
    assert ok.record.messages == [
        {
            "role": "(truncated)",
            "parts": [{"type": "text", "content": '[{"role": "user", "parts": [{"type": "text", "content": "cut…'}],
        }
    ]
    assert ok.record.outputs is None
    assert bad.record.messages is None
    assert "(content not captured" in format_calls([bad])


def test_query_url_sets_both_time_bounds() -> None:
    from datetime import datetime, timedelta, timezone

    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    url = query_url("http://jaeger:16686/", "my-app", timedelta(minutes=30), 100, now)
    parts = urlsplit(url)
    assert parts.path == "/api/v3/traces"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query == {
        "query.start_time_min": "2026-01-02T02:34:05+00:00",
        "query.start_time_max": "2026-01-02T03:04:05+00:00",
        "query.num_traces": "100",
        "query.service_name": "my-app",
    }
    assert "query.service_name" not in query_url("http://j", None, timedelta(hours=1), 5, now)


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="dspy-otel")
    add_inspect_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["inspect", *argv])


def test_parser_defaults_and_validation(capsys: pytest.CaptureFixture[str]) -> None:
    args = _parse()
    assert (args.service, args.last, args.errors, args.lookback.total_seconds()) == (None, 1, False, 3600)
    args = _parse("--service", "svc", "--last", "3", "--errors", "--lookback", "2d")
    assert (args.service, args.last, args.errors, args.lookback.days) == ("svc", 3, True, 2)
    for bad in (["--last", "0"], ["--last", "x"], ["--lookback", "5 minutes"]):
        with pytest.raises(SystemExit):
            _parse(*bad)
    assert "expected" in capsys.readouterr().err


class _Jaeger(BaseHTTPRequestHandler):
    """Answers every GET with the server's (status, body) and records the query."""

    server: _JaegerServer

    def do_GET(self) -> None:
        self.server.queries.append({k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()})
        self.server.paths.append(urlsplit(self.path).path)
        status, body = self.server.answer
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


class _JaegerServer(ThreadingHTTPServer):
    answer: tuple[int, bytes] = (200, b"{}")
    queries: list[dict[str, str]]
    paths: list[str]


@pytest.fixture
def fake_jaeger(monkeypatch: pytest.MonkeyPatch) -> Iterator[_JaegerServer]:
    server = _JaegerServer(("127.0.0.1", 0), _Jaeger)
    server.queries = []
    server.paths = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(URL_ENV, f"http://127.0.0.1:{server.server_address[1]}")
    yield server
    server.shutdown()
    server.server_close()


def test_run_inspect_prints_the_last_calls(fake_jaeger: _JaegerServer, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_jaeger.answer = (200, RECORDED.read_bytes())
    monkeypatch.setenv("OTEL_SERVICE_NAME", "shape-demo")
    out = io.StringIO()
    assert run_inspect(_parse("--last", "1"), out=out) == 0
    assert f"=== trace {FAILED_TRACE} (1 LM call) ===" in out.getvalue()
    assert OK_TRACE not in out.getvalue()
    (query,) = fake_jaeger.queries
    assert query["query.service_name"] == "shape-demo"
    assert {"query.start_time_min", "query.start_time_max"} <= query.keys()
    assert int(query["query.num_traces"]) >= 100


def test_run_inspect_treats_404_as_nothing_found(fake_jaeger: _JaegerServer) -> None:
    fake_jaeger.answer = (404, b'{"error":{"httpCode":404,"message":"No traces found"}}')
    out = io.StringIO()
    assert run_inspect(_parse("--errors", "--service", "svc"), out=out) == 0
    assert out.getvalue().startswith("No failed LM calls in Jaeger at http://127.0.0.1:")
    assert "for svc in the last 1h" in out.getvalue()


def test_run_inspect_reports_jaeger_errors(fake_jaeger: _JaegerServer, capsys: pytest.CaptureFixture[str]) -> None:
    fake_jaeger.answer = (500, b"storage exploded")
    assert run_inspect(_parse(), out=io.StringIO()) == 1
    assert "HTTP 500" in capsys.readouterr().err


def test_run_inspect_reports_unreachable_jaeger(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv(URL_ENV, f"http://127.0.0.1:{port}")
    assert run_inspect(_parse(), out=io.StringIO()) == 1
    err = capsys.readouterr().err
    assert err.startswith("dspy-otel inspect: no Jaeger answers at http://127.0.0.1:")
    assert "(make stack, or docker compose up -d) or point DSPY_OTEL_JAEGER_URL at yours" in err
    assert "/api/v3" not in err


def test_inspect_one_trace(fake_jaeger: _JaegerServer) -> None:
    fake_jaeger.answer = (200, RECORDED.read_bytes())
    out = io.StringIO()
    assert run_inspect(_parse("--trace", OK_TRACE.lstrip("0")), out=out) == 0
    assert fake_jaeger.paths == [f"/api/v3/traces/{OK_TRACE}"]
    assert "=== trace" in out.getvalue()
    with pytest.raises(SystemExit):
        _parse("--trace", "not-hex")


def test_a_jaeger_url_without_scheme_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(URL_ENV, "localhost:16686")
    assert run_inspect(_parse(), out=io.StringIO()) == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        "dspy-otel inspect: DSPY_OTEL_JAEGER_URL='localhost:16686' is not a URL: "
        "write it with its scheme, e.g. http://localhost:16686"
    )


def test_a_system_prompt_repeated_on_every_call_is_shown_once(payload: dict[str, Any]) -> None:
    second = copy.deepcopy(_lm_span(payload, OK_TRACE))
    second["startTimeUnixNano"] = str(int(second["startTimeUnixNano"]) + 1000)
    payload["result"]["resourceSpans"][0]["scopeSpans"][0]["spans"].append(second)
    (ok_block,) = [block for block in format_calls(lm_calls(payload)).split("=== trace") if OK_TRACE in block]
    assert ok_block.count("System message:\n\nYour input fields are:") == 1  # once per trace
    assert "System message:\n\n(the same as above)" in ok_block

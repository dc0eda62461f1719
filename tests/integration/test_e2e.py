"""The whole debug path: DSPy + dspy-otel → OTLP → collector (otel-collector.yaml) → Jaeger → ``dspy-otel inspect``.

Each run exports 60 plain traces, 3 with a failed LM call and 2 slow ones. The
collector keeps every error and every slow trace, whole, and about
``SAMPLE_PERCENT`` of the plain ones. With the collector keeping everything, the
requests of dspy-otel's encoder and of the SDK's give Jaeger the same trees.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from dspy_otel._inspect_command import add_inspect_parser, run_inspect
from dspy_otel._jaeger import URL_ENV, fetch_traces, query_url, span_attributes
from integration.processes import SLOW_S, Jaeger, RunDSPy, Sent, StartCollector, report, wait_for
from programs import other_instrumentations

pytestmark = pytest.mark.integration

PLAIN, FAILED, SLOW = 60, 3, 2
SAMPLE_PERCENT = 25
DECISION_WAIT_S = 2


def _tail_collector_env(jaeger: Jaeger, sample_percent: int = SAMPLE_PERCENT) -> dict[str, str]:
    return {
        "DSPY_OTEL_COLLECTOR_JAEGER_ENDPOINT": jaeger.otlp_grpc,
        "DSPY_OTEL_COLLECTOR_DECISION_WAIT": f"{DECISION_WAIT_S}s",
        "DSPY_OTEL_COLLECTOR_LATENCY_THRESHOLD_MS": str(int(SLOW_S * 1000 * 0.8)),
        "DSPY_OTEL_COLLECTOR_SAMPLE_PERCENT": str(sample_percent),
        "DSPY_OTEL_COLLECTOR_BATCH_TIMEOUT": "200ms",
    }


def _assert_whole(sent: Sent, stored: dict[str, dict[str, Mapping[str, Any]]], trace_id: str) -> None:
    assert trace_id in stored, f"trace {trace_id} did not reach Jaeger"
    assert set(stored[trace_id]) == set(sent.spans[trace_id]), f"trace {trace_id} arrived incomplete"


def _assert_failed_trace(stored: dict[str, Mapping[str, Any]]) -> None:
    by_name = {span["name"]: span for span in stored.values()}
    assert set(by_name) == {"ChainOfThought", "chat gpt-4o-mini"}
    lm, cot = by_name["chat gpt-4o-mini"], by_name["ChainOfThought"]
    assert lm["kind"] == 3  # CLIENT
    assert cot["kind"] == 1  # INTERNAL
    assert lm["parentSpanId"] == cot["spanId"]
    assert lm["status"]["code"] == 2  # ERROR
    attributes = span_attributes(lm)
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert attributes["error.type"] == "LMServerError"
    assert "FAIL" in attributes["gen_ai.input.messages"]


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_debug_path(
    protocol: str,
    jaeger: Jaeger,
    start_collector: StartCollector,
    run_dspy: RunDSPy,
    pytestconfig: pytest.Config,
) -> None:
    started = time.monotonic()
    collector = start_collector("otel-collector.yaml", **_tail_collector_env(jaeger))
    service = f"e2e-{protocol.replace('/', '-')}-{uuid.uuid4().hex[:8]}"
    sent = run_dspy(collector.otlp_endpoint(protocol), protocol, service, plain=PLAIN, failed=FAILED, slow=SLOW)
    exported = time.monotonic()

    kept = sent.failed + sent.slow
    waited = wait_for("error and slow traces in Jaeger", lambda: set(kept) <= set(jaeger.traces(service)))
    time.sleep(DECISION_WAIT_S + 1)  # plain traces were decided no later than the last ones
    stored = jaeger.traces(service)

    for trace_id in kept:
        _assert_whole(sent, stored, trace_id)
    for trace_id in sent.failed:
        _assert_failed_trace(stored[trace_id])
    for trace_id in sent.slow:
        (lm,) = (s for s in stored[trace_id].values() if s["kind"] == 3)
        duration_ms = (int(lm["endTimeUnixNano"]) - int(lm["startTimeUnixNano"])) / 1e6
        assert duration_ms >= SLOW_S * 1000
        assert span_attributes(lm)["gen_ai.usage.input_tokens"] > 0
    assert set(stored) <= set(sent.spans), "Jaeger holds traces this run did not send"
    plain_kept = [t for t in sent.plain if t in stored]
    for trace_id in plain_kept:
        _assert_whole(sent, stored, trace_id)
    # Binomial(60, 0.25): mean 15, sd 3.4; these bounds are 3.5 sd away.
    assert 3 <= len(plain_kept) <= 27, f"{len(plain_kept)} of {PLAIN} plain traces kept at {SAMPLE_PERCENT} %"
    report(
        pytestconfig,
        f"[integration] e2e {protocol}: {len(sent.spans)} traces exported in {exported - started:.1f} s, "
        f"in Jaeger {waited:.1f} s later; kept {len(sent.failed)} error, {len(sent.slow)} slow and "
        f"{len(plain_kept)}/{PLAIN} plain traces; {time.monotonic() - started:.1f} s in all",
    )

    errors = _inspect(jaeger, "--service", service, "--errors", "--last", str(FAILED))
    assert re.findall(r"=== trace (\w+) \(1 LM call\) ===", errors) == sent.failed
    assert errors.count("Error: LMServerError: [openai/gpt-4o-mini] the fake model failed on purpose") == FAILED
    newest = _inspect(jaeger, "--service", service, "--last", "1")
    assert re.findall(r"=== trace (\w+) ", newest) == [sent.slow[-1]]
    assert f"SLOW {SLOW - 1}" in newest  # the captured question
    (latency,) = re.findall(r"openai/gpt-4o-mini  ([\d.]+) ms  tokens in=\d+ out=\d+", newest)
    assert float(latency) >= SLOW_S * 1000


def _inspect(jaeger: Jaeger, *argv: str) -> str:
    """``dspy-otel inspect ARGV`` against ``jaeger``, through the subcommand's own parser."""
    parser = argparse.ArgumentParser(prog="dspy-otel")
    add_inspect_parser(parser.add_subparsers())
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(URL_ENV, jaeger.query_url)
        assert run_inspect(parser.parse_args(["inspect", *argv]), out=out) == 0
    return out.getvalue()


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_jaeger_shows_the_same_trees_with_either_encoder(
    protocol: str, jaeger: Jaeger, start_collector: StartCollector, run_dspy: RunDSPy
) -> None:
    collector = start_collector("otel-collector.yaml", **_tail_collector_env(jaeger, sample_percent=100))
    trees = {}
    for encoder in ("sdk", "dspy_otel"):
        service = f"encoder-{encoder}-{protocol.replace('/', '-')}-{uuid.uuid4().hex[:8]}"
        sent = run_dspy(
            collector.otlp_endpoint(protocol),
            protocol,
            service,
            plain=2,
            failed=1,
            also=other_instrumentations,
            otlp_encoder=encoder,
            otlp_compression="gzip",
        )
        expected = {trace_id: set(spans) for trace_id, spans in sent.spans.items()}
        wait_for(
            f"every span exported with the {encoder} encoder in Jaeger",
            lambda: {t: set(spans) for t, spans in jaeger.traces(service).items()} == expected,  # noqa: B023
        )
        trees[encoder] = _trees(jaeger, service)
    assert trees["dspy_otel"] == trees["sdk"]
    (web,) = [tree for tree in trees["dspy_otel"] if any(span["name"] == "GET /items/{item_id}" for span in tree)]
    server = next(span for span in web if span["name"] == "GET /items/{item_id}")
    assert server["scope"] == ["opentelemetry.instrumentation.fastapi", "0.51b0"]
    assert server["attributes"]["http.response.status_code"] == 500
    assert server["attributes"]["http.server.request.duration"] == 0.125
    assert server["attributes"]["app.note"] == "naïve café ✓ \U0001f600"
    assert server["attributes"]["app.shard_ids"] is not None
    ((event_name, event_attributes),) = server["events"]
    assert event_name == "exception"
    assert event_attributes["exception.type"] == "ValueError"
    assert server["links"] == [["warm-up", {"app.link.reason": "follows", "app.link.rank": 1}]]


# Differs from one run to the next whatever the encoder: the fake LM numbers its responses.
_PER_RUN = {"gen_ai.response.id"}


def _trees(jaeger: Jaeger, service: str) -> list[list[dict[str, Any]]]:
    """Each trace of ``service`` in Jaeger without what differs between runs (IDs, times), in a stable order.

    A span is its path of names from the root, kind, status, scope, resource (without ``service.name``),
    attributes, events and links (a link by the name of the span it points to).
    """
    payload = fetch_traces(
        query_url(jaeger.query_url, service, timedelta(minutes=10), 1000, datetime.now(timezone.utc))
    )
    found = [
        (resource_spans.get("resource", {}), scope_spans.get("scope", {}), span)
        for resource_spans in payload.get("result", {}).get("resourceSpans", [])
        for scope_spans in resource_spans.get("scopeSpans", [])
        for span in scope_spans.get("spans", [])
    ]
    by_id = {span["spanId"]: span for _, _, span in found}

    def path(span: Mapping[str, Any]) -> str:
        parent = by_id.get(span.get("parentSpanId", ""))
        return span["name"] if parent is None else f"{path(parent)} > {span['name']}"

    traces: dict[str, list[dict[str, Any]]] = {}
    for resource, scope, span in found:
        traces.setdefault(span["traceId"], []).append(
            {
                "name": span["name"],
                "path": path(span),
                "kind": span.get("kind"),
                "status": span.get("status", {}),
                "scope": [scope.get("name"), scope.get("version")],
                "resource": {k: v for k, v in span_attributes(resource).items() if k != "service.name"},
                "attributes": {k: v for k, v in span_attributes(span).items() if k not in _PER_RUN},
                "events": [[e["name"], span_attributes(e)] for e in span.get("events", [])],
                "links": [[by_id[link["spanId"]]["name"], span_attributes(link)] for link in span.get("links", [])],
            }
        )
    return sorted(
        (sorted(spans, key=lambda s: json.dumps(s, sort_keys=True)) for spans in traces.values()),
        key=lambda spans: json.dumps(spans, sort_keys=True),
    )

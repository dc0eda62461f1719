"""Scale-out: loadbalancer.yaml in front of two collectors running otel-collector.yaml, then Jaeger.

The load balancer routes by trace ID, so every span of a trace must reach the
same tail-sampling collector. Each collector prints the spans it keeps through
its ``debug`` exporter (verbosity ``detailed``); with the probabilistic share at
100 % it keeps every trace, so its output shows which collector got which span.
The metrics need no such routing: the load balancer passes them all to the one
collector named by ``DSPY_OTEL_LB_METRICS_BACKEND``, whose Prometheus endpoint
then counts every LM request.
"""

from __future__ import annotations

import re
import time
import uuid

import pytest

from dspy_otel._fake_lm import FakeOpenAIServer
from integration.processes import Jaeger, RunDSPy, StartCollector, report, wait_for
from integration.test_metrics_pipeline import DURATION, scrape, total

pytestmark = pytest.mark.integration

TRACES, FAILED = 40, 4
_DEBUG_SPAN = re.compile(r"Trace ID\s*: ([0-9a-f]{32})\s+Parent ID\s*: [0-9a-f]*\s+ID\s*: ([0-9a-f]{16})")


def test_spans_of_a_trace_reach_one_tail_collector(
    jaeger: Jaeger,
    start_collector: StartCollector,
    run_dspy: RunDSPy,
    fake_lm: FakeOpenAIServer,
    pytestconfig: pytest.Config,
) -> None:
    started = time.monotonic()
    tail_env = {
        "DSPY_OTEL_COLLECTOR_JAEGER_ENDPOINT": jaeger.otlp_grpc,
        "DSPY_OTEL_COLLECTOR_DECISION_WAIT": "2s",
        "DSPY_OTEL_COLLECTOR_SAMPLE_PERCENT": "100",
        "DSPY_OTEL_COLLECTOR_BATCH_TIMEOUT": "200ms",
        "DSPY_OTEL_COLLECTOR_DEBUG_VERBOSITY": "detailed",
    }
    tails = [start_collector("otel-collector.yaml", name=f"tail-{i}", **tail_env) for i in (1, 2)]
    backends = ", ".join(tail.grpc_endpoint for tail in tails)
    balancer = start_collector(
        "loadbalancer.yaml",
        name="loadbalancer",
        DSPY_OTEL_LB_BACKENDS=f"[{backends}]",
        DSPY_OTEL_LB_METRICS_BACKEND=tails[0].grpc_endpoint,
    )
    service = f"two-tier-{uuid.uuid4().hex[:8]}"
    sent = run_dspy(balancer.otlp_endpoint("grpc"), "grpc", service, plain=TRACES - FAILED, failed=FAILED)

    def received() -> list[dict[str, set[str]]]:
        """For each tail collector: trace ID -> span IDs it printed."""
        per_tail: list[dict[str, set[str]]] = []
        for tail in tails:
            traces: dict[str, set[str]] = {}
            for trace_id, span_id in _DEBUG_SPAN.findall(tail.process.output()):
                traces.setdefault(trace_id, set()).add(span_id)
            per_tail.append(traces)
        return per_tail

    def all_printed() -> bool:
        return sum(len(spans) for tail in received() for spans in tail.values()) >= sum(map(len, sent.spans.values()))

    waited = wait_for("every span in the tail collectors' debug output", all_printed)
    per_tail = received()
    for trace_id, span_ids in sent.spans.items():
        holders = [i for i, traces in enumerate(per_tail) if trace_id in traces]
        assert len(holders) == 1, f"trace {trace_id} was split across tail collectors {holders}"
        assert per_tail[holders[0]][trace_id] == set(span_ids)
    assert all(per_tail), f"one tail collector got no trace: {[len(t) for t in per_tail]}"

    wait_for("error traces in Jaeger", lambda: set(sent.failed) <= set(jaeger.traces(service)))
    stored = jaeger.traces(service)
    for trace_id in sent.failed:
        assert set(stored[trace_id]) == set(sent.spans[trace_id])
        assert any(span["status"].get("code") == 2 for span in stored[trace_id].values())

    def durations(url: str) -> float:
        return total(scrape(url), f"{DURATION}_count", job=service)

    wait_for("every LM request in the metrics backend", lambda: durations(tails[0].prometheus_url) >= fake_lm.requests)
    assert durations(tails[0].prometheus_url) == fake_lm.requests  # the fake LM served this test only
    assert durations(tails[1].prometheus_url) == 0
    report(
        pytestconfig,
        f"[integration] two-tier: {len(sent.spans)} traces split {[len(t) for t in per_tail]} between the tail "
        f"collectors, printed {waited:.1f} s after export; {time.monotonic() - started:.1f} s in all",
    )

"""Metrics end to end: dspy-otel → OTLP → collector (metrics pipeline) → its Prometheus exporter's ``/metrics``.

A separate Python process (this module run with ``-m``, configured only from
the environment, exporting every ``METRIC_INTERVAL_MS``) starts its own fake LM
server, makes ``CALLS`` successful ``dspy.Predict`` calls and ``FAILED`` failing
ones, shuts dspy-otel down (which flushes the metrics) and prints what the fake
server billed. The collector's Prometheus endpoint must then serve exactly those
figures: token sums per ``gen_ai_token_type`` equal to the billed tokens, one
token-usage observation per type and successful call, one duration observation
per LM request, with the request attributes as labels. Metrics are not sampled,
so this holds for every call, whatever the tail sampler keeps.

Through the load-balancing tier (``loadbalancer.yaml``) the metrics pass
unchanged to the one backend named by ``DSPY_OTEL_LB_METRICS_BACKEND``.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from integration.processes import Collector, Jaeger, StartCollector, report, run_program

pytestmark = pytest.mark.integration

CALLS, FAILED = 7, 1
METRIC_INTERVAL_MS = 500
ARRIVAL_TIMEOUT_S = 30.0
MODEL = "gpt-4o-mini"

TOKENS = "gen_ai_client_token_usage"  # unit {token}: annotations in braces add no suffix
DURATION = "gen_ai_client_operation_duration_seconds"  # unit s: the exporter appends _seconds
CALLS_TOTAL = "dspy_lm_calls_total"  # a counter: the exporter appends _total; unit {call} adds nothing

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)(?:\s+\d+)?$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Sample:
    """One line of the Prometheus text format."""

    name: str
    labels: Mapping[str, str]
    value: float


def scrape(url: str) -> list[Sample]:
    """Every sample a Prometheus endpoint serves (comments skipped)."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match is not None, f"not a Prometheus sample: {line!r}"
        labels = dict(_LABEL.findall(match["labels"] or ""))
        samples.append(Sample(match["name"], labels, float(match["value"])))
    return samples


def total(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels``."""
    return sum(s.value for s in samples if s.name == name and labels.items() <= s.labels.items())


@dataclass(frozen=True)
class Made:
    """What the program did, as its fake LM server counted it.

    Attributes:
        billed: Input and output tokens billed by the fake server.
        succeeded: LM requests answered with a completion (each billed once).
        requests: Every LM request, failed ones included.
        server_port: The fake server's port (the ``server_port`` label).
    """

    billed: tuple[int, int]
    succeeded: int
    requests: int
    server_port: int


def _run_program(endpoint: str, protocol: str, service: str, cwd: Path) -> Made:
    """Run :func:`main` in a fresh process configured only from the environment."""
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_SERVICE_NAME": service,
        "OTEL_METRIC_EXPORT_INTERVAL": str(METRIC_INTERVAL_MS),
    }
    printed = run_program("integration.test_metrics_pipeline", cwd, env)
    return Made(tuple(printed["billed"]), printed["succeeded"], printed["requests"], printed["server_port"])


def _wait_for_metrics(collector: Collector, service: str, made: Made) -> tuple[list[Sample], float]:
    """Scrape until every LM request is counted in the duration histogram (or fail, showing what was served)."""
    started = time.monotonic()
    samples: list[Sample] = []
    while time.monotonic() - started < ARRIVAL_TIMEOUT_S:
        samples = scrape(collector.prometheus_url)
        if total(samples, f"{DURATION}_count", job=service) >= made.requests and any(
            s.name == f"{TOKENS}_count" for s in samples
        ):
            return samples, time.monotonic() - started
        time.sleep(0.5)
    served = "\n".join(f"{s.name}{dict(s.labels)} {s.value}" for s in samples if s.name.startswith(("gen_ai", "dspy")))
    pytest.fail(f"the metrics did not reach {collector.prometheus_url} within {ARRIVAL_TIMEOUT_S:.0f} s:\n{served}")


@pytest.mark.parametrize(
    ("topology", "protocol"),
    [("direct", "grpc"), ("direct", "http/protobuf"), ("load_balancer", "grpc")],
)
def test_prometheus_serves_the_billed_tokens_and_every_call(
    topology: str,
    protocol: str,
    jaeger: Jaeger,
    start_collector: StartCollector,
    tmp_path: Path,
    pytestconfig: pytest.Config,
) -> None:
    started = time.monotonic()
    backend = start_collector(
        "otel-collector.yaml",
        name="tail",
        DSPY_OTEL_COLLECTOR_JAEGER_ENDPOINT=jaeger.otlp_grpc,
        DSPY_OTEL_COLLECTOR_BATCH_TIMEOUT="200ms",
        DSPY_OTEL_COLLECTOR_DECISION_WAIT="1s",
    )
    entry = backend
    if topology == "load_balancer":
        entry = start_collector(
            "loadbalancer.yaml",
            name="loadbalancer",
            DSPY_OTEL_LB_BACKENDS=f"[{backend.grpc_endpoint}]",
            DSPY_OTEL_LB_METRICS_BACKEND=backend.grpc_endpoint,
        )
    service = f"metrics-{topology}-{uuid.uuid4().hex[:8]}"
    made = _run_program(entry.otlp_endpoint(protocol), protocol, service, tmp_path)
    assert made.succeeded == CALLS
    assert made.requests >= CALLS + FAILED  # DSPy 3.4.1 sends one request per failing call; counted, not assumed
    samples, waited = _wait_for_metrics(backend, service, made)

    lm_labels = {
        "job": service,  # the resource's service.name
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": "openai",
        "gen_ai_request_model": MODEL,
        "server_address": "127.0.0.1",
        "server_port": str(made.server_port),
    }
    billed = dict(zip(("input", "output"), made.billed, strict=True))
    for token_type, tokens in billed.items():
        (series,) = (s for s in samples if s.name == f"{TOKENS}_sum" and s.labels["gen_ai_token_type"] == token_type)
        assert lm_labels.items() <= series.labels.items(), series.labels
        assert series.labels["gen_ai_response_model"].startswith(MODEL)
        assert series.value == tokens, f"{token_type}: {series.value} tokens served, {tokens} billed"
        assert total(samples, f"{TOKENS}_count", gen_ai_token_type=token_type) == CALLS
        assert total(samples, f"{TOKENS}_bucket", gen_ai_token_type=token_type, le="+Inf") == CALLS
    # Failed requests bill nothing and record no token usage, only a duration with error_type.
    assert {s.labels["gen_ai_token_type"] for s in samples if s.name == f"{TOKENS}_count"} == {"input", "output"}

    (ok,) = (s for s in samples if s.name == f"{DURATION}_count" and "error_type" not in s.labels)
    assert lm_labels.items() <= ok.labels.items(), ok.labels
    assert ok.value == CALLS
    failed = [s for s in samples if s.name == f"{DURATION}_count" and "error_type" in s.labels]
    assert {s.labels["error_type"] for s in failed} == {"LMServerError"}
    assert sum(s.value for s in failed) == made.requests - made.succeeded
    assert total(samples, f"{DURATION}_sum", job=service) > 0
    assert total(samples, CALLS_TOTAL, job=service) == made.requests
    assert total(samples, "dspy_module_duration_seconds_count", job=service, dspy_module_class="Predict") == (
        CALLS + FAILED
    )
    assert any(s.name == "target_info" and s.labels.get("job") == service for s in samples)
    report(
        pytestconfig,
        f"[integration] metrics {topology} {protocol}: {made.requests} LM requests, {made.billed} tokens billed, "
        f"on /metrics {waited:.1f} s after the program ended; {time.monotonic() - started:.1f} s in all",
    )


def main() -> None:
    """The program: ``CALLS`` successful and ``FAILED`` failing Predict calls, then print what was billed."""
    import dspy

    import dspy_otel
    from dspy_otel._fake_lm import FakeOpenAIServer

    dspy_otel.configure()
    program = dspy.Predict("question -> answer")
    with FakeOpenAIServer() as server:
        lm = dspy.LM(f"openai/{MODEL}", api_base=server.base_url, api_key="x", cache=False, num_retries=0)
        with dspy.context(lm=lm):
            for index in range(CALLS):
                program(question=f"What is {index}?")
            succeeded = server.requests
            for index in range(FAILED):
                try:
                    program(question=f"FAIL {index}")
                except Exception as exc:
                    if "the fake model failed on purpose" not in str(exc):
                        raise
                else:
                    raise AssertionError("the FAIL question did not fail")
        dspy_otel.shutdown()  # flushes the spans and the last metrics
        port = int(server.base_url.rsplit(":", 1)[1].split("/", 1)[0])
        result: dict[str, Any] = {
            "billed": list(server.billed_tokens),
            "succeeded": succeeded,
            "requests": server.requests,
            "server_port": port,
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

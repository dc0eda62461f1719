"""The direct OTLP encoder on real traces: DSPy programs traced by dspy-otel, and other instrumentations' spans."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry import context, trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from conftest import Traced
from span_strategies import assert_same_request

pytestmark = pytest.mark.usefixtures("lm")

PROFILES: list[dict[str, Any]] = [
    {},  # production: no content
    {"profile": "development", "capture_content": "SPAN_AND_EVENT", "semconv": "genai,openinference"},
    {"spans": "compact"},
]


def weather(city: str) -> str:
    """The weather in ``city``."""
    return f"Sunny in {city}"


def run_programs() -> None:
    import dspy

    dspy.ChainOfThought("question -> answer")(question="What is 6 x 7?")
    with pytest.raises(dspy.utils.exceptions.AdapterParseError):  # the fake server has no float: an error span
        dspy.Predict("question -> answer, confidence: float")(question="Sure?")
    dspy.ReAct("question -> answer", tools=[weather])(question="Weather in Paris?")


@pytest.mark.parametrize("overrides", PROFILES, ids=["production", "development-content", "compact"])
def test_dspy_traces_decode_to_the_sdk_message(traced: Callable[..., Traced], overrides: dict[str, Any]) -> None:
    t = traced(**overrides)
    run_programs()
    spans = t.spans()
    names = {span.name for span in spans}
    assert {"invoke_agent ReAct", "chat gpt-4o-mini"} <= names
    ours = assert_same_request(spans)
    assert assert_same_request(spans) == ours  # again, from the caches
    decoded = ExportTraceServiceRequest.FromString(ours)
    assert sum(len(scope.spans) for rs in decoded.resource_spans for scope in rs.scope_spans) == len(spans)


def other_instrumentation_spans() -> list[ReadableSpan]:
    """Spans as an HTTP server and client instrumentation make them: their own provider, resource and scope."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "web", "deployment.environment": "test"}, "https://schema/1.26.0"),
        span_limits=SpanLimits(max_span_attributes=6, max_events=2, max_links=1, max_event_attributes=3),
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    server = provider.get_tracer("opentelemetry.instrumentation.fastapi", "0.51b0", "https://schema/1.11.0", {"a": 1})
    client = provider.get_tracer("opentelemetry.instrumentation.httpx", "0.51b0")
    headers = {
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "tracestate": "congo=t61,rojo=00f",
    }
    token = context.attach(TraceContextTextMapPropagator().extract(headers))  # a remote parent with a trace state
    try:
        with server.start_as_current_span("GET /items/{id}", kind=SpanKind.SERVER) as request:
            request.set_attributes({"http.request.method": "GET", "url.path": "/items/7", "http.route": "/items/{id}"})
            request.set_attributes({"server.port": 8000, "http.response.status_code": 500, "user_agent.original": "x"})
            request.set_attribute("http.request.header.accept", ["text/html", "application/json"])
            linked = trace.get_current_span().get_span_context()
            with client.start_as_current_span("GET", kind=SpanKind.CLIENT, links=[Link(linked, {"why": "retry"})]) as c:
                c.set_attribute("http.response.status_code", 503)
                c.add_event("retry", {"attempt": 2, "delay_s": 0.5})
            try:
                raise ValueError("boom ✨")
            except ValueError as error:
                request.record_exception(error)
                request.set_status(StatusCode.ERROR, "boom")
            for index in range(3):
                request.add_event(f"chunk {index}", {"i": index, "flags": [True, False], "ratio": index / 3})
    finally:
        context.detach(token)
    provider.shutdown()
    return list(exporter.get_finished_spans())


def test_other_instrumentations_spans_decode_to_the_sdk_message() -> None:
    spans = other_instrumentation_spans()
    request = next(span for span in spans if span.kind == SpanKind.SERVER)
    assert request.parent is not None
    assert request.parent.is_remote
    assert (request.dropped_attributes, request.dropped_events) == (1, 2)
    assert_same_request(spans)


def test_a_batch_mixing_dspy_and_other_instrumentations(traced: Callable[..., Traced]) -> None:
    t = traced()
    run_programs()
    first, second = other_instrumentation_spans(), other_instrumentation_spans()
    assert first[0].resource is not second[0].resource
    decoded = ExportTraceServiceRequest.FromString(assert_same_request([*first, *t.spans(), *second]))
    web, _ = decoded.resource_spans  # the two equal "web" resources are one group, first
    assert [scope.scope.name for scope in web.scope_spans] == [
        "opentelemetry.instrumentation.httpx",
        "opentelemetry.instrumentation.fastapi",
    ]
    assert sum(len(scope.spans) for scope in web.scope_spans) == len(first) + len(second)
    assert web.schema_url == "https://schema/1.26.0"


def test_fastapi_and_httpx_spans_in_the_same_process_decode_to_the_sdk_message(
    traced: Callable[..., Traced], fake_server: Any
) -> None:
    """A FastAPI endpoint running a DSPy program and an httpx call, every library instrumented for real."""
    import dspy
    import httpx
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    t = traced()
    app = FastAPI()

    @app.get("/ask")
    def ask(question: str) -> dict[str, str]:
        with httpx.Client() as client:  # a call of the app's own: an httpx client span
            client.get(f"{fake_server.base_url}/models")
        return {"answer": dspy.ChainOfThought("question -> answer")(question=question).answer}

    FastAPIInstrumentor.instrument_app(app, tracer_provider=t.provider)
    HTTPXClientInstrumentor().instrument(tracer_provider=t.provider)
    try:
        with TestClient(app) as client:
            assert client.get("/ask", params={"question": "6 x 7?"}).status_code == 200
            assert client.get("/missing").status_code == 404
    finally:
        HTTPXClientInstrumentor().uninstrument()
        FastAPIInstrumentor.uninstrument_app(app)
    spans = t.spans()
    by_scope: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        assert span.instrumentation_scope is not None
        by_scope.setdefault(span.instrumentation_scope.name, []).append(span)
    assert {"opentelemetry.instrumentation.fastapi", "opentelemetry.instrumentation.httpx"} <= set(by_scope)
    request = next(s for s in spans if s.kind == SpanKind.SERVER and s.name == "GET /ask")
    module = next(s for s in spans if s.name == "ChainOfThought")
    assert module.parent is not None
    assert module.parent.span_id == request.context.span_id  # DSPy's spans under the request's
    decoded = ExportTraceServiceRequest.FromString(assert_same_request(spans))
    assert sum(len(scope.spans) for rs in decoded.resource_spans for scope in rs.scope_spans) == len(spans)

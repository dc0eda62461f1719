"""The OTLP span exporters send dspy-otel's encoding, or the SDK's: the same request reaches the receiver."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any

import dspy
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as SdkGrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as SdkHttpExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import dspy_otel
from conftest import Traced
from dspy_otel import _setup, encoding
from dspy_otel.config import resolve
from dspy_otel.export import encoded, encoded_grpc, encoded_http
from dspy_otel.export.encoded_grpc import EncodedGrpcSpanExporter
from dspy_otel.export.encoded_http import EncodedHttpSpanExporter
from dspy_otel.export.otlp import build_exporters
from metric_points import points, total
from programs import other_instrumentations
from receivers import TLS_CERT, Received, grpc_receiver, http_receiver

PROTOCOLS = ["grpc", "http/protobuf"]
OURS = {"grpc": EncodedGrpcSpanExporter, "http/protobuf": EncodedHttpSpanExporter}
STOCK = {"grpc": SdkGrpcExporter, "http/protobuf": SdkHttpExporter}


def receiver(protocol: str) -> AbstractContextManager[tuple[str, Received]]:
    return grpc_receiver() if protocol == "grpc" else http_receiver()


@pytest.fixture
def spans(traced: Callable[..., Traced], lm: Any) -> Sequence[ReadableSpan]:
    """A ChainOfThought's spans (a failed call too), then a web framework's trace linked to them."""
    t = traced(capture_content="SPAN_AND_EVENT")
    program = dspy.ChainOfThought("question -> answer")
    program(question="What is the capital of France?")
    with pytest.raises(dspy.LMServerError):
        program(question="please FAIL")
    dspy_lm = t.named("chat gpt-4o-mini")[0]
    other_instrumentations(t.provider, link_to=dspy_lm.context)
    found = t.spans()
    assert len({s.instrumentation_scope.name for s in found if s.instrumentation_scope}) == 3
    return found


@pytest.fixture
def encoder_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each batch dspy-otel's encoder is called on."""
    calls: list[int] = []
    original = encoding.encode_spans

    def spy(batch: Sequence[ReadableSpan]) -> bytes:
        calls.append(len(batch))
        return original(batch)

    monkeypatch.setattr(encoding, "encode_spans", spy)
    return calls


@pytest.fixture
def fallbacks() -> Iterator[Callable[[], int]]:
    """How many spans went through the SDK's encoder after dspy-otel's failed, since the test started."""
    before = dspy_otel.stats().get("export_spans_encoder_fallback", 0)
    yield lambda: dspy_otel.stats().get("export_spans_encoder_fallback", 0) - before
    encoded._named.clear()


def export_through(
    protocol: str, endpoint: str, batches: Sequence[Sequence[ReadableSpan]], **overrides: Any
) -> SpanExporter:
    """Build the exporter dspy-otel builds for these settings and export each batch through it."""
    settings = resolve({"protocol": protocol, "otlp_endpoint": endpoint, **overrides}, {})
    (exporter,) = build_exporters(settings, {})
    try:
        for batch in batches:
            assert exporter.export(batch) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    return exporter


def received_request(received: Received) -> ExportTraceServiceRequest:
    (request,) = received.requests
    return request


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("compression", ["none", "gzip", "deflate"])
def test_both_encoders_deliver_the_sdk_request(
    protocol: str, compression: str, spans: Sequence[ReadableSpan], encoder_calls: list[int]
) -> None:
    expected = sdk_encode_spans(spans)
    for encoder, exporter_class, calls in (("dspy_otel", OURS, [len(spans)]), ("sdk", STOCK, [])):
        encoder_calls.clear()
        with receiver(protocol) as (endpoint, received):
            exporter = export_through(protocol, endpoint, [spans], otlp_encoder=encoder, otlp_compression=compression)
        assert type(exporter) is exporter_class[protocol]
        assert encoder_calls == calls, f"{encoder}: dspy-otel's encoder called on {encoder_calls}"
        assert received_request(received) == expected, f"{encoder} over {protocol} ({compression})"
        if protocol == "http/protobuf" and compression != "none":
            assert f"Content-Encoding: {compression}".encode() in received.bodies[0]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_batch_the_encoder_fails_on_goes_through_the_sdk_encoder_counted_and_named_once(
    protocol: str,
    spans: Sequence[ReadableSpan],
    fallbacks: Callable[[], int],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    errors = iter([ValueError("bad span 7"), ValueError("bad span 7"), KeyError("scope")])

    def broken(batch: Sequence[ReadableSpan]) -> bytes:
        raise next(errors)

    monkeypatch.setattr(encoding, "encode_spans", broken)
    with receiver(protocol) as (endpoint, received), caplog.at_level(logging.WARNING, logger="dspy_otel"):
        export_through(protocol, endpoint, [spans, spans[:2], spans[2:]])
    assert received.requests == [sdk_encode_spans(batch) for batch in (spans, spans[:2], spans[2:])]
    assert fallbacks() == 2 * len(spans)
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert lines == [
        f"dspy-otel: the OTLP encoder failed on a batch of {n} spans ({error}); the SDK's encoder sent it "
        "(counted in export_spans_encoder_fallback); please report this"
        for n, error in ((len(spans), "ValueError: bad span 7"), (len(spans) - 2, "KeyError: 'scope'"))
    ]


def test_a_retried_grpc_batch_is_encoded_once_and_sent_again_after_reconnecting(
    spans: Sequence[ReadableSpan],
    fallbacks: Callable[[], int],
    encoder_calls: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reconnections = []
    original: Any = EncodedGrpcSpanExporter._initialize_channel_and_stub

    def reconnect(self: EncodedGrpcSpanExporter) -> None:
        reconnections.append(self._stub)
        original(self)

    monkeypatch.setattr(EncodedGrpcSpanExporter, "_initialize_channel_and_stub", reconnect)
    with grpc_receiver(unavailable=2) as (endpoint, received):
        exporter = export_through("grpc", endpoint, [spans])
    assert received.requests == [sdk_encode_spans(spans)]
    assert encoder_calls == [len(spans)]
    assert reconnections[1:] == [encoded_grpc.BytesTraceServiceStub], "the SDK reconnects once, with our stub"
    assert isinstance(exporter, EncodedGrpcSpanExporter)
    assert exporter._encoded is None, "the batch is not kept after its export"
    monkeypatch.setattr(encoding, "encode_spans", lambda batch: 1 / 0)
    with grpc_receiver(unavailable=2) as (endpoint, received):
        export_through("grpc", endpoint, [spans])
    assert received.requests == [sdk_encode_spans(spans)]
    assert fallbacks() == len(spans), "a batch retried is counted once"


def test_the_fallback_count_is_a_metric(
    traced: Callable[..., Traced], fallbacks: Callable[[], int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(encoding, "encode_spans", lambda batch: 1 / 0)
    reader = InMemoryMetricReader()
    t = traced(metric_reader=reader)
    t.provider.get_tracer("t").start_span("s").end()
    with grpc_receiver() as (endpoint, received):
        export_through("grpc", endpoint, [t.spans()])
    assert len(received.requests) == 1
    found = points(reader)
    assert (
        total(found, "dspy_otel.telemetry.spans", outcome="encoder_fallback")
        == dspy_otel.stats()["export_spans_encoder_fallback"]
    )
    assert fallbacks() == 1


def test_attributes_the_encoder_leaves_out_are_a_metric(traced: Callable[..., Traced]) -> None:
    reader = InMemoryMetricReader()
    t = traced(metric_reader=reader)
    span = t.provider.get_tracer("t").start_span("s", attributes={"ok": 1, "too.big": 1 << 64})
    span.end()
    logging.getLogger("opentelemetry").disabled = True  # the SDK's encoder logs the value it cannot write
    try:
        with grpc_receiver() as (endpoint, received):
            export_through("grpc", endpoint, [t.spans()])
    finally:
        logging.getLogger("opentelemetry").disabled = False
    assert [kv.key for kv in received.requests[0].resource_spans[0].scope_spans[0].spans[0].attributes] == ["ok"]
    dropped = dspy_otel.stats()["encoding_attributes_dropped"]
    assert dropped >= 1
    assert total(points(reader), "dspy_otel.telemetry.attributes", outcome="dropped") == dropped


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_configure_exports_through_our_exporters_behind_the_reporting_wrapper(
    protocol: str, encoder_calls: list[int]
) -> None:
    with receiver(protocol) as (endpoint, received):
        provider = dspy_otel.configure(protocol=protocol, otlp_endpoint=endpoint, metrics_exporter="none")
        assert type(_setup._batches[0].span_exporter.inner) is OURS[protocol]
        before = dspy_otel.stats().get("export_spans_exported", 0)
        for name in ("one", "two", "three"):
            provider.get_tracer("t").start_span(name).end()
        dspy_otel.shutdown()
    assert sorted(
        s.name for r in received.requests for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans
    ) == [
        "one",
        "three",
        "two",
    ]
    assert sum(encoder_calls) == 3
    assert dspy_otel.stats()["export_spans_exported"] - before == 3


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_exporter_without_the_parts_we_use_exports_as_the_sdk_and_says_so_once(
    protocol: str,
    spans: Sequence[ReadableSpan],
    encoder_calls: list[int],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if protocol == "grpc":
        monkeypatch.setattr(encoded_grpc, "has_channel", lambda exporter: False)
    else:
        monkeypatch.setattr(encoded_http, "sends_bytes", lambda exporter: False)
    monkeypatch.setattr(encoded, "_said", set())
    with caplog.at_level(logging.INFO, logger="dspy_otel"):
        for _ in range(2):
            with receiver(protocol) as (endpoint, received):
                exporter = export_through(protocol, endpoint, [spans])
            assert type(exporter) is OURS[protocol]
            assert received_request(received) == sdk_encode_spans(spans)
    assert encoder_calls == []
    (said,) = [r.getMessage() for r in caplog.records]
    assert said.startswith("dspy-otel: the installed opentelemetry-exporter-otlp-proto-")
    assert "its spans are encoded by the SDK's encoder" in said


def test_the_installed_exporters_have_the_parts_we_use() -> None:
    grpc_exporter = EncodedGrpcSpanExporter(endpoint="http://127.0.0.1:1", insecure=True)
    http_exporter = EncodedHttpSpanExporter(endpoint="http://127.0.0.1:1/v1/traces")
    assert encoded_grpc.has_channel(grpc_exporter)
    assert encoded_http.sends_bytes(http_exporter)
    assert grpc_exporter.encodes
    assert http_exporter.encodes
    assert not encoded_grpc.has_channel(object())
    assert not encoded_http.sends_bytes(object())
    grpc_exporter.shutdown()
    http_exporter.shutdown()  # type: ignore[no-untyped-call]  # the SDK leaves it untyped


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_tls_headers_and_rejected_variables_work_as_with_the_sdk_exporters(
    protocol: str, spans: Sequence[ReadableSpan], encoder_calls: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # gRPC reads its CA certificate from the environment; a timeout the settings table rejected is hidden from it
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", str(TLS_CERT))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "10s")
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # requests would prefer them to the exporter's certificate
        monkeypatch.delenv(name, raising=False)
    settings = resolve(
        {"protocol": protocol, "otlp_headers": "x-tenant=acme%20corp", "otlp_certificate": str(TLS_CERT)}, {}
    )
    receiver_tls = grpc_receiver(tls=True) if protocol == "grpc" else http_receiver(tls=True)
    with receiver_tls as (base, received):
        endpoint = base if protocol == "grpc" else f"{base}/v1/traces"
        (exporter,) = build_exporters(replace(settings, otlp_endpoint=endpoint), {"OTEL_EXPORTER_OTLP_TIMEOUT": "10s"})
        assert type(exporter) is OURS[protocol]
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        exporter.shutdown()
    assert received_request(received) == sdk_encode_spans(spans)
    assert encoder_calls == [len(spans)]
    assert b"acme corp" in received.bodies[0]

"""The direct OTLP encoder against the SDK's: the same message for spans of every shape."""

from __future__ import annotations

import logging
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, Status, StatusCode

import dspy_otel
from dspy_otel.encoding import encode_spans
from span_strategies import HUGE, assert_same_request, spans

CONTEXT = SpanContext(trace_id=1 << 100, span_id=7, is_remote=False)
LOGGER = "dspy_otel.encoding._values"


def span_with(attributes: dict[Any, object] | None = None, **fields: object) -> ReadableSpan:
    arguments: dict[str, object] = {"name": "s", "context": CONTEXT, "start_time": 1, "end_time": 2, **fields}
    return ReadableSpan(attributes=attributes, **arguments)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(spans(), max_size=6))
def test_any_batch_decodes_to_the_sdk_message(batch: list[ReadableSpan]) -> None:
    logging.disable(logging.WARNING)  # the SDK logs every attribute it leaves out, with its traceback
    try:
        assert_same_request(batch)
    finally:
        logging.disable(logging.NOTSET)


@given(st.lists(spans(), min_size=1, max_size=4))
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_a_second_encoding_of_the_same_spans_gives_the_same_bytes(batch: list[ReadableSpan]) -> None:
    logging.disable(logging.WARNING)
    try:
        assert encode_spans(batch) == encode_spans(batch)  # the second one from the caches
    finally:
        logging.disable(logging.NOTSET)


def test_no_spans_is_an_empty_request() -> None:
    assert encode_spans([]) == b""
    assert ExportTraceServiceRequest.FromString(b"") == sdk_encode_spans([])


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        0,
        1,
        -1,
        (1 << 63) - 1,
        -(1 << 63),
        0.0,
        -0.0,
        math.nan,
        math.inf,
        "",
        "é😀",
        b"",
        b"\x00\xff",
        None,
    ],
)
def test_every_scalar_attribute_type(value: object) -> None:
    assert_same_request([span_with({"k": value})])


@pytest.mark.parametrize(
    "value",
    [(), ("a", "b"), (1, True, 1.5, "x", None), [["nested", ()], {}], {"a": {"b": [1]}, 2: None}, bytearray(b"ab")],
)
def test_sequences_and_mappings(value: object) -> None:
    assert_same_request([span_with({"k": value})])


def test_equal_values_of_different_types_keep_their_own_encoding() -> None:
    """1 == 1.0 == True for Python: the cache must not hand one the other's bytes."""
    for value in (1, True, 1.0, 1, "1", ("1",), True, 0, False, 0.0, -0.0):
        ours = ExportTraceServiceRequest.FromString(encode_spans([span_with({"k": value})]))
        value_field = ours.resource_spans[0].scope_spans[0].spans[0].attributes[0].value
        assert value_field.WhichOneof("value") == {bool: "bool_value", int: "int_value", float: "double_value"}.get(
            type(value), "string_value" if isinstance(value, str) else "array_value"
        )
        assert_same_request([span_with({"k": value})])


def test_an_attribute_the_sdk_cannot_encode_is_left_out_counted_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = dspy_otel.stats().get("encoding_attributes_dropped", 0)
    bad = {"ok": 1, "big.int": 1 << 64, "lone.surrogate": "a\ud800", "a.set": {1}, "nested.big": [1, 1 << 70]}
    logging.getLogger("opentelemetry").disabled = True  # the SDK logs each with a traceback
    try:
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            assert_same_request([span_with(bad), span_with(bad)])
    finally:
        logging.getLogger("opentelemetry").disabled = False
    assert dspy_otel.stats()["encoding_attributes_dropped"] - before == 8  # 4 per span
    decoded = ExportTraceServiceRequest.FromString(encode_spans([span_with(bad)]))
    assert [kv.key for kv in decoded.resource_spans[0].scope_spans[0].spans[0].attributes] == ["ok"]
    logged = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len([line for line in logged if "'big.int'" in line]) <= 1


def test_a_lone_surrogate_where_the_sdk_loses_the_batch_becomes_a_replacement_character() -> None:
    scope = InstrumentationScope("scope\ud800", "v\udfff")
    span = span_with(
        {"k": "v"},
        name="name\ud800",
        status=Status(StatusCode.ERROR, "boom\udc00"),
        events=[Event("event\ud83d", timestamp=5)],
        instrumentation_scope=scope,
        resource=Resource({}, "https://schema\ud800"),
    )
    with pytest.raises(UnicodeEncodeError):
        sdk_encode_spans([span])
    decoded = ExportTraceServiceRequest.FromString(encode_spans([span]))
    resource_spans = decoded.resource_spans[0]
    encoded = resource_spans.scope_spans[0].spans[0]
    assert (encoded.name, encoded.status.message, encoded.events[0].name) == ("name\ufffd", "boom\ufffd", "event\ufffd")
    assert (resource_spans.scope_spans[0].scope.name, resource_spans.schema_url) == (
        "scope\ufffd",
        "https://schema\ufffd",
    )
    assert encoded.attributes[0].value.string_value == "v"


def test_a_surrogate_pair_written_as_two_code_points_joins() -> None:
    decoded = ExportTraceServiceRequest.FromString(encode_spans([span_with(name="a\ud83d\ude00b")]))
    assert decoded.resource_spans[0].scope_spans[0].spans[0].name == "a😀b"


def test_huge_values_are_not_kept_in_the_caches() -> None:
    from dspy_otel.encoding import _spans, _values

    assert_same_request([span_with({"huge": HUGE, "t": (HUGE,)}, name=HUGE)])
    assert HUGE not in _spans._names
    assert all(len(repr(key)) < 10_000 for key in _values._cache)

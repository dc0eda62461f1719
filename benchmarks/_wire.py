"""Where the bytes of an OTLP trace export go: per span, per attribute, per fixed span field, and the envelope.

Reads the serialized ``ExportTraceServiceRequest`` back with the official ``opentelemetry-proto`` classes and
counts protobuf bytes exactly: every byte of the request lands in one bucket (an attribute's key, value or
framing; a fixed span field; the span's own framing; events; the resource, scope and their framing).
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk.trace import ReadableSpan

from dspy_otel.encoding import encode_spans

BATCH = 512
"""Spans per export request: the batch processor's ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` default."""
HTTP_GZIP_LEVEL = 9
"""The OTLP HTTP exporter compresses with ``gzip.GzipFile(mode="w")``: level 9."""
GRPC_GZIP_LEVEL = 6
"""gRPC compresses a message with zlib's ``Z_DEFAULT_COMPRESSION`` (``message_compress.cc``): level 6."""
_SPAN_KINDS = {Span.SPAN_KIND_CLIENT: "LM"}


def varint_size(value: int) -> int:
    """Bytes of ``value`` as a protobuf varint (negative ints take 10, as int64 does)."""
    value &= (1 << 64) - 1
    return max(1, (value.bit_length() + 6) // 7)


_FIXED_SIZE = {"double_value": 8, "bool_value": 1}


def _payload(value: AnyValue) -> int:
    """The bytes that are the value itself: a string's UTF-8, a number's varint or 8 bytes, 1 for a bool."""
    which = value.WhichOneof("value")
    if which is None:
        return 0
    if which in _FIXED_SIZE:
        return _FIXED_SIZE[which]
    if which == "int_value":
        return varint_size(value.int_value)
    if which == "array_value":
        return sum(_payload(item) for item in value.array_value.values)
    if which == "kvlist_value":
        return sum(len(kv.key.encode()) + _payload(kv.value) for kv in value.kvlist_value.values)
    raw = value.string_value.encode() if which == "string_value" else value.bytes_value
    return len(raw)


@dataclass
class AttributeBytes:
    """One attribute key summed over spans: how many spans carry it and the bytes it takes there."""

    spans: int = 0
    key: int = 0
    value: int = 0
    framing: int = 0

    @property
    def total(self) -> int:
        """Key, value and framing together."""
        return self.key + self.value + self.framing


@dataclass
class WireBytes:
    """The bytes of the export requests of a set of spans, and where they go."""

    attributes: dict[str, AttributeBytes] = field(default_factory=dict)
    fixed: dict[str, int] = field(default_factory=dict)  # span field (and "framing") -> bytes, summed over spans
    by_type: dict[str, list[int]] = field(default_factory=dict)  # "LM" | "module" | "tool" -> [spans, bytes]
    spans: int = 0
    requests: int = 0
    raw: int = 0
    gzip_http: int = 0
    gzip_grpc: int = 0
    gzip_http_bare: int = 0  # gzip-9 of the same requests with every span attribute removed: ids, times, names
    gzip_http_cpu_s: float = 0.0  # CPU seconds to compress every request (best of three), level 9
    gzip_grpc_cpu_s: float = 0.0  # the same at level 6
    envelope: int = 0  # resource, scope and the framing around them, summed over requests


def _span_type(span: Span) -> str:
    if span.kind in _SPAN_KINDS:
        return _SPAN_KINDS[span.kind]
    return "tool" if span.name.startswith("execute_tool ") else "module"


def _add_attribute(wire: WireBytes, kv: KeyValue) -> int:
    size = kv.ByteSize()
    total = 1 + varint_size(size) + size  # field 9 of Span: one tag byte, the length, the KeyValue
    key, value = len(kv.key.encode()), _payload(kv.value)
    counted = wire.attributes.setdefault(kv.key, AttributeBytes())
    counted.spans += 1
    counted.key += key
    counted.value += value
    counted.framing += total - key - value
    return total


def _add_span(wire: WireBytes, span: Span) -> int:
    size = span.ByteSize()
    total = 1 + varint_size(size) + size  # field 2 of ScopeSpans
    wire.fixed["framing"] = wire.fixed.get("framing", 0) + total - size
    for descriptor, value in span.ListFields():
        if descriptor.name == "attributes":
            for kv in value:
                _add_attribute(wire, kv)
            continue
        name = "events" if descriptor.name in ("events", "links") else descriptor.name
        wire.fixed[name] = wire.fixed.get(name, 0) + Span(**{descriptor.name: value}).ByteSize()
    counted = wire.by_type.setdefault(_span_type(span), [0, 0])
    counted[0] += 1
    counted[1] += total
    return total


def _gzip(data: bytes, level: int) -> tuple[int, float]:
    """The gzip-compressed size of ``data`` at ``level`` and the CPU seconds it took (best of three)."""
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        size = len(gzip.compress(data, compresslevel=level))
        best = min(best, time.process_time() - start)
    return size, best


def measure(spans: Sequence[ReadableSpan], batch: int = BATCH) -> WireBytes:
    """Encode ``spans`` in requests of ``batch`` spans, as the batch processor sends them, and account every byte."""
    wire = WireBytes(spans=len(spans))
    for start in range(0, len(spans), batch):
        data = encode_spans(spans[start : start + batch])
        wire.requests += 1
        wire.raw += len(data)
        for level in (HTTP_GZIP_LEVEL, GRPC_GZIP_LEVEL):
            size, cpu_s = _gzip(data, level)
            if level == HTTP_GZIP_LEVEL:
                wire.gzip_http, wire.gzip_http_cpu_s = wire.gzip_http + size, wire.gzip_http_cpu_s + cpu_s
            else:
                wire.gzip_grpc, wire.gzip_grpc_cpu_s = wire.gzip_grpc + size, wire.gzip_grpc_cpu_s + cpu_s
        request = ExportTraceServiceRequest.FromString(data)
        in_spans = sum(
            _add_span(wire, span)
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        )
        wire.envelope += len(data) - in_spans
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    del span.attributes[:]
        wire.gzip_http_bare += len(gzip.compress(request.SerializeToString(), compresslevel=HTTP_GZIP_LEVEL))
    return wire

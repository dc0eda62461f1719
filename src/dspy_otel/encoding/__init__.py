"""OTLP encoding of spans: the bytes of an ``ExportTraceServiceRequest``, written directly.

The OpenTelemetry SDK's exporters build a tree of protobuf message objects for every
batch (``opentelemetry.exporter.otlp.proto.common.trace_encoder.encode_spans``) and then
serialize it. :func:`encode_spans` writes the same request straight to the protobuf wire
format instead (``_wire.py``), from the spans' own fields, caching what repeats:

- attribute pairs of exact ``str`` (short), ``int``, ``bool`` values and tuples of short
  strings (``_values.py``), span names and statuses (``_spans.py``): bounded dicts,
  cleared when full;
- each resource's and scope's encoded message, by object identity (the cache holds the
  object, so its id cannot be reused; a ``Resource`` is immutable), bounded too.

The bytes decode, with the official ``opentelemetry-proto`` classes, to exactly the
message the SDK's encoder (1.45) builds from the same spans: spans grouped by resource,
then by instrumentation scope (both compared by value, as the SDK's dicts do), each group
in the order of its first span, spans in their order; every attribute type encoded as
``_encode_value`` does. The tests check it on hypothesis-generated spans, real DSPy
traces and spans of other instrumentations (``tests/test_encoding*.py``).

Where the SDK's encoder raises on one attribute (an int outside int64, a string with a
lone surrogate, an unsupported type) that attribute is left out, as the SDK does, and
counted in ``dspy_otel.stats()["encoding_attributes_dropped"]``. Where it raises and loses
the whole batch, on a lone surrogate in a span or event name, a status message, a trace
state, a scope name or version or a schema URL, this encoder writes U+FFFD in its place
and keeps the batch (the one deliberate difference).

Measured with ``benchmarks/breakdown.py --parts 6`` on 2,048 spans of the benchmark's
workload (``ChainOfThought``, token counts varying, batches of 512): 8 to 16 µs of CPU per
span where the SDK's encoder and serialization took 48 to 85 µs in the same runs (this
machine's speed varies), 16 to 19 % of it; 1 to 3 µs more per span with the caches emptied
before every batch (``benchmarks/results/encoding.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from dspy_otel.encoding._spans import span
from dspy_otel.encoding._values import attributes
from dspy_otel.encoding._wire import prefixed, string_field

__all__ = ["encode_spans"]

OWNERS_CACHED = 64  # resources and scopes kept encoded (a process has a handful); cleared when full

# Per resource or scope: what goes before its spans (field 1, the Resource or InstrumentationScope message)
# and after them (field 3, schema_url); the object itself is kept so that its id stays its own.
_owners: dict[int, tuple[Any, bytes, bytes]] = {}


def encode_spans(spans: Sequence[ReadableSpan]) -> bytes:
    """The serialized OTLP ``ExportTraceServiceRequest`` holding ``spans``, grouped by resource and scope.

    Args:
        spans: Finished SDK spans, as a span exporter receives them.

    Returns:
        The request's protobuf bytes, what an OTLP exporter sends (before compression).
    """
    groups: dict[Resource, dict[InstrumentationScope | None, list[bytes]]] = {}
    by_identity: dict[tuple[int, int], list[bytes]] = {}  # the spans alive keep these ids valid during the call
    last_resource = last_scope = encoded = None
    for sdk_span in spans:
        resource, scope = sdk_span.resource, sdk_span.instrumentation_scope
        if resource is not last_resource or scope is not last_scope or encoded is None:  # not as the span before
            last_resource, last_scope, identity = resource, scope, (id(resource), id(scope))
            encoded = by_identity.get(identity)
            if encoded is None:
                scopes = groups.setdefault(resource, {})  # by value: Resource and InstrumentationScope define ==
                encoded = by_identity[identity] = scopes.setdefault(scope or None, [])
        encoded.append(span(sdk_span))
    resource_spans = []
    for resource, scopes in groups.items():
        scope_spans = []
        for scope, encoded in scopes.items():
            head, tail = _owner(scope, _encode_scope)
            scope_spans.append(prefixed(b"".join((head, b"\x12", b"\x12".join(encoded), tail))))
        head, tail = _owner(resource, _encode_resource)
        resource_spans.append(prefixed(b"".join((head, b"\x12", b"\x12".join(scope_spans), tail))))
    return b"\x0a" + b"\x0a".join(resource_spans) if resource_spans else b""


def _owner(owner: Any, encode: Any) -> tuple[bytes, bytes]:
    """The cached ``(head, tail)`` of a resource or scope, encoded on first sight."""
    entry = _owners.get(id(owner))
    if entry is None or entry[0] is not owner:
        if len(_owners) >= OWNERS_CACHED:
            _owners.clear()
        entry = _owners[id(owner)] = (owner, *encode(owner))
    return entry[1], entry[2]


def _encode_resource(resource: Resource) -> tuple[bytes, bytes]:
    """``ResourceSpans.resource`` (its attributes only, as the SDK writes it) and ``schema_url``."""
    return b"\x0a" + prefixed(attributes(b"\x0a", resource.attributes)), string_field(b"\x1a", resource.schema_url)


def _encode_scope(scope: InstrumentationScope | None) -> tuple[bytes, bytes]:
    """``ScopeSpans.scope`` (name, version, attributes; empty for no scope) and ``schema_url``."""
    if scope is None:
        return b"\x0a\x00", b""
    body = string_field(b"\x0a", scope.name) + string_field(b"\x12", scope.version)
    return b"\x0a" + prefixed(body + attributes(b"\x1a", scope.attributes)), string_field(b"\x1a", scope.schema_url)

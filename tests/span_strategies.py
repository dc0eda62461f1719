"""Hypothesis strategies for SDK spans of every shape, and the check that both encoders agree on them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from dspy_otel.encoding import encode_spans

INT64 = 1 << 63
HUGE = "é" * 500_000 + "x" * 1  # 1 MB of UTF-8 in one value

# text of every plane (astral characters too); attribute values and keys also get lone surrogates,
# which UTF-8 cannot hold (the SDK's encoder leaves such an attribute out)
texts = st.text(max_size=12)
surrogates = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=2)
attribute_texts = st.one_of(texts, texts.map(lambda t: t + "\U0001f600"), st.builds(str.__add__, texts, surrogates))
integers = st.one_of(
    st.integers(-INT64, INT64 - 1),
    st.sampled_from([0, 1, -1, INT64 - 1, -INT64, INT64, -INT64 - 1, 1 << 64, 1 << 100, 127, 128, 16383, 16384]),
)
floats = st.one_of(st.floats(), st.sampled_from([0.0, -0.0, math.nan, -math.nan, math.inf, -math.inf, 5e-324]))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    attribute_texts,
    integers,
    floats,
    st.binary(max_size=12),
    st.sampled_from([HUGE, "", b"", object(), 1j, {1, 2}, bytearray(b"ab"), frozenset()]),  # the last: unsupported
)
values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.one_of(texts, st.integers(), st.booleans()), inner, max_size=3),
    ),
    max_leaves=8,
)
# the homogeneous tuples the SDK's attribute cleaning leaves, which the encoder caches
homogeneous = st.one_of(
    st.lists(texts, max_size=3), st.lists(st.booleans(), max_size=3), st.lists(integers, max_size=3)
).map(tuple)
keys = st.one_of(attribute_texts, st.sampled_from(["gen_ai.request.model", "server.port", "k"]), st.binary(max_size=3))


@st.composite
def attribute_maps(draw: st.DrawFn) -> Any:
    """A plain dict, or ``BoundedAttributes`` with a limit (a dropped count) as the SDK's spans hold."""
    items = draw(st.lists(st.tuples(keys, st.one_of(values, homogeneous)), max_size=6))
    shape = draw(st.sampled_from(["dict", "bounded", "none", "empty"]))
    if shape != "bounded":
        return {"dict": dict(items), "none": None, "empty": {}}[shape]
    bounded = BoundedAttributes(maxlen=draw(st.integers(0, 4)), immutable=False)
    for key, value in items:
        bounded._dict[key] = value  # as set by the SDK, without its cleaning (which would refuse half of these)
    bounded.dropped = draw(st.sampled_from([0, 1, 300, 1 << 20]))
    return bounded


trace_states = st.lists(
    st.tuples(
        st.from_regex(r"[a-z][a-z0-9_\-*/]{0,6}", fullmatch=True), st.from_regex(r"[a-z0-9]{1,6}", fullmatch=True)
    ),
    max_size=3,
).map(TraceState)
contexts = st.builds(
    SpanContext,
    trace_id=st.integers(1, (1 << 128) - 1),
    span_id=st.integers(1, (1 << 64) - 1),
    is_remote=st.booleans(),
    trace_flags=st.sampled_from([TraceFlags(0), TraceFlags(1)]),
    trace_state=st.one_of(st.none(), trace_states),
)
times = st.one_of(st.none(), st.integers(0, (1 << 64) - 1))
events = st.builds(Event, name=texts, attributes=attribute_maps(), timestamp=st.integers(0, (1 << 64) - 1))
links = st.builds(Link, context=contexts, attributes=attribute_maps())
statuses = st.one_of(
    st.none(),
    st.builds(Status, st.sampled_from(list(StatusCode)), st.one_of(st.none(), texts)),
)
# a few of each, so that spans share them; equal resources and scopes that are distinct objects group together
resources = st.sampled_from(
    [
        Resource({"service.name": "a"}),
        Resource({"service.name": "a"}),
        Resource({"service.name": "b", "n": 1, "t": ("x", "y")}, "https://opentelemetry.io/schemas/1.21.0"),
        Resource({}),
        Resource({"n": 1}),
        Resource({"n": True}),  # equal to the one above for Python (1 == True): grouped with it, as the SDK does
    ]
)
scopes = st.sampled_from(
    [
        None,
        InstrumentationScope("dspy_otel.instrumentation", "0.1.0"),
        InstrumentationScope("dspy_otel.instrumentation", "0.1.0"),
        InstrumentationScope("other", None, "https://opentelemetry.io/schemas/1.24.0", {"a": 1, "b": ("c",)}),
        InstrumentationScope(""),
    ]
)


def bounded_list(items: list[Any], dropped: int) -> BoundedList[Any]:
    """``items`` as the SDK's spans hold their events and links, with a dropped count."""
    holder: BoundedList[Any] = BoundedList(None)
    holder.extend(items)
    holder.dropped = dropped
    return holder


@st.composite
def spans(draw: st.DrawFn) -> ReadableSpan:
    """A finished span of any shape the SDK's encoder takes."""
    return ReadableSpan(
        name=draw(st.one_of(texts, st.just(""), st.just(HUGE))),
        context=draw(contexts),
        parent=draw(st.one_of(st.none(), contexts)),
        resource=draw(resources),
        attributes=draw(attribute_maps()),
        events=bounded_list(draw(st.lists(events, max_size=3)), draw(st.sampled_from([0, 2]))),
        links=bounded_list(draw(st.lists(links, max_size=3)), draw(st.sampled_from([0, 5]))),
        kind=draw(st.sampled_from(list(SpanKind))),
        status=draw(statuses),  # type: ignore[arg-type]  # None too: the SDK's encoder takes it
        start_time=draw(times),
        end_time=draw(times),
        instrumentation_scope=draw(scopes),
    )


def assert_same_request(batch: Sequence[ReadableSpan]) -> bytes:
    """Our bytes decode to exactly the SDK's message (NaN payloads and -0.0 included); returns our bytes.

    Both sides are compared as deterministic serializations of the decoded message: bit-exact for
    floats, and a field ours wrote under a wrong number would survive decoding as an unknown field.
    """
    ours = encode_spans(batch)
    expected = sdk_encode_spans(batch)
    decoded = ExportTraceServiceRequest.FromString(ours)
    assert decoded.SerializeToString(deterministic=True) == expected.SerializeToString(deterministic=True)
    return ours

"""One ``Span`` message (with its events, links and status), fields in number order as protobuf writes them.

What the SDK's encoder writes, and only that: ``flags`` carries the two "has/is remote
parent" bits (not the W3C trace flags), a link carries no ``trace_state``, the status is
always present (even unset), ``parent_span_id`` only when there is a parent. Fields at
their proto3 default (0, ``""``) are not written, which decodes to the same message.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from dspy_otel.encoding._values import attributes, dropped_count
from dspy_otel.encoding._wire import prefixed, string_field, text

NAMES_CACHED = 1024  # span names and status messages kept encoded; the cache is cleared when full
NAME_CHARS_CACHED = 256  # longer ones are encoded every time

_UINT64 = (1 << 64) - 1
# tag 1 (bytes, 16), trace ID; tag 2 (bytes, 8), span ID: the same layout in Span and Link
_IDS = struct.Struct(">BBQQBBQ")
_FIXED64 = struct.Struct("<BQ")
_TIMES = struct.Struct("<BQBQ")  # start (field 7) and end (field 8), fixed64
# field 6; OTLP numbers the kinds from SPAN_KIND_INTERNAL = 1. By id: an Enum member hashes in Python.
_KINDS = {id(kind): b"\x30" + bytes((kind.value + 1,)) for kind in SpanKind}
# field 16 of Span, 6 of Link (fixed32): SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK (0x100), with IS_REMOTE (0x200)
_SPAN_FLAGS = (b"\x85\x01\x00\x01\x00\x00", b"\x85\x01\x00\x03\x00\x00")
_LINK_FLAGS = (b"\x35\x00\x01\x00\x00", b"\x35\x00\x03\x00\x00")
_UNSET_STATUS = b"\x7a\x00"

_names: dict[str, bytes] = {}
_statuses: dict[tuple[Any, Any], bytes] = {}


def span(sdk_span: ReadableSpan) -> bytes:
    """The ``Span`` message of ``sdk_span``, behind its length (ready to follow ``ScopeSpans.spans``' tag)."""
    context = sdk_span.context
    parts = [_ids(context)]
    trace_state = context.trace_state
    if trace_state:
        parts.append(string_field(b"\x1a", ",".join([f"{key}={value}" for key, value in trace_state.items()])))
    parent = sdk_span.parent
    if parent:
        parts.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
    name = sdk_span.name
    if name:
        parts.append(_names.get(name) or _name_field(name))
    parts.append(_KINDS[id(sdk_span.kind)])
    start, end = sdk_span.start_time, sdk_span.end_time
    if start and end:
        parts.append(_TIMES.pack(0x39, start, 0x41, end))
    else:
        parts += [_FIXED64.pack(tag, time) for tag, time in ((0x39, start), (0x41, end)) if time]
    parts.append(attributes(b"\x4a", sdk_span.attributes))
    parts.append(dropped_count(b"\x50", sdk_span.dropped_attributes))
    # The public events and links are copies made under a lock: only when the SDK's own lists (a peek at a
    # private attribute, the public path when it is missing) are not empty, as they are in most spans.
    events = sdk_span.events if getattr(sdk_span, "_events", True) else ()
    links = sdk_span.links if getattr(sdk_span, "_links", True) else ()
    _add_repeated(parts, b"\x5a", events, _event, b"\x60", sdk_span.dropped_events)
    _add_repeated(parts, b"\x6a", links, _link, b"\x70", sdk_span.dropped_links)
    parts.append(_status(sdk_span.status))
    parts.append(_SPAN_FLAGS[bool(parent and parent.is_remote)])
    return prefixed(b"".join(parts))


def _ids(context: Any) -> bytes:
    """Fields 1 (trace ID) and 2 (span ID) of a ``Span`` or a ``Link``, from its span context."""
    trace_id = context.trace_id
    return _IDS.pack(0x0A, 16, trace_id >> 64, trace_id & _UINT64, 0x12, 8, context.span_id)


def _add_repeated(
    parts: list[bytes], tag: bytes, items: Sequence[Any], encode: Callable[[Any], bytes], count_tag: bytes, dropped: int
) -> None:
    """Add the events or links (field ``tag``), then how many were dropped (field ``count_tag``), to ``parts``."""
    if items:
        parts += [tag + encode(item) for item in items]
    parts.append(dropped_count(count_tag, dropped))


def _name_field(name: str) -> bytes:
    """``Span.name`` (field 5), kept for next time when short."""
    field = b"\x2a" + prefixed(text(name))
    if len(name) <= NAME_CHARS_CACHED:
        if len(_names) >= NAMES_CACHED:
            _names.clear()
        _names[name] = field
    return field


def _event(event: Event) -> bytes:
    """A ``Span.Event``: time (1), name (2), attributes (3), dropped attributes (4); behind its length."""
    time = event.timestamp
    return prefixed(
        (_FIXED64.pack(0x09, time) if time else b"")
        + string_field(b"\x12", event.name)
        + attributes(b"\x1a", event.attributes)
        + dropped_count(b"\x20", event.dropped_attributes)
    )


def _link(link: Link) -> bytes:
    """A ``Span.Link``: IDs (1, 2), attributes (4), dropped attributes (5), flags (6); behind its length."""
    return prefixed(
        _ids(link.context)
        + attributes(b"\x22", link.attributes)
        + dropped_count(b"\x28", link.dropped_attributes)
        + _LINK_FLAGS[bool(link.context.is_remote)]
    )


def _status(status: Status | None) -> bytes:
    """Field 15, the ``Status``: message (2), code (3); nothing only when the span has no status object."""
    if status is None:
        return b""
    code, message = status.status_code, status.description
    if code is StatusCode.UNSET and not message:
        return _UNSET_STATUS
    key = (code, message)
    field = _statuses.get(key)
    if field is None:
        number = code.value
        field = b"\x7a" + prefixed(string_field(b"\x12", message) + (b"\x18" + bytes((number,)) if number else b""))
        if message is None or len(message) <= NAME_CHARS_CACHED:
            if len(_statuses) >= NAMES_CACHED:
                _statuses.clear()
            _statuses[key] = field
    return field

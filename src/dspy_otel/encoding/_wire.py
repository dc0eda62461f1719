"""The protobuf wire format, the few pieces OTLP traces need: varints, length prefixes, UTF-8 text.

A field is its tag (``field number << 3 | wire type``, itself a varint: one byte
up to field 15) followed by its value: a varint (wire type 0), 8 little-endian
bytes (1), a varint length and that many bytes (2: strings, bytes, messages) or
4 little-endian bytes (5).
"""

from __future__ import annotations

_SMALL = tuple(bytes((n,)) for n in range(0x80))  # the one-byte varints
_UINT64 = (1 << 64) - 1


def varint(value: int) -> bytes:
    """``value`` (0 to 2**64 - 1) as a base-128 varint: 7 bits a byte, least significant first."""
    if value < 0x80:
        return _SMALL[value]
    if value < 0x4000:
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def int64(value: int) -> bytes:
    """An ``int64`` field's varint: a negative value is written as its two's complement (10 bytes).

    Raises:
        ValueError: ``value`` is outside the int64 range (what the protobuf runtime raises too).
    """
    if not -(1 << 63) <= value < 1 << 63:
        raise ValueError(f"Value out of range: {value}")
    return varint(value & _UINT64)


def prefixed(payload: bytes) -> bytes:
    """``payload`` behind its varint length: the value of a length-delimited field, tag not included."""
    size = len(payload)
    return (_SMALL[size] if size < 0x80 else varint(size)) + payload


def text(value: str) -> bytes:
    """``value`` in UTF-8, a lone surrogate (which UTF-8 cannot hold) replaced by U+FFFD.

    For the fields whose failure would lose the whole batch (span, event and scope names,
    status messages, trace states, schema URLs). Attribute values use strict UTF-8 instead
    and are left out when it fails, as the SDK's encoder does.
    """
    try:
        return value.encode()
    except UnicodeEncodeError:  # "surrogatepass" then "replace": a lone surrogate becomes U+FFFD, a pair joins
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode()


def string_field(tag: bytes, value: str | None) -> bytes:
    """The field ``tag`` holding ``value`` (see :func:`text`); nothing for ``None`` or ``""`` (proto3 default)."""
    return tag + prefixed(text(value)) if value else b""

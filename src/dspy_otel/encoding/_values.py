"""Attribute values (``AnyValue``), key-value pairs (``KeyValue``) and attribute lists, with caches.

An attribute is written exactly as the SDK's ``_encode_value`` builds it: the same
``isinstance`` order (``None``, bool, str, int, float, bytes, sequence, mapping), so a bool
is never an int, a ``bytearray`` is a sequence of ints and a mapping's keys go through
``str()``. A value the SDK cannot encode (an int outside int64, a string with a lone
surrogate, an unsupported type) leaves out that one attribute, as the SDK does; it is
counted in ``dspy_otel.stats()["encoding_attributes_dropped"]`` and logged once per key.

Attributes repeat from span to span (model names, operation names, token counts,
flags), so the encoded pair of an exact ``str`` (up to :data:`SHORT`
characters), ``int`` or ``bool`` value, or of a tuple of such strings, is kept in a
bounded cache (cleared when full), keyed by the ``(key, value)`` item and checked
against the value's exact type on a hit, because ``1 == 1.0 == True`` share a key;
floats are never cached (``-0.0 == 0.0``, and NaN equals nothing). Attribute keys are
kept encoded too. Keys and values longer than :data:`SHORT` are never kept, so the
caches hold a few MB at most.
"""

from __future__ import annotations

import contextlib
import logging
import struct
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from opentelemetry.attributes import BoundedAttributes

from dspy_otel import _stats
from dspy_otel.encoding._wire import int64, prefixed, varint

_logger = logging.getLogger(__name__)

SHORT = 256  # characters: longer strings (prompts, answers) rarely repeat, not worth keeping
CACHE_ENTRIES = 4096  # per cache (pairs, keys); a cache is emptied when it reaches this size
_WARNED_KEYS_MAX = 100

_DOUBLE = struct.Struct("<d")
# (key, value) -> (the value's exact type, the pair): the type tells apart keys that == confuses (1, 1.0, True)
_cache: dict[tuple[Any, Any], tuple[type, bytes]] = {}
_key_fields: dict[str, bytes] = {}
_COPIED = (MappingProxyType, BoundedAttributes)  # whose copy() is a plain dict in the same order
_warned_keys: set[str] = set()

# AnyValue's fields: 1 string, 2 bool, 3 int64, 4 double, 5 array, 6 kvlist, 7 bytes. ArrayValue and
# KeyValueList hold field 1 (repeated). KeyValue: 1 key, 2 value.


def any_value(value: Any) -> bytes:
    """The body of the ``AnyValue`` holding ``value`` (empty for ``None``: no field set).

    Raises:
        ValueError: An int outside int64.
        UnicodeEncodeError: A string with a lone surrogate.
        TypeError: A type OTLP has no value for.
    """
    write = _EXACT.get(type(value))
    if write is not None:
        return write(value)
    if value is None:
        return b""
    for kind, write in _WRITERS:
        if isinstance(value, kind):
            return write(value)
    raise TypeError(f"Invalid type {type(value)} of value {value}")


def _array(values: Sequence[Any]) -> bytes:
    return b"\x2a" + prefixed(repeated(b"\x0a", [prefixed(any_value(item)) for item in values]))


def _kvlist(values: Mapping[Any, Any]) -> bytes:
    return b"\x32" + prefixed(repeated(b"\x0a", [key_value(str(key), item) for key, item in values.items()]))


# The SDK's order: a bool is an int, and a str a sequence, for isinstance.
_WRITERS: tuple[tuple[Any, Callable[[Any], bytes]], ...] = (
    (bool, lambda value: b"\x10\x01" if value else b"\x10\x00"),
    (str, lambda value: b"\x0a" + prefixed(value.encode())),
    (int, lambda value: b"\x18" + int64(value)),
    (float, lambda value: b"\x21" + _DOUBLE.pack(value)),
    (bytes, lambda value: b"\x3a" + prefixed(value)),
    (Sequence, _array),
    (Mapping, _kvlist),
)
_EXACT = {kind: write for kind, write in _WRITERS if kind in {bool, str, int, float, bytes}}  # the fast way in


def key_value(key: Any, value: Any) -> bytes:
    """The ``KeyValue`` of ``key`` and ``value``, behind its length (ready to follow a field tag).

    Raises:
        ValueError, UnicodeEncodeError, TypeError: See :func:`any_value`; also a key that is
            neither a str nor UTF-8 bytes, as the protobuf runtime refuses it.
    """
    key_field = _key_fields.get(key) if type(key) is str else None
    if key_field is None:
        key_field = _key_field(key)
    if type(value) is float:  # never cached, frequent (costs): written here at once
        return prefixed(key_field + b"\x12\x09\x21" + _DOUBLE.pack(value))
    return prefixed(key_field + b"\x12" + prefixed(any_value(value)))


def _key_field(key: Any) -> bytes:
    """``KeyValue.key`` (field 1) holding ``key``, kept for next time when ``key`` is an exact str."""
    if isinstance(key, str):
        encoded = key.encode()
    elif isinstance(key, bytes):
        encoded = key
        key.decode()  # the protobuf runtime takes bytes for a string field only if they are UTF-8
    else:
        raise TypeError(f"Invalid key type {type(key)}")
    field = b"\x0a" + prefixed(encoded) if encoded else b""
    if type(key) is str and len(key) <= SHORT:
        if len(_key_fields) >= CACHE_ENTRIES:
            _key_fields.clear()
        _key_fields[key] = field
    return field


def repeated(tag: bytes, items: Sequence[bytes]) -> bytes:
    """Every item (a length-prefixed value) behind ``tag``: a repeated field."""
    return tag + tag.join(items) if items else b""


def attributes(tag: bytes, values: Mapping[str, Any] | None) -> bytes:
    """The repeated ``KeyValue`` field ``tag`` holding ``values``, in their order; pairs that fail are left out."""
    if not values:
        return b""
    if type(values) in _COPIED:  # the SDK's attributes: a C-level copy iterates far faster than their items()
        with contextlib.suppress(AttributeError):  # a proxy of a mapping without copy()
            values = values.copy()  # type: ignore[attr-defined]
    cache = _cache
    pairs: list[bytes] = []
    append = pairs.append
    for item in values.items():
        try:
            hit = cache.get(item)
        except TypeError:  # an unhashable value (a list): not cached
            hit = None
        if hit is not None and hit[0] is type(item[1]):
            append(hit[1])
            continue
        key, value = item
        try:
            pair = key_value(key, value)
        except Exception as error:  # the SDK's encoder drops the attribute on any error; so do we
            _dropped(key, error)
            continue
        append(pair)
        kind = type(value)
        if len(key) > SHORT:  # a str or bytes, since it was encoded
            continue
        if kind is int or kind is bool or (kind is str and len(value) <= SHORT) or (kind is tuple and _short(value)):
            if len(cache) >= CACHE_ENTRIES:
                cache.clear()
            cache[item] = (kind, pair)
    return repeated(tag, pairs)


def _short(items: tuple[Any, ...]) -> bool:
    """Whether ``items`` are all short exact strs (a tuple of other items may not even hash)."""
    return all(type(item) is str and len(item) <= SHORT for item in items)


def _dropped(key: Any, error: Exception) -> None:
    _stats.add({"encoding_attributes_dropped": 1})
    name = repr(key)
    if name in _warned_keys or len(_warned_keys) >= _WARNED_KEYS_MAX:
        return
    _warned_keys.add(name)
    _logger.warning(
        "dspy-otel: attribute %s left out of the exported span (%s: %s), as the SDK's encoder does; "
        "further ones with this key are only counted in dspy_otel.stats()['encoding_attributes_dropped']",
        name,
        type(error).__name__,
        error,
    )


def dropped_count(tag: bytes, count: int) -> bytes:
    """A ``uint32`` count field: nothing when zero (proto3 default)."""
    return tag + varint(count) if count else b""

"""Value parsers for the settings table.

Each turns an environment string into a value or raises ``ValueError("allowed: ...")``
saying what would have been accepted.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit


def choice(
    allowed: tuple[str, ...], aliases: dict[str, str] | None = None, *, upper: bool = False
) -> Callable[[str], str]:
    """One of ``allowed`` (case-insensitive; ``aliases`` map other spellings onto them)."""

    def parse(raw: str) -> str:
        value = raw.strip().upper() if upper else raw.strip().lower()
        value = (aliases or {}).get(value, value)
        if value not in allowed:
            raise ValueError(f"allowed: {', '.join([*(a.lower() for a in aliases or {}), *allowed])}")
        return value

    return parse


def choices(allowed: tuple[str, ...]) -> Callable[[str], tuple[str, ...]]:
    """A comma-separated list of ``allowed`` values, without repeats (``otlp,console``)."""
    one = choice(allowed)

    def parse(raw: str) -> tuple[str, ...]:
        try:
            values = tuple(dict.fromkeys(one(part) for part in raw.split(",")))
        except ValueError:
            raise ValueError(f"allowed: a comma-separated list of {', '.join(allowed)}") from None
        return values

    return parse


def text(raw: str) -> str:
    """Any text that is not blank (surrounding spaces are removed)."""
    value = raw.strip()
    if not value:
        raise ValueError("allowed: a non-empty text")
    return value


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An integer >= ``minimum``."""

    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise ValueError(f"allowed: an integer >= {minimum}")
        return value

    return parse


def seconds(raw: str) -> float:
    """A number of seconds > 0 (the OpenTelemetry Python exporters read their timeout in seconds)."""
    try:
        value = float(raw.strip())
    except ValueError:
        value = -1.0
    if not 0.0 < value < float("inf"):
        raise ValueError("allowed: a number of seconds > 0, e.g. 10 or 2.5")
    return value


def boolean(raw: str) -> bool:
    """``true`` or ``false``."""
    value = raw.strip().lower()
    if value not in ("true", "false"):
        raise ValueError("allowed: true, false")
    return value == "true"


def url(raw: str) -> str:
    """An ``http://`` or ``https://`` URL with a host (and a valid port, if any)."""
    text = raw.strip()
    allowed = "allowed: an http:// or https:// URL with a host, e.g. http://localhost:4317"
    try:
        parts = urlsplit(text)
        port = parts.port  # raises on a bad port
    except ValueError:
        raise ValueError(allowed) from None
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        raise ValueError(allowed)
    return text


def import_callable(raw: str) -> Callable[[str], str]:
    """``module:function``: a function importable from the application's path."""
    allowed = "allowed: module:function, a function that takes and returns a string (e.g. myapp.privacy:mask)"
    module_name, colon, name = raw.strip().partition(":")
    if not colon or not module_name or not name:
        raise ValueError(allowed)
    import importlib

    try:
        found = getattr(importlib.import_module(module_name), name)
    except Exception as exc:
        raise ValueError(f"{allowed}; importing it failed ({type(exc).__name__}: {exc})") from None
    if not callable(found):
        raise ValueError(f"{allowed}; {raw.strip()} is not callable")
    function: Callable[[str], str] = found
    return function


def existing_file(raw: str) -> str:
    """The path of a readable file."""
    path = raw.strip()
    if not (os.path.isfile(path) and os.access(path, os.R_OK)):
        raise ValueError("allowed: the path of a readable file (certificate or key in PEM format)")
    return path


@dataclass(frozen=True)
class KeyValues:
    """``key=value`` pairs separated by commas, URL-decoded; ``str()`` masks the values (they may be secrets)."""

    pairs: tuple[tuple[str, str], ...]

    def as_dict(self) -> dict[str, str]:
        """The pairs as a dict (a later key wins)."""
        return dict(self.pairs)

    def __str__(self) -> str:
        return ",".join(f"{key}=***" for key, _ in self.pairs)


def key_values(raw: str) -> KeyValues:
    """``key1=value1,key2=value2`` (values URL-encoded, as the OpenTelemetry specification says)."""
    pairs = []
    for item in raw.split(","):
        key, eq, value = item.partition("=")
        key = unquote(key).strip()
        if not item.strip() or not eq or not key or any(c.isspace() for c in key):
            raise ValueError("allowed: key=value pairs separated by commas, values URL-encoded (a=1,b=two%20words)")
        pairs.append((key, unquote(value).strip()))
    return KeyValues(tuple(pairs))

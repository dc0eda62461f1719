"""How setting values and the settings table are shown: ``dspy-otel config``, the README, log lines.

:func:`markdown_table` is what ``dspy-otel config --table`` prints; the README carries it verbatim.
"""

from __future__ import annotations

from typing import Any

from dspy_otel.config._table import TABLE


def display(value: Any) -> str:
    """A setting's value as the README and ``dspy-otel config`` show it (``""`` for none)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{value.__module__}:{value.__qualname__}"
    return str(value)


def markdown_table() -> str:
    """The settings table as Markdown, as the README shows it (``dspy-otel config --table``)."""

    def cell(value: Any) -> str:
        text = display(value)
        return f"`{text}`" if text else ""

    rows = ["| Environment variable | Default | Profile defaults | Meaning |", "| --- | --- | --- | --- |"]
    for s in TABLE:
        by_profile = ", ".join(f"{p}: {cell(v)}" for p, v in (s.profiles or {}).items())
        rows.append(f"| `{s.env}` | {cell(s.default)} | {by_profile} | {s.doc.replace('|', chr(92) + '|')} |")
    return "\n".join(rows)

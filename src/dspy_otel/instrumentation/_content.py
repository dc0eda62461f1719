"""Prompt and output capture: GenAI message JSON, truncation and credential scrubbing.

Content is recorded only when the capture mode asks for it. Messages follow the
GenAI semantic conventions (``[{"role": ..., "parts": [{"type": "text",
"content": ...}]}]``); each attribute is cut to a maximum length and the cut is
marked. Credentials (``api_key`` and every other ``api_*`` argument, auth
headers, passwords in ``api_base``) are never put on a span: only whitelisted
request parameters are read, and exception messages are scrubbed of any secret
value the LM was given.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

TRUNCATION_MARK = "…[truncated {0} chars]"
_SECRET_KEYS = ("authorization", "password", "secret", "token", "headers")


def capture_on_span(mode: str) -> bool:
    """Whether content goes on the span as attributes."""
    return mode in ("SPAN_ONLY", "SPAN_AND_EVENT")


def capture_in_event(mode: str) -> bool:
    """Whether content goes into a ``gen_ai.client.inference.operation.details`` span event."""
    return mode in ("EVENT_ONLY", "SPAN_AND_EVENT")


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters, marking how many characters were cut.

    The mark counts exactly the characters dropped; when even the mark does not
    fit in ``limit``, the cut is marked with a single ``…``.
    """
    if len(text) <= limit:
        return text
    kept = limit
    while True:  # the mark's length depends on the count it reports: shrink ``kept`` until both fit exactly
        mark = TRUNCATION_MARK.format(len(text) - kept)
        if len(mark) > limit:
            return text[: limit - 1] + "…" if limit > 0 else ""
        if kept + len(mark) == limit:
            return text[:kept] + mark
        kept = limit - len(mark)


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    if isinstance(content, list):  # OpenAI content parts
        return [
            {"type": "text", "content": p.get("text", "")}
            if isinstance(p, Mapping) and p.get("type") == "text"
            else {"type": str(p.get("type", "part")) if isinstance(p, Mapping) else "part"}
            for p in content
        ]
    return [{"type": "text", "content": str(content)}]


def input_messages(prompt: Any, messages: Any) -> list[dict[str, Any]]:
    """The request as GenAI input messages (images and files are named, not inlined)."""
    if messages:
        return [
            {"role": str(m.get("role", "user")), "parts": _parts(m.get("content", ""))}
            for m in messages
            if isinstance(m, Mapping)
        ]
    if prompt is not None:
        return [{"role": "user", "parts": _parts(str(prompt))}]
    return []


def output_messages(outputs: Iterable[Any], finish_reasons: Sequence[str]) -> list[dict[str, Any]]:
    """DSPy LM outputs (strings, or dicts with ``text``/``tool_calls``) as GenAI output messages."""
    result = []
    for index, output in enumerate(outputs):
        parts: list[dict[str, Any]] = []
        if isinstance(output, Mapping):
            if output.get("text") is not None:
                parts.append({"type": "text", "content": str(output["text"])})
            for call in output.get("tool_calls") or ():
                parts.append({"type": "tool_call", "name": _tool_call_name(call)})
        else:
            parts.append({"type": "text", "content": str(output)})
        reason = finish_reasons[index] if index < len(finish_reasons) else "stop"
        result.append({"role": "assistant", "parts": parts, "finish_reason": reason})
    return result


def _tool_call_name(call: Any) -> str:
    function = call.get("function") if isinstance(call, Mapping) else getattr(call, "function", None)
    name = function.get("name") if isinstance(function, Mapping) else getattr(function, "name", None)
    return str(name or "")


def valid_utf8(text: str) -> str:
    """``text`` with each lone surrogate written out as a ``backslashreplace`` escape, so it encodes as UTF-8.

    Lone surrogates come from ``surrogateescape`` decoding of non-UTF-8 bytes and from broken
    input; OTLP carries UTF-8, and its protobuf encoder drops such an attribute (or fails the
    whole batch for a status or a name).
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def bounded(text: str, limit: int, secrets: Iterable[str] = ()) -> str:
    """Text fit for a span: secrets scrubbed, valid UTF-8, then cut to ``limit`` with a mark.

    In this order, so the cut never splits a secret out of reach of the scrub, and neither the
    scrub nor the escapes push the text past ``limit`` (where the SDK would cut the mark off).
    """
    return truncate(valid_utf8(scrub(text, secrets)), limit)


def to_json(messages: list[dict[str, Any]], limit: int, secrets: Iterable[str] = ()) -> str:
    """Serialise messages to JSON, :func:`bounded` to ``limit`` characters."""
    return bounded(json.dumps(messages, ensure_ascii=False, default=str), limit, secrets)


def map_messages(messages: list[dict[str, Any]], text: Callable[[str], str]) -> list[dict[str, Any]]:
    """GenAI messages with ``text`` applied to each part's content."""
    return [
        {
            **message,
            "parts": [
                {**part, "content": text(str(part["content"]))} if "content" in part else part
                for part in message["parts"]
            ],
        }
        for message in messages
    ]


def _map_output(output: Any, text: Callable[[str], str]) -> Any:
    if isinstance(output, str):
        return text(output)
    if isinstance(output, Mapping) and output.get("text") is not None:
        return {**output, "text": text(str(output["text"]))}
    return output


def map_outputs(outputs: Iterable[Any], text: Callable[[str], str]) -> list[Any]:
    """DSPy LM outputs (strings, or dicts with a ``text``) with ``text`` applied to each text."""
    return [_map_output(output, text) for output in outputs]


def bounded_messages(messages: list[dict[str, Any]], limit: int, secrets: Iterable[str]) -> list[dict[str, Any]]:
    """GenAI messages with each part's content :func:`bounded` (for the development window)."""
    return map_messages(messages, lambda t: bounded(t, limit, secrets))


def bounded_outputs(outputs: Iterable[Any], limit: int, secrets: Iterable[str]) -> list[Any]:
    """DSPy LM outputs with each text :func:`bounded` (for the development window)."""
    return map_outputs(outputs, lambda t: bounded(t, limit, secrets))


def secret_values(kwargs: Mapping[str, Any]) -> list[str]:
    """String values of credential-like LM arguments, to scrub from anything recorded."""
    found: list[str] = []
    for key, value in kwargs.items():
        lowered = key.lower()
        if (lowered.startswith("api_") and lowered not in ("api_base", "api_version")) or any(
            word in lowered for word in _SECRET_KEYS
        ):
            found.extend(_strings(value))
        elif lowered == "api_base" and isinstance(value, str) and "@" in value:
            found.append(value.split("://", 1)[-1].split("@", 1)[0])
    return [v for v in found if len(v) >= 4]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    return []


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret value in ``text`` with ``[REDACTED]``."""
    for secret in secrets:
        text = text.replace(secret, "[REDACTED]")
    return text

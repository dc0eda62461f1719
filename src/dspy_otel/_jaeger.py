"""Jaeger's query API, read back: the LM-call spans of recent traces (for ``dspy-otel inspect``).

In production nothing about past calls stays in the process; the spans went to
a collector and on to Jaeger. :func:`query_url` and :func:`trace_url` build
Jaeger's ``GET /api/v3/traces`` requests, :func:`fetch_traces` sends one, and
:func:`lm_calls` picks the LM-call spans (kind CLIENT with a
``gen_ai.operation.name``) out of the answer as :class:`LMCall` records: model,
latency, tokens, status, and the messages when content capture put them on the span.

The Jaeger address comes from ``DSPY_OTEL_JAEGER_URL`` (default
``http://localhost:16686``, the UI port of ``docker compose up -d``; :func:`jaeger_url`).
:mod:`dspy_otel._inspect_command` prints the calls.

Example:
    >>> from datetime import datetime, timedelta, timezone
    >>> url = query_url(DEFAULT_URL, "my-app", timedelta(hours=1), 100, datetime.now(timezone.utc))
    >>> calls = lm_calls(fetch_traces(url), errors_only=True)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes import error_attributes

from dspy_otel._attributes import CACHE_HIT
from dspy_otel._window import CallRecord

URL_ENV = "DSPY_OTEL_JAEGER_URL"
DEFAULT_URL = "http://localhost:16686"
_SPAN_KIND_CLIENT = (3, "SPAN_KIND_CLIENT")
_STATUS_ERROR = (2, "STATUS_CODE_ERROR")


class JaegerError(Exception):
    """Jaeger could not be reached or answered something other than traces."""


@dataclass(frozen=True)
class LMCall:
    """One LM-call span read back from Jaeger.

    Attributes:
        start_ns: Start time in Unix nanoseconds (orders the calls).
        record: The call in the layout the development window prints (its ``trace_id`` groups them).
    """

    start_ns: int
    record: CallRecord


def _value(value: Mapping[str, Any]) -> Any:
    """The Python value of an OTLP/JSON ``AnyValue``."""
    if "intValue" in value:
        return int(value["intValue"])
    if "arrayValue" in value:
        return [_value(v) for v in value["arrayValue"].get("values", [])]
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in value:
            return value[key]
    return None


def span_attributes(span: Mapping[str, Any]) -> dict[str, Any]:
    """A span's OTLP/JSON attributes as a plain dict (``intValue`` strings become ints)."""
    return {item["key"]: _value(item.get("value", {})) for item in span.get("attributes") or []}


def _messages(text: Any) -> list[dict[str, Any]] | None:
    """Captured GenAI messages, or one plain-text message when the JSON was truncated."""
    if not isinstance(text, str):
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return [{"role": "(truncated)", "parts": [{"type": "text", "content": text}]}]
    return parsed if isinstance(parsed, list) else None


def _output_texts(messages: list[dict[str, Any]] | None) -> list[str] | None:
    """The text of each GenAI output message (one per completion)."""
    if messages is None:
        return None
    return ["\n".join(str(p.get("content", "")) for p in m.get("parts", []) if "content" in p) for m in messages]


def iter_spans(payload: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every span of a ``/api/v3/traces`` response (OTLP/JSON), in response order."""
    for resource_spans in payload.get("result", {}).get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            yield from scope_spans.get("spans", [])


def lm_calls(payload: Mapping[str, Any], errors_only: bool = False) -> list[LMCall]:
    """The LM-call spans of a ``/api/v3/traces`` response, oldest first.

    Args:
        payload: The decoded JSON response (``{"result": {"resourceSpans": [...]}}``).
        errors_only: Keep only calls whose span status is ERROR.

    Returns:
        One :class:`LMCall` per LM span.
    """
    calls = []
    for span in iter_spans(payload):
        attrs = span_attributes(span)
        if span.get("kind") not in _SPAN_KIND_CLIENT or gen_ai.GEN_AI_OPERATION_NAME not in attrs:
            continue
        status = span.get("status", {})
        failed = status.get("code") in _STATUS_ERROR
        if errors_only and not failed:
            continue
        start_ns, end_ns = int(span.get("startTimeUnixNano", 0)), int(span.get("endTimeUnixNano", 0))
        provider, model = attrs.get(gen_ai.GEN_AI_PROVIDER_NAME), str(attrs.get(gen_ai.GEN_AI_REQUEST_MODEL, "?"))
        error = (status.get("message") or attrs.get(error_attributes.ERROR_TYPE) or "error") if failed else None
        record = CallRecord(
            timestamp=datetime.fromtimestamp(start_ns / 1e9),
            model=f"{provider}/{model}" if provider else model,
            messages=_messages(attrs.get(gen_ai.GEN_AI_INPUT_MESSAGES)),
            outputs=_output_texts(_messages(attrs.get(gen_ai.GEN_AI_OUTPUT_MESSAGES))),
            input_tokens=attrs.get(gen_ai.GEN_AI_USAGE_INPUT_TOKENS),
            output_tokens=attrs.get(gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS),
            latency_ms=(end_ns - start_ns) / 1e6,
            cache_hit=bool(attrs.get(CACHE_HIT, False)),
            error=error,
            trace_id=str(span.get("traceId", "")),
            sampled=True,  # it is in Jaeger
        )
        calls.append(LMCall(start_ns, record))
    return sorted(calls, key=lambda call: call.start_ns)


def query_url(base: str, service: str | None, lookback: timedelta, depth: int, now: datetime) -> str:
    """The ``/api/v3/traces`` URL for the last ``lookback`` of ``service`` (every service when ``None``)."""
    params = {
        "query.start_time_min": (now - lookback).isoformat(),
        "query.start_time_max": now.isoformat(),
        "query.num_traces": str(depth),
    }
    if service:
        params["query.service_name"] = service
    return f"{base.rstrip('/')}/api/v3/traces?{urllib.parse.urlencode(params)}"


def fetch_traces(url: str, timeout_s: float = 10.0) -> dict[str, Any]:
    """GET a ``/api/v3/traces`` URL; a 404 (Jaeger's "no traces found") is an empty result.

    Raises:
        JaegerError: Jaeger is unreachable or answered with another error.
    """
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            payload: dict[str, Any] = json.load(response)
            return payload
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return {}
        raise JaegerError(f"Jaeger answered HTTP {exc.code} for {url}: {exc.read().decode(errors='replace')}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        base = url.split("/api/v3/", 1)[0]
        raise JaegerError(
            f"no Jaeger answers at {base} ({reason}); start one (make stack, or docker compose up -d) "
            f"or point {URL_ENV} at yours"
        ) from exc


def trace_url(base: str, trace_id: str) -> str:
    """The ``/api/v3/traces/{id}`` URL of one trace."""
    return f"{base.rstrip('/')}/api/v3/traces/{trace_id}"


def jaeger_url() -> str:
    """``DSPY_OTEL_JAEGER_URL`` checked: a URL with a scheme (``localhost:16686`` alone is not one).

    Raises:
        JaegerError: Naming the variable, its value and what to write instead.
    """
    base = os.environ.get(URL_ENV) or DEFAULT_URL
    parts = urllib.parse.urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise JaegerError(f"{URL_ENV}={base!r} is not a URL: write it with its scheme, e.g. http://{base}")
    return base

"""``dspy-otel inspect``: the last LM calls, read back from Jaeger, printed like ``dspy.inspect_history``.

In production nothing about past calls stays in the process; the spans went to
a collector and on to Jaeger. This command asks Jaeger's query API
(``GET /api/v3/traces``) for the recent traces of a service, picks the LM-call
spans out of them (kind CLIENT with a ``gen_ai.operation.name``), and prints the
newest ``N`` grouped by trace: model, latency, tokens, status, and the messages
when content capture put them on the span.

The Jaeger address comes from ``DSPY_OTEL_JAEGER_URL`` (default
``http://localhost:16686``, the UI port of ``docker compose up -d``).

Example:
    $ DSPY_OTEL_JAEGER_URL=http://localhost:16686 dspy-otel inspect --service my-app --last 3 --errors
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, TextIO

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes import error_attributes

from dspy_otel._attributes import CACHE_HIT
from dspy_otel._window import CallRecord, format_record

URL_ENV = "DSPY_OTEL_JAEGER_URL"
DEFAULT_URL = "http://localhost:16686"
_SPAN_KIND_CLIENT = (3, "SPAN_KIND_CLIENT")
_STATUS_ERROR = (2, "STATUS_CODE_ERROR")
_LOOKBACK = re.compile(r"^(\d+)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


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


_SAME_SYSTEM_MESSAGE = {"role": "system", "parts": [{"type": "text", "content": "(the same as above)"}]}


def _once_per_trace(records: list[CallRecord]) -> list[CallRecord]:
    """The records with a message already shown earlier in the trace (a long system prompt) shown once."""
    seen: set[str] = set()
    shown = []
    for record in records:
        messages = []
        for message in record.messages or []:
            key = json.dumps(message, sort_keys=True, default=str)
            repeated = key in seen and message.get("role") == "system"
            seen.add(key)
            messages.append(_SAME_SYSTEM_MESSAGE if repeated else message)
        shown.append(replace(record, messages=messages) if record.messages else record)
    return shown


def format_calls(calls: list[LMCall]) -> str:
    """Calls grouped by trace (traces in order of their first call), each like ``dspy.inspect_history``.

    A system message repeated on every call of a trace is printed once.
    """
    by_trace: dict[str, list[LMCall]] = {}
    for call in sorted(calls, key=lambda c: c.start_ns):
        by_trace.setdefault(call.record.trace_id, []).append(call)
    blocks = []
    for trace_id, trace_calls in by_trace.items():
        noun = "call" if len(trace_calls) == 1 else "calls"
        body = "\n".join(format_record(record) for record in _once_per_trace([c.record for c in trace_calls]))
        blocks.append(f"=== trace {trace_id} ({len(trace_calls)} LM {noun}) ===\n\n{body}")
    return "\n".join(blocks)


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


def _trace_id(text: str) -> str:
    value = text.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{1,32}", value):
        raise argparse.ArgumentTypeError(f"expected a trace ID of up to 32 hex digits, got {text!r}")
    return value.rjust(32, "0")


def _jaeger_base() -> str:
    """``DSPY_OTEL_JAEGER_URL`` checked: a URL with a scheme (``localhost:16686`` alone is not one).

    Raises:
        JaegerError: Naming the variable, its value and what to write instead.
    """
    base = os.environ.get(URL_ENV) or DEFAULT_URL
    parts = urllib.parse.urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise JaegerError(f"{URL_ENV}={base!r} is not a URL: write it with its scheme, e.g. http://{base}")
    return base


def _duration(delta: timedelta) -> str:
    """``1h``, ``30m``, ``2d``: the way ``--lookback`` is written."""
    seconds = int(delta.total_seconds())
    for unit in ("d", "h", "m"):
        if seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


def _lookback(text: str) -> timedelta:
    match = _LOOKBACK.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected a number and a unit s, m, h or d (e.g. 30m), got {text!r}")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def _positive(text: str) -> int:
    value = int(text) if text.isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_inspect_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``inspect`` subcommand to a CLI's ``add_subparsers()`` object.

    Args:
        subparsers: What ``ArgumentParser.add_subparsers()`` returned.

    Returns:
        The new ``inspect`` parser (dispatch to :func:`run_inspect`).
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "inspect",
        help="print the last LM calls stored in Jaeger, like dspy.inspect_history",
        description=f"Read the last LM calls back from Jaeger (${URL_ENV}, default {DEFAULT_URL}) "
        "and print them grouped by trace.",
    )
    parser.add_argument("--service", help="service.name to read (default: $OTEL_SERVICE_NAME, else every service)")
    parser.add_argument("--last", type=_positive, default=1, metavar="N", help="how many LM calls to print (default 1)")
    parser.add_argument("--errors", action="store_true", help="only calls that failed")
    parser.add_argument(
        "--lookback", type=_lookback, default=timedelta(hours=1), help="how far back to search: 30m, 2h (default 1h)"
    )
    parser.add_argument("--trace", type=_trace_id, metavar="ID", help="print the LM calls of this one trace")
    return parser


def run_inspect(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run ``dspy-otel inspect`` with parsed arguments.

    Args:
        args: Namespace from the parser that :func:`add_inspect_parser` added.
        out: Where to print (default ``sys.stdout``); errors go to ``sys.stderr``.

    Returns:
        The exit code: 0 (also when nothing matched), 1 when Jaeger could not be read.
    """
    out = out or sys.stdout
    service = args.service or os.environ.get("OTEL_SERVICE_NAME") or None
    try:
        base = _jaeger_base()
        if args.trace:
            url = trace_url(base, args.trace)
        else:  # each trace holds one or more LM calls: search deeper than N so filtering still finds N
            url = query_url(base, service, args.lookback, max(100, 10 * args.last), datetime.now(timezone.utc))
        calls = lm_calls(fetch_traces(url), errors_only=args.errors)
    except JaegerError as exc:
        print(f"dspy-otel inspect: {exc}", file=sys.stderr)
        return 1
    if not calls:
        what = "failed LM calls" if args.errors else "LM calls"
        where = (
            f"trace {args.trace}"
            if args.trace
            else f"{service or 'any service'} in the last {_duration(args.lookback)}"
        )
        out.write(f"No {what} in Jaeger at {base} for {where}.\n")
        return 0
    if args.trace:
        out.write(format_calls(calls))
        return 0
    out.write(format_calls(calls[-args.last :]))
    return 0

"""``dspy-otel inspect``: the last LM calls, read back from Jaeger, printed like ``dspy.inspect_history``.

This command asks Jaeger's query API (:mod:`dspy_otel._jaeger`) for the recent
traces of a service, and prints the newest ``N`` LM calls grouped by trace:
model, latency, tokens, status, and the messages when content capture put them
on the span.

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
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any, TextIO

from dspy_otel._jaeger import (
    DEFAULT_URL,
    URL_ENV,
    JaegerError,
    LMCall,
    fetch_traces,
    jaeger_url,
    lm_calls,
    query_url,
    trace_url,
)
from dspy_otel._window import CallRecord, format_record

_LOOKBACK = re.compile(r"^(\d+)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

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


def _trace_id(text: str) -> str:
    value = text.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{1,32}", value):
        raise argparse.ArgumentTypeError(f"expected a trace ID of up to 32 hex digits, got {text!r}")
    return value.rjust(32, "0")


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
        base = jaeger_url()
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

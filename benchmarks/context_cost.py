"""What ``dspy_otel.attributes()`` costs a span: outside any scope, and inside one.

One span is what dspy-otel's hooks do: ``with_scope`` on the start attributes,
``start_span``, attach, ``end``, detach, through a ``BatchSpanProcessor`` to a
null exporter. Three setups, measured in interleaved blocks (so that a busy
machine slows all of them alike) and reported as the median µs per span:

- ``base``: no ``ContextAttributesProcessor`` and no scope (dspy-otel before this feature);
- ``no scope``: the processor that ``configure()`` installs, no scope active;
- ``scope``: the processor, inside ``attributes(user_id=..., session_id=..., plan=...)``.

Run: ``.venv/bin/python benchmarks/context_cost.py [--spans 20000] [--blocks 10]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext
from typing import Any

from opentelemetry import context, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import dspy_otel
from _null_exporter import NullExporter
from dspy_otel.context import ContextAttributesProcessor
from dspy_otel.context._scope import with_scope

ATTRIBUTES = {"dspy.module.class": "ChainOfThought", "dspy.signature": "question -> answer"}


def provider(with_processor: bool) -> TracerProvider:
    made = TracerProvider()
    if with_processor:
        made.add_span_processor(ContextAttributesProcessor())
    made.add_span_processor(BatchSpanProcessor(NullExporter()))
    return made


def block(tracer: trace.Tracer, scope: Any, spans: int) -> list[int]:
    timings = []
    with scope:
        for _ in range(spans):
            started = time.perf_counter_ns()
            current = context.get_current()
            span = tracer.start_span("ChainOfThought", current, attributes=with_scope(current, ATTRIBUTES))
            token = context.attach(trace.set_span_in_context(span, current))
            span.end()
            context.detach(token)
            timings.append(time.perf_counter_ns() - started)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=20_000, help="spans per block")
    parser.add_argument("--blocks", type=int, default=10, help="blocks per setup, interleaved")
    args = parser.parse_args()
    providers = {"base": provider(False), "no scope": provider(True), "scope": provider(True)}
    tracers = {name: made.get_tracer("bench") for name, made in providers.items()}
    timings: dict[str, list[int]] = {name: [] for name in providers}
    for _ in range(args.blocks):
        for name, tracer in tracers.items():
            scope = dspy_otel.attributes(user_id="u-42", session_id="s-7", plan="pro") if name == "scope" else None
            timings[name] += block(tracer, scope or nullcontext(), args.spans)
    base = statistics.median(timings["base"]) / 1000
    print(f"| setup | µs per span (median of {args.blocks} x {args.spans:,}) | vs base |")
    print("| --- | --- | --- |")
    for name, values in timings.items():
        median = statistics.median(values) / 1000
        print(f"| {name} | {median:.2f} | {median - base:+.2f} |")
    for made in providers.values():
        made.shutdown()


if __name__ == "__main__":
    main()

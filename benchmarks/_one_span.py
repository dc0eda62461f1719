"""Part 2 of ``breakdown.py``: one SDK span alone, in a tight loop and after ~0.5 MB of JSON work.

One span is ``start_span`` with one attribute, attach, ``end``, detach, through a
``BatchSpanProcessor`` to a null exporter; with JSON work between spans, as in a
real program, the SDK's code and data are no longer in the CPU caches when the
next span starts.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from opentelemetry import context, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from _null_exporter import NullExporter


def one_span_timer(between: Callable[[], Any] | None, spans: int) -> float:
    """Median µs of one SDK span (start, attach, end, detach), optionally after ``between`` each time."""
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(NullExporter()))
    tracer = provider.get_tracer("breakdown")
    timings = []
    for _ in range(spans):
        if between is not None:
            between()
        started = time.perf_counter_ns()
        span = tracer.start_span("ChainOfThought", attributes={"dspy.module.class": "ChainOfThought"})
        token = context.attach(trace.set_span_in_context(span))
        span.end()
        context.detach(token)
        timings.append(time.perf_counter_ns() - started)
    provider.shutdown()
    return statistics.median(timings) / 1000


def part_two(spans: int) -> None:
    """Print the table of part 2."""
    document = {f"key{i}": ["v" * 50, i, {"x": i}] for i in range(3000)}

    def json_work() -> None:
        json.loads(json.dumps(document))

    hot = one_span_timer(None, spans)
    cold = one_span_timer(json_work, spans)
    print(f"\nPart 2: one SDK span alone, median of {spans:,} (wall µs)\n")
    print("| where | µs per span |\n|---|--:|")
    print(f"| tight loop | {hot:.1f} |\n| after ~0.5 MB of JSON work | {cold:.1f} |")

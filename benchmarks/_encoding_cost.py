"""Part 6 of ``breakdown.py``: OTLP encoding alone, dspy-otel's direct encoder against the SDK's, per span.

The spans are real: ``--encoding-calls`` calls of the workload's ``ChainOfThought``
(real ``dspy.LM`` path, fake server, model ``openai/gpt-4o-mini`` so that DSPy
prices each call) traced by ``dspy_otel.configure()`` (production profile) into
memory, two spans per call. The question's length varies from call to call, so
token counts and costs vary as in a real service (the response ID does anyway):
the attribute cache sees what it would see in production, not one value repeated.
The spans are cut into batches of 512, as the batch processor sends them.

Every round encodes all the batches once with each encoder, in an order shuffled
afresh, each block after one untimed call; CPU time of the thread per span:

- ``sdk``: ``encode_spans(batch).SerializePartialToString()``, what the SDK's
  OTLP/HTTP exporter does (its gRPC exporter builds the same message);
- ``dspy-otel``: ``dspy_otel.encoding.encode_spans(batch)``, caches warm from the
  previous blocks, as in a running service;
- ``dspy-otel, caches emptied``: the same with every cache emptied before each
  batch (untimed): the first batch after start, or the worst case of a process
  whose attribute values never repeat across batches.

Before timing, every batch is checked to decode to exactly the SDK's message.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from _paired import paired, shuffled_rounds, times
from _wire import BATCH
from _workload import QUESTION
from dspy_otel import encoding
from dspy_otel.encoding import _spans, _values

GOAL_US = 15.0  # issue 22's goal, CPU per span ...
ISSUE_SDK_US = 60.0  # ... where it measured the SDK's encoder at 60 µs (a quiet machine; CPU time grows with load)
SDK, OURS, COLD = "sdk", "dspy-otel", "dspy-otel, caches emptied"


def workload_spans(url: str, model: str, calls: int) -> list[ReadableSpan]:
    """The spans of ``calls`` workload calls traced by ``dspy_otel.configure()``, questions of varied length."""
    import dspy

    import dspy_otel

    dspy.configure(lm=dspy.LM(model, api_base=url, api_key="fake", cache=False))
    exporter = InMemorySpanExporter()
    provider = dspy_otel.configure(span_exporter=exporter)
    program = dspy.ChainOfThought("question -> answer")
    for call in range(calls):
        program(question=QUESTION[: len(QUESTION) // 2 + call * 37 % (len(QUESTION) // 2)])
    provider.force_flush()
    dspy_otel.shutdown()
    return list(exporter.get_finished_spans())


def empty_caches() -> None:
    """Empty every cache of the direct encoder."""
    for cache in (_values._cache, _values._key_fields, _spans._names, _spans._statuses, encoding._owners):
        cache.clear()


def encoders() -> dict[str, Callable[[Sequence[ReadableSpan]], bytes]]:
    """The variants timed, each a function of one batch."""
    return {
        SDK: lambda batch: sdk_encode_spans(batch).SerializePartialToString(),
        OURS: encoding.encode_spans,
        COLD: encoding.encode_spans,
    }


def check_same(batches: list[list[ReadableSpan]]) -> None:
    """Every batch decodes to exactly the SDK's message (deterministic serializations compared)."""
    for batch in batches:
        ours = ExportTraceServiceRequest.FromString(encoding.encode_spans(batch))
        if ours.SerializeToString(deterministic=True) != sdk_encode_spans(batch).SerializeToString(deterministic=True):
            raise AssertionError("the direct encoder's message differs from the SDK's")


def part_six(url: str, model: str, rounds: int, calls: int, seed: int, history_us: float) -> None:
    """Print the table of part 6; per call, the difference is also given in DSPy's history costs (``history_us``)."""
    spans = workload_spans(url, model, calls)
    batches = [spans[start : start + BATCH] for start in range(0, len(spans), BATCH)]
    check_same(batches)
    variants = encoders()

    def run_block(name: str) -> float:
        encode = variants[name]
        encode(batches[0])  # untimed
        gc.collect()
        elapsed = 0
        for batch in batches:
            if name == COLD:
                empty_caches()
            started = time.thread_time_ns()
            encode(batch)
            elapsed += time.thread_time_ns() - started
        return elapsed / len(spans) / 1000

    samples = shuffled_rounds(tuple(variants), rounds, run_block, seed)
    size = sum(len(encoding.encode_spans(batch)) for batch in batches) / len(spans)
    print(
        f"\nPart 6: OTLP encoding alone, {rounds} rounds x {len(spans):,} spans of {calls:,} workload calls "
        f"(batches of {BATCH}, {size:.0f} bytes per span), shuffled; CPU µs of the calling thread per span\n"
    )
    per_call = len(spans) / calls
    print(
        "| encoder | µs per span, median [Q1, Q3] | vs sdk, paired [Q1, Q3] | 95 % interval | share of sdk "
        f"| vs sdk per call ({per_call:g} spans), in DSPy's history costs |"
    )
    print("|---|--:|--:|--:|--:|--:|")
    sdk_us = statistics.median(samples[SDK])
    for name in variants:
        q1, median, q3 = statistics.quantiles(samples[name], n=4, method="inclusive")
        cells = [f"`{name}`", f"{median:.2f} [{q1:.2f}, {q3:.2f}]"]
        if name != SDK:
            versus = paired(samples[name], samples[SDK])
            cells += [versus.cell(2), versus.interval(2), f"{median / sdk_us:.0%}"]
            cells.append(times(versus.median * per_call, history_us))
        print("| " + " | ".join(cells + [""] * (6 - len(cells))) + " |")
    ours = statistics.median(samples[OURS])
    verdict = "met" if ours <= GOAL_US else "NOT met"
    print(
        f"\ndspy-otel's encoder: {ours:.2f} µs per span, {ours / sdk_us:.0%} of the SDK's in this run; goal ≤ "
        f"{GOAL_US:.0f} µs ({GOAL_US / ISSUE_SDK_US:.0%} of the SDK's {ISSUE_SDK_US:.0f} µs in issue 22): {verdict}"
    )
    print(f"(DSPy's history cost: {history_us:.0f} µs per call, from part 1 or --history-us)")

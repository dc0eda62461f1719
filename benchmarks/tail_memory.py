"""What the in-process tail sampler holds with 10,000 traces in flight, and whether its bound holds.

One command, in the project venv (~1 min)::

    .venv/bin/python benchmarks/tail_memory.py

``--traces`` root spans are started and never ended (traces in flight: a
service whose requests have not finished); then ``--children`` LM-call spans
per trace, shaped like the workload's, are started and ended, one per trace in
turn (as concurrent requests interleave). Every span is recorded and not
sampled, as with ``configure(tail_policies="errors,ratio:0.05")`` and no head
sampler, so the tail processor buffers it until its trace is decided. This is
done once with the default ``TailLimits`` and once with a small byte bound
(``--small-mib``); no background thread (``tick_s=None``), the exporting
processor behind the tail only counts.

For each it prints the traces and spans still buffered, the processor's own
estimate (``buffered_bytes``), the memory tracemalloc sees grow from just after
the roots started (the buffered spans, which would otherwise be freed, and the
processor's maps), the configured bound and whether each stayed under it, and
what :func:`dspy_otel.stats` counted meanwhile (traces decided early, late spans).
The traces and spans buffered and the decisions remembered are read from the
processor's maps; "trace decisions taken" counts kept and dropped decisions, so
above the traces started some trace was decided more than once (its decision
forgotten before its next span ended, that span buffered as a new trace).
Last, what stays after 20,000 complete traces (roots ended): the decisions the
processor remembers for late spans.
"""

from __future__ import annotations

import argparse
import gc
import tracemalloc
from dataclasses import dataclass

import dspy_otel
from _tail_spans import (
    POLICIES,
    CountingProcessor,
    record_only_provider,
    start_lm_span,
    start_root,
    tail_processor,
    workload_traces,
)
from dspy_otel.sampling.tail import TailLimits

MIB = 1 << 20


@dataclass(frozen=True)
class Outcome:
    """What one run left in the tail processor."""

    limits: TailLimits
    traces: int
    ended: int
    peak_estimate: int
    estimate: int
    traced_growth: int
    handed_on: int
    counts: dict[str, int]
    traces_buffered: int  # read from the processor's own maps, not derived from the counts:
    spans_buffered: int  # a trace whose decision was forgotten is buffered, and decided, again
    decisions: int

    @property
    def decided(self) -> int:
        """Trace decisions taken (kept + dropped), a trace counted each time it was decided."""
        return self.counts.get("tail_traces_kept", 0) + self.counts.get("tail_traces_dropped", 0)


def counts_since(before: dict[str, int]) -> dict[str, int]:
    """The :func:`dspy_otel.stats` counters that moved since ``before``, by how much."""
    now = dspy_otel.stats()
    return {key: value - before.get(key, 0) for key, value in now.items() if value != before.get(key, 0)}


def run(limits: TailLimits, traces: int, children: int) -> Outcome:
    """Start ``traces`` roots, end ``children`` spans under each, leave the roots open; measure."""
    inner = CountingProcessor()
    tail = tail_processor(inner, limits)
    provider = record_only_provider(tail)
    tracer = provider.get_tracer("tail-memory")
    before = dspy_otel.stats()
    gc.collect()
    tracemalloc.start()
    roots = [start_root(tracer) for _ in range(traces)]
    gc.collect()
    traced_before = tracemalloc.get_traced_memory()[0]
    peak = 0
    for _ in range(children):
        for root in roots:
            start_lm_span(tracer, root).end()
            peak = max(peak, tail.buffered_bytes)
    gc.collect()
    traced_growth = tracemalloc.get_traced_memory()[0] - traced_before
    tracemalloc.stop()
    pending = tail._pending.values()  # benchmark only: the buffer as it is
    outcome = Outcome(
        limits,
        traces,
        traces * children,
        peak,
        tail.buffered_bytes,
        traced_growth,
        inner.ended,
        counts_since(before),
        len(pending),
        sum(len(trace.spans) for trace in pending),
        len(tail._decided),
    )
    provider.shutdown()  # decides what is left; the roots are simply dropped
    return outcome


def report(outcomes: list[Outcome], children: int) -> None:
    print(
        f"Tail processor `{POLICIES}`, {outcomes[0].traces:,} traces in flight (roots open), {children} LM-call "
        "spans ended per trace; no background thread\n"
    )
    print(
        "| limits | traces buffered | spans buffered | decisions remembered | trace decisions taken "
        "| `buffered_bytes` estimate (peak) | tracemalloc growth | measured / estimate | bound `max_mib` "
        "| estimate ≤ bound | measured ≤ bound |"
    )
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for o in outcomes:
        bound = o.limits.max_mib * MIB
        cells = [
            f"max_traces={o.limits.max_traces:,}, max_mib={o.limits.max_mib}",
            f"{o.traces_buffered:,}",
            f"{o.spans_buffered:,} of {o.ended:,}",
            f"{o.decisions:,}",
            f"{o.decided:,}",
            f"{o.estimate / MIB:.2f} MiB ({o.peak_estimate / MIB:.2f})",
            f"{o.traced_growth / MIB:.2f} MiB",
            f"{o.traced_growth / o.estimate:.1f}x" if o.estimate else "-",
            f"{o.limits.max_mib} MiB",
            "yes" if o.peak_estimate <= bound else "**no**",
            "yes" if o.traced_growth <= bound else "**no**",
        ]
        print("| " + " | ".join(cells) + " |")
    print()
    for o in outcomes:
        per_span = (
            f", {o.traced_growth / o.spans_buffered:,.0f} B measured per buffered span" if o.spans_buffered else ""
        )
        print(
            f"- max_mib={o.limits.max_mib}: spans handed to the exporting processor {o.handed_on:,}{per_span}; "
            f"dspy_otel.stats() moved by {o.counts}"
        )


def after_complete(traces: int) -> None:
    """What stays once ``traces`` complete traces (roots ended) went through: its memory of decided traces."""
    tail = tail_processor(CountingProcessor())
    spans = workload_traces(traces)
    gc.collect()
    tracemalloc.start()
    for span in spans:
        tail.on_end(span)
    del spans
    gc.collect()
    growth = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    print(
        f"\nAfter {traces:,} complete traces of 2 spans (roots ended, nothing pending), default limits: "
        f"{growth / MIB:.2f} MiB still held (the decisions remembered for late spans, at most "
        f"max_traces={TailLimits().max_traces:,}); buffered_bytes {tail.buffered_bytes}"
    )
    tail.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--traces", type=int, default=10_000, help="traces in flight")
    parser.add_argument("--children", type=int, default=3, help="spans ended per trace")
    parser.add_argument("--small-mib", type=int, default=4, help="the small bound of the second run")
    args = parser.parse_args()
    if min(args.traces, args.children, args.small_mib) < 1:
        parser.error("--traces, --children and --small-mib must be at least 1")
    outcomes = [
        run(limits, args.traces, args.children) for limits in (TailLimits(), TailLimits(max_mib=args.small_mib))
    ]
    report(outcomes, args.children)
    after_complete(2 * TailLimits().max_traces)


if __name__ == "__main__":
    main()

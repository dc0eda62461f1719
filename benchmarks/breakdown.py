"""Where dspy-otel's time per call goes: one process, the benchmark's workload, the steps interleaved.

One command, in the project venv (~5 min on 2 cores)::

    .venv/bin/python benchmarks/breakdown.py

Part 1 runs ``run.py``'s workload (``ChainOfThought``, 4 KB question, 2 KB
answer, real ``dspy.LM`` path, fake server in its own process) in blocks of
``--block`` calls, rotating through the steps below ``--rounds`` times, and
prints the median and the best (lowest) CPU time per call of each: on a
shared machine the best block is the steadier estimate of what a step costs. Interleaving the steps in one
process measures differences of a few µs that separate processes (``run.py``)
blur. First, DSPy's defaults for reference:

- ``DSPy defaults``: history lists and ``settings.trace`` on, filled to their
  10,000-entry caps before measuring (what a long-running service pays).

Then DSPy's retention is off in every step, so only tracing differs; each step
adds one thing to the one before:

- ``none``: DSPy alone (not instrumented);
- ``no-op tracer``: instrumented with OpenTelemetry's no-op tracer: dspy-otel's
  wrappers and attribute reading, no SDK;
- ``not sampled``: SDK tracer provider with ``ALWAYS_OFF``: non-recording spans;
- ``recorded``: ``ALWAYS_ON``, no span processor: spans built and ended;
- ``exported``: ``ALWAYS_ON`` and a ``BatchSpanProcessor`` to a null exporter,
  what the production profile does with every span sampled.

Part 2 times one SDK span (``start_span`` with one attribute, attach, ``end``,
detach) alone: in a tight loop, and with ~0.5 MB of JSON work between spans,
as in a real program, where the SDK's code and data are no longer in the CPU
caches when the next span starts.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from opentelemetry import context, trace
from opentelemetry.sdk.trace import TracerProvider, sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from _null_exporter import NullExporter
from _workload import QUESTION
from run import ROOT, fake_server

DEFAULTS = "DSPy defaults"
STEPS = (DEFAULTS, "none", "no-op tracer", "not sampled", "recorded", "exported")
HISTORY_CAP = 10_000
WARMUP = 100  # calls per step before the rounds


def provider_for(step: str) -> tuple[trace.TracerProvider | None, NullExporter | None]:
    """The tracer provider of one step (``None``: not instrumented) and its exporter."""
    if step in {DEFAULTS, "none"}:
        return None, None
    if step == "no-op tracer":
        return trace.NoOpTracerProvider(), None
    provider = TracerProvider(sampler=sampling.ALWAYS_OFF if step == "not sampled" else sampling.ALWAYS_ON)
    if step != "exported":
        return provider, None
    exporter = NullExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider, exporter


def part_one(url: str, block: int, rounds: int) -> None:
    import dspy

    from dspy_otel import retention
    from dspy_otel._config import resolve
    from dspy_otel.instrumentation import DSPyInstrumentor

    dspy.configure(lm=dspy.LM("openai/fake-model", api_base=url, api_key="fake", cache=False))
    settings = resolve({"profile": "production", "dspy_history": "keep"}, env={})  # retention: switched below
    program = dspy.ChainOfThought("question -> answer")
    print(f"filling DSPy's history to its cap ({HISTORY_CAP:,} calls) ...", file=sys.stderr, flush=True)
    for _ in range(HISTORY_CAP):
        program(question=QUESTION)
    restore = retention.switch_off()
    instrumentor = DSPyInstrumentor()
    setups = {step: provider_for(step) for step in STEPS}
    samples: dict[str, list[float]] = {step: [] for step in STEPS}

    def run_block(step: str, calls: int) -> float:
        nonlocal restore
        if step == DEFAULTS:
            restore()
        provider = setups[step][0]
        if provider is not None:
            instrumentor.instrument(tracer_provider=provider, settings=settings)
        gc.collect()
        started = time.process_time()
        for _ in range(calls):
            program(question=QUESTION)
        cpu = time.process_time() - started
        if provider is not None:
            instrumentor.uninstrument()
        if step == DEFAULTS:
            restore = retention.switch_off()
        return cpu / calls * 1e6

    for step in STEPS:
        run_block(step, WARMUP)
    for number in range(rounds):
        order = STEPS[number % len(STEPS) :] + STEPS[: number % len(STEPS)]
        for step in order:
            samples[step].append(run_block(step, block))
    restore()
    provider, exporter = setups["exported"]
    if isinstance(provider, TracerProvider):
        provider.force_flush()
    exported_calls = rounds * block + WARMUP
    print(f"Part 1: ChainOfThought workload, {rounds} rounds x {block} calls per step (medians, CPU µs/call)\n")
    print("| step | median | vs DSPy defaults | vs none | this step adds | best block | best vs none |")
    print("|---|--:|--:|--:|--:|--:|--:|")
    medians = {step: statistics.median(values) for step, values in samples.items()}
    best = {step: min(values) for step, values in samples.items()}
    previous = None
    for step in STEPS:
        value = medians[step]
        added = "" if previous is None else f"{value - previous:+,.0f}"
        versus = f"{value - medians[DEFAULTS]:+,.0f} | {value - medians['none']:+,.0f}"
        print(f"| {step} | {value:,.0f} | {versus} | {added} | {best[step]:,.0f} | {best[step] - best['none']:+,.0f} |")
        previous = value
    if exporter is not None:
        print(f"\nspans exported per call in the `exported` step: {exporter.spans / exported_calls:g}")


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
    document = {f"key{i}": ["v" * 50, i, {"x": i}] for i in range(3000)}

    def json_work() -> None:
        json.loads(json.dumps(document))

    hot = one_span_timer(None, spans)
    cold = one_span_timer(json_work, spans)
    print(f"\nPart 2: one SDK span alone, median of {spans:,} (wall µs)\n")
    print("| where | µs per span |\n|---|--:|")
    print(f"| tight loop | {hot:.1f} |\n| after ~0.5 MB of JSON work | {cold:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--block", type=int, default=300, help="calls per step per round")
    parser.add_argument("--rounds", type=int, default=20, help="rounds through the steps")
    parser.add_argument("--spans", type=int, default=3000, help="spans timed in part 2")
    args = parser.parse_args()
    if min(args.block, args.rounds, args.spans) < 1:
        parser.error("--block, --rounds and --spans must be at least 1")
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    with fake_server(sys.executable, ROOT / "src") as url:
        part_one(url, args.block, args.rounds)
    part_two(args.spans)


if __name__ == "__main__":
    main()

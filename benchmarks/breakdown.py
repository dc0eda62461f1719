"""Where dspy-otel's time per call goes: one process, the benchmark's workload, the steps interleaved.

One command, in the project venv (~10 min on 2 cores)::

    .venv/bin/python benchmarks/breakdown.py

Part 1 runs ``run.py``'s workload (``ChainOfThought``, 4 KB question, 2 KB
answer, real ``dspy.LM`` path, fake server in its own process; the model is
named ``openai/gpt-4o-mini`` so that DSPy prices each call, as for a real model)
one call at a time: every cycle makes one call of each step below, in an order
shuffled afresh; before each timed call the step is switched in (its wrappers,
built once, are installed again: the interpreter sees the same function objects
every time, as in a real program) and one untimed call is made. A call is
timed in CPU time of the calling thread; a round is ``--cycles`` cycles and its
value for a step is the median of that step's calls. A step is
compared with another by the differences of their round values *within* each
round (medians of these paired differences, with quartiles); each is also given
as a multiple of DSPy's own history cost measured in the same run.

Why one call at a time: on this kind of shared machine the CPU time of a block
of calls moves by 10-20 % from one block to the next, so differences between
blocks of calls of a few ms each could not resolve tens of µs (the previous
method, blocks of 300 calls, gave quartiles hundreds of µs wide); the median of
per-call differences between calls made next to each other can. What runs on
other threads (the batch processor's export, the metrics thread applying queued
calls) is not in these figures: parts 3 and 4 time the processors and the
metrics alone. First, DSPy's defaults:

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
  what the production profile does with every span sampled (metrics off, as
  with ``configure(span_exporter=...)``: every step so far gets a no-op meter
  provider);
- ``metrics``: ``exported`` plus dspy-otel's metrics, recorded for every LM and
  module call into a ``MeterProvider`` whose ``InMemoryMetricReader`` exports
  nothing; the calling thread only queues each call (the metrics thread applies
  them; part 4 times both sides, ``_metrics_cost.py``);
- ``tail errors,ratio:0.05``: what ``configure(tail_policies="errors,ratio:0.05")``
  builds with no head sampler: ``DSPyOtelSampler(DEFAULT_OFF, record_dropped=True)``
  records every span unsampled, and ``TailSamplingProcessor`` in front of the
  batch processor exports the 5 % of traces the policies keep (no background
  thread here: every root ends); no metrics, compared with ``exported``;
- ``compact``: ``exported`` with ``spans="compact"``: predictors open no span of
  their own (the LM span carries them); compared with ``exported``;
- ``sampled out``: what ``configure(sampler="parentbased_traceidratio",
  sampler_arg=0.0)`` builds (a batch processor, no metrics): the root is sampled
  out and, with ``skip_unsampled``, no SDK span is made below it; compared with
  ``not sampled`` (``ALWAYS_OFF``, a non-recording span for every span).

Part 2 times one SDK span (``start_span`` with one attribute, attach, ``end``,
detach) alone: in a tight loop, and with ~0.5 MB of JSON work between spans
(``_one_span.py``).

Part 3 times the tail sampler's ``on_end`` alone: record-only spans shaped like
the workload's (an LM call, then its root) are handed to the tail processor of
part 1's step or to a no-op processor, in shuffled paired rounds (CPU time of
the calling thread); the tail processor first sees 10,000 traces, so that its
memory of decided traces is full, as in a long-running service.

Part 4 times one workload call's metrics alone: queued on the calling thread
(paired against recording nothing, shuffled rounds), applied at collection, the
call that finds the queue full, and the memory a full queue holds
(``_metrics_cost.py``).

Part 5 times dspy-otel's hooks for one workload call alone, per step, against
running nothing (``_hooks_alone.py``): the objects of one real call replayed
through the hooks, with no DSPy work in between. It resolves a few µs where
part 1 resolves tens, with warm caches (a lower bound).

Part 6 times OTLP encoding alone per span, dspy-otel's direct encoder against
the SDK's, on batches of 512 real workload spans (``_encoding_cost.py``).
``--parts`` runs some parts only (``--parts 4``).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from typing import Any, NamedTuple

from opentelemetry import metrics, trace
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider, sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from _encoding_cost import part_six
from _hooks_alone import NOTHING, capture, time_hooks
from _metrics_cost import lm_calls_counted, metered, part_four
from _null_exporter import NullExporter
from _one_span import part_two
from _paired import paired, round_medians, shuffled_rounds, times
from _tail_spans import POLICIES, record_only_provider, tail_processor, workload_traces
from _workload import QUESTION
from dspy_otel.sampling.tail import TailLimits
from run import ROOT, fake_server

DEFAULTS = "DSPy defaults"
TAIL = f"tail {POLICIES}"
COMPACT, SAMPLED_OUT = "compact", "sampled out"
STEPS = (DEFAULTS, "none", "no-op tracer", "not sampled", "recorded", "exported", "metrics", TAIL, COMPACT, SAMPLED_OUT)
# the step each adds to, when not the one listed before it
BUILDS_ON = {TAIL: "exported", COMPACT: "exported", SAMPLED_OUT: "not sampled"}
HISTORY_CAP = 10_000
MODEL = "openai/gpt-4o-mini"  # a model DSPy knows the price of; the fake server answers any name
WARMUP = 20  # cycles through the steps before the rounds
TAIL_WARM_TRACES = 50  # untimed traces at the start of every block of part 3


class Setup(NamedTuple):
    """One step's providers (``tracer``: ``None`` when not instrumented), exporter and metric reader."""

    tracer: trace.TracerProvider | None = None
    exporter: NullExporter | None = None
    meter: metrics.MeterProvider = metrics.NoOpMeterProvider()
    reader: Any = None
    spans: str = "full"  # dspy-otel's ``spans`` setting
    skip_unsampled: bool = False  # no SDK span below a sampled-out root, as ``configure()`` sets it


def setup_for(step: str) -> Setup:
    """The providers of one step."""
    if step in {DEFAULTS, "none"}:
        return Setup()
    if step == "no-op tracer":
        return Setup(trace.NoOpTracerProvider())
    exporter = NullExporter()
    if step == TAIL:
        return Setup(record_only_provider(tail_processor(BatchSpanProcessor(exporter))), exporter)
    samplers = {"not sampled": sampling.ALWAYS_OFF, SAMPLED_OUT: sampling.ParentBasedTraceIdRatio(0.0)}
    provider = TracerProvider(sampler=samplers.get(step, sampling.ALWAYS_ON))
    if step in {"not sampled", "recorded"}:
        return Setup(provider)
    provider.add_span_processor(BatchSpanProcessor(exporter))  # as configure() adds it
    if step != "metrics":  # SAMPLED_OUT: configure(sampler="parentbased_traceidratio", sampler_arg=0.0)
        spans = "compact" if step == COMPACT else "full"
        return Setup(provider, exporter, spans=spans, skip_unsampled=step == SAMPLED_OUT)
    meter, reader = metered()
    return Setup(provider, exporter, meter, reader)


def part_one(url: str, cycles: int, rounds: int, seed: int) -> float:
    """Print the step table; returns DSPy's history cost (median paired difference, CPU µs per call)."""
    import dspy

    from dspy_otel import retention
    from dspy_otel.config import resolve
    from dspy_otel.instrumentation import make_hooks
    from dspy_otel.instrumentation._patches import apply, patches

    dspy.configure(lm=dspy.LM(MODEL, api_base=url, api_key="fake", cache=False))
    settings = {  # retention: switched below
        spans: resolve({"profile": "production", "dspy_history": "keep", "spans": spans}, env={})
        for spans in ("full", "compact")
    }
    program = dspy.ChainOfThought("question -> answer")
    print(f"filling DSPy's history to its cap ({HISTORY_CAP:,} calls) ...", file=sys.stderr, flush=True)
    for _ in range(HISTORY_CAP):
        program(question=QUESTION)
    restore = retention.switch_off()
    setups = {step: setup_for(step) for step in STEPS}
    wrappers = {  # built once: every switch installs the same function objects, as a real program has them
        step: patches(make_hooks(settings[setup.spans], setup.tracer, setup.meter, skip_unsampled=setup.skip_unsampled))
        for step, setup in setups.items()
        if setup.tracer is not None
    }
    calls_made = dict.fromkeys(STEPS, 0)

    def one_call(step: str) -> float:
        """Switch to ``step``, make one untimed call, then time one call (CPU µs of this thread)."""
        nonlocal restore
        if step == DEFAULTS:
            restore()
        uninstall = apply(wrappers[step]) if step in wrappers else None
        program(question=QUESTION)
        started = time.thread_time_ns()
        program(question=QUESTION)
        elapsed = time.thread_time_ns() - started
        if uninstall is not None:
            uninstall()
        if step == DEFAULTS:
            restore = retention.switch_off()
        calls_made[step] += 2
        return elapsed / 1000

    for _ in range(WARMUP):
        for step in STEPS:
            one_call(step)
    per_call = shuffled_rounds(STEPS, rounds * cycles, one_call, seed)
    restore()
    samples = {step: round_medians(values, cycles) for step, values in per_call.items()}
    print(
        f"Part 1: ChainOfThought workload, {rounds} rounds x {cycles} calls per step, one call of each step at a "
        f"time in an order shuffled afresh (seed {seed}), each after one untimed call; CPU µs of the calling "
        "thread per call: a round's value is the median of its calls, then medians of the per-round (paired) "
        "differences [first quartile, third quartile]\n"
    )
    return report_steps(samples, setups, calls_made)


def report_steps(samples: dict[str, list[float]], setups: dict[str, Setup], calls_made: dict[str, int]) -> float:
    """Print part 1's table and checks; returns DSPy's history cost (median paired difference, CPU µs per call)."""
    history = paired(samples[DEFAULTS], samples["none"])
    print(
        "| step | CPU µs/call (median) | vs none [Q1, Q3] | 95 % interval | in DSPy's history costs | adds to "
        "| vs the step it adds to [Q1, Q3] | 95 % interval | in DSPy's history costs |"
    )
    print("|---|--:|--:|--:|--:|---|--:|--:|--:|")
    for index, step in enumerate(STEPS):
        versus = paired(samples[step], samples["none"])
        cells = [step, f"{statistics.median(samples[step]):,.0f}", versus.cell(), versus.interval()]
        cells.append(times(versus.median, history.median))
        base = BUILDS_ON.get(step, STEPS[index - 1]) if index > 0 else ""
        added = paired(samples[step], samples[base]) if base else None
        cells += [base, added.cell(), added.interval(), times(added.median, history.median)] if added else [""] * 4
        print("| " + " | ".join(cells) + " |")
    tail_vs_recorded = paired(samples[TAIL], samples["recorded"])
    metrics_cost = paired(samples["metrics"], samples["exported"])
    print(
        f"\nDSPy's history at its cap (DSPy defaults vs none): {history.cell()} µs per call "
        f"(95 % interval of the median {history.interval()}). "
        f"`{TAIL}` vs `recorded` (spans built and ended, no processor): {tail_vs_recorded.cell()} µs per call. "
        f"`metrics` vs `exported` (dspy-otel's metrics recorded): {metrics_cost.cell()} µs per call = "
        f"{times(metrics_cost.median, history.median)} DSPy's history cost (goal ≤ 5 µs; part 4 resolves it)."
    )
    compact = paired(samples[COMPACT], samples["exported"])
    sampled_out = paired(samples[SAMPLED_OUT], samples["not sampled"])
    print(
        f"`{COMPACT}` vs `exported`: {compact.cell()} µs per call. `{SAMPLED_OUT}` vs `not sampled` (ALWAYS_OFF, "
        f"every span made non-recording): {sampled_out.cell()} µs per call."
    )
    for step in ("exported", "metrics", TAIL, COMPACT, SAMPLED_OUT):
        provider, exporter = setups[step].tracer, setups[step].exporter
        if isinstance(provider, TracerProvider) and exporter is not None:
            provider.force_flush()
            print(f"spans exported per call in the `{step}` step: {exporter.spans / calls_made[step]:.3g}")
    counted = lm_calls_counted(setups["metrics"].reader)
    print(f"LM calls counted by `dspy.lm.calls` in the `metrics` step: {counted:,} of {calls_made['metrics']:,} calls")
    return history.median


def part_three(rounds: int, traces: int, seed: int, history_us: float) -> None:
    """The tail processor's ``on_end`` per span against a no-op processor's, paired and shuffled."""
    exporter = NullExporter()
    tail = tail_processor(BatchSpanProcessor(exporter))
    for span in workload_traces(TailLimits().max_traces):  # fill its memory of decided traces
        tail.on_end(span)
    processors: dict[str, SpanProcessor] = {"tail": tail, "no-op": SpanProcessor()}

    def run_block(name: str) -> float:
        processor = processors[name]
        warm, spans = workload_traces(TAIL_WARM_TRACES), workload_traces(traces)
        gc.collect()
        for span in warm:
            processor.on_end(span)
        started = time.thread_time_ns()
        for span in spans:
            processor.on_end(span)
        return (time.thread_time_ns() - started) / len(spans) / 1000

    samples = shuffled_rounds(tuple(processors), rounds, run_block, seed)
    tail.shutdown()
    per_span = paired(samples["tail"], samples["no-op"])
    per_call = 2 * per_span.median  # two spans per workload call
    handed = TailLimits().max_traces + rounds * (TAIL_WARM_TRACES + traces)
    print(
        f"\nPart 3: the tail processor's on_end alone, {rounds} rounds x {traces:,} traces (2 record-only spans "
        f"each), shuffled; CPU µs of the calling thread per span\n"
    )
    print("| processor | µs per span (median) | tail vs no-op, paired [Q1, Q3] |\n|---|--:|--:|")
    print(f"| no-op | {statistics.median(samples['no-op']):.2f} | |")
    print(f"| `{POLICIES}` | {statistics.median(samples['tail']):.2f} | {per_span.cell(2)} |")
    print(
        f"\ntail on_end: {per_span.median:.2f} µs per span, {per_call:.1f} µs per call (2 spans) = "
        f"{times(per_call, history_us)} DSPy's history cost ({history_us:.0f} µs per call, part 1 or --history-us); "
        f"spans exported: {exporter.spans / (2 * handed):.3g} of those handed over"
    )


HOOK_STEPS = ("no-op tracer", "not sampled", SAMPLED_OUT, "recorded", "exported", COMPACT, TAIL)


def part_five(url: str, rounds: int, calls: int, seed: int, history_us: float) -> None:
    """dspy-otel's hooks for one workload call alone, per step, against running nothing (``_hooks_alone.py``)."""
    import dspy

    from dspy_otel.config import resolve
    from dspy_otel.instrumentation import make_hooks

    lm = dspy.LM(MODEL, api_base=url, api_key="fake", cache=False)
    dspy.configure(lm=lm)
    captured = capture(dspy.ChainOfThought("question -> answer"), lm, {"question": QUESTION})
    hooks = {}
    for step in HOOK_STEPS:
        setup = setup_for(step)
        settings = resolve({"profile": "production", "dspy_history": "keep", "spans": setup.spans}, env={})
        hooks[step] = make_hooks(settings, setup.tracer, setup.meter, skip_unsampled=setup.skip_unsampled)
    samples = time_hooks(hooks, captured, rounds, calls, seed)
    print(
        f"\nPart 5: dspy-otel's hooks for one workload call alone (no DSPy work), {rounds} rounds x {calls:,} calls "
        "per step, shuffled; CPU µs of the calling thread per call, paired with running nothing\n"
    )
    print("| step | µs per call [Q1, Q3] | 95 % interval | in DSPy's history costs |\n|---|--:|--:|--:|")
    for step in HOOK_STEPS:
        cost = paired(samples[step], samples[NOTHING])
        print(f"| {step} | {cost.cell(1)} | {cost.interval(1)} | {times(cost.median, history_us)} |")
    print(f"\n(DSPy's history cost: {history_us:.0f} µs per call, from part 1 or --history-us)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cycles", type=int, default=30, help="timed calls per step per round of part 1")
    parser.add_argument("--rounds", type=int, default=100, help="rounds of part 1")
    parser.add_argument("--spans", type=int, default=3000, help="spans timed in part 2")
    parser.add_argument("--tail-rounds", type=int, default=100, help="rounds of part 3")
    parser.add_argument("--tail-traces", type=int, default=1000, help="traces per block of part 3")
    parser.add_argument("--metrics-rounds", type=int, default=100, help="rounds of part 4")
    parser.add_argument("--metrics-calls", type=int, default=2000, help="calls per block of part 4")
    parser.add_argument("--hooks-rounds", type=int, default=60, help="rounds of part 5")
    parser.add_argument("--hooks-calls", type=int, default=2000, help="calls per block of part 5")
    parser.add_argument("--encoding-rounds", type=int, default=40, help="rounds of part 6")
    parser.add_argument("--encoding-calls", type=int, default=1024, help="workload calls whose spans part 6 encodes")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shuffled orders")
    parser.add_argument("--parts", default="1,2,3,4,5,6", help="the parts to run, e.g. 3,4")
    parser.add_argument(
        "--history-us", type=float, default=0.0, help="DSPy's history cost to compare with when part 1 does not run"
    )
    args = parser.parse_args()
    parts = {part.strip() for part in args.parts.split(",")}
    counts = (args.cycles, args.rounds, args.spans, args.tail_rounds, args.tail_traces, args.metrics_rounds)
    more = (args.metrics_calls, args.hooks_rounds, args.hooks_calls, args.encoding_rounds, args.encoding_calls)
    if min(*counts, *more) < 1:
        parser.error(
            "--cycles, --rounds, --spans and every --tail-*, --metrics-*, --hooks-*, --encoding-* count must be >= 1"
        )
    if not parts <= {"1", "2", "3", "4", "5", "6"}:
        parser.error("--parts takes numbers from 1 to 6, separated by commas")
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    history_us = args.history_us
    if "1" in parts:
        with fake_server(sys.executable, ROOT / "src") as url:
            history_us = part_one(url, args.cycles, args.rounds, args.seed)
    if "2" in parts:
        part_two(args.spans)
    if "3" in parts:
        part_three(args.tail_rounds, args.tail_traces, args.seed, history_us)
    if "4" in parts:
        part_four(args.metrics_rounds, args.metrics_calls, args.seed, history_us)
    if "5" in parts:
        with fake_server(sys.executable, ROOT / "src") as url:
            part_five(url, args.hooks_rounds, args.hooks_calls, args.seed, history_us)
    if "6" in parts:
        with fake_server(sys.executable, ROOT / "src") as url:
            part_six(url, MODEL, args.encoding_rounds, args.encoding_calls, args.seed, history_us)


if __name__ == "__main__":
    main()

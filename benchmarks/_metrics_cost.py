"""What recording dspy-otel's metrics costs: the meter provider of ``breakdown.py``'s ``metrics`` step, and part 4.

The ``metrics`` step records into a ``MeterProvider`` with an ``InMemoryMetricReader``:
every call is aggregated as in a service (cumulative temporality, the SDK's default
``trace_based`` exemplar filter), and nothing is collected or exported during the
measured blocks, so the step shows the cost of recording alone, not of exporting.

Part 4 times that recording alone: per workload call, what dspy-otel records at the
end of its LM call and of its ``ChainOfThought`` (``Instruments.lm_call``: duration,
call count and input and output tokens; ``Instruments.module_call``: module duration;
5 measurements, no cost, as the fake model has none), with a sampled span current as
in the workload (so exemplars are taken) and with none, against the same loop that
records nothing; shuffled paired rounds, CPU time of the calling thread.
"""

from __future__ import annotations

import gc
import statistics
import time

from opentelemetry import context, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, Metric, Sum
from opentelemetry.sdk.trace import TracerProvider

from _paired import paired, shuffled_rounds, times
from _tail_spans import LM_ATTRIBUTES
from dspy_otel.metrics.instruments import Instruments

REQUEST_KEYS = (
    "gen_ai.operation.name",
    "gen_ai.request.model",
    "dspy.lm.class",
    "gen_ai.provider.name",
    "server.address",
    "server.port",
)
WARM_CALLS = 50  # untimed calls at the start of every block of part 4
MEASUREMENTS = 5  # per workload call: LM duration, LM calls, input tokens, output tokens, module duration
NOTHING, IN_SPAN, NO_SPAN = "nothing", "metrics, sampled span current (exemplars)", "metrics, no span current"


def metered() -> tuple[MeterProvider, InMemoryMetricReader]:
    """A meter provider whose reader keeps the aggregates in memory and exports nothing by itself."""
    reader = InMemoryMetricReader()
    return MeterProvider(metric_readers=[reader], shutdown_on_exit=False), reader


def _metric(reader: InMemoryMetricReader, name: str) -> Metric | None:
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name == name:
                    return metric
    return None


def lm_calls_counted(reader: InMemoryMetricReader) -> int:
    """The LM calls ``dspy.lm.calls`` counted so far (every attribute set)."""
    metric = _metric(reader, "dspy.lm.calls")
    if metric is None or not isinstance(metric.data, Sum):
        return 0
    return int(sum(point.value for point in metric.data.data_points))


def part_four(rounds: int, calls: int, seed: int, history_us: float) -> None:
    """Print the cost of recording one workload call's metrics, paired against recording nothing."""
    provider, reader = metered()
    instruments = Instruments(provider.get_meter("breakdown"))
    request = {key: value for key, value in LM_ATTRIBUTES.items() if key in REQUEST_KEYS}
    result = {key: value for key, value in LM_ATTRIBUTES.items() if key not in REQUEST_KEYS}
    span = TracerProvider().get_tracer("breakdown").start_span("ChainOfThought")  # sampled: exemplars taken
    in_span = trace.set_span_in_context(span)

    def record() -> None:
        instruments.lm_call(request, result, 0.0012, None)
        instruments.module_call("ChainOfThought", 0.0015, None)

    def nothing() -> None:
        pass

    variants = {NOTHING: nothing, IN_SPAN: record, NO_SPAN: record}

    def run_block(name: str) -> float:
        call = variants[name]
        token = context.attach(in_span) if name != NO_SPAN else None
        gc.collect()
        for _ in range(WARM_CALLS):
            call()
        started = time.thread_time_ns()
        for _ in range(calls):
            call()
        elapsed = time.thread_time_ns() - started
        if token is not None:
            context.detach(token)
        return elapsed / calls / 1000

    samples = shuffled_rounds(tuple(variants), rounds, run_block, seed)
    span.end()
    counted = lm_calls_counted(reader)
    provider.shutdown()
    print(
        f"\nPart 4: recording one workload call's metrics alone (LM call: duration, call count, input and output "
        f"tokens; ChainOfThought: duration; {MEASUREMENTS} measurements), {rounds} rounds x {calls:,} calls, shuffled; "
        "CPU µs of the calling thread per call\n"
    )
    print("| variant | µs per call (median) | vs nothing, paired [Q1, Q3] | per measurement |\n|---|--:|--:|--:|")
    print(f"| {NOTHING} | {statistics.median(samples[NOTHING]):.2f} | | |")
    for name in (IN_SPAN, NO_SPAN):
        cost = paired(samples[name], samples[NOTHING])
        median = statistics.median(samples[name])
        print(f"| {name} | {median:.2f} | {cost.cell(2)} | {cost.median / MEASUREMENTS:.2f} |")
    cost = paired(samples[IN_SPAN], samples[NOTHING])
    print(
        f"\nmetrics recorded per call, as in the workload (a sampled span current): {cost.median:.2f} µs = "
        f"{times(cost.median, history_us)} DSPy's history cost in part 1 ({history_us:.0f} µs per call); "
        f"goal ≤ 5 µs: {'met' if cost.median <= 5 else 'not met'}; dspy.lm.calls counted {counted:,} "
        f"of {2 * rounds * (calls + WARM_CALLS):,}"
    )

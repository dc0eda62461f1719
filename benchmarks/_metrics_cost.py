"""What recording dspy-otel's metrics costs: the meter provider of ``breakdown.py``'s ``metrics`` step, and part 4.

dspy-otel queues each LM or module call on the calling thread and applies the
queued calls to the SDK's instruments when the metrics are collected (on the
exporting thread in a service; the queue is bounded at ``MAX_QUEUED`` calls,
past which the calling thread applies them). So the cost comes in two places,
both in the process.

The ``metrics`` step records into a ``MeterProvider`` with an ``InMemoryMetricReader``
(cumulative temporality, nothing exported) and collects at the end of each block,
inside the timed region, so that the block pays for applying its own calls as the
exporting thread would.

Part 4 times one workload call's metrics alone (``Instruments.lm_call``: duration,
call count, input and output tokens; ``Instruments.module_call``: module duration;
5 measurements, no cost, as the fake model has none):

- on the calling thread, against the same loop recording nothing, in shuffled
  paired rounds (CPU time of the thread);
- applying them at collection: each metrics block is collected twice right after
  its calls; (first collection minus the second, empty) / calls;
- the call that finds the queue full (it applies ``MAX_QUEUED`` calls itself);
- the memory a full queue holds (tracemalloc), each call with dicts of its own as
  the instrumentation passes them.
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, Metric, Sum

from _paired import paired, shuffled_rounds, times
from _tail_spans import LM_ATTRIBUTES
from dspy_otel.metrics.instruments import MAX_QUEUED, Instruments

REQUEST_KEYS = (
    "gen_ai.operation.name",
    "gen_ai.request.model",
    "gen_ai.provider.name",
    "server.address",
    "server.port",
)
WARM_CALLS = 50  # untimed calls at the start of every block of part 4
MEASUREMENTS = 5  # per workload call: LM duration, LM calls, input tokens, output tokens, module duration
NOTHING, QUEUED = "nothing", "metrics"
QUEUED_PER_CALL = 2  # a workload call queues an LM call and a module call


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
    """Print the cost of one workload call's metrics: queued on the caller, applied at collection, a full queue."""
    provider, reader = metered()
    instruments = Instruments(provider.get_meter("breakdown"))
    request = {key: value for key, value in LM_ATTRIBUTES.items() if key in REQUEST_KEYS}
    result = {key: value for key, value in LM_ATTRIBUTES.items() if key not in REQUEST_KEYS}
    applied_us: list[float] = []

    def record() -> None:
        instruments.lm_call(request, result, 0.0012, None)
        instruments.module_call("ChainOfThought", 0.0015, None)

    def nothing() -> None:
        pass

    variants = {NOTHING: nothing, QUEUED: record}

    def run_block(name: str) -> float:
        call = variants[name]
        gc.collect()
        for _ in range(WARM_CALLS):
            call()
        reader.get_metrics_data()  # the warm-up calls applied, untimed
        started = time.thread_time_ns()
        for _ in range(calls):
            call()
        elapsed = time.thread_time_ns() - started
        if name == QUEUED:
            marks = [time.thread_time_ns()]
            for _ in range(2):  # the block's calls applied, then an empty collection: the fixed part
                reader.get_metrics_data()
                marks.append(time.thread_time_ns())
            applied_us.append(((marks[1] - marks[0]) - (marks[2] - marks[1])) / calls / 1000)
        return elapsed / calls / 1000

    samples = shuffled_rounds(tuple(variants), rounds, run_block, seed)
    counted = lm_calls_counted(reader)
    full_ms = [_full_queue_call_ms(instruments, record) for _ in range(3)]
    held = _full_queue_bytes(instruments, request, result)
    provider.shutdown()
    queued = paired(samples[QUEUED], samples[NOTHING])
    q1, median, q3 = statistics.quantiles(applied_us, n=4, method="inclusive")
    total = queued.median + median
    print(
        f"\nPart 4: one workload call's metrics alone (LM call: duration, call count, input and output tokens; "
        f"ChainOfThought: duration; {MEASUREMENTS} measurements), {rounds} rounds x {calls:,} calls, shuffled; "
        "CPU µs of this thread per call\n"
    )
    print("| where | µs per call (median) | [Q1, Q3] |\n|---|--:|--:|")
    print(f"| calling thread: queued, paired against recording nothing | {queued.median:.2f} | {queued.cell(2)} |")
    print(f"| applied at collection (exporting thread), per call | {median:.2f} | [{q1:.2f}, {q3:.2f}] |")
    print(f"| in all | {total:.2f} | |")
    print(
        f"\nper call: {queued.median:.2f} µs on the calling thread, {total:.2f} µs in all = "
        f"{times(total, history_us)} DSPy's history cost ({history_us:.0f} µs per call, part 1 or --history-us); "
        "goal ≤ 5 µs: "
        f"calling thread {'met' if queued.median <= 5 else 'not met'}, in all {'met' if total <= 5 else 'not met'}; "
        f"dspy.lm.calls counted {counted:,} of {rounds * (calls + WARM_CALLS):,}"
    )
    print(
        f"the workload call that finds {MAX_QUEUED:,} LM and module calls queued ({MAX_QUEUED // QUEUED_PER_CALL:,} "
        f"workload calls) applies them: {', '.join(f'{ms:,.0f}' for ms in full_ms)} ms of CPU (3 times); a full "
        f"queue holds {held / 2**20:.2f} MiB ({held * QUEUED_PER_CALL / MAX_QUEUED:,.0f} B per workload call, "
        "tracemalloc)"
    )


def _full_queue_call_ms(instruments: Instruments, record: Callable[[], None]) -> float:
    """CPU ms of the workload call that finds the queue full (``MAX_QUEUED`` calls waiting) and applies it."""
    instruments.apply()
    for _ in range(MAX_QUEUED // QUEUED_PER_CALL):
        record()
    started = time.thread_time_ns()
    record()
    return (time.thread_time_ns() - started) / 1e6


def _full_queue_bytes(instruments: Instruments, request: dict[str, Any], result: dict[str, Any]) -> int:
    """Bytes tracemalloc sees held by a full queue (``MAX_QUEUED`` calls), each LM call with dicts of its own."""
    instruments.apply()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(MAX_QUEUED // QUEUED_PER_CALL):
        instruments.lm_call(dict(request), dict(result), 0.0012, None)
        instruments.module_call("ChainOfThought", 0.0015, None)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    instruments.apply()
    return held

"""The instruments dspy-otel records, and the small, bounded attribute sets it records them with.

| metric | type, unit | attributes |
| --- | --- | --- |
| ``gen_ai.client.token.usage`` | histogram, ``{token}`` | ``gen_ai.token.type`` (``input`` / ``output``) + the LM set |
| ``gen_ai.client.operation.duration`` | histogram, ``s`` | the LM set, ``error.type`` on failures |
| ``dspy.lm.cost`` | counter, ``{USD}`` | the LM set |
| ``dspy.lm.calls`` | counter, ``{call}`` | the LM set, ``dspy.lm.cache_hit``, ``error.type`` on failures |
| ``dspy.lm.retries`` | counter, ``{retry}`` | the LM set, ``error.type`` of the attempt that failed |
| ``dspy.module.duration`` | histogram, ``s`` | ``dspy.module.class``, ``error.type`` on failures |
| ``dspy_otel.telemetry.spans`` | counter, ``{span}`` | ``outcome`` (exported, failed, dropped_queue_full, ...) |
| ``dspy_otel.telemetry.attributes`` | counter, ``{attribute}`` | ``outcome`` (dropped: left out by the OTLP encoder) |
| ``dspy_otel.tail.traces`` | counter, ``{trace}`` | ``decision`` (kept, dropped, kept_by_head, evicted, ...) |

The LM set is ``gen_ai.operation.name``, ``gen_ai.provider.name``, ``gen_ai.request.model``,
``gen_ai.response.model``, ``server.address`` and ``server.port``: never a prompt, an id or a
free-form value. Cache hits bill no tokens, so they record no token usage and no cost.

Recording costs the calling thread next to nothing: a call is queued as it is (the
attributes it already has, its duration) and applied to the instruments by a
background thread, every second and whenever metrics are collected (so every export
and shutdown sees every call). The OpenTelemetry SDK spends tens of µs on each call's
measurements; this way a DSPy call does not wait for them. If calls come faster than
the thread applies them, past :data:`MAX_QUEUED` queued calls each new call applies
two queued ones itself, so memory stays bounded without stalling any one call.
``dspy_otel.telemetry.calls`` counts the calls applied. The histograms carry no
exemplars (trace IDs): the measurements are applied where no span is current.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics
from opentelemetry.semconv.attributes import error_attributes, server_attributes

from dspy_otel import _stats
from dspy_otel._attributes import CACHE_HIT, MODULE_CLASS, USAGE_COST

TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
LM_KEYS = (
    gen_ai.GEN_AI_OPERATION_NAME,
    gen_ai.GEN_AI_PROVIDER_NAME,
    gen_ai.GEN_AI_REQUEST_MODEL,
    gen_ai.GEN_AI_RESPONSE_MODEL,
    server_attributes.SERVER_ADDRESS,
    server_attributes.SERVER_PORT,
)
MAX_QUEUED = 10_000
APPLY_EVERY_S = 1.0
_SPAN_OUTCOMES = (
    "exported",
    "failed",
    "dropped_queue_full",
    "abandoned_at_exit",
    "unconfirmed_at_exit",
    "encoder_fallback",
)
_TAIL_DECISIONS = ("kept", "dropped", "kept_by_head", "evicted", "timed_out", "flushed")


class Instruments:
    """Records one LM call or one module call on every instrument it concerns.

    Args:
        meter: The meter to create the instruments with.
    """

    def __init__(self, meter: Meter) -> None:
        self._tokens = meter.create_histogram(
            gen_ai_metrics.GEN_AI_CLIENT_TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self._duration = meter.create_histogram(
            gen_ai_metrics.GEN_AI_CLIENT_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._cost = meter.create_counter(
            "dspy.lm.cost", unit="{USD}", description="LM cost in US dollars, as DSPy reports it."
        )
        self._calls = meter.create_counter("dspy.lm.calls", unit="{call}", description="LM calls, cache hits included.")
        self._retries = meter.create_counter(
            "dspy.lm.retries", unit="{retry}", description="LM requests DSPy sent again after a failed attempt."
        )
        self._module = meter.create_histogram(
            "dspy.module.duration",
            unit="s",
            description="Duration of DSPy module calls, by module class.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._applied = 0
        self._reset()
        reset = weakref.WeakMethod(self._reset)
        os.register_at_fork(after_in_child=lambda: (method := reset()) is not None and method())
        meter.create_observable_counter(
            "dspy_otel.telemetry.calls",
            callbacks=[self._apply_queued],
            unit="{call}",
            description="LM and module calls applied to the metrics (queued calls are applied first).",
        )
        meter.create_observable_counter(
            "dspy_otel.telemetry.spans",
            callbacks=[_observe("export_spans_", "outcome", _SPAN_OUTCOMES)],
            unit="{span}",
            description="Spans exported, failed or lost by dspy-otel (dspy_otel.stats()).",
        )
        meter.create_observable_counter(
            "dspy_otel.telemetry.attributes",
            callbacks=[_observe("encoding_attributes_", "outcome", ("dropped",))],
            unit="{attribute}",
            description="Span attributes the OTLP encoder could not write and left out (dspy_otel.stats()).",
        )
        meter.create_observable_counter(
            "dspy_otel.tail.traces",
            callbacks=[_observe("tail_traces_", "decision", _TAIL_DECISIONS)],
            unit="{trace}",
            description="Traces decided by the in-process tail sampler (dspy_otel.stats()).",
        )

    def lm_call(
        self,
        request: Mapping[str, Any],
        result: Mapping[str, Any],
        duration_s: float,
        error_type: str | None,
    ) -> None:
        """Queue one LM call, with its request and result span attributes (neither is changed later)."""
        self._queue((self._lm_call, request, result, duration_s, error_type))

    def lm_retry(self, request: Mapping[str, Any], error_type: str) -> None:
        """Queue one retry of an LM call (``request``: its request span attributes)."""
        self._queue((self._lm_retry, request, error_type))

    def module_call(self, module_class: str, duration_s: float, error_type: str | None) -> None:
        """Queue one module call's duration."""
        self._queue((self._module_call, module_class, duration_s, error_type))

    def _reset(self) -> None:
        """Start with nothing queued (at creation, and in a forked child: the parent applies its own)."""
        self._queued: deque[tuple[Any, ...]] = deque()
        self._lock = threading.Lock()  # taken only to apply: queueing is a lock-free deque append
        self._worker: threading.Thread | None = None

    def _queue(self, call: tuple[Any, ...]) -> None:
        self._queued.append(call)
        if self._worker is None:
            self._start_worker()
        if len(self._queued) > MAX_QUEUED and self._lock.acquire(blocking=False):
            try:  # calls come faster than the thread applies them: this call helps, a little
                self._apply(2)
            finally:
                self._lock.release()

    def _start_worker(self) -> None:
        this = weakref.ref(self)

        def run() -> None:
            while (instruments := this()) is not None:
                instruments.apply()
                del instruments
                time.sleep(APPLY_EVERY_S)

        self._worker = threading.Thread(target=run, name="dspy-otel-metrics", daemon=True)
        self._worker.start()

    def apply(self) -> int:
        """Apply every queued call to the instruments; returns how many calls were applied in all."""
        with self._lock:
            return self._apply(None)

    def _apply(self, at_most: int | None) -> int:
        done = 0
        while self._queued and (at_most is None or done < at_most):
            record, *args = self._queued.popleft()
            record(*args)
            self._applied += 1
            done += 1
        return self._applied

    def _apply_queued(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(self.apply())]

    def _lm_call(
        self, request: Mapping[str, Any], result: Mapping[str, Any], duration_s: float, error_type: str | None
    ) -> None:
        attributes = {key: value for key in LM_KEYS if (value := result.get(key, request.get(key))) is not None}
        if error_type is not None:
            attributes[error_attributes.ERROR_TYPE] = error_type
        self._duration.record(duration_s, attributes)
        cache_hit = bool(result.get(CACHE_HIT, False))
        self._calls.add(1, {**attributes, CACHE_HIT: cache_hit})
        if cache_hit:
            return
        for token_type, key in (
            ("input", gen_ai.GEN_AI_USAGE_INPUT_TOKENS),
            ("output", gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS),
        ):
            tokens = result.get(key)
            if isinstance(tokens, int):
                self._tokens.record(tokens, {**attributes, gen_ai.GEN_AI_TOKEN_TYPE: token_type})
        cost = result.get(USAGE_COST)
        if isinstance(cost, float) and cost > 0:
            self._cost.add(cost, attributes)

    def _lm_retry(self, request: Mapping[str, Any], error_type: str) -> None:
        attributes = {key: value for key in LM_KEYS if (value := request.get(key)) is not None}
        self._retries.add(1, {**attributes, error_attributes.ERROR_TYPE: error_type})

    def _module_call(self, module_class: str, duration_s: float, error_type: str | None) -> None:
        attributes = {MODULE_CLASS: module_class}
        if error_type is not None:
            attributes[error_attributes.ERROR_TYPE] = error_type
        self._module.record(duration_s, attributes)


def _observe(prefix: str, key: str, names: Iterable[str]) -> Any:
    def callback(options: CallbackOptions) -> Iterable[Observation]:
        counts = _stats.stats()
        return [Observation(counts.get(f"{prefix}{name}", 0), {key: name}) for name in names]

    return callback

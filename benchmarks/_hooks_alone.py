"""Part 5 of ``breakdown.py``: dspy-otel's own work for one workload call, without DSPy's.

One real workload call is made first, and what dspy-otel's hooks receive during
it is kept: the ``ChainOfThought`` and its inner ``Predict`` with their inputs,
the LM with its arguments, the call result DSPy hands to ``finalize`` and the
LM's outputs. A timed "call" then runs exactly the hooks one workload call runs
(open the module span, find the inner ``Predict`` folded, open the LM span, read
the result, close both), with the same objects, against a loop that runs
nothing: CPU time of the calling thread, shuffled paired rounds, untimed calls
first in every block. What it leaves out is small and the same in every step:
the three wrapper frames around the DSPy methods.

This resolves a few µs where part 1 cannot, but the caches are warm (no DSPy
work between calls), so it is a lower bound of what a call costs in a program.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from _paired import shuffled_rounds
from dspy_otel.instrumentation._hooks import SpanHooks

NOTHING = "nothing"


@dataclass(frozen=True)
class Captured:
    """What the hooks received during one real workload call."""

    program: Any
    inputs: dict[str, Any]
    lm: Any
    lm_args: tuple[Any, ...]
    lm_kwargs: dict[str, Any]
    result: Any
    lm_outputs: Any
    outputs: Any


def capture(program: Any, lm: Any, inputs: dict[str, Any]) -> Captured:
    """Make one workload call and keep what the hooks would receive (DSPy is restored after)."""
    import dspy
    from dspy.clients import execution

    seen: dict[str, Any] = {}
    finalize, lm_call = execution.finalize, dspy.LM.__call__

    def observe_finalize(lm: Any, call: Any, result: Any) -> Any:
        seen["result"] = result
        return finalize(lm, call, result)

    def observe_lm(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen["args"], seen["kwargs"] = args, dict(kwargs)
        seen["lm_outputs"] = lm_call(self, *args, **kwargs)
        return seen["lm_outputs"]

    execution.finalize, dspy.LM.__call__ = observe_finalize, observe_lm
    try:
        outputs = program(**inputs)
    finally:
        execution.finalize, dspy.LM.__call__ = finalize, lm_call
    return Captured(program, inputs, lm, seen["args"], seen["kwargs"], seen["result"], seen["lm_outputs"], outputs)


def one_call(hooks: SpanHooks, c: Captured) -> Callable[[], None]:
    """The hooks of one workload call, in the order DSPy runs them."""
    inner = c.program.predict

    def call() -> None:
        module = hooks.start_module(c.program, (), c.inputs)
        folded = hooks.start_module(inner, (), c.inputs)
        assert folded is None  # the ChainOfThought span stands for its Predict
        lm = hooks.start_lm(c.lm, c.lm_args, c.lm_kwargs)
        hooks.on_lm_result(c.result)
        if lm is not None:
            hooks.end(lm, c.lm_outputs, None)
        if module is not None:
            hooks.end(module, c.outputs, None)

    return call


def time_hooks(
    hooks: dict[str, SpanHooks], captured: Captured, rounds: int, calls: int, seed: int
) -> dict[str, list[float]]:
    """CPU µs per call of each step's hooks and of :data:`NOTHING`, per round (shuffled, paired)."""
    runs: dict[str, Callable[[], None]] = {step: one_call(h, captured) for step, h in hooks.items()}
    runs[NOTHING] = lambda: None
    warm = max(1, calls // 10)

    def run_block(step: str) -> float:
        run = runs[step]
        gc.collect()
        for _ in range(warm):
            run()
        started = time.thread_time_ns()
        for _ in range(calls):
            run()
        return (time.thread_time_ns() - started) / calls / 1000

    return shuffled_rounds(tuple(runs), rounds, run_block, seed)

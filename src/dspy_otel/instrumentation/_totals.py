"""Run totals: what the LM calls beneath a module span billed, on that span.

Each module span (the top-level one of a run included) carries the input and
output tokens and the cost of every LM call beneath it, so Jaeger shows what a
run cost and tail policies or backends can read it from one span:
``dspy.run.usage.input_tokens``, ``dspy.run.usage.output_tokens`` and
``dspy.run.cost`` (only when some call reported a cost). A cache hit adds
nothing; a call whose result came back and then failed adds what it billed.

An LM call adds to the totals of the module it runs in; a module, when it
ends, adds its totals to its parent's. The totals travel in the OpenTelemetry
context, which reaches ``dspy.Parallel``'s worker threads. Each thread adds to
a slot of its own, so no lock is taken and no update is lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from threading import get_ident
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.trace import Span

from dspy_otel._attributes import RUN_COST, RUN_INPUT_TOKENS, RUN_OUTPUT_TOKENS, USAGE_COST

CURRENT = otel_context.create_key("dspy_otel.totals")
"""The context key of the :class:`Totals` that LM calls made now add to."""


class Totals:
    """Tokens and cost of the LM calls beneath one module span, one slot per thread that added to it."""

    __slots__ = ("_slots",)

    def __init__(self) -> None:
        # thread id -> [LM calls, input tokens, output tokens, cost, calls that reported a cost]
        self._slots: dict[int, list[Any]] = {}

    def add(self, calls: int, input_tokens: int, output_tokens: int, cost: float, costed: int) -> None:
        """Add ``calls`` LM calls with what they billed (``costed``: how many of them reported a cost)."""
        ident = get_ident()
        slot = self._slots.get(ident)
        if slot is None:
            slot = self._slots.setdefault(ident, [0, 0, 0, 0.0, 0])
        slot[0] += calls
        slot[1] += input_tokens
        slot[2] += output_tokens
        slot[3] += cost
        slot[4] += costed

    def add_call(self, attributes: Mapping[str, Any]) -> None:
        """Add one LM call from its result attributes (a cache hit has no tokens and no cost there)."""
        cost = attributes.get(USAGE_COST)
        self.add(
            1,
            attributes.get(gen_ai.GEN_AI_USAGE_INPUT_TOKENS, 0),
            attributes.get(gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS, 0),
            cost or 0.0,
            cost is not None,
        )

    def sums(self) -> tuple[int, int, int, float, int]:
        """(LM calls, input tokens, output tokens, cost, calls with a cost), summed over threads."""
        calls = input_tokens = output_tokens = costed = 0
        cost = 0.0
        for slot in list(self._slots.values()):
            calls += slot[0]
            input_tokens += slot[1]
            output_tokens += slot[2]
            cost += slot[3]
            costed += slot[4]
        return calls, input_tokens, output_tokens, cost, costed

    def finish(self, span: Span, parent: Totals | None) -> None:
        """Put the totals on ``span`` (when any LM call ran beneath it) and add them to ``parent``'s."""
        calls, input_tokens, output_tokens, cost, costed = self.sums()
        if not calls:
            return
        if span.is_recording():
            attributes: dict[str, Any] = {RUN_INPUT_TOKENS: input_tokens, RUN_OUTPUT_TOKENS: output_tokens}
            if costed:
                attributes[RUN_COST] = cost
            span.set_attributes(attributes)
        if parent is not None:
            parent.add(calls, input_tokens, output_tokens, cost, costed)


def current(context: otel_context.Context) -> Totals | None:
    """The totals LM calls made in ``context`` add to (``None`` outside any module span)."""
    totals = context.get(CURRENT)
    return totals if isinstance(totals, Totals) else None

"""Head samplers by name (``OTEL_TRACES_SAMPLER``), their arguments, and the sampler dspy-otel installs.

The six standard names of the OpenTelemetry specification and dspy-otel's two:

| ``OTEL_TRACES_SAMPLER`` | ``OTEL_TRACES_SAMPLER_ARG`` |
| --- | --- |
| ``always_on``, ``always_off``, ``parentbased_always_on``, ``parentbased_always_off`` | not read |
| ``traceidratio``, ``parentbased_traceidratio`` | ratio, 0.0 to 1.0 (default 1.0) |
| ``dspy_otel_rate_limiting`` | new traces per second, > 0 (default 10) |
| ``dspy_otel_rules`` | rules, see :mod:`dspy_otel.sampling.rules` (default ``*:1``) |

dspy-otel's two are also ``opentelemetry_traces_sampler`` entry points, so
``opentelemetry-instrument`` finds them by name (:func:`rate_limiting_factory`,
:func:`rules_factory`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import sampling
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, TraceState, get_current_span
from opentelemetry.util.types import Attributes

from dspy_otel.sampling import rate_limiting, rules
from dspy_otel.sampling._ratio import parse_ratio
from dspy_otel.sampling._scopes import debugging

logger = logging.getLogger("dspy_otel")


@dataclass(frozen=True)
class HeadSampler:
    """One ``OTEL_TRACES_SAMPLER`` name.

    Attributes:
        build: Makes the sampler from its parsed argument.
        parse_arg: Parses ``OTEL_TRACES_SAMPLER_ARG`` (``None``: the sampler takes no argument).
        default_arg: The argument when none is given.
    """

    build: Callable[[Any], Sampler]
    parse_arg: Callable[[str], Any] | None = None
    default_arg: Any = None


HEAD_SAMPLERS: dict[str, HeadSampler] = {
    "always_on": HeadSampler(lambda _: sampling.ALWAYS_ON),
    "always_off": HeadSampler(lambda _: sampling.ALWAYS_OFF),
    "traceidratio": HeadSampler(sampling.TraceIdRatioBased, parse_ratio, 1.0),
    "parentbased_always_on": HeadSampler(lambda _: sampling.DEFAULT_ON),
    "parentbased_always_off": HeadSampler(lambda _: sampling.DEFAULT_OFF),
    "parentbased_traceidratio": HeadSampler(sampling.ParentBasedTraceIdRatio, parse_ratio, 1.0),
    rate_limiting.NAME: HeadSampler(
        lambda per_s: sampling.ParentBased(rate_limiting.RateLimitingSampler(per_s)),
        rate_limiting.parse_arg,
        rate_limiting.DEFAULT_PER_S,
    ),
    rules.NAME: HeadSampler(
        lambda parsed: sampling.ParentBased(rules.RulesSampler(parsed)), rules.parse_rules, rules.parse_rules("*:1")
    ),
}


def parse_sampler_arg(raw: str, *, sampler: str) -> Any:
    """Parse ``OTEL_TRACES_SAMPLER_ARG`` for ``sampler``.

    A sampler that reads no argument (``always_on``, or the default one when ``OTEL_TRACES_SAMPLER``
    is invalid) makes a set argument an error that says which samplers would accept it: the
    argument is checked against every sampler that could read it, whatever the sampler.

    Raises:
        ValueError: ``"allowed: ..."``: the argument is invalid for ``sampler``, or ``sampler`` reads none.
    """
    parse = HEAD_SAMPLERS[sampler].parse_arg
    if parse is not None:
        return parse(raw)
    fits = []
    for name, head in HEAD_SAMPLERS.items():
        try:
            if head.parse_arg is not None and head.parse_arg(raw) is not None:
                fits.append(name)
        except ValueError:
            continue
    raise ValueError(
        f"allowed: unset, since the sampler in use, {sampler}, reads no argument; "
        f"{raw.strip()!r} would suit {', '.join(fits) or 'no sampler'}"
    )


def build_head(name: str, arg: Any) -> Sampler:
    """The sampler called ``name`` with its parsed argument (``None``: its default)."""
    head = HEAD_SAMPLERS[name]
    return head.build(head.default_arg if arg is None else arg)


def _factory(name: str, arg: float | str | None) -> Sampler:
    """An entry-point factory: a bad argument is logged in one line and the default used, never raised."""
    head = HEAD_SAMPLERS[name]
    parsed = None
    if arg is not None and str(arg).strip() and head.parse_arg is not None:
        try:
            parsed = head.parse_arg(str(arg))
        except ValueError as exc:
            logger.warning(
                "dspy-otel: ignoring OTEL_TRACES_SAMPLER_ARG=%r for %s (%s); using %s",
                arg,
                name,
                exc,
                head.default_arg,
            )
    return build_head(name, parsed)


def rate_limiting_factory(arg: float | str | None) -> Sampler:
    """``opentelemetry_traces_sampler`` entry point ``dspy_otel_rate_limiting``."""
    return _factory(rate_limiting.NAME, arg)


def rules_factory(arg: float | str | None) -> Sampler:
    """``opentelemetry_traces_sampler`` entry point ``dspy_otel_rules``."""
    return _factory(rules.NAME, arg)


class DSPyOtelSampler(Sampler):
    """The sampler :func:`dspy_otel.configure` installs: a head sampler, plus ``debug()`` and the tail.

    Inside :func:`dspy_otel.debug` every span is sampled. With ``record_dropped`` (tail sampling
    on), a span the head sampler drops is still recorded, unsampled, for the tail sampler to decide.

    Args:
        inner: The head sampler.
        record_dropped: Turn DROP into RECORD_ONLY.
    """

    def __init__(self, inner: Sampler, *, record_dropped: bool) -> None:
        self.inner = inner
        self._record_dropped = record_dropped

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        """The head decision, overridden by ``debug()``, with drops recorded when the tail decides."""
        if debugging(parent_context):
            parent = get_current_span(parent_context).get_span_context()
            return SamplingResult(
                Decision.RECORD_AND_SAMPLE, attributes, parent.trace_state if parent.is_valid else None
            )
        result = self.inner.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)
        if self._record_dropped and result.decision is Decision.DROP:
            return SamplingResult(Decision.RECORD_ONLY, attributes, result.trace_state)
        return result

    def get_description(self) -> str:
        """``DSPyOtel{inner}`` (``+tail`` when dropped spans are recorded for the tail sampler)."""
        return f"DSPyOtel{{{self.inner.get_description()}{'+tail' if self._record_dropped else ''}}}"

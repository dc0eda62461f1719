"""``dspy_otel_rules``: the first matching rule gives the ratio, decided when the trace starts.

``OTEL_TRACES_SAMPLER=dspy_otel_rules`` with ``OTEL_TRACES_SAMPLER_ARG`` set to
rules separated by ``;``. Each rule is ``CONDITIONS:RATIO``:

- ``RATIO`` is a number from 0.0 to 1.0 (trace-ID based, the same decision as
  ``traceidratio`` at that ratio, so other services agree);
- ``CONDITIONS`` is ``*`` (always matches) or one or more conditions joined by
  ``&``, all of which must hold:

  - ``module=NAME``: the root span is a DSPy module of class ``NAME`` (its
    ``dspy.module.class``, with or without the enclosing names);
  - ``name=NAME``: the span name (``ChainOfThought``, ``chat gpt-4o-mini``, ...);
  - ``KEY=VALUE``: the start attribute ``KEY`` (``gen_ai.request.model``, ...)
    has the value ``VALUE``.

  ``NAME`` and ``VALUE`` may use shell wildcards (``*``, ``?``, ``[abc]``).

Rules are tried in order on the root span of each trace (spans below it follow
their parent, so a trace is kept or dropped whole). A root that no rule matches
is kept (write a last ``*:RATIO`` rule to change that). A bare number ``R`` is
the same as ``*:R``.

Examples:
    ``module=Triage:1.0;module=Classify:0.01;*:0.1`` — every ``Triage`` run,
    1 % of ``Classify`` runs, 10 % of the rest.

    ``gen_ai.request.model=gpt-4o*:0.5;*:0.05`` — half of the traces whose root
    is a call to a ``gpt-4o`` model, 5 % of the rest.

    >>> from dspy_otel.sampling.rules import parse_rules
    >>> str(parse_rules("module=Triage:1; *:0.1"))
    'module=Triage:1;*:0.1'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, TraceState
from opentelemetry.util.types import Attributes

from dspy_otel._attributes import MODULE_CLASS
from dspy_otel.sampling._ratio import keeps, parse_ratio

NAME = "dspy_otel_rules"
_GRAMMAR = "rules 'CONDITIONS:RATIO;...' where CONDITIONS is * or KEY=VALUE joined by & (e.g. module=Triage:1.0;*:0.1)"


@dataclass(frozen=True)
class Condition:
    """One ``KEY=VALUE`` condition (``KEY`` is ``module``, ``name`` or an attribute key)."""

    key: str
    pattern: str

    def matches(self, name: str, attributes: Mapping[str, object]) -> bool:
        """Whether a span starting with this name and these attributes satisfies the condition."""
        if self.key == "name":
            return fnmatchcase(name, self.pattern)
        if self.key == "module":
            module = attributes.get(MODULE_CLASS)
            return isinstance(module, str) and (
                fnmatchcase(module, self.pattern) or fnmatchcase(module.rpartition(".")[2], self.pattern)
            )
        value = attributes.get(self.key)
        if value is None:
            return False
        text = str(value).lower() if isinstance(value, bool) else str(value)
        return fnmatchcase(text, self.pattern)

    def __str__(self) -> str:
        return f"{self.key}={self.pattern}"


@dataclass(frozen=True)
class Rule:
    """Conditions that must all hold (none = ``*``) and the ratio they give."""

    conditions: tuple[Condition, ...]
    ratio: float

    def __str__(self) -> str:
        return f"{'&'.join(map(str, self.conditions)) or '*'}:{self.ratio:g}"


@dataclass(frozen=True)
class Rules:
    """A parsed rule list; ``str()`` gives it back in canonical form."""

    rules: tuple[Rule, ...]

    def ratio_for(self, name: str, attributes: Mapping[str, object]) -> float:
        """The ratio of the first rule that matches (1.0 when none does)."""
        for rule in self.rules:
            if all(c.matches(name, attributes) for c in rule.conditions):
                return rule.ratio
        return 1.0

    def __str__(self) -> str:
        return ";".join(map(str, self.rules))


def _condition(text: str) -> Condition:
    key, eq, pattern = text.partition("=")
    if not eq or not key.strip() or not pattern.strip():
        raise ValueError(f"allowed: {_GRAMMAR}; {text!r} is not KEY=VALUE")
    return Condition(key.strip(), pattern.strip())


def _rule(text: str) -> Rule:
    conditions, colon, ratio = text.rpartition(":")
    if not colon:
        conditions, ratio = "*", text
    try:
        value = parse_ratio(ratio)
    except ValueError:
        raise ValueError(f"allowed: {_GRAMMAR}; {ratio.strip()!r} in {text!r} is not a ratio from 0.0 to 1.0") from None
    if conditions.strip() == "*":
        return Rule((), value)
    return Rule(tuple(_condition(c) for c in conditions.split("&")), value)


def parse_rules(raw: str) -> Rules:
    """Parse the rule grammar above; raises ``ValueError("allowed: ...")`` naming the bad part."""
    parts = [p.strip() for p in raw.split(";") if p.strip()]
    if not parts:
        raise ValueError(f"allowed: {_GRAMMAR}")
    return Rules(tuple(_rule(p) for p in parts))


class RulesSampler(Sampler):
    """Samples a root span at the ratio of the first rule it matches (wrap in ``ParentBased``).

    Args:
        rules: The parsed rules (:func:`parse_rules`).
    """

    def __init__(self, rules: Rules) -> None:
        self._rules = rules

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
        """Keep the trace if its ID falls within the matching rule's ratio."""
        sampled = keeps(trace_id, self._rules.ratio_for(name, attributes or {}))
        return SamplingResult(Decision.RECORD_AND_SAMPLE if sampled else Decision.DROP, attributes if sampled else None)

    def get_description(self) -> str:
        """``DSPyOtelRules{...}`` with the rules in canonical form."""
        return f"DSPyOtelRules{{{self._rules}}}"

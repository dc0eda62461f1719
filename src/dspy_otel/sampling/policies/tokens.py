"""``tokens:N``: keep every trace whose LM calls used at least ``N`` tokens in total (input + output)."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai

from dspy_otel.sampling.policies._base import TraceView, number_sum

NAME = "tokens"
_KEYS = (gen_ai.GEN_AI_USAGE_INPUT_TOKENS, gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS)


@dataclass(frozen=True)
class TokensPolicy:
    """Keeps a trace whose spans report at least ``min_tokens`` tokens (cache hits report none)."""

    min_tokens: int

    def keeps(self, trace: TraceView) -> bool:
        """Whether the trace used at least the threshold."""
        return number_sum(trace, _KEYS) >= self.min_tokens

    def __str__(self) -> str:
        return f"{NAME}:{self.min_tokens}"


def parse(arg: str | None) -> TokensPolicy:
    """``tokens:N`` with ``N`` an integer >= 1."""
    try:
        value = int(arg or "")
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError("allowed: tokens:N with N an integer >= 1 (e.g. tokens:20000)")
    return TokensPolicy(value)

"""``errors``: keep every trace in which any span has status ERROR."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.trace import StatusCode

from dspy_otel.sampling.policies._base import TraceView

NAME = "errors"


@dataclass(frozen=True)
class ErrorsPolicy:
    """Keeps a trace that has at least one span with status ERROR."""

    def keeps(self, trace: TraceView) -> bool:
        """Whether any span failed."""
        for span in trace.spans:  # noqa: SIM110 - a loop, not any() over a generator: it runs for every trace
            if span.status.status_code is StatusCode.ERROR:
                return True
        return False

    def __str__(self) -> str:
        return NAME


def parse(arg: str | None) -> ErrorsPolicy:
    """``errors`` takes no argument."""
    if arg is not None:
        raise ValueError("allowed: errors (no argument)")
    return ErrorsPolicy()

"""``latency:MS``: keep every trace whose local root took at least ``MS`` milliseconds."""

from __future__ import annotations

from dataclasses import dataclass

from dspy_otel.sampling.policies._base import TraceView

NAME = "latency"


@dataclass(frozen=True)
class LatencyPolicy:
    """Keeps a trace at least ``threshold_ms`` long (root duration)."""

    threshold_ms: float

    def keeps(self, trace: TraceView) -> bool:
        """Whether the trace took at least the threshold."""
        return trace.duration_ns >= self.threshold_ms * 1e6

    def __str__(self) -> str:
        return f"{NAME}:{self.threshold_ms:g}"


def parse(arg: str | None) -> LatencyPolicy:
    """``latency:MS`` with ``MS`` >= 0."""
    try:
        threshold = float(arg or "")
    except ValueError:
        threshold = -1.0
    if not 0.0 <= threshold < float("inf"):
        raise ValueError("allowed: latency:MS with MS a number of milliseconds >= 0 (e.g. latency:5000)")
    return LatencyPolicy(threshold)

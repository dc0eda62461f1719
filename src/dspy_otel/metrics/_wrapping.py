"""A metric exporter that wraps another: the base of dspy-otel's reporting and refusal wrappers."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics.export import MetricExporter


class WrappingMetricExporter(MetricExporter):
    """Hands flush and shutdown to ``inner``, and asks for the temporality and aggregation it asks for.

    Subclasses implement ``export`` (and may do more at shutdown, then call this one's).

    Args:
        inner: The exporter wrapped, reachable as ``self.inner`` (the shutdown path looks through it).
    """

    def __init__(self, inner: MetricExporter) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self.inner = inner

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        """Flush the inner exporter."""
        return self.inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Shut the inner exporter down."""
        self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)

"""Metrics where they are not taken: a backend that refuses OTLP metrics is told once, then left alone.

Some trace backends take OTLP traces but no metrics: Arize Phoenix's gRPC port
answers ``UNIMPLEMENTED``, others ``404``/``405`` on ``/v1/metrics``. Without this,
every export interval would log a failure. Instead, the first refusal logs one
line saying so and how to switch metrics off (``OTEL_METRICS_EXPORTER=none``),
and no metric batch is sent there again; each batch not sent is counted as
``export_metric_batches_refused`` in :func:`dspy_otel.stats`.

The refusal is seen on the transport (a gRPC client interceptor, a ``requests``
response hook), not in the exporters' log lines.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData

from dspy_otel import _stats
from dspy_otel.metrics._wrapping import WrappingMetricExporter

logger = logging.getLogger("dspy_otel")

_REFUSED_HTTP = (404, 405)


class RefusalGuard(WrappingMetricExporter):
    """Wraps an OTLP metric exporter; once the backend refuses metrics, sends none there again.

    Args:
        build: Builds the inner exporter, given the guard (whose hooks its transport calls).
        endpoint: Where the metrics go, for the line.
    """

    def __init__(self, build: Callable[[RefusalGuard], MetricExporter], endpoint: str) -> None:
        self.refused: str | None = None  # how the backend refused ("gRPC UNIMPLEMENTED", "HTTP 404")
        self._endpoint = endpoint
        super().__init__(build(self))  # the transport's hooks call back into this guard

    def on_http_response(self, response: Any, *args: Any, **kwargs: Any) -> None:
        """A ``requests`` response hook: a 404 or 405 means the backend takes no metrics."""
        if getattr(response, "status_code", None) in _REFUSED_HTTP:
            self.refused = f"HTTP {response.status_code}"

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        """Export through the inner exporter, unless the backend has refused metrics."""
        if self.refused is None:
            result = self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
            if self.refused is None:
                return result
            logger.warning(
                "dspy-otel: %s does not accept OTLP metrics (%s); dspy-otel sends it no more metrics. "
                "To not record metrics at all, set OTEL_METRICS_EXPORTER=none",
                self._endpoint,
                self.refused,
            )
        _stats.add({"export_metric_batches_refused": 1})
        return MetricExportResult.SUCCESS


def grpc_exporter(options: dict[str, Any]) -> RefusalGuard:
    """The gRPC OTLP metric exporter built from ``options``, behind a guard that sees ``UNIMPLEMENTED``."""
    import grpc
    from opentelemetry.exporter.otlp.proto.grpc import metric_exporter

    class _Interceptor(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]  # grpc ships no types
        def __init__(self, guard: RefusalGuard) -> None:
            self.guard = guard

        def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
            outcome = continuation(details, request)
            try:
                if outcome.code() == grpc.StatusCode.UNIMPLEMENTED:
                    self.guard.refused = "gRPC UNIMPLEMENTED"
            except Exception:  # an outcome without a code: the exporter handles it
                logger.debug("dspy-otel: no status code on a metrics export", exc_info=True)
            return outcome

    def build(guard: RefusalGuard) -> MetricExporter:
        class Exporter(metric_exporter.OTLPMetricExporter):
            # The SDK (re)creates its channel and stub here, at start and after UNAVAILABLE.
            def _initialize_channel_and_stub(self) -> None:
                super()._initialize_channel_and_stub()  # type: ignore[no-untyped-call]
                self._client = self._stub(grpc.intercept_channel(self._channel, _Interceptor(guard)))

        exporter: MetricExporter = Exporter(**options)
        return exporter

    return RefusalGuard(build, str(options.get("endpoint") or "the OTLP endpoint"))


def http_exporter(options: dict[str, Any]) -> RefusalGuard:
    """The HTTP OTLP metric exporter built from ``options``, behind a guard that sees 404 and 405."""
    import requests
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    def build(guard: RefusalGuard) -> MetricExporter:
        session = requests.Session()
        session.hooks["response"].append(guard.on_http_response)
        return OTLPMetricExporter(**options, session=session)

    return RefusalGuard(build, str(options.get("endpoint") or "the OTLP endpoint"))

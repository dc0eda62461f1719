"""The ``MeterProvider`` :func:`dspy_otel.configure` builds: ``OTEL_METRICS_EXPORTER``, every interval.

OTLP metrics go to the same collector as the traces (same endpoint, protocol, headers,
timeout and compression, all checked by the settings table), so the collector's
metrics pipeline receives them next to the traces. Failures are counted
(``export_metric_batches_failed``) and reported like span export failures; a backend
that refuses metrics is told once and then sent none (:mod:`dspy_otel.metrics.refusal`).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricExportResult,
    MetricReader,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource

from dspy_otel import _stats
from dspy_otel.config import Settings
from dspy_otel.export.reporting import FailureReport
from dspy_otel.metrics._wrapping import WrappingMetricExporter


class ReportingMetricExporter(WrappingMetricExporter):
    """Wraps a metric exporter: counts failed batches and reports them once a minute; never raises."""

    def __init__(self, inner: MetricExporter) -> None:
        super().__init__(inner)
        self._report = FailureReport("metric batches", exporter=inner)

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        """Export through the inner exporter."""
        try:
            with self._report.exporting():
                result = self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
            reason = self._report.reason()
        except Exception as exc:
            result, reason = MetricExportResult.FAILURE, f"{type(exc).__name__}: {exc}"
        if result is MetricExportResult.SUCCESS:
            self._report.succeeded()
        else:
            _stats.add({"export_metric_batches_failed": 1})
            self._report.failed(1, reason)
        return result

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Report what is not reported yet; shut the inner exporter down."""
        self._report.close()
        super().shutdown(timeout_millis, **kwargs)


def build_meter_provider(
    settings: Settings, resource: Resource, readers: Sequence[MetricReader], bad_env: Mapping[str, str]
) -> MeterProvider | None:
    """A meter provider with ``readers`` plus one periodic reader per ``OTEL_METRICS_EXPORTER`` name.

    Returns ``None`` when there is no reader at all (``none``): nothing is recorded then.
    """
    all_readers = list(readers)
    for name in settings.metrics_exporter:
        exporter: MetricExporter | None = None
        if name == "console":
            exporter = ConsoleMetricExporter(out=sys.stdout)
        elif name == "otlp":
            exporter = _otlp(settings, bad_env)
        if exporter is not None:
            interval = settings.metric_export_interval_ms
            all_readers.append(PeriodicExportingMetricReader(ReportingMetricExporter(exporter), interval))
    if not all_readers:
        return None
    return MeterProvider(metric_readers=all_readers, resource=resource, shutdown_on_exit=False)


def _otlp(settings: Settings, bad_env: Mapping[str, str]) -> MetricExporter:
    from dspy_otel.export.otlp import otlp_options, without_rejected
    from dspy_otel.metrics import refusal

    options = otlp_options(settings, "metrics")
    if settings.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc import exporter as grpc_base
        from opentelemetry.exporter.otlp.proto.grpc import metric_exporter as grpc_metrics

        with without_rejected((grpc_metrics, grpc_base), bad_env):
            return refusal.grpc_exporter(options)
    return refusal.http_exporter(options)

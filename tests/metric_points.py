"""Reading metrics back from an ``InMemoryMetricReader`` in tests."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader

Points = dict[str, list[tuple[dict[str, Any], Any]]]


def points(reader: InMemoryMetricReader) -> Points:
    """Metric name -> [(attributes, data point)] from one collection."""
    found: Points = defaultdict(list)
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    found[metric.name].append((dict(point.attributes or {}), point))
    return found


def total(found: Points, name: str, **attrs: Any) -> float:
    """Sum (counters) or sum of values (histograms) over the points whose attributes include ``attrs``."""
    values = []
    for point_attrs, point in found.get(name, []):
        if all(point_attrs.get(k.replace("__", ".")) == v for k, v in attrs.items()):
            values.append(point.sum if isinstance(point, HistogramDataPoint) else point.value)
    return sum(values)


def count(found: Points, name: str, **attrs: Any) -> int:
    return sum(
        p.count
        for a, p in found.get(name, [])
        if isinstance(p, HistogramDataPoint) and all(a.get(k.replace("__", ".")) == v for k, v in attrs.items())
    )

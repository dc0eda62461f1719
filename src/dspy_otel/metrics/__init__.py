"""Metrics that sampling cannot distort: recorded for every LM call and module, whatever the samplers keep.

- :mod:`~dspy_otel.metrics.instruments` — the GenAI client metrics (``gen_ai.client.token.usage``,
  ``gen_ai.client.operation.duration``), DSPy's own (``dspy.lm.cost``, ``dspy.lm.calls``,
  ``dspy.module.duration``) and dspy-otel's health (the counters of :func:`dspy_otel.stats`);
- :mod:`~dspy_otel.metrics.provider` — the ``MeterProvider`` :func:`dspy_otel.configure` builds from
  ``OTEL_METRICS_EXPORTER`` and ``OTEL_METRIC_EXPORT_INTERVAL``.
"""

"""The settings table's last rows: the process (exit, signals, resource), redaction, logs, metrics, the off switch."""

from __future__ import annotations

from dspy_otel.config._parse import boolean, choices, import_callable, int_at_least, key_values
from dspy_otel.config._setting import Setting
from dspy_otel.config._table_export import EXPORTERS

PROCESS_ROWS: tuple[Setting, ...] = (
    Setting(
        "exit_timeout_ms",
        "DSPY_OTEL_EXIT_TIMEOUT_MS",
        int_at_least(0),
        5000,
        "At exit (or dspy_otel.shutdown()), wait at most this long for queued spans to be exported; "
        "what is left is dropped and counted, so a dead collector never holds the program up.",
    ),
    Setting(
        "flush_on_signals",
        "DSPY_OTEL_FLUSH_ON_SIGNALS",
        boolean,
        True,
        "Export what is queued (within DSPY_OTEL_EXIT_TIMEOUT_MS) when SIGTERM, SIGINT or SIGHUP ends the process, "
        "after the handlers of the app or server (uvicorn, gunicorn) ran; false = leave signals alone.",
    ),
    Setting(
        "resource_attributes",
        "OTEL_RESOURCE_ATTRIBUTES",
        key_values,
        None,
        "Resource attributes, key=value pairs, URL-encoded (OTEL_SERVICE_NAME sets service.name).",
    ),
    Setting(
        "redact",
        "DSPY_OTEL_REDACT",
        import_callable,
        None,
        "module:function that rewrites each captured text (prompts, outputs) before it reaches a span, an event "
        "or the window, e.g. to mask e-mail addresses; configure(redact=callable) too. If it raises, the content "
        "is dropped.",
    ),
    Setting(
        "log_correlation",
        "DSPY_OTEL_LOG_CORRELATION",
        boolean,
        False,
        "true = every record of Python's logging module carries otelTraceID, otelSpanID, otelTraceSampled and "
        "otelServiceName (use them in your log format, e.g. %(otelTraceID)s).",
    ),
    Setting(
        "metrics_exporter",
        "OTEL_METRICS_EXPORTER",
        choices(EXPORTERS),
        ("otlp",),
        "Where metrics go: otlp | console | none, or a list (with configure(span_exporter=...), default none).",
    ),
    Setting(
        "metric_export_interval_ms",
        "OTEL_METRIC_EXPORT_INTERVAL",
        int_at_least(1),
        60_000,
        "Milliseconds between two metric exports.",
    ),
    Setting(
        "sdk_disabled",
        "OTEL_SDK_DISABLED",
        boolean,
        False,
        "true = create no spans at all (the instrumentation stays out of DSPy).",
    ),
)

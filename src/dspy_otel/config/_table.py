"""Every setting dspy-otel reads, in one table: :data:`TABLE`, its rows (:class:`Setting`), and :class:`Settings`.

Each row names the ``configure()`` keyword, the environment variable, the parser, the default and the
profile defaults. :func:`dspy_otel.config.resolve` walks it into a frozen :class:`Settings`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dspy_otel.config._parse import (
    KeyValues,
    boolean,
    choice,
    choices,
    existing_file,
    import_callable,
    int_at_least,
    key_values,
    seconds,
    text,
    url,
)
from dspy_otel.sampling.head import HEAD_SAMPLERS, parse_sampler_arg
from dspy_otel.sampling.policies import Policy, parse_policies

PROFILES = ("development", "staging", "production")
SAMPLERS = tuple(HEAD_SAMPLERS)
CONTENT_MODES = ("NO_CONTENT", "SPAN_ONLY", "EVENT_ONLY", "SPAN_AND_EVENT")
_CONTENT_ALIASES = {"TRUE": "SPAN_ONLY", "FALSE": "NO_CONTENT"}
EXPORTERS = ("otlp", "console", "none")
SEMCONV = ("genai", "openinference")
ENCODERS = ("dspy_otel", "sdk")
_OTLP = "OTEL_EXPORTER_OTLP_"


def _semconv(raw: str) -> tuple[str, ...]:
    values = choices(SEMCONV)(raw)
    if "genai" not in values:
        raise ValueError("allowed: genai or genai,openinference")
    return tuple(v for v in SEMCONV if v in values)


def _batch_size(raw: str, *, bsp_max_queue_size: int) -> int:
    value = int_at_least(1)(raw)
    if value > bsp_max_queue_size:
        raise ValueError(f"allowed: an integer from 1 to OTEL_BSP_MAX_QUEUE_SIZE ({bsp_max_queue_size})")
    return value


@dataclass(frozen=True)
class Setting:
    """One row of the settings table.

    Attributes:
        name: The ``configure()`` keyword and :class:`Settings` field.
        env: The environment variable that sets it.
        parse: Turns a string into the value; raises ``ValueError("allowed: ...")``.
        default: The value when neither argument, env nor profile sets it.
        doc: What it means, for the README and ``dspy-otel config``.
        profiles: Profile name -> default for that profile (overrides ``default``).
        needs: Earlier settings that ``parse`` takes as keywords. Its profile default applies only
            when those came from the same profile (a profile's sampler ratio goes with its sampler).
    """

    name: str
    env: str
    parse: Callable[..., Any]
    default: Any
    doc: str
    profiles: Mapping[str, Any] | None = None
    needs: tuple[str, ...] = ()


TABLE: tuple[Setting, ...] = (
    Setting(
        "profile",
        "DSPY_OTEL_PROFILE",
        choice(PROFILES),
        "production",
        "Coherent defaults for the settings below: development | staging | production.",
    ),
    Setting(
        "dspy_history",
        "DSPY_OTEL_DSPY_HISTORY",
        choice(("keep", "off")),
        "off",
        "DSPy's own history of every LM call, kept in process (GLOBAL_HISTORY, lm.history, module history, "
        "settings.trace): keep | off.",
        {"development": "keep"},
    ),
    Setting(
        "window",
        "DSPY_OTEL_WINDOW",
        int_at_least(0),
        0,
        "Keep a compact record of the last N LM calls for dspy_otel.inspect_history(); 0 = none.",
        {"development": 200, "staging": 50},
    ),
    Setting(
        "spans",
        "DSPY_OTEL_SPANS",
        choice(("full", "compact")),
        "full",
        "full: a span per module, predictor, LM and tool call; compact: predictors (Predict, ChainOfThought) open "
        "no span, their LM span carries their class, name and signature (about half the spans).",
    ),
    Setting(
        "semconv",
        "DSPY_OTEL_SEMCONV",
        _semconv,
        ("genai", "openinference"),
        "Conventions on module, agent and tool spans: genai (OpenTelemetry GenAI alone) | genai,openinference "
        "(also OpenInference's span kind and input/output values, which Phoenix, MLflow and Langfuse type a "
        "module span by; see docs/backends.md). LM spans carry the GenAI conventions either way.",
    ),
    Setting(
        "capture_content",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
        choice(CONTENT_MODES, _CONTENT_ALIASES, upper=True),
        "NO_CONTENT",
        "Record prompts and outputs: NO_CONTENT | SPAN_ONLY | EVENT_ONLY | SPAN_AND_EVENT "
        "(true = SPAN_ONLY, false = NO_CONTENT). Credentials are never recorded.",
        {"development": "SPAN_ONLY"},
    ),
    Setting(
        "content_max_length",
        "DSPY_OTEL_CONTENT_MAX_LENGTH",
        int_at_least(16),
        16384,
        "Characters kept of each captured content attribute; longer values are cut and marked.",
    ),
    Setting(
        "sampler",
        "OTEL_TRACES_SAMPLER",
        choice(SAMPLERS),
        "parentbased_always_on",
        f"Head sampler: {' | '.join(SAMPLERS)}.",
        {"staging": "parentbased_traceidratio"},
    ),
    Setting(
        "sampler_arg",
        "OTEL_TRACES_SAMPLER_ARG",
        parse_sampler_arg,
        None,
        "The head sampler's argument: a ratio 0.0 to 1.0 for the traceidratio samplers (default 1.0); "
        "traces per second for dspy_otel_rate_limiting (default 10); rules for dspy_otel_rules "
        "(module=Triage:1.0;*:0.1, default *:1).",
        {"staging": 0.25},
        needs=("sampler",),
    ),
    Setting(
        "tail_policies",
        "DSPY_OTEL_TAIL_POLICIES",
        parse_policies,
        (),
        "In-process tail sampling: keep a trace when any policy keeps it: errors, latency:MS, ratio:R, rate:N, "
        "attribute:KEY=VALUE, tokens:N, cost:USD (comma-separated; none = off).",
    ),
    Setting(
        "tail_decision_wait_ms",
        "DSPY_OTEL_TAIL_DECISION_WAIT_MS",
        int_at_least(1),
        30_000,
        "Tail sampling: a trace whose root has not ended this many ms after its first span is decided then.",
    ),
    Setting(
        "tail_max_traces",
        "DSPY_OTEL_TAIL_MAX_TRACES",
        int_at_least(1),
        10_000,
        "Tail sampling: traces buffered at once; past it the oldest is decided early on what it has.",
    ),
    Setting(
        "tail_max_spans_per_trace",
        "DSPY_OTEL_TAIL_MAX_SPANS_PER_TRACE",
        int_at_least(1),
        1_000,
        "Tail sampling: a trace with this many buffered spans is decided early on what it has.",
    ),
    Setting(
        "tail_max_mib",
        "DSPY_OTEL_TAIL_MAX_MIB",
        int_at_least(1),
        64,
        "Tail sampling: estimated MiB buffered in all; past it the oldest traces are decided early.",
    ),
    Setting(
        "service_name",
        "OTEL_SERVICE_NAME",
        text,
        None,
        "The service name on every span and metric (service.name; default unknown_service:python); "
        "configure(service_name=...) too.",
    ),
    Setting(
        "exporter",
        "OTEL_TRACES_EXPORTER",
        choices(EXPORTERS),
        ("otlp",),
        "Where spans go: otlp | console | none, or a comma-separated list (otlp,console).",
    ),
    Setting(
        "protocol",
        f"{_OTLP}TRACES_PROTOCOL",
        choice(("grpc", "http/protobuf")),
        "grpc",
        f"OTLP transport: grpc | http/protobuf ({_OTLP}PROTOCOL is read too).",
    ),
    Setting(
        "otlp_endpoint",
        f"{_OTLP}TRACES_ENDPOINT",
        url,
        None,
        f"Where OTLP goes (default http://localhost:4317 for grpc, http://localhost:4318 for http; for http "
        f"/v1/traces is added to a URL without a path); {_OTLP}ENDPOINT is read too; configure(endpoint=...).",
    ),
    Setting(
        "otlp_headers",
        f"{_OTLP}TRACES_HEADERS",
        key_values,
        None,
        f"Headers sent with every export, key=value pairs, URL-encoded ({_OTLP}HEADERS is read too).",
    ),
    Setting(
        "otlp_timeout_s",
        f"{_OTLP}TRACES_TIMEOUT",
        seconds,
        10.0,
        f"Seconds one export may take, retries included ({_OTLP}TIMEOUT is read too).",
    ),
    Setting(
        "otlp_compression",
        f"{_OTLP}TRACES_COMPRESSION",
        choice(("gzip", "deflate", "none")),
        "none",
        f"Compression of OTLP requests: gzip | deflate | none ({_OTLP}COMPRESSION is read too).",
    ),
    Setting(
        "otlp_insecure",
        f"{_OTLP}TRACES_INSECURE",
        boolean,
        None,
        f"grpc without TLS: true | false (default: from the endpoint's scheme; {_OTLP}INSECURE is read too).",
    ),
    Setting(
        "otlp_certificate",
        f"{_OTLP}TRACES_CERTIFICATE",
        existing_file,
        None,
        f"CA certificate file to verify the collector ({_OTLP}CERTIFICATE is read too).",
    ),
    Setting(
        "otlp_client_key",
        f"{_OTLP}TRACES_CLIENT_KEY",
        existing_file,
        None,
        f"Client private key file for mTLS ({_OTLP}CLIENT_KEY is read too).",
    ),
    Setting(
        "otlp_client_certificate",
        f"{_OTLP}TRACES_CLIENT_CERTIFICATE",
        existing_file,
        None,
        f"Client certificate file for mTLS ({_OTLP}CLIENT_CERTIFICATE is read too).",
    ),
    Setting(
        "otlp_encoder",
        "DSPY_OTEL_OTLP_ENCODER",
        choice(ENCODERS),
        "dspy_otel",
        "How OTLP requests are encoded: dspy_otel (dspy-otel's encoder: the same request for a fraction of the "
        "CPU; a batch it fails on goes through the SDK's encoder, counted in dspy_otel.stats()) | sdk (the "
        "OpenTelemetry SDK's encoder, as in the stock exporters).",
    ),
    Setting(
        "bsp_max_queue_size",
        "OTEL_BSP_MAX_QUEUE_SIZE",
        int_at_least(1),
        2048,
        "Spans waiting for export at most; past it new spans are dropped and counted (dspy_otel.stats()).",
    ),
    Setting(
        "bsp_max_export_batch_size",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
        _batch_size,
        512,
        "Spans per export request, at most OTEL_BSP_MAX_QUEUE_SIZE.",
        needs=("bsp_max_queue_size",),
    ),
    Setting(
        "bsp_schedule_delay_ms",
        "OTEL_BSP_SCHEDULE_DELAY",
        int_at_least(1),
        5000,
        "Milliseconds between two exports of whatever is queued.",
    ),
    Setting(
        "bsp_export_timeout_ms",
        "OTEL_BSP_EXPORT_TIMEOUT",
        int_at_least(0),
        30_000,
        "Milliseconds the batch processor allows one export (the SDK passes it on; the OTLP timeout applies).",
    ),
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

# A setting read from an OTLP traces variable also reads the general one when that is unset
# (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, then OTEL_EXPORTER_OTLP_ENDPOINT).
FALLBACK_ENV = {
    name: f"{_OTLP}{name.removeprefix('otlp_').removesuffix('_s').upper()}"
    for name in (
        "protocol",
        "otlp_endpoint",
        "otlp_headers",
        "otlp_timeout_s",
        "otlp_compression",
        "otlp_insecure",
        "otlp_certificate",
        "otlp_client_key",
        "otlp_client_certificate",
    )
}


@dataclass(frozen=True)
class Settings:
    """The effective settings, one field per row of :data:`TABLE`."""

    profile: str
    dspy_history: str
    window: int
    spans: str
    semconv: tuple[str, ...]
    capture_content: str
    content_max_length: int
    sampler: str
    sampler_arg: Any
    tail_policies: tuple[Policy, ...]
    tail_decision_wait_ms: int
    tail_max_traces: int
    tail_max_spans_per_trace: int
    tail_max_mib: int
    service_name: str | None
    exporter: tuple[str, ...]
    protocol: str
    otlp_endpoint: str | None
    otlp_headers: KeyValues | None
    otlp_timeout_s: float
    otlp_compression: str
    otlp_insecure: bool | None
    otlp_certificate: str | None
    otlp_client_key: str | None
    otlp_client_certificate: str | None
    otlp_encoder: str
    bsp_max_queue_size: int
    bsp_max_export_batch_size: int
    bsp_schedule_delay_ms: int
    bsp_export_timeout_ms: int
    exit_timeout_ms: int
    flush_on_signals: bool
    resource_attributes: KeyValues | None
    redact: Callable[[str], str] | None
    log_correlation: bool
    metrics_exporter: tuple[str, ...]
    metric_export_interval_ms: int
    sdk_disabled: bool
    sources: Mapping[str, str]

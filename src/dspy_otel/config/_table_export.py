"""The settings table's export rows: the service name, the exporters, OTLP and the batch span processor.

Also :data:`FALLBACK_ENV`, the general ``OTEL_EXPORTER_OTLP_*`` variable each OTLP traces row falls back to.
"""

from __future__ import annotations

from dspy_otel.config._parse import (
    boolean,
    choice,
    choices,
    existing_file,
    int_at_least,
    key_values,
    seconds,
    text,
    url,
)
from dspy_otel.config._setting import Setting

EXPORTERS = ("otlp", "console", "none")
ENCODERS = ("dspy_otel", "sdk")
_OTLP = "OTEL_EXPORTER_OTLP_"


def _batch_size(raw: str, *, bsp_max_queue_size: int) -> int:
    value = int_at_least(1)(raw)
    if value > bsp_max_queue_size:
        raise ValueError(f"allowed: an integer from 1 to OTEL_BSP_MAX_QUEUE_SIZE ({bsp_max_queue_size})")
    return value


EXPORT_ROWS: tuple[Setting, ...] = (
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

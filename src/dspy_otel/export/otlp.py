"""The span exporters ``OTEL_TRACES_EXPORTER`` names, built from the validated settings.

The OTLP exporters read the standard ``OTEL_EXPORTER_OTLP_*`` variables
themselves, and some of them raise on a bad value (a timeout of ``10s``, a
compression of ``zstd``, an endpoint like ``http://[::1``). dspy-otel reads
every one of them through its settings table instead, names a bad value in one
line and replaces it, and hands the exporters only the checked values, so a
typo in the environment never stops the program.

With ``DSPY_OTEL_OTLP_ENCODER=dspy_otel`` (the default) they are the SDK's exporters sending
dspy-otel's encoding of each batch (:mod:`~dspy_otel.export.encoded`); ``sdk`` builds the
stock ones.

At shutdown, :func:`give_up_where_refused` stops an exporter whose collector refuses
connections from waiting out its retry back-off (1 s, 2 s, 4 s, ...), so the
process exits at once instead of at the exit bound.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter

from dspy_otel.config import Settings
from dspy_otel.export.reporting import open_exporters

_patch_lock = threading.Lock()
_MAX_RECONNECT_BACKOFF_MS = 5_000
_PROBE_TIMEOUT_S = 0.25


def build_exporters(settings: Settings, bad_env: Mapping[str, str]) -> list[SpanExporter]:
    """One exporter per name in ``settings.exporter`` (``none`` adds none).

    Args:
        settings: The resolved settings.
        bad_env: Environment variables whose values were rejected; the exporters do not see them.
    """
    exporters: list[SpanExporter] = []
    for name in settings.exporter:
        if name == "console":
            exporters.append(ConsoleSpanExporter(out=sys.stdout))  # today's stdout, not the one at import
        elif name == "otlp":
            exporters.append(_grpc(settings, bad_env) if settings.protocol == "grpc" else _http(settings))
    return exporters


def otlp_options(settings: Settings, signal: str) -> dict[str, Any]:
    """The checked keyword arguments of an OTLP exporter of ``signal`` (``traces``, ``metrics``) for the protocol.

    Metrics go where the traces go: a traces URL ending in ``/v1/traces`` becomes ``/v1/metrics``.
    """
    endpoint = settings.otlp_endpoint
    options: dict[str, Any] = {
        "headers": settings.otlp_headers.as_dict() if settings.otlp_headers else None,
        "timeout": settings.otlp_timeout_s,
    }
    if settings.protocol == "grpc":
        from grpc import Compression

        compressions = {"gzip": Compression.Gzip, "deflate": Compression.Deflate}
        return {
            **options,
            "endpoint": endpoint,
            "insecure": settings.otlp_insecure,
            "compression": compressions.get(settings.otlp_compression, Compression.NoCompression),
            # gRPC waits up to 2 minutes between reconnections by default: after a collector restart,
            # export should resume within seconds
            "channel_options": (("grpc.max_reconnect_backoff_ms", _MAX_RECONNECT_BACKOFF_MS),),
        }
    from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression

    if not endpoint:
        endpoint = f"http://localhost:4318/v1/{signal}"
    elif settings.sources["otlp_endpoint"] == "env OTEL_EXPORTER_OTLP_ENDPOINT" or urlsplit(endpoint).path in "/":
        endpoint = f"{endpoint.rstrip('/')}/v1/{signal}"  # a base URL: the generic variable, or no path at all
    elif endpoint.rstrip("/").endswith("/v1/traces"):
        endpoint = f"{endpoint.rstrip('/').removesuffix('/v1/traces')}/v1/{signal}"
    return {
        **options,
        "endpoint": endpoint,
        "certificate_file": settings.otlp_certificate,
        "client_key_file": settings.otlp_client_key,
        "client_certificate_file": settings.otlp_client_certificate,
        "compression": HttpCompression(settings.otlp_compression),
    }


def _grpc(settings: Settings, bad_env: Mapping[str, str]) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.grpc import exporter as grpc_base
    from opentelemetry.exporter.otlp.proto.grpc import trace_exporter

    exporter_class: type[SpanExporter] = trace_exporter.OTLPSpanExporter
    if settings.otlp_encoder == "dspy_otel":
        from dspy_otel.export.encoded_grpc import EncodedGrpcSpanExporter as exporter_class
    with without_rejected((trace_exporter, grpc_base), bad_env):  # they read some variables whatever they get
        return exporter_class(**otlp_options(settings, "traces"))


def _http(settings: Settings) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    exporter_class: type[SpanExporter] = OTLPSpanExporter
    if settings.otlp_encoder == "dspy_otel":
        from dspy_otel.export.encoded_http import EncodedHttpSpanExporter as exporter_class
    return exporter_class(**otlp_options(settings, "traces"))


@contextmanager
def without_rejected(modules: tuple[Any, ...], bad_env: Mapping[str, str]) -> Iterator[None]:
    """While building an exporter, let ``modules`` see the environment without the rejected variables.

    Blank values go too: dspy-otel reads an empty variable as unset, some exporters read it as a number.
    """
    clean = {k: v for k, v in os.environ.items() if k not in bad_env and v.strip()}
    patched = [m for m in modules if getattr(m, "environ", None) is os.environ] if len(clean) < len(os.environ) else []
    with _patch_lock:
        for module in patched:
            module.environ = clean
        try:
            yield
        finally:
            for module in patched:
                module.environ = os.environ


def give_up_where_refused() -> None:
    """Make each open OTLP exporter whose collector refuses connections stop retrying (for shutdown).

    One TCP connection per collector address tells: refused means nothing listens, and the
    exporters' back-off (its wait is the event they also wait on at their own shutdown) is
    cut short, so an export in progress or to come fails at once. A collector that accepts
    connections, or does not answer within 0.25 s, keeps its retries (the exit bound holds anyway).
    """
    refused: dict[tuple[str, int], bool] = {}
    for found in open_exporters():
        exporter = found
        while hasattr(exporter, "inner"):  # dspy-otel's wrappers (the metrics' refusal guard) hold the exporter
            exporter = exporter.inner
        event, address = _retry_event(exporter), _address(getattr(exporter, "_endpoint", None))
        if event is None or address is None:
            continue
        if address not in refused:
            refused[address] = _refuses(address)
        if refused[address]:
            event.set()


def _retry_event(exporter: Any) -> threading.Event | None:
    """The event an OTLP exporter's retry back-off waits on (the gRPC exporter's, or its HTTP client's)."""
    for owner in (exporter, getattr(exporter, "_client", None)):
        for name in ("_shutdown_in_progress", "_shutdown_event"):
            event = getattr(owner, name, None)
            if isinstance(event, threading.Event):
                return event
    return None


def _address(endpoint: object) -> tuple[str, int] | None:
    """Host and port of an exporter's endpoint (``localhost:4317`` for gRPC, a URL for HTTP)."""
    if not isinstance(endpoint, str):
        return None
    try:
        parts = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    return (parts.hostname, port) if parts.hostname else None


def _refuses(address: tuple[str, int]) -> bool:
    try:
        socket.create_connection(address, timeout=_PROBE_TIMEOUT_S).close()
    except ConnectionRefusedError:
        return True
    except OSError:  # a timeout, no route, a name that does not resolve: not proof that nothing listens
        return False
    return False

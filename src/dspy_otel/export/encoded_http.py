"""The SDK's OTLP/HTTP span exporter, sending dspy-otel's encoding of each batch.

:meth:`EncodedHttpSpanExporter.export` is the SDK's ``export`` (opentelemetry-exporter-otlp-proto-http
1.45) with :func:`~dspy_otel.export.encoded.request_bytes` in place of the SDK's encoding: the
size bound (``max_request_size``), the exporter's own metrics, and the HTTP client with its
retries, timeout, compression, headers and TLS are the SDK's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE

from dspy_otel.export.encoded import request_bytes, say_sdk_path

_logger = logging.getLogger(OTLPSpanExporter.__module__)  # the SDK exporter's lines, with its logger


def sends_bytes(exporter: Any) -> bool:
    """Whether ``exporter`` (an SDK HTTP span exporter) has what :meth:`EncodedHttpSpanExporter.export` uses."""
    try:
        from opentelemetry.exporter.otlp.proto.http import _common
    except ImportError:
        return False
    return (
        all(hasattr(_common, name) for name in ("_is_request_too_large", "RequestPayloadTooLargeError"))
        and callable(getattr(getattr(exporter, "_client", None), "export", None))
        and callable(getattr(getattr(exporter, "_metrics", None), "export_operation", None))
        and isinstance(getattr(exporter, "_max_request_size", None), int)
    )


class EncodedHttpSpanExporter(OTLPSpanExporter):
    """``OTLPSpanExporter`` (HTTP/protobuf) sending :func:`dspy_otel.encoding.encode_spans`'s bytes.

    Takes the SDK exporter's arguments. An SDK exporter without the parts :meth:`export` uses
    (older than 1.45) exports as it is, and says so once at INFO.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.encodes = sends_bytes(self)
        if not self.encodes:
            say_sdk_path("opentelemetry-exporter-otlp-proto-http", "HTTP client taking bytes")

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Send one batch, as the SDK's exporter does, with dspy-otel's encoding."""
        if not self.encodes or self._shutdown:
            return super().export(spans)
        from opentelemetry.exporter.otlp.proto.http._common import RequestPayloadTooLargeError, _is_request_too_large

        with self._metrics.export_operation(len(spans)) as result:
            try:
                data = request_bytes(spans)
            except Exception as error:  # the SDK's encoder failed too: as the SDK's exporter does
                _logger.error("Failed to encode span batch: %s", error)
                result.error = error
                return SpanExportResult.FAILURE
            if _is_request_too_large(data, self._max_request_size):
                _logger.warning(
                    "Dropping span batch: serialized size %d bytes exceeds max_request_size %d bytes.",
                    len(data),
                    self._max_request_size,
                )
                result.error = RequestPayloadTooLargeError(
                    f"Serialized span request size {len(data)} bytes exceeds max_request_size "
                    f"{self._max_request_size} bytes."
                )
                return SpanExportResult.FAILURE
            sent = self._client.export(data)
            if not sent.success:
                result.error = sent.error
                result.error_attrs = (
                    {HTTP_RESPONSE_STATUS_CODE: sent.status_code} if sent.status_code is not None else None
                )
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

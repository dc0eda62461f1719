"""The SDK's OTLP/gRPC span exporter, sending dspy-otel's encoding of each batch.

The SDK's exporter sends ``self._translate_data(batch)`` through the ``Export`` method of a stub
it builds with ``self._stub(channel)`` (at start and on every reconnection). Here the stub's
``Export`` passes bytes through unchanged (no request serializer) and ``_translate_data``
returns :func:`~dspy_otel.export.encoded.request_bytes`: the retries, deadlines, compression,
headers, TLS, reconnection and the exporter's own metrics are the SDK's, untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from dspy_otel.export.encoded import request_bytes, say_sdk_path

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def has_channel(exporter: Any) -> bool:
    """Whether ``exporter`` (an SDK gRPC span exporter) keeps the channel its stub is built on.

    Every supported release (1.39 and newer) does; a release that stopped keeping it exports as the SDK does.
    """
    return isinstance(getattr(exporter, "_channel", None), grpc.Channel) and hasattr(exporter, "_client")


class BytesTraceServiceStub:
    """A ``TraceServiceStub`` whose ``Export`` takes the serialized request (``bytes``) as it is.

    Args:
        channel: The gRPC channel to call on.
    """

    def __init__(self, channel: Any) -> None:
        self.Export = channel.unary_unary(
            EXPORT_METHOD,
            request_serializer=None,  # gRPC sends a request without a serializer as it is: bytes
            response_deserializer=ExportTraceServiceResponse.FromString,
        )


class EncodedGrpcSpanExporter(OTLPSpanExporter):
    """``OTLPSpanExporter`` (gRPC) sending :func:`dspy_otel.encoding.encode_spans`'s bytes.

    Takes the SDK exporter's arguments. An SDK exporter without a ``_channel`` to build the stub
    on (none of the supported releases) encodes with the SDK's encoder, and says so once at INFO.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._encoded: tuple[Sequence[ReadableSpan], bytes] | None = None
        self.encodes = has_channel(self)
        if not self.encodes:
            say_sdk_path("opentelemetry-exporter-otlp-proto-grpc", "gRPC channel to send bytes on")
            return
        stub: Any = BytesTraceServiceStub  # the SDK types it as its own stub class
        self._stub = stub  # the SDK builds the stub from it again when it reconnects
        self._client = stub(self._channel)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Send one batch, with the SDK's retries; encoded once however often it is sent."""
        try:
            return super().export(spans)
        finally:
            self._encoded = None  # no batch kept once exported

    def _translate_data(self, data: Sequence[ReadableSpan]) -> Any:
        """The request ``Export`` sends: bytes for the bytes stub, else the SDK's message."""
        if not self.encodes:
            return super()._translate_data(data)
        encoded = self._encoded
        if encoded is None or encoded[0] is not data:  # the SDK calls again for each retry of the batch
            encoded = self._encoded = (data, request_bytes(data))
        return encoded[1]

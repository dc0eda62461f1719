"""OTLP encoding of spans: the bytes of an ``ExportTraceServiceRequest``, written directly.

PLACEHOLDER (issue 22, being built): delegates to the SDK's encoder until the direct encoder lands.
The interface is final: the exporters call :func:`encode_spans` and send what it returns.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan


def encode_spans(spans: Sequence[ReadableSpan]) -> bytes:
    """The serialized OTLP ``ExportTraceServiceRequest`` holding ``spans``, grouped by resource and scope."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode_spans

    return sdk_encode_spans(spans).SerializeToString()

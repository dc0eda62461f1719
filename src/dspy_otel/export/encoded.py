"""The bytes the OTLP span exporters send: dspy-otel's encoding, the SDK's when it fails on a batch.

The stock exporters of ``opentelemetry-exporter-otlp`` build a protobuf message for every batch
with the SDK's encoder, then serialize it; :func:`dspy_otel.encoding.encode_spans` writes the
same bytes directly, for a fraction of the CPU. The exporters of
:mod:`~dspy_otel.export.encoded_grpc` and :mod:`~dspy_otel.export.encoded_http` are the SDK's,
sending :func:`request_bytes` instead; everything else (retries and their back-off, timeouts,
compression, headers, TLS, reconnection, the exporter's own metrics) is the SDK's code.

A batch dspy-otel's encoder fails on (a bug: please report it) is encoded by the SDK's encoder
and sent all the same, counted in ``export_spans_encoder_fallback`` (:func:`dspy_otel.stats`),
and the error is named in one warning line (once per distinct error)::

    dspy-otel: the OTLP encoder failed on a batch of 512 spans (ValueError: ...); the SDK's encoder
    sent it (counted in export_spans_encoder_fallback); please report this

``DSPY_OTEL_OTLP_ENCODER=sdk`` (``configure(otlp_encoder="sdk")``) builds the stock exporters instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan

from dspy_otel import _stats, encoding
from dspy_otel.export.reporting import line

logger = logging.getLogger("dspy_otel")

MAX_ERRORS_NAMED = 64  # distinct encoder errors named in a warning line, at most (a bound on memory)
_named: set[str] = set()
_said: set[str] = set()


def request_bytes(spans: Sequence[ReadableSpan]) -> bytes:
    """The serialized ``ExportTraceServiceRequest`` of ``spans``: dspy-otel's encoding, else the SDK's.

    Raises:
        Exception: Only what the SDK's encoder raises on a batch that dspy-otel's encoder failed on too.
    """
    try:
        return encoding.encode_spans(spans)
    except Exception as exc:  # a bug of dspy-otel's: the SDK's encoder sends the batch
        _fell_back(len(spans), exc)
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode_spans

    return sdk_encode_spans(spans).SerializeToString()


def _fell_back(count: int, exc: Exception) -> None:
    """Count a batch the SDK's encoder had to encode; name its error the first time it is seen."""
    _stats.add({"export_spans_encoder_fallback": count})
    error = f"{type(exc).__name__}: {exc}"
    if error in _named or len(_named) >= MAX_ERRORS_NAMED:
        return
    _named.add(error)
    logger.warning(
        line(
            "the OTLP encoder failed on a batch of %s spans (%%(cut)s); the SDK's encoder sent it "
            "(counted in export_spans_encoder_fallback); please report this",
            f"{count:,}",
            cut=error,
        )
    )
    logger.debug("dspy-otel: the OTLP encoder's error", exc_info=exc)


def say_sdk_path(package: str, missing: str) -> None:
    """Say once, at INFO, that an installed exporter lacks what dspy-otel relies on, so the SDK encodes."""
    if package in _said:
        return
    _said.add(package)
    logger.info(
        line(
            "the installed %s has no %s: its spans are encoded by the SDK's encoder "
            "(a newer opentelemetry-exporter-otlp has it)",
            package,
            missing,
        )
    )

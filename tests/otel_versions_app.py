"""Traces a ChainOfThought and a manual span to OTLP receivers, in a venv of an older OpenTelemetry release.

Run by ``tests/test_otel_versions.py`` with this checkout's ``src/`` on ``PYTHONPATH``:
``python otel_versions_app.py '{"grpc dspy_otel": "http://127.0.0.1:PORT", ...}'`` (one endpoint per
protocol and encoder). For each, it imports every dspy-otel module, configures dspy-otel with that OTLP
exporter, runs the programs, shuts down, and prints one JSON line: the exporter's class, whether it sent
dspy-otel's bytes, how often dspy-otel's encoder ran, dspy-otel's log lines and every warning or
log line at WARNING and above.
"""

from __future__ import annotations

import importlib
import json
import logging
import pkgutil
import sys
import warnings
from importlib import metadata
from typing import Any

import dspy

import dspy_otel
from dspy_otel import encoding
from dspy_otel._fake_lm import FakeOpenAIServer
from dspy_otel.export.reporting import open_exporters

MANUAL_ATTRIBUTES: dict[str, Any] = {
    "app.text": "héllo ✓",
    "app.flag": True,
    "app.count": 7,
    "app.ratio": 0.5,
    "app.names": ("a", "b"),
    "app.sizes": (1, 2, 3),
    "app.ratios": (0.25, 0.75),
    "app.flags": (True, False),
}
"""The manual span's attributes: every attribute type OpenTelemetry has."""


class Lines(logging.Handler):
    """Keeps dspy-otel's lines and everyone's at WARNING and above."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.ours: list[str] = []
        self.loud: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("dspy_otel") and record.levelno >= logging.INFO:
            self.ours.append(record.getMessage())
        if record.levelno >= logging.WARNING:
            self.loud.append(f"{record.name}: {record.getMessage()}")


def run(protocol: str, encoder: str, endpoint: str, base_url: str, lines: Lines) -> dict[str, Any]:
    """Trace the programs once to ``endpoint``; what happened (see the module's docstring)."""
    calls: list[int] = []
    ours = encoding.encode_spans

    def counted(spans: Any) -> bytes:
        calls.append(len(spans))
        return ours(spans)

    encoding.encode_spans = counted
    lines.ours.clear()
    provider = dspy_otel.configure(
        exporter="otlp",
        protocol=protocol,
        endpoint=endpoint,
        otlp_encoder=encoder,
        metrics_exporter="otlp" if protocol != "grpc" else "none",  # the gRPC receiver takes traces only
    )
    span_exporter = next(e for e in open_exporters() if type(e).__name__.endswith("SpanExporter"))
    dspy.configure(lm=dspy.LM("openai/fake-model", api_base=base_url, api_key="x", cache=False))
    dspy.ChainOfThought("question -> answer")(question="What is the capital of France?")
    tracer = provider.get_tracer("otel-versions")  # the global provider is the first one
    with tracer.start_as_current_span("manual", attributes=MANUAL_ATTRIBUTES) as span:
        span.add_event("checkpoint", {"step": 1, "done": False})
        with tracer.start_as_current_span("manual child"):
            pass
    dspy_otel.shutdown()
    encoding.encode_spans = ours
    return {
        "exporter": f"{type(span_exporter).__module__}.{type(span_exporter).__name__}",
        "encodes": getattr(span_exporter, "encodes", None),
        "encoder_calls": len(calls),
        "ours": list(lines.ours),
        "stats": dspy_otel.stats(),
    }


def main(endpoints: dict[str, str]) -> None:
    """Run each protocol and encoder against its endpoint; print the outcome as JSON lines."""
    lines = Lines()
    logging.getLogger().addHandler(lines)
    logging.getLogger().setLevel(logging.INFO)
    versions = {name: metadata.version(name) for name in ("opentelemetry-sdk", "opentelemetry-exporter-otlp", "dspy")}
    print(json.dumps({"versions": versions}), flush=True)
    with warnings.catch_warnings(record=True) as caught, FakeOpenAIServer() as server:
        warnings.simplefilter("always")
        for module in pkgutil.walk_packages(dspy_otel.__path__, "dspy_otel."):
            importlib.import_module(module.name)  # whatever fails to import on this release fails here
        for key, endpoint in endpoints.items():
            protocol, encoder = key.split()
            outcome = run(protocol, encoder, endpoint, server.base_url, lines)
            print(json.dumps({"key": key, **outcome}), flush=True)
    print(json.dumps({"warnings": [f"{w.category.__name__}: {w.message}" for w in caught], "loud": lines.loud}))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))

"""The benchmark's configurations: one table read by the orchestrator and the worker.

Standard library only: ``run.py`` imports it with any Python, ``_workload.py``
imports it inside the project venv or the peers venv.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Venv = Literal["project", "peers"]
Export = Literal["null", "http/protobuf", "grpc"]


@dataclass(frozen=True)
class BenchConfig:
    """One configuration measured in its own process.

    Attributes:
        name: Short key used on the command line and between processes.
        label: What the table calls it.
        venv: ``"project"`` runs with the project interpreter and ``src/`` on the
            path; ``"peers"`` runs with the interpreter of the peers venv.
        kind: How the worker sets it up: ``"dspy"`` passes ``dspy_settings`` to
            ``dspy.configure``; ``"dspy_otel"`` calls ``dspy_otel.configure`` with
            ``otel_overrides``; ``"peer"`` instruments with ``peer_module``'s
            ``DSPyInstrumentor`` on an SDK provider with a batch processor.
        dspy_settings: Keyword arguments for ``dspy.configure`` (kind ``"dspy"``).
        otel_overrides: Keyword arguments for ``dspy_otel.configure`` (kind ``"dspy_otel"``).
        peer_module: Module that exposes ``DSPyInstrumentor`` (kind ``"peer"``).
        export: Where the spans go: ``"null"``, the null exporter (counts spans, encodes nothing);
            ``"http/protobuf"`` or ``"grpc"``, the real OTLP exporter of that protocol to the run's
            receiver (``_receiver.py``): dspy-otel's own (``configure(exporter="otlp", protocol=...,
            endpoint=...)``) or, for a peer, the SDK's ``OTLPSpanExporter``.
    """

    name: str
    label: str
    venv: Venv
    kind: Literal["dspy", "dspy_otel", "peer"]
    dspy_settings: tuple[tuple[str, bool], ...] = ()
    otel_overrides: tuple[tuple[str, str], ...] = ()
    peer_module: str = ""
    export: Export = "null"


_ALWAYS_ON = ("sampler", "always_on")
_PRODUCTION_ALWAYS_ON = (("profile", "production"), _ALWAYS_ON)
_SAMPLED_OUT = (("sampler", "parentbased_traceidratio"), ("sampler_arg", "0"))
_SDK_ENCODER = ("otlp_encoder", "sdk")  # the SDK's encoder instead of dspy-otel's (DSPY_OTEL_OTLP_ENCODER=sdk)
_GENAI_DSPY = "opentelemetry.instrumentation.genai.dspy"
_OPENINFERENCE = "openinference.instrumentation.dspy"
_FULL, _COMPACT = "dspy-otel production, every span sampled", "dspy-otel production, `spans=compact`"
_OUT = "dspy-otel production, sampled out (`sampler_arg=0`)"


def _otel_otlp(name: str, export: Export, label: str, *overrides: tuple[str, str]) -> BenchConfig:
    """dspy-otel, production profile plus ``overrides``, exporting over OTLP ``export``; no metrics, as the peers."""
    settings = (("profile", "production"), ("metrics_exporter", "none"), *overrides)
    return BenchConfig(name, f"{label}, OTLP {export}", "project", "dspy_otel", otel_overrides=settings, export=export)


def _peer(name: str, label: str, module: str, export: Export = "null") -> BenchConfig:
    """A peer instrumentation on an SDK provider whose batch processor exports to ``export``."""
    suffix = "" if export == "null" else f", OTLP {export}"
    return BenchConfig(name, label + suffix, "peers", "peer", peer_module=module, export=export)


def _real_path(short: str, export: Export) -> tuple[BenchConfig, ...]:
    """The rows of the real export path over one protocol: dspy-otel's and the peers', named ``*-{short}``."""
    return (
        _otel_otlp(f"otel-{short}", export, _FULL, _ALWAYS_ON),
        _otel_otlp(f"otel-{short}-compact", export, _COMPACT, _ALWAYS_ON, ("spans", "compact")),
        _otel_otlp(f"otel-{short}-sampled-out", export, _OUT, *_SAMPLED_OUT),
        _otel_otlp(f"otel-{short}-sdk-encoder", export, f"{_FULL}, SDK encoder", _ALWAYS_ON, _SDK_ENCODER),
        _peer(f"genai-dspy-{short}", "opentelemetry-instrumentation-genai-dspy", _GENAI_DSPY, export),
        _peer(f"openinference-{short}", "openinference-instrumentation-dspy", _OPENINFERENCE, export),
    )


CONFIGS: tuple[BenchConfig, ...] = (
    BenchConfig("defaults", "no tracing (DSPy defaults)", "project", "dspy"),
    BenchConfig(
        "no-history",
        "DSPy `disable_history=True`",
        "project",
        "dspy",
        dspy_settings=(("disable_history", True),),
    ),
    BenchConfig(
        "otel-production",
        "dspy-otel production, every span sampled",
        "project",
        "dspy_otel",
        otel_overrides=_PRODUCTION_ALWAYS_ON,
    ),
    BenchConfig(
        "otel-content",
        "dspy-otel production + `capture_content=SPAN_ONLY`",
        "project",
        "dspy_otel",
        otel_overrides=(*_PRODUCTION_ALWAYS_ON, ("capture_content", "SPAN_ONLY")),
    ),
    BenchConfig(
        "otel-head-10",
        "dspy-otel production, 10 % head sampling",
        "project",
        "dspy_otel",
        otel_overrides=(("profile", "production"), ("sampler", "parentbased_traceidratio"), ("sampler_arg", "0.1")),
    ),
    BenchConfig(
        "otel-tail-errors-5",
        "dspy-otel production, tail `errors,ratio:0.05` in process",
        "project",
        "dspy_otel",
        # no sampler: with tail policies and no head sampler chosen, the head keeps nothing and the tail decides
        otel_overrides=(("profile", "production"), ("tail_policies", "errors,ratio:0.05")),
    ),
    _peer("genai-dspy", "opentelemetry-instrumentation-genai-dspy", _GENAI_DSPY),
    _peer("openinference", "openinference-instrumentation-dspy", _OPENINFERENCE),
    # the real export path (run.py --real-path): OTLP to a receiver that accepts and discards
    *_real_path("http", "http/protobuf"),
    *_real_path("grpc", "grpc"),
)

BY_NAME: dict[str, BenchConfig] = {c.name: c for c in CONFIGS}
BASELINE = CONFIGS[0].name
REFERENCES = tuple(c.name for c in CONFIGS if c.kind == "dspy")
"""DSPy alone: the rows every table is compared with."""
NULL_EXPORT = tuple(c.name for c in CONFIGS if c.export == "null")
"""What ``run.py`` measures by default: the references and every configuration exporting to the null exporter."""
REAL_PATH = REFERENCES + tuple(c.name for c in CONFIGS if c.export != "null")
"""What ``run.py --real-path`` measures: the references and every configuration exporting over OTLP."""

"""The benchmark's configurations: one table read by the orchestrator and the worker.

Standard library only: ``run.py`` imports it with any Python, ``_workload.py``
imports it inside the project venv or the peers venv.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Venv = Literal["project", "peers"]


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
    """

    name: str
    label: str
    venv: Venv
    kind: Literal["dspy", "dspy_otel", "peer"]
    dspy_settings: tuple[tuple[str, bool], ...] = ()
    otel_overrides: tuple[tuple[str, str], ...] = ()
    peer_module: str = ""


_PRODUCTION_ALWAYS_ON = (("profile", "production"), ("sampler", "always_on"))

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
    BenchConfig(
        "genai-dspy",
        "opentelemetry-instrumentation-genai-dspy",
        "peers",
        "peer",
        peer_module="opentelemetry.instrumentation.genai.dspy",
    ),
    BenchConfig(
        "openinference",
        "openinference-instrumentation-dspy",
        "peers",
        "peer",
        peer_module="openinference.instrumentation.dspy",
    ),
)

BY_NAME: dict[str, BenchConfig] = {c.name: c for c in CONFIGS}
BASELINE = CONFIGS[0].name

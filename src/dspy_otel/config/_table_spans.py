"""The settings table's first rows: the profile, and what the spans of a DSPy program carry.

The profile, DSPy's own history, the development window, the span layout, the semantic conventions and
content capture. :mod:`~dspy_otel.config._table` puts these rows first in :data:`~dspy_otel.config.TABLE`.
"""

from __future__ import annotations

from dspy_otel.config._parse import choice, choices, int_at_least
from dspy_otel.config._setting import Setting

PROFILES = ("development", "staging", "production")
CONTENT_MODES = ("NO_CONTENT", "SPAN_ONLY", "EVENT_ONLY", "SPAN_AND_EVENT")
_CONTENT_ALIASES = {"TRUE": "SPAN_ONLY", "FALSE": "NO_CONTENT"}
SEMCONV = ("genai", "openinference")


def _semconv(raw: str) -> tuple[str, ...]:
    values = choices(SEMCONV)(raw)
    if "genai" not in values:
        raise ValueError("allowed: genai or genai,openinference")
    return tuple(v for v in SEMCONV if v in values)


SPAN_ROWS: tuple[Setting, ...] = (
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
)

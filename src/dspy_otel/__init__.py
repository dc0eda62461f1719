"""dspy-otel: OpenTelemetry tracing for DSPy programs, without DSPy's in-process history."""

from dspy_otel._version import __version__

__all__ = ["__version__"]

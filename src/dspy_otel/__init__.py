"""dspy-otel: OpenTelemetry tracing for DSPy programs, without DSPy's in-process history.

Example:
    >>> import dspy_otel
    >>> dspy_otel.configure()     # doctest: +SKIP
    >>> program(question="...")   # doctest: +SKIP  every module and LM call is now a span
    >>> dspy_otel.shutdown()      # doctest: +SKIP
"""

from typing import TYPE_CHECKING, Any

from dspy_otel._setup import configure, shutdown
from dspy_otel._stats import stats
from dspy_otel._version import __version__
from dspy_otel._window import inspect_history
from dspy_otel.context import attributes, span_id, trace_id
from dspy_otel.sampling._scopes import debug, suppress

if TYPE_CHECKING:
    from dspy_otel.instrumentation import DSPyInstrumentor

__all__ = [
    "DSPyInstrumentor",
    "__version__",
    "attributes",
    "configure",
    "debug",
    "inspect_history",
    "shutdown",
    "span_id",
    "stats",
    "suppress",
    "trace_id",
]


def __getattr__(name: str) -> Any:
    """Import ``DSPyInstrumentor`` on first use: ``opentelemetry.instrumentation`` is slow to import."""
    if name == "DSPyInstrumentor":
        from dspy_otel.instrumentation import DSPyInstrumentor

        return DSPyInstrumentor
    raise AttributeError(f"module 'dspy_otel' has no attribute {name!r}")

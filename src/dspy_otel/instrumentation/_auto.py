"""``opentelemetry-instrument`` and a DSPy outside the supported range: the same rule as ``instrument()``.

The auto-instrumentation loader reads the ``instruments`` extra (``dspy >= 3.0, < 4``) and skips an
instrumentor whose library is outside it, logging that "nothing can be instrumented". For DSPy, dspy-otel
instruments what works anyway, as :class:`~dspy_otel.instrumentation.DSPyInstrumentor` does when called
directly: the ``opentelemetry_pre_instrument`` hook holds back the loader's refusal line, and the
``opentelemetry_post_instrument`` hook instruments the installed DSPy, whose one warning then names the
version and what is missing. ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=dspy`` (or ``*``) is honoured.
"""

from __future__ import annotations

import logging
import os

from dspy_otel.instrumentation._support import dspy_version, supported

_LOADER = logging.getLogger("opentelemetry.instrumentation.auto_instrumentation._load")
_ENTRY_POINT = "dspy"  # the name of dspy-otel's opentelemetry_instrumentor entry point


def _outside_range() -> bool:
    """Whether an installed DSPy is outside the supported range and DSPy's instrumentation is not disabled."""
    disabled = {name.strip() for name in os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "").split(",")}
    if disabled & {_ENTRY_POINT, "*"}:
        return False
    version = dspy_version()
    return version is not None and not supported(version)


class _RefusalFilter(logging.Filter):
    """Drops the loader's "dspy only instruments ... nothing can be instrumented" line (it is not true)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(f"{_ENTRY_POINT} only instruments ")


_FILTER = _RefusalFilter()


def pre_instrument() -> None:
    """``opentelemetry_pre_instrument`` hook: hold back the loader's refusal of an out-of-range DSPy."""
    if _outside_range():
        _LOADER.addFilter(_FILTER)


def post_instrument() -> None:
    """``opentelemetry_post_instrument`` hook: instrument an out-of-range DSPy as far as it goes."""
    _LOADER.removeFilter(_FILTER)
    if not _outside_range():
        return
    from dspy_otel.instrumentation import DSPyInstrumentor

    instrumentor = DSPyInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()

"""Switch DSPy's in-process retention off, and back on.

DSPy keeps every LM call in ``dspy.clients.base_lm.GLOBAL_HISTORY``, each LM's
``history``, each calling module's ``history`` and ``dspy.settings.trace``
(up to 10,000 entries each, ~18 KB per call for a modest prompt). With
retention off (``DSPY_OTEL_DSPY_HISTORY=off``, the production default):

- DSPy's ``disable_history`` is set, so no history entry is even built and all
  three history lists stay empty. Usage, cost and cache hits still reach the
  spans (dspy-otel reads them from DSPy's call result, not from history).
- The default ``settings.trace`` becomes a :class:`DiscardingTrace`: a list
  that stays empty whatever is appended. Optimizers are unaffected because they
  trace inside their own ``dspy.context(trace=[])`` (``BootstrapFewShot``,
  ``BestOfN``, ``Refine``), and code that does ``settings.trace.extend(...)``
  keeps working (unlike ``trace=None``, which breaks ``BestOfN``).

What to expect: ``lm.history``, ``module.history``, ``dspy.inspect_history()``
and tools that read ``lm.history[-1]`` see nothing. Use the span data in your
backend, ``dspy-otel inspect`` (reads Jaeger) or the development window
(``dspy_otel.inspect_history``) instead. A later ``dspy.configure(
disable_history=False)`` or ``dspy.configure(trace=[])`` by the app wins.

Example:
    >>> from dspy_otel.retention import switch_off
    >>> restore = switch_off()  # doctest: +SKIP
    >>> restore()               # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, SupportsIndex

__all__ = ["DiscardingTrace", "switch_off"]


class DiscardingTrace(list[Any]):
    """A ``list`` that never holds anything: ``append``, ``extend`` and ``insert`` do nothing."""

    def append(self, item: Any) -> None:
        """Drop ``item``."""

    def extend(self, items: Iterable[Any]) -> None:
        """Drop ``items``."""

    def insert(self, index: SupportsIndex, item: Any) -> None:
        """Drop ``item``."""

    def __iadd__(self, items: Iterable[Any]) -> DiscardingTrace:  # type: ignore[misc]
        return self

    def __repr__(self) -> str:
        return "DiscardingTrace()"


def dspy_defaults() -> dict[str, Any]:
    """DSPy's process-wide settings (what ``dspy.configure`` writes), as a mutable mapping."""
    import importlib

    config: dict[str, Any] = importlib.import_module("dspy.dsp.utils.settings").main_thread_config
    return config


def switch_off() -> Callable[[], None]:
    """Stop DSPy's history lists and default trace list from keeping calls.

    The change is made to DSPy's process-wide defaults directly (not through
    ``dspy.configure``), so it does not make the calling thread DSPy's
    configuration owner.

    Returns:
        A function that restores the previous ``disable_history`` and ``trace`` values.
    """
    config = dspy_defaults()
    previous = {key: config.get(key) for key in ("disable_history", "trace")}
    config["disable_history"] = True
    config["trace"] = DiscardingTrace()

    def restore() -> None:
        for key, value in previous.items():
            config[key] = value

    return restore

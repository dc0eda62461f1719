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

What to expect: ``lm.history``, ``module.history`` and ``GLOBAL_HISTORY`` stay
empty, and code that reads them is told why rather than left guessing: while
retention is off, an LM's or module's empty ``history`` is a
:class:`SwitchedOffHistory`, whose ``[-1]`` (``lm.history[-1]``,
``DummyLM.get_convo(-1)``) raises an ``IndexError`` carrying :data:`NOTICE`, and
``dspy.inspect_history()``, ``lm.inspect_history()`` and
``module.inspect_history()`` print that one line instead of nothing. Use the span
data in your backend, ``dspy-otel inspect`` (reads Jaeger) or the development
window (``dspy_otel.inspect_history``) instead. A later ``dspy.configure(
disable_history=False)`` or ``dspy.configure(trace=[])`` by the app wins.

Example:
    >>> from dspy_otel.retention import switch_off
    >>> restore = switch_off()  # doctest: +SKIP
    >>> restore()               # doctest: +SKIP
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable, Iterable
from typing import Any, SupportsIndex

__all__ = ["NOTICE", "DiscardingTrace", "SwitchedOffHistory", "switch_off"]

NOTICE = (
    "DSPy's history is empty because dspy-otel switched it off (DSPY_OTEL_DSPY_HISTORY=off, the production "
    "default); set DSPY_OTEL_DSPY_HISTORY=keep to keep it, or read the call from its span: the development "
    "window (dspy_otel.inspect_history()) or `dspy-otel inspect`"
)
"""Why DSPy's history is empty, what keeps it, and where to read the calls instead."""


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


class SwitchedOffHistory(DiscardingTrace):
    """The empty ``history`` of an LM or module while retention is off: it keeps nothing and says why.

    Reading an entry (``lm.history[-1]``) raises an ``IndexError`` whose message is :data:`NOTICE`;
    a slice is empty; appends are dropped. It copies and pickles as an empty list of its class.
    """

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return []
        raise IndexError(NOTICE)

    def __repr__(self) -> str:
        return "SwitchedOffHistory()"


class _HistoryView:
    """``history`` on ``BaseLM`` and ``Module`` while retention is off: an empty one reads as a SwitchedOffHistory.

    The instance's own list stays in its ``__dict__`` (DSPy and the app assign and copy it as before);
    only an empty one is shown as a :class:`SwitchedOffHistory`, and only while DSPy's
    ``disable_history`` is set, so an app that turns history back on gets its real list again.
    """

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        # setdefault: an instance without one (unpickled by DSPy's __setstate__ while this view answered
        # hasattr) still has its own list once retention is back on and the view is gone
        kept = instance.__dict__.setdefault("history", [])
        return _SWITCHED_OFF if not kept and _history_disabled() else kept

    def __set__(self, instance: Any, value: Any) -> None:
        instance.__dict__["history"] = value

    def __delete__(self, instance: Any) -> None:
        del instance.__dict__["history"]


_SWITCHED_OFF = SwitchedOffHistory()


def _history_disabled() -> bool:
    return bool(importlib.import_module("dspy.dsp.utils.settings").settings.disable_history)


def _explaining(original: Callable[..., Any]) -> Callable[..., Any]:
    """DSPy's ``pretty_print_history``, printing :data:`NOTICE` where it would print nothing with retention off."""

    @functools.wraps(original)
    def pretty_print_history(history: Any, *args: Any, **kwargs: Any) -> Any:
        if not history and _history_disabled():
            print(NOTICE, file=kwargs.get("file") or sys.stdout)
            return None
        return original(history, *args, **kwargs)

    return pretty_print_history


def _explain_empty_history() -> Callable[[], None]:
    """Install the history views and the explaining ``pretty_print_history``; return what undoes it."""
    patched: list[tuple[Any, str, Any]] = []  # owner, attribute, previous (None: there was none)
    for module_name, class_name in (("dspy.clients.base_lm", "BaseLM"), ("dspy.primitives.module", "Module")):
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # a DSPy without it: nothing to explain there
            continue
        owner = getattr(module, class_name, None)
        if isinstance(owner, type) and "history" not in vars(owner):
            patched.append((owner, "history", None))
        if callable(vars(module).get("pretty_print_history")):
            patched.append((module, "pretty_print_history", vars(module)["pretty_print_history"]))
    for owner, name, previous in patched:
        setattr(owner, name, _HistoryView() if previous is None else _explaining(previous))

    def restore() -> None:
        for owner, name, previous in reversed(patched):
            if previous is None:
                delattr(owner, name)
            else:
                setattr(owner, name, previous)

    return restore


def dspy_defaults() -> dict[str, Any]:
    """DSPy's process-wide settings (what ``dspy.configure`` writes), as a mutable mapping."""
    config: dict[str, Any] = importlib.import_module("dspy.dsp.utils.settings").main_thread_config
    return config


def switch_off() -> Callable[[], None]:
    """Stop DSPy's history lists and default trace list from keeping calls, and make empty histories say why.

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
    unexplain = _explain_empty_history()

    def restore() -> None:
        unexplain()
        for key, value in previous.items():
            config[key] = value

    return restore

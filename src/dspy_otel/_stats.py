"""One place for every count of telemetry kept, dropped, evicted or failed: :func:`dspy_otel.stats`.

Every dspy-otel component that can lose data adds to these counters, so no loss
is silent. They are process-wide, start at zero, and only grow.

Example:
    >>> import dspy_otel
    >>> dspy_otel.stats().get("tail_traces_kept", 0)
    0
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import Counter
from collections.abc import Mapping
from typing import Any

_lock = threading.Lock()
_counts: Counter[str] = Counter()
_sources: weakref.WeakSet[Any] = weakref.WeakSet()


def add(counts: Mapping[str, int]) -> None:
    """Add ``counts`` (name -> increment) to the process-wide counters, atomically."""
    with _lock:
        _counts.update(counts)


def register(source: Any) -> None:
    """Have :func:`stats` call ``source.publish_counts()`` first: a hot path may count on its own, then publish."""
    _sources.add(source)


def stats() -> dict[str, int]:
    """A snapshot of every counter, as a plain dict sorted by name.

    Keys (present once they are non-zero): ``tail_traces_kept``, ``tail_traces_dropped``,
    ``tail_traces_evicted`` (decided early because a bound was reached), ``tail_traces_timed_out``
    (decided after the decision wait because their root never ended), ``tail_spans_kept``,
    ``tail_spans_dropped``, ``tail_late_spans_kept``, ``tail_late_spans_dropped``,
    ``encoding_attributes_dropped`` (attributes the OTLP encoder could not write and left out, as the SDK's does).
    """
    for source in list(_sources):
        source.publish_counts()
    with _lock:
        return dict(sorted(_counts.items()))


def _reset_after_fork() -> None:
    global _lock  # noqa: PLW0603 - a forked child must not inherit a lock held by another thread
    _lock = threading.Lock()
    _counts.clear()


os.register_at_fork(after_in_child=_reset_after_fork)

"""Export what is queued when SIGTERM, SIGINT or SIGHUP ends the process (``DSPY_OTEL_FLUSH_ON_SIGNALS``).

``atexit`` does not run when a signal's default action ends the process, and that is how
services usually end on a deploy: ``docker stop`` and Kubernetes send SIGTERM, and uvicorn,
after its graceful shutdown, puts the default SIGTERM handler back and raises the signal
again. So :func:`install` (called by ``configure()`` in the main thread) puts a handler
in front of whatever handles SIGTERM, SIGINT and SIGHUP, and chains it:

- **The default action** (``SIG_DFL``: the process dies by the signal): export first, within
  ``DSPY_OTEL_EXIT_TIMEOUT_MS``, then put the default back and raise the signal again, so
  the process ends as it would have, killed by that signal.
- **A handler of the application or server** (uvicorn's, gunicorn's, Python's
  ``KeyboardInterrupt``): call it at once, so its graceful shutdown runs first and fully,
  and export nothing yet. If it later ends the process normally (``sys.exit``, an uncaught
  ``KeyboardInterrupt``), ``atexit`` exports. If it later puts the default action back and
  raises the signal again (uvicorn does), the default action it puts back is this module's:
  from the first such signal on, ``signal.signal(sig, SIG_DFL)`` for that signal installs
  the exporting handler of the first case instead, until the process ends or
  :func:`uninstall` (not after Python's own ``KeyboardInterrupt`` handler: a REPL's Ctrl-C
  leaves ``signal.signal`` alone).
- **Ignored** (``SIG_IGN``) or a handler set outside Python: left alone.

A handler installed after ``configure()`` replaces this one, and this one runs again when it
is put back (uvicorn inside gunicorn does so). A second signal while exporting ends the
process at once. A forked worker exports its own spans: the handler calls the worker's
``dspy_otel.shutdown()``. A worker forked from a configured process (gunicorn ``--preload``)
is armed from the start, since its server resets the handlers to SIG_DFL before setting its
own. Signals can be handled in the main thread only: ``configure()`` elsewhere says so in one
line and relies on ``atexit``.

Count: ``signal_flushes`` in :func:`dspy_otel.stats` (exports a signal started).
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from dspy_otel import _stats

logger = logging.getLogger("dspy_otel")

SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, name))
_MARGIN_S = 1.0  # beyond the exit timeout: shutdown() un-instruments DSPy and logs before and after its wait

_real_signal = signal.signal  # the standard library's, for this module's own calls


class _State:
    """What this module keeps; its handler runs in the main thread, between two bytecodes of it."""

    def __init__(self) -> None:
        self.previous: dict[int, Any] = {}  # signal -> the handler chained (SIG_DFL or a callable)
        self.armed: set[int] = set()  # signals whose SIG_DFL becomes the exporting handler
        self.flush: Callable[[], None] | None = None  # dspy_otel.shutdown while configured
        self.timeout_s = 0.0
        self.exporting: int | None = None  # the signal whose export is running
        self.said_not_main = False
        self.wrapped: Callable[..., Any] = signal.signal  # signal.signal when armed (gevent may wrap it too)


_state = _State()


def install(flush: Callable[[], None], timeout_s: float) -> None:
    """Handle SIGTERM, SIGINT and SIGHUP: ``flush`` (``dspy_otel.shutdown``) before the process dies of one.

    Outside the main thread nothing is installed, and one line says so.

    Args:
        flush: Exports everything and shuts the providers down; bounded by ``timeout_s`` itself.
        timeout_s: ``DSPY_OTEL_EXIT_TIMEOUT_MS`` in seconds; a signal waits this long plus a margin.
    """
    if threading.current_thread() is not threading.main_thread():
        if not _state.said_not_main:
            _state.said_not_main = True
            logger.warning(
                "dspy-otel: configure() ran outside the main thread, where signal handlers cannot be set; spans "
                "are exported at a normal exit, but not when SIGTERM kills the process (configure in the main "
                "thread to have them exported then)"
            )
        return
    _state.flush, _state.timeout_s = flush, timeout_s
    for signum in SIGNALS:
        current = signal.getsignal(signum)
        if current is _handle or current is signal.SIG_IGN or current is None:
            continue
        _state.previous[signum] = current
        _real_signal(signum, _handle)


def uninstall() -> None:
    """Stop exporting on signals; in the main thread, put back each handler this module replaced."""
    _state.flush = None
    _state.armed.clear()
    if signal.signal is _armed_signal:
        signal.signal = _state.wrapped
    if threading.current_thread() is not threading.main_thread():
        return  # the handlers stay, passing every signal on as before
    for signum, previous in list(_state.previous.items()):
        if signal.getsignal(signum) is _handle:
            _real_signal(signum, previous)
        del _state.previous[signum]


def _handle(signum: int, frame: FrameType | None) -> None:
    """The handler in front: export then die for the default action, else pass the signal on."""
    if _state.exporting is not None:  # a second signal while exporting: end now, as the first would have
        _die(_state.exporting)
        return
    previous = _state.previous.get(signum, signal.SIG_DFL)
    if previous is signal.SIG_DFL:
        if _state.flush is not None:
            _export(signum, _state.flush)
        _die(signum)
        return
    if _state.flush is not None and previous is not signal.default_int_handler:  # KeyboardInterrupt: atexit exports
        _arm(signum)
    if callable(previous):
        previous(signum, frame)


def _arm(signum: int) -> None:
    """From now on, ``signal.signal(signum, SIG_DFL)`` installs :func:`_handle` in front of the default."""
    _state.armed.add(signum)
    if signal.signal is not _armed_signal:
        _state.wrapped = signal.signal
        signal.signal = _armed_signal


@functools.wraps(_real_signal)
def _armed_signal(signalnum: int, handler: Any) -> Any:
    """``signal.signal`` once a handler got a terminating signal: its default action exports first."""
    main = threading.current_thread() is threading.main_thread()  # elsewhere, the call fails as it would
    if handler is signal.SIG_DFL and signalnum in _state.armed and main:
        _state.previous[signalnum] = signal.SIG_DFL
        handler = _handle
    return _state.wrapped(signalnum, handler)


def _export(signum: int, flush: Callable[[], None]) -> None:
    """Run ``flush`` in a thread and wait for it, bounded: the interrupted main thread may hold a lock it needs."""
    _state.exporting = signum

    def run() -> None:
        flush()
        _stats.add({"signal_flushes": 1})  # after: the main thread may have been stopped holding the stats' lock

    worker = threading.Thread(target=run, name="dspy-otel-signal-flush", daemon=True)
    try:
        worker.start()
        worker.join(_state.timeout_s + _MARGIN_S)
        if worker.is_alive():  # no logging here: the main thread may have been stopped inside a log call
            name = signal.Signals(signum).name
            os.write(
                2, f"dspy-otel: export on {name} did not end in {_state.timeout_s:.1f} s; the rest is lost\n".encode()
            )
    finally:
        _state.exporting = None


def _die(signum: int) -> None:
    """Take the signal's default action, as the process would have without dspy-otel."""
    _real_signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)


def _after_fork_in_child() -> None:
    """A forked worker of a configured process: its server sets SIG_DFL, then maybe its own handlers (gunicorn)."""
    _state.exporting = None  # a child forked while its parent exported is not exporting itself
    if _state.flush is not None:
        for signum in SIGNALS:
            _arm(signum)


os.register_at_fork(after_in_child=_after_fork_in_child)

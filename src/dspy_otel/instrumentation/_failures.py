"""Telemetry failures are logged once per place and kind, and never reach the program."""

from __future__ import annotations

import logging

logger = logging.getLogger("dspy_otel")

_failures_logged: set[str] = set()


def log_failure_once(where: str, exc: BaseException) -> None:
    """Log a telemetry failure once per place and exception type; never raise."""
    key = f"{where}:{type(exc).__name__}"
    if key not in _failures_logged:
        _failures_logged.add(key)
        logger.warning("dspy-otel: %s failed (%s: %s); the app goes on", where, type(exc).__name__, exc)

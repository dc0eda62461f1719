"""Pytest plugin that ``make test`` loads: integration tests skipped for one reason make one summary line.

Without Go every integration test is skipped by the ``binaries`` fixture, and
pytest (8 and later) reports a fixture's skip at each test's own location, so
``-ra`` would print a line per test. This folds the skips of tests marked
``integration`` that share a reason into one line::

    SKIPPED [13] tests/integration (tests marked integration): Go is not installed: ...

Loaded with ``-p skip_summary`` (``tests/`` on ``PYTHONPATH``); a plain
``pytest`` run works the same without it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

INTEGRATION_DIR = Path(__file__).resolve().parent / "integration"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Give every skipped integration test one location, so ``-ra`` folds them by reason.

    Runs before the short test summary (the terminal reporter writes it after
    every other ``pytest_terminal_summary``); counts are unchanged.
    """
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = getattr(report, "longrepr", None)
        if "integration" in getattr(report, "keywords", {}) and isinstance(longrepr, tuple) and len(longrepr) == 3:
            report.longrepr = (f"{INTEGRATION_DIR} (tests marked integration)", None, longrepr[2])

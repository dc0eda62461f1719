"""Which DSPy releases dspy-otel supports, and the one line that names what an installed DSPy does not get.

Every minor release from 3.0 to 3.4 is traced in full and tested (see ``docs/dspy-versions.md``). A DSPy
outside that range is still instrumented as far as its classes are found, and DSPy's retention is still
switched off; one warning names the version and what it goes without, so nothing is lost silently.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from importlib import metadata

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

logger = logging.getLogger("dspy_otel")

SUPPORTED = "dspy >= 3.0, < 4"
"""The DSPy releases traced in full and tested: the ``instruments`` extra and ``instrumentation_dependencies()``."""
_RANGE = SpecifierSet(">=3.0, <4")
_reported: set[str] = set()


def dspy_version() -> str | None:
    """The installed DSPy's version, or ``None`` when DSPy is not installed."""
    try:
        return metadata.version("dspy")
    except metadata.PackageNotFoundError:
        return None


def supported(version: str | None) -> bool:
    """Whether DSPy ``version`` is in :data:`SUPPORTED` (pre-releases of a supported minor count)."""
    try:
        return version is not None and _RANGE.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return False


def report(missing: Sequence[str]) -> None:
    """Warn once, in one line, when the installed DSPy is outside the range or some hook was not found.

    Args:
        missing: What the spans go without, one phrase per hook not found (``"module spans"``).
    """
    version = dspy_version()
    in_range = supported(version)
    if in_range and not missing:
        return
    where = "" if in_range else f", outside the range dspy-otel supports and tests ({SUPPORTED}),"
    what = f"without {'; '.join(missing)}" if missing else "as far as it goes (every hook was found, but untested)"
    line = f"dspy-otel: DSPy {version}{where} is traced {what}"
    if line not in _reported:
        _reported.add(line)
        logger.warning("%s", line)

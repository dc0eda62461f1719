"""The environments of the OpenTelemetry version matrix: one venv per older OpenTelemetry release, cached.

Each is ``~/.cache/dspy-otel/venvs/otel-<version>-<digest>`` (built by ``venvs.py``): that
``opentelemetry-api``, ``-sdk`` and ``-exporter-otlp`` release with the ``opentelemetry-instrumentation``
and ``-semantic-conventions`` release made with it, dspy-otel's other dependencies and DSPy (the version
the tests use), and not dspy-otel itself: the tests run this checkout's ``src/`` on ``PYTHONPATH``. The
digest covers what the venv is built from (the versions, the Python, ``pyproject.toml``, this script and
``venvs.py``), so a change rebuilds it and an unchanged one is reused.

Usage: ``python scripts/otel_envs.py [VERSION ...]`` builds the missing ones and prints their paths
(default: :data:`MATRIX`).
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

sys.path.insert(0, str(Path(__file__).resolve().parent))  # scripts/ is not a package; a no-op when run as a script
import venvs

ROOT = Path(__file__).resolve().parent.parent
MATRIX = {"1.39.0": "0.60b0", "1.42.0": "0.63b0"}
"""SDK release -> the instrumentation and semantic-conventions release that pins it: the floor in
``pyproject.toml`` (the first whose semantic conventions have every GenAI attribute name dspy-otel uses) and
the first with ``GEN_AI_REQUEST_STREAM``: both send bytes on gRPC and leave HTTP to the SDK's encoding (< 1.45)."""
CONTRIB = ("opentelemetry-instrumentation", "opentelemetry-semantic-conventions")
"""The packages released with the contrib repository's ``0.x b0`` versions."""


def _requirements(version: str) -> list[str]:
    """dspy-otel's dependencies with OpenTelemetry pinned to ``version``, and the tests' DSPy."""
    wanted = []
    for line in metadata.requires("dspy-otel") or []:
        requirement = Requirement(line)
        marker = requirement.marker
        if marker is None or (requirement.name == "dspy" and marker.evaluate({"extra": "test"})):
            requirement.marker = None
            if requirement.name.startswith("opentelemetry-"):
                requirement.specifier = SpecifierSet(f"=={MATRIX[version] if requirement.name in CONTRIB else version}")
            wanted.append(str(requirement))
    return wanted


def ensure(version: str) -> Path:
    """The venv's Python for OpenTelemetry ``version``, built first if it is missing.

    Venvs this checkout built for ``version`` before (another digest) are removed.
    """
    built_from = (ROOT / "pyproject.toml", Path(__file__), Path(venvs.__file__))
    parts = (version, sys.version, str(ROOT), *(f.read_text() for f in built_from))
    return venvs.ensure(venvs.venv_path(f"otel-{version}", parts), [_requirements(version)], owner=str(ROOT))


if __name__ == "__main__":
    raise SystemExit(venvs.main(ensure, sys.argv[1:], MATRIX))

"""The environments of the DSPy version matrix: one venv per older DSPy release, cached outside the repo.

Each is ``~/.cache/dspy-otel/venvs/dspy-<version>-<digest>`` (built by ``venvs.py``): that DSPy release,
dspy-otel's dependencies and the test tools, and this checkout installed editable with ``--no-deps`` (so
its ``dspy`` pin does not upgrade DSPy). The digest covers what the venv is built from (the DSPy version,
the Python, ``pyproject.toml``, this script, ``venvs.py`` and the checkout's path), so a change rebuilds it
and an unchanged one is reused. ``uv`` (a test dependency) builds them in seconds from its own cache.

Usage: ``python scripts/dspy_envs.py [VERSION ...]`` builds the missing ones and prints their paths
(default: :data:`MATRIX`).
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

sys.path.insert(0, str(Path(__file__).resolve().parent))  # scripts/ is not a package; a no-op when run as a script
import venvs

ROOT = Path(__file__).resolve().parent.parent
MATRIX = ("3.0.4", "3.1.3", "3.2.1", "3.3.1")
"""The newest patch of each supported DSPy minor release before the one the main venv has."""
_TEST_TOOLS = ("pytest", "pytest-timeout", "hypothesis", "pyyaml", "opentelemetry-distro")


def _requirements(version: str) -> list[str]:
    """DSPy ``version``, dspy-otel's dependencies and the test tools, as the installed dspy-otel declares them."""
    wanted = [f"dspy=={version}"]
    for line in metadata.requires("dspy-otel") or []:
        requirement = Requirement(line)
        marker = requirement.marker
        if marker is None or (requirement.name in _TEST_TOOLS and marker.evaluate({"extra": "test"})):
            requirement.marker = None
            wanted.append(str(requirement))
    return wanted


def env_path(version: str) -> Path:
    """Where the venv for DSPy ``version`` is, for this checkout, Python and ``pyproject.toml``."""
    built_from = (ROOT / "pyproject.toml", Path(__file__), Path(venvs.__file__))
    return venvs.venv_path(f"dspy-{version}", (version, sys.version, str(ROOT), *(f.read_text() for f in built_from)))


def ensure(version: str) -> Path:
    """The venv's Python for DSPy ``version``, built first if it is missing (an interrupted build is redone).

    A lock file makes concurrent callers wait for one build. Venvs this checkout built for ``version``
    before (another digest: ``pyproject.toml`` or this script changed) are removed.
    """
    installs = (_requirements(version), ("--no-deps", "-e", str(ROOT)))
    return venvs.ensure(env_path(version), installs, owner=str(ROOT))


if __name__ == "__main__":
    raise SystemExit(venvs.main(ensure, sys.argv[1:], MATRIX))

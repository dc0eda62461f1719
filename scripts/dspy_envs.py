"""The environments of the DSPy version matrix: one venv per older DSPy release, cached outside the repo.

Each is ``~/.cache/dspy-otel/venvs/dspy-<version>-<digest>``: that DSPy release, dspy-otel's
dependencies and the test tools, and this checkout installed editable with ``--no-deps`` (so its
``dspy`` pin does not upgrade DSPy). The digest covers what the venv is built from (the DSPy version,
the Python, ``pyproject.toml``, this script and the checkout's path), so a change rebuilds it and an
unchanged one is reused. ``uv`` (a test dependency) builds them in seconds from its own cache.

Usage: ``python scripts/dspy_envs.py [VERSION ...]`` builds the missing ones and prints their paths
(default: :data:`MATRIX`).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("DSPY_OTEL_CACHE", Path.home() / ".cache" / "dspy-otel")) / "venvs"
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
    digest = hashlib.sha256()
    for part in (version, sys.version, str(ROOT), (ROOT / "pyproject.toml").read_text(), Path(__file__).read_text()):
        digest.update(part.encode() + b"\0")
    return CACHE / f"dspy-{version}-{digest.hexdigest()[:12]}"


def _uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if found is None:
        raise SystemExit("dspy_envs: uv is not installed (it is in the `test` extra: make setup)")
    return found


def ensure(version: str) -> Path:
    """The venv's Python for DSPy ``version``, built first if it is missing (an interrupted build is redone).

    A lock file makes concurrent callers wait for one build. Venvs this checkout built for ``version``
    before (another digest: ``pyproject.toml`` or this script changed) are removed.
    """
    path = env_path(version)
    python = path / "bin" / "python"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (path / ".complete").exists():
            shutil.rmtree(path, ignore_errors=True)
            uv = _uv()
            for command in (
                ["venv", "--quiet", "--python", sys.executable, str(path)],
                ["pip", "install", "--quiet", "--python", str(python), *_requirements(version)],
                ["pip", "install", "--quiet", "--python", str(python), "--no-deps", "-e", str(ROOT)],
            ):
                subprocess.run([uv, *command], check=True, stdout=subprocess.DEVNULL)
            (path / ".root").write_text(str(ROOT))
            (path / ".complete").touch()
    for stale in CACHE.glob(f"dspy-{version}-*/.root"):
        if stale.parent != path and stale.read_text() == str(ROOT):
            shutil.rmtree(stale.parent, ignore_errors=True)
            Path(f"{stale.parent}.lock").unlink(missing_ok=True)
    return python


def main(argv: list[str]) -> int:
    """Build the venvs of the DSPy versions in ``argv`` (default: the matrix) and print their paths."""
    for version in argv or MATRIX:
        print(ensure(version))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

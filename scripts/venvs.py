"""The cached venvs the tests run in (backend servers, older DSPy releases), built once with ``uv``.

They live in ``~/.cache/dspy-otel/venvs/<name>-<digest>`` (``DSPY_OTEL_CACHE`` moves the root), where the
digest covers what a venv is built from: a second ``make test`` reuses it, a change builds a new one. ``uv``
(a test dependency) installs them from its own cache, kept next to them in ``~/.cache/dspy-otel/uv``. A build
that was interrupted is redone; two builds of one venv at once wait for each other (a lock file). Only the
Python standard library is used.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

CACHE = Path(os.environ.get("DSPY_OTEL_CACHE") or Path.home() / ".cache" / "dspy-otel")
"""The root of the test setup's caches."""
VENVS = CACHE / "venvs"
"""Where the venvs are."""


def venv_path(name: str, parts: Sequence[str]) -> Path:
    """Where the venv ``name`` built from ``parts`` is: its name and a digest of the parts.

    Args:
        name: The venv's name, the start of its folder's name (``mlflow``, ``dspy-3.0.4``).
        parts: Everything the venv is built from (pins, Python version, file contents), in a fixed order.

    Returns:
        ``VENVS / "<name>-<first 12 hex digits of the SHA-256 of the parts, one per line>"``.
    """
    digest = hashlib.sha256("\n".join(parts).encode())
    return VENVS / f"{name}-{digest.hexdigest()[:12]}"


def _uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if found is None:
        raise SystemExit("venvs: uv is not installed (it is in the `test` extra: make setup)")
    return found


def ensure(
    path: Path,
    installs: Sequence[Sequence[str]],
    notes: Mapping[str, str] | None = None,
    log: bool = False,
    owner: str | None = None,
) -> Path:
    """The Python of the venv at ``path``, built first when it is missing or incomplete.

    Args:
        path: The venv's folder, from :func:`venv_path`.
        installs: The ``uv pip install`` runs that fill the new venv, in order, each as its arguments after
            ``uv pip install --quiet --python <the venv's python>`` (requirements and options such as
            ``--no-deps``).
        notes: File name -> text, written into the venv once it is built (before it is marked complete).
        log: Print how long a build took to stderr.
        owner: Who the venv is built for (a checkout's path): once it is built, the venvs of the same name
            that ``owner`` built before (another digest) are removed.

    Returns:
        The venv's ``bin/python``.

    Raises:
        SystemExit: ``uv`` is not installed.
        subprocess.CalledProcessError: A ``uv`` step failed (no network, a pin that does not resolve).
    """
    python = path / "bin" / "python"
    if not (path / ".complete").exists():
        _build(path, installs, {**(notes or {}), **({".root": owner} if owner else {})}, log)
    if owner is not None:
        for stale in VENVS.glob(f"{path.name.rsplit('-', 1)[0]}-*/.root"):
            if stale.parent != path and stale.read_text() == owner:
                shutil.rmtree(stale.parent, ignore_errors=True)
                Path(f"{stale.parent}.lock").unlink(missing_ok=True)
    return python


def _build(path: Path, installs: Sequence[Sequence[str]], notes: Mapping[str, str], log: bool) -> None:
    """Build the venv at ``path`` (see :func:`ensure`), unless another process built it meanwhile."""
    python = path / "bin" / "python"
    done = path / ".complete"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another build of the same venv finishes first
        if done.exists():
            return
        started = time.monotonic()
        shutil.rmtree(path, ignore_errors=True)
        uv = _uv()
        env = {**os.environ, "UV_CACHE_DIR": str(CACHE / "uv")}
        steps = [[uv, "venv", "--quiet", "--python", sys.executable, str(path)]]
        steps += [[uv, "pip", "install", "--quiet", "--python", str(python), *install] for install in installs]
        for step in steps:
            subprocess.run(step, check=True, stdout=subprocess.DEVNULL, env=env)
        for name, text in notes.items():
            (path / name).write_text(text)
        done.touch()
        if log:
            print(f"venvs: built {path} in {time.monotonic() - started:.0f} s", file=sys.stderr)


def main(ensure: Callable[[str], Path], argv: Sequence[str], default: Iterable[str]) -> int:
    """Build the venvs ``argv`` names (none: ``default``) with ``ensure`` and print each one's Python."""
    for name in argv or default:
        print(ensure(name))
    return 0

"""``make test`` on a machine without Go: every other test runs, one line says what was skipped; CI fails.

Go is hidden from ``PATH`` and ``GO_DIR`` is emptied (by default the scripts
also look in ``/usr/local/go/bin``); docker-compose is a stub, so that nothing
is installed. The Makefile's venv is the running one, never remade (``-o``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
VENV = Path(sys.prefix)

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _env_without_go(tmp_path: Path, ci: bool) -> dict[str, str]:
    stubs = tmp_path / "bin"
    stubs.mkdir()
    (stubs / "docker-compose").write_text("#!/bin/sh\nexit 0\n")
    (stubs / "docker-compose").chmod(0o755)
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and not (Path(d) / "go").exists()]
    env = {k: v for k, v in os.environ.items() if k not in {"CI", "PYTHONPATH", "MAKEFLAGS", "MAKELEVEL"}}
    env.update(PATH=os.pathsep.join([str(stubs), *dirs]), GO_DIR="")
    if ci:
        env["CI"] = "true"
    return env


def _make(tmp_path: Path, *args: str, ci: bool = False) -> subprocess.CompletedProcess[str]:
    env = _env_without_go(tmp_path, ci)
    assert shutil.which("go", path=env["PATH"]) is None
    return subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-s",
            "-C",
            str(REPO),
            f"VENV={VENV}",
            "GO_DIR=",
            "-o",
            str(VENV / ".installed"),
            "-o",
            str(VENV / "bin" / "python"),
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_without_go_the_prerequisites_say_so_in_one_line_and_succeed(tmp_path: Path) -> None:
    done = _make(tmp_path, "prereqs")
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "install-prereqs: Go is not installed (on PATH): the integration tests (tests/integration) will be skipped;"
        " install Go 1.26 or newer to run them"
    ]
    assert "collector:" not in done.stdout  # nothing was built


def test_without_go_under_ci_the_prerequisites_fail(tmp_path: Path) -> None:
    done = _make(tmp_path, "prereqs", ci=True)
    assert done.returncode != 0
    assert "install-prereqs: Go is not installed (on PATH); under CI=true the integration tests must run" in done.stderr


def test_without_go_the_other_tests_run_and_one_line_names_the_skipped(tmp_path: Path) -> None:
    # tests/integration holds both kinds: tests that read files and tests that need the Go-built binaries.
    done = _make(tmp_path, "pytest", "PYTEST_ARGS=tests/integration -p no:cacheprovider -q")
    assert done.returncode == 0, done.stdout[-3000:]
    skipped = [line for line in done.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(skipped) == 1, skipped
    assert skipped[0].startswith("SKIPPED [")
    assert "tests/integration (tests marked integration): Go is not installed" in skipped[0]
    assert " passed, " in done.stdout.splitlines()[-1]

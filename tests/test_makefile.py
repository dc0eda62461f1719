"""The Makefile's promises to a newcomer, checked with ``make -n`` (nothing is run or installed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _dry_run(target: str, venv: Path, *variables: str) -> list[str]:
    """The commands ``make TARGET`` would run for a venv that does not exist yet (a fresh clone)."""
    done = subprocess.run(
        ["make", "-n", "--no-print-directory", "-C", str(REPO), target, f"VENV={venv}", *variables],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.splitlines()


def test_demo_installs_the_package_and_dspy_only(tmp_path: Path) -> None:
    commands = _dry_run("demo", tmp_path / "venv")
    installs = [line for line in commands if "pip install" in line and "--upgrade pip" not in line]
    assert installs == [f'{tmp_path}/venv/bin/python -m pip install --quiet -e ".[instruments]"']
    assert commands[-1] == f"{tmp_path}/venv/bin/dspy-otel demo"
    assert not any(tool in line for line in commands for tool in ("bin/pytest", "bin/ruff", "bin/mypy", "prereqs"))


def test_test_installs_the_test_toolchain(tmp_path: Path) -> None:
    commands = _dry_run("test", tmp_path / "venv")
    assert f'{tmp_path}/venv/bin/python -m pip install --quiet -e ".[test,instruments]"' in commands
    assert commands[-1].rstrip().endswith(f"{tmp_path}/venv/bin/pytest -p skip_summary")
    # CI builds the documentation with --strict (a broken link or anchor fails), and not --quiet (it hides them).
    assert "NO_MKDOCS_2_WARNING=1 " + f"{tmp_path}/venv/bin/mkdocs build --strict" in commands
    # The full install satisfies the demo too: no second install before `make demo`.
    assert f"touch {tmp_path}/venv/.installed {tmp_path}/venv/.installed-demo" in commands


def test_stack_runs_the_script_with_the_flags_given(tmp_path: Path) -> None:
    commands = _dry_run("stack", tmp_path / "venv", "STACK_FLAGS=--ui-port 16687")
    assert commands == ["python3 scripts/run_stack.py --ui-port 16687"]  # no venv needed: the standard library only

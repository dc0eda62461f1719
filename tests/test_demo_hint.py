"""The demo's hint when no collector answers: the checkout's ways (``make stack``, compose) only in a checkout."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import closed_port, run_demo
from dspy_otel import demo

REPO = Path(__file__).resolve().parent.parent


def test_a_checkout_is_recognised() -> None:
    assert demo.checkout() == REPO  # the tests run from the editable install `make` sets up


def test_the_hint_names_what_is_there() -> None:
    assert demo.start_hint(REPO) == (
        f"start one with Jaeger: `make stack` (no Docker) or `docker compose up -d`, in {REPO}"
    )
    wheel = demo.start_hint(None)
    assert "README" in wheel
    assert "docker" not in wheel
    assert "make" not in wheel


def test_the_demo_outside_a_checkout_points_to_the_readme(tmp_path: Path) -> None:
    # The package's files alone, as a wheel installs them: no docker-compose.yml or Makefile around them.
    site = tmp_path / "site"
    shutil.copytree(REPO / "src" / "dspy_otel", site / "dspy_otel", ignore=shutil.ignore_patterns("__pycache__"))
    work = tmp_path / "work"
    work.mkdir()
    stdout = run_demo(work, PYTHONPATH=str(site), OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{closed_port()}")
    first = stdout.splitlines()[0]
    assert first.startswith("demo: no collector at 127.0.0.1:")
    assert "see 'Collector and Jaeger' in dspy-otel's README" in first
    assert "docker" not in stdout
    assert "make stack" not in stdout


def test_the_demo_in_the_checkout_names_make_stack(tmp_path: Path) -> None:
    stdout = run_demo(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{closed_port()}")
    assert "`make stack` (no Docker) or `docker compose up -d`" in stdout.splitlines()[0]

"""The wheel ``pip wheel .`` builds: typed, its entry points and CLI work once installed, nothing else in it.

Built offline (``--no-build-isolation --no-index``: hatchling comes with the
test extra) into a temporary folder, then installed with ``--target`` into
another one and used from there, never from the checkout.
"""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from conftest import closed_port, env_without_settings
from dspy_otel import __version__

REPO = Path(__file__).resolve().parent.parent
PIP_TIMEOUT_S = 180


def _pip(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "--quiet", *args],
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT_S,
        check=True,
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _pip("wheel", str(REPO), "--no-deps", "--no-build-isolation", "--no-index", "-w", str(out))
    (built,) = out.glob("*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel installed alone (its dependencies are the running venv's) into a folder of its own."""
    site = tmp_path_factory.mktemp("site")
    _pip("install", "--no-deps", "--no-index", "--target", str(site), str(wheel))
    return site


def _run(site: Path, *command: str, cwd: Path | None = None, **env: str) -> str:
    done = subprocess.run(
        command,
        cwd=cwd or site,
        env={**env_without_settings(), "PYTHONPATH": str(site), "LITELLM_LOCAL_MODEL_COST_MAP": "True", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def test_the_wheel_holds_the_package_typed_and_nothing_else(wheel: Path) -> None:
    assert wheel.name == f"dspy_otel-{__version__}-py3-none-any.whl"
    names = zipfile.ZipFile(wheel).namelist()
    assert "dspy_otel/py.typed" in names
    assert "dspy_otel/__init__.py" in names
    dist_info = f"dspy_otel-{__version__}.dist-info/"
    assert all(name.startswith(("dspy_otel/", dist_info)) for name in names), names
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


def test_the_wheel_declares_its_entry_points_and_extras(wheel: Path) -> None:
    archive = zipfile.ZipFile(wheel)
    dist_info = f"dspy_otel-{__version__}.dist-info"
    entry_points = configparser.ConfigParser()
    entry_points.read_string(archive.read(f"{dist_info}/entry_points.txt").decode())
    assert {section: dict(entry_points[section]) for section in entry_points.sections()} == {
        "console_scripts": {"dspy-otel": "dspy_otel.cli:main"},
        "opentelemetry_instrumentor": {"dspy": "dspy_otel.instrumentation:DSPyInstrumentor"},
        "opentelemetry_pre_instrument": {"dspy_otel": "dspy_otel.instrumentation._auto:pre_instrument"},
        "opentelemetry_post_instrument": {"dspy_otel": "dspy_otel.instrumentation._auto:post_instrument"},
        "opentelemetry_traces_sampler": {
            "dspy_otel_rate_limiting": "dspy_otel.sampling.head:rate_limiting_factory",
            "dspy_otel_rules": "dspy_otel.sampling.head:rules_factory",
        },
    }
    metadata = Parser().parsestr(archive.read(f"{dist_info}/METADATA").decode())
    assert metadata["Requires-Python"] == ">=3.10"
    assert "instruments" in metadata.get_all("Provides-Extra", [])
    assert any(r.startswith("dspy") and "extra == 'instruments'" in r for r in metadata.get_all("Requires-Dist", []))


def test_installed_entry_points_load_from_the_wheel(installed: Path) -> None:
    code = (
        "import importlib.metadata as md, inspect\n"
        f"(dist,) = md.distributions(path=[{str(installed)!r}])\n"
        "groups = ('console_scripts', 'opentelemetry_instrumentor', 'opentelemetry_pre_instrument',\n"
        "          'opentelemetry_post_instrument', 'opentelemetry_traces_sampler')\n"
        "for ep in dist.entry_points:\n"
        "    assert ep.group in groups, ep\n"
        "    here = inspect.getfile(ep.load()).startswith(dist.locate_file('dspy_otel').as_posix())\n"
        "    print(ep.group, ep.name, 'from the wheel' if here else inspect.getfile(ep.load()))\n"
        "import dspy_otel\n"
        "print(dspy_otel.__file__)\n"
    )
    lines = _run(installed, sys.executable, "-c", code).splitlines()
    assert lines[-1] == str(installed / "dspy_otel" / "__init__.py")  # not the checkout's copy
    assert sorted(lines[:-1]) == [
        "console_scripts dspy-otel from the wheel",
        "opentelemetry_instrumentor dspy from the wheel",
        "opentelemetry_post_instrument dspy_otel from the wheel",
        "opentelemetry_pre_instrument dspy_otel from the wheel",
        "opentelemetry_traces_sampler dspy_otel_rate_limiting from the wheel",
        "opentelemetry_traces_sampler dspy_otel_rules from the wheel",
    ]


def test_the_installed_cli_runs_and_its_demo_points_to_the_readme(installed: Path, tmp_path: Path) -> None:
    cli = installed / "bin" / "dspy-otel"
    assert os.access(cli, os.X_OK)
    assert _run(installed, str(cli), "--version").strip() == f"dspy-otel {__version__}"
    stdout = _run(
        installed, str(cli), "demo", cwd=tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{closed_port()}"
    )
    assert "see 'Collector and Jaeger' in dspy-otel's README" in stdout.splitlines()[0]
    assert "docker" not in stdout

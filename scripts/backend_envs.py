"""The virtual environments of the LLM backends the integration tests run: Arize Phoenix and MLflow.

Each backend gets a venv of its own, cached outside the repository in
``~/.cache/dspy-otel/venvs/<backend>-<digest>`` by ``venvs.py`` (``DSPY_OTEL_CACHE``
moves the root), where the digest covers the pinned requirements below and the
Python version: a second ``make test`` reuses it, a new pin builds a new one.

Both are kept lean: ``arize-phoenix`` without extras; MLflow as
``mlflow-skinny`` plus what its tracking server imports (Flask, SQLAlchemy,
Alembic, NumPy, pandas, ...) and the ``mlflow`` package itself for its web UI,
without the rest of its ML stack (PyArrow, SciPy, scikit-learn, Matplotlib).

Usage: ``python scripts/backend_envs.py [phoenix|mlflow ...]`` builds the missing
ones and prints each venv's Python (default: all).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # scripts/ is not a package; a no-op when run as a script
import venvs

BACKENDS: dict[str, tuple[str, ...]] = {
    "phoenix": ("arize-phoenix==20.26.1",),
    "mlflow": (
        "mlflow-skinny==3.17.2",
        "mlflow-tracing==3.17.2",
        "flask<4",
        "flask-cors<7",
        "sqlalchemy>=1.4,<3",
        "alembic!=1.10.0,<2",
        "graphene<4",
        "huey>=2.5.4,<4",
        "cryptography>=43,<51",
        "aiohttp>=3.7,<4",
        "numpy<3",
        "pandas<4",
    ),
}
"""Backend -> its pinned requirements."""
WITHOUT_DEPENDENCIES: dict[str, tuple[str, ...]] = {"mlflow": ("mlflow==3.17.2",)}
"""Backend -> packages installed without their dependencies: ``mlflow`` brings the web UI, not the ML stack."""


def env_path(name: str) -> Path:
    """Where the venv of backend ``name`` is, for these pins and this Python version."""
    pins = (*BACKENDS[name], "--no-deps", *WITHOUT_DEPENDENCIES.get(name, ()))
    return venvs.venv_path(name, (name, f"{sys.version_info[:2]}", *pins))


def ensure(name: str, log: bool = False) -> Path:
    """The Python of backend ``name``'s venv, built first when it is missing or incomplete."""
    installs = [BACKENDS[name]]
    if name in WITHOUT_DEPENDENCIES:
        installs.append(("--no-deps", *WITHOUT_DEPENDENCIES[name]))
    return venvs.ensure(env_path(name), installs, log=log)


def server(name: str, python: Path, data_dir: Path, port: int, grpc_port: int) -> tuple[list[str], dict[str, str], str]:
    """How to run backend ``name`` on 127.0.0.1: its command, its environment and its health URL.

    Its data (Phoenix's and MLflow's SQLite databases) goes to ``data_dir``. ``grpc_port`` is
    Phoenix's OTLP gRPC port (Phoenix binds it on every interface); MLflow takes OTLP over HTTP only.
    """
    bin_dir = python.parent
    if name == "phoenix":
        env = {
            "PHOENIX_WORKING_DIR": str(data_dir),
            "PHOENIX_HOST": "127.0.0.1",
            "PHOENIX_PORT": str(port),
            "PHOENIX_GRPC_PORT": str(grpc_port),
            "PHOENIX_TELEMETRY_ENABLED": "false",
        }
        return [str(bin_dir / "phoenix"), "serve"], env, f"http://127.0.0.1:{port}/healthz"
    command = [
        str(bin_dir / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{data_dir / 'mlflow.db'}",
        "--default-artifact-root",
        str(data_dir / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    # No background jobs (LLM judges): they need the ML stack this lean venv leaves out.
    return command, {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}, f"http://127.0.0.1:{port}/health"


def main(argv: list[str]) -> int:
    """Build the venvs of the backends in ``argv`` (default: all) and print their Pythons."""
    for name in argv or BACKENDS:
        print(ensure(name, log=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

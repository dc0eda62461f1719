"""Real LLM-observability servers for the integration tests: Arize Phoenix and MLflow, read back through their APIs.

Each runs from its own venv (``scripts/backend_envs.py``, cached outside the
repository) on free ports on 127.0.0.1, with its data in a temporary directory.
What a test asserts is what their UIs show: the kind of each span, its inputs
and outputs, token counts and errors, as their REST APIs return them.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from integration.processes import free_port, load_script, start

# A cold start under a loaded 2-core CI machine was measured at about 2.5 minutes (MLflow).
SERVER_START_TIMEOUT_S = 600.0


def backend_python(name: str) -> Path:
    """The Python of backend ``name``'s venv, built on first use (skipped when it cannot be, except under CI)."""
    try:
        python: Path = load_script("backend_envs").ensure(name)
    except (SystemExit, OSError, Exception) as exc:  # no uv, no network: the build script says why
        message = f"the {name} venv could not be built ({exc})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; under CI=true these tests must run")
        pytest.skip(message)
    return python


def get_json(url: str, body: Mapping[str, Any] | None = None, timeout_s: float = 30.0) -> Any:
    """GET ``url`` (or POST ``body`` as JSON) and return the JSON answer."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        return json.load(response)


@dataclass(frozen=True)
class Phoenix:
    """A running Phoenix: OTLP over HTTP and gRPC, and its REST API."""

    url: str
    grpc_endpoint: str

    def spans(self, project: str) -> list[dict[str, Any]]:
        """Every span of ``project`` as Phoenix's REST API gives it (``span_kind``, ``attributes``, status).

        Empty until the project's first span has arrived (Phoenix creates the project then).
        """
        try:
            answer = get_json(f"{self.url}/v1/projects/{project}/spans?limit=1000")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return []
            raise
        spans: list[dict[str, Any]] = answer["data"]
        return spans


@contextmanager
def phoenix(python: Path, data_dir: Path) -> Iterator[Phoenix]:
    """Run ``phoenix serve`` on free ports with its SQLite database in ``data_dir``."""
    port, grpc_port = free_port(), free_port()
    with _serving("phoenix", python, data_dir, port, grpc_port):
        yield Phoenix(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{grpc_port}")


@dataclass(frozen=True)
class MLflow:
    """A running MLflow tracking server: OTLP over HTTP at ``/v1/traces`` and its trace API."""

    url: str

    def create_experiment(self, name: str) -> str:
        """A new experiment's ID (the ``x-mlflow-experiment-id`` header sends traces there)."""
        experiment_id: str = get_json(f"{self.url}/api/2.0/mlflow/experiments/create", {"name": name})["experiment_id"]
        return experiment_id

    def traces(self, experiment_id: str) -> list[dict[str, Any]]:
        """Every trace of the experiment with its spans, as MLflow's trace search and get return them."""
        location = {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment_id}}
        found = get_json(f"{self.url}/api/3.0/mlflow/traces/search", {"locations": [location], "max_results": 100})
        return [
            get_json(f"{self.url}/api/3.0/mlflow/traces/get?trace_id={info['trace_id']}")["trace"]
            for info in found.get("traces", [])
        ]


def otlp_value(value: Mapping[str, Any]) -> Any:
    """A plain Python value from an OTLP-JSON ``AnyValue`` (MLflow returns span attributes so)."""
    for key in ("string_value", "bool_value", "double_value"):
        if key in value:
            return value[key]
    if "int_value" in value:
        return int(value["int_value"])
    if "kvlist_value" in value:
        return {kv["key"]: otlp_value(kv["value"]) for kv in value["kvlist_value"].get("values", [])}
    if "array_value" in value:
        return [otlp_value(v) for v in value["array_value"].get("values", [])]
    return None


def mlflow_attributes(span: Mapping[str, Any]) -> dict[str, Any]:
    """An MLflow span's attributes as a plain dict."""
    return {kv["key"]: otlp_value(kv["value"]) for kv in span.get("attributes", [])}


@contextmanager
def mlflow(python: Path, data_dir: Path) -> Iterator[MLflow]:
    """Run ``mlflow server`` on a free port with a SQLite store in ``data_dir``."""
    port = free_port()
    with _serving("mlflow", python, data_dir, port, 0):
        yield MLflow(f"http://127.0.0.1:{port}")


@contextmanager
def _serving(name: str, python: Path, data_dir: Path, port: int, grpc_port: int) -> Iterator[None]:
    command, env, health_url = load_script("backend_envs").server(name, python, data_dir, port, grpc_port)
    process = start(name, command, env, health_url, data_dir, SERVER_START_TIMEOUT_S, new_session=True)
    try:
        yield
    finally:
        process.stop()  # with its workers: the whole process group

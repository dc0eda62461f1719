"""Screenshots of a DSPy trace in Arize Phoenix and MLflow for docs/backends.md, taken with headless Chromium.

For each backend: start its server (the venvs of ``backend_envs.py``) on a free
port on 127.0.0.1, run ``dspy-otel demo`` against it with the environment lines
the guide gives, open the trace of the demo's ReAct agent in the backend's UI
and save a screenshot to ``docs/images/<backend>-trace.png``.

Needs Debian's ``chromium`` (``apt-get install -y chromium``).
Usage: ``.venv/bin/python scripts/backend_screenshots.py [phoenix|mlflow ...]``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import backend_envs
import chromium

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"
START_TIMEOUT_S = 600.0
PROJECT = "dspy-demo"
CHROMIUM_FLAGS = (
    *chromium.HEADLESS_FLAGS,
    "--hide-scrollbars",
    "--virtual-time-budget=30000",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _json(url: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


@contextmanager
def _server(name: str, data_dir: Path) -> Iterator[tuple[str, int]]:
    """Start backend ``name``; yield its base URL and gRPC port; stop its process group."""
    port, grpc_port = _free_port(), _free_port()
    command, env, health = backend_envs.server(name, backend_envs.ensure(name, log=True), data_dir, port, grpc_port)
    with (data_dir / f"{name}.log").open("wb") as log:
        process = subprocess.Popen(command, env={**os.environ, **env}, stdout=log, stderr=log, start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(health, timeout=2):
                    break
            except (OSError, urllib.error.URLError):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"{name} did not start; see {data_dir / f'{name}.log'}") from None
                time.sleep(1)
        yield f"http://127.0.0.1:{port}", grpc_port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def _demo(env: dict[str, str], cwd: Path) -> None:
    """Run ``dspy-otel demo`` with ``env`` added to a clean environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DSPY_OTEL_"))}
    command = [str(Path(sys.executable).parent / "dspy-otel"), "demo"]
    clean.update(LITELLM_LOCAL_MODEL_COST_MAP="True", OTEL_SERVICE_NAME=PROJECT, OTEL_METRICS_EXPORTER="none", **env)
    subprocess.run(command, env=clean, cwd=cwd, check=True, stdout=subprocess.DEVNULL, timeout=600)


def _wait(what: str, find: Any) -> Any:
    deadline = time.monotonic() + 120
    while (found := find()) is None:
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(1)
    return found


def phoenix_url(base: str, cwd: Path) -> str:
    """Trace the demo into Phoenix; the URL of the ReAct agent's trace."""
    _demo(
        {
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{base}/v1/traces",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_RESOURCE_ATTRIBUTES": f"openinference.project.name={PROJECT}",
        },
        cwd,
    )

    def agent_trace() -> str | None:
        spans = _json(f"{base}/v1/projects/{PROJECT}/spans?limit=1000")["data"]
        return next((s["context"]["trace_id"] for s in spans if s["name"] == "invoke_agent ReAct"), None)

    trace_id = _wait("the demo's trace in Phoenix", agent_trace)
    project_id = next(p["id"] for p in _json(f"{base}/v1/projects")["data"] if p["name"] == PROJECT)
    return f"{base}/projects/{project_id}/traces/{trace_id}"


def mlflow_url(base: str, cwd: Path) -> str:
    """Trace the demo into a new MLflow experiment; the URL of the ReAct agent's trace."""
    experiment = _json(f"{base}/api/2.0/mlflow/experiments/create", {"name": PROJECT})["experiment_id"]
    _demo(
        {
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{base}/v1/traces",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_HEADERS": f"x-mlflow-experiment-id={experiment}",
        },
        cwd,
    )
    location = {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment}}

    def agent_trace() -> str | None:
        found = _json(f"{base}/api/3.0/mlflow/traces/search", {"locations": [location], "max_results": 100})
        for info in found.get("traces", []):
            if "Paris" in info.get("request_preview", ""):
                return str(info["trace_id"])
        return None

    trace_id = _wait("the demo's trace in MLflow", agent_trace)
    return f"{base}/#/experiments/{experiment}/traces/{trace_id}"


def screenshot(url: str, out: Path, size: str = "1400,860") -> None:
    """Save what headless Chromium shows at ``url`` to ``out`` (PNG)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("backend_screenshots: Chromium is missing (apt-get install -y chromium)")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                browser,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={size}",
                f"--screenshot={out}",
                url,
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
    print(f"{out} ({out.stat().st_size // 1024} KiB) <- {url}")


def main(argv: list[str]) -> int:
    """Take the screenshot of each backend in ``argv`` (default: both)."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    for name in argv or ("phoenix", "mlflow"):
        with tempfile.TemporaryDirectory() as tmp, _server(name, Path(tmp)) as (base, _grpc_port):
            url = (phoenix_url if name == "phoenix" else mlflow_url)(base, Path(tmp))
            screenshot(url, IMAGES / f"{name}-trace.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""The dspy-otel command: config, check and the demo (in a subprocess, as a newcomer runs it)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import closed_port, run_demo
from dspy_otel.cli import main


def test_config_prints_values_and_sources(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSPY_OTEL_PROFILE", "staging")
    monkeypatch.setenv("DSPY_OTEL_WINDOW", "9")
    assert main(["config"]) == 0
    lines = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()[1:]}
    assert lines["DSPY_OTEL_PROFILE"] == ["staging", "env", "DSPY_OTEL_PROFILE"]
    assert lines["DSPY_OTEL_WINDOW"] == ["9", "env", "DSPY_OTEL_WINDOW"]
    assert lines["OTEL_TRACES_SAMPLER_ARG"] == ["0.25", "profile", "staging"]
    assert lines["DSPY_OTEL_CONTENT_MAX_LENGTH"] == ["16384", "default"]


def test_check_fails_on_bad_values(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["check"]) == 0
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "jaeger")
    assert main(["check"]) == 1
    assert (
        "OTEL_TRACES_EXPORTER='jaeger': allowed: a comma-separated list of otlp, console, none"
        in capsys.readouterr().err
    )


def test_demo_falls_back_to_a_file_and_says_so(tmp_path: Path) -> None:
    stdout = run_demo(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{closed_port()}")
    assert "no collector at 127.0.0.1" in stdout
    assert "falling back to OTLP-JSON" in stdout
    assert "execute_tool _weather" in stdout
    assert "ERROR" in stdout
    # Short and true: no prompt dump unless --verbose, input and output tokens, a dash where none are known.
    assert "System message" not in stdout
    assert len(stdout.splitlines()) < 40
    assert "demo: 6 traces (19 spans) written to dspy-otel-demo-traces.jsonl:" in stdout
    assert re.search(r"chat gpt-4o-mini  [\d.]+ ms  tokens in=\d+ out=\d+\n", stdout)
    assert re.search(r"chat gpt-4o-mini  [\d.]+ ms  tokens in=- out=-  ERROR\n", stdout)
    assert "None" not in stdout
    lines = (tmp_path / "dspy-otel-demo-traces.jsonl").read_text().splitlines()
    spans = [
        span
        for line in lines
        for resource in json.loads(line)["resourceSpans"]
        for scope in resource["scopeSpans"]
        for span in scope["spans"]
    ]
    names = {s["name"] for s in spans}
    assert {
        "ChainOfThought",
        "invoke_agent ReAct",
        "Predict react",
        "chat gpt-4o-mini",
        "execute_tool _weather",
    } <= names
    assert all(len(s["traceId"]) == 32 and len(s["spanId"]) == 16 for s in spans)
    assert any(s.get("status", {}).get("code") == "STATUS_CODE_ERROR" for s in spans)


def test_demo_verbose_prints_the_last_prompt(tmp_path: Path) -> None:
    stdout = run_demo(tmp_path, "--verbose", OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{closed_port()}")
    assert "User message:" in stdout
    assert "Please FAIL this one." in stdout
    assert "Error: LMServerError" in stdout


def test_import_is_light() -> None:
    code = (
        "import sys, dspy_otel; "
        "print(sorted(m for m in ('dspy', 'litellm', 'grpc', 'opentelemetry.instrumentation') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def test_inspect_names_the_jaeger_it_cannot_read(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DSPY_OTEL_JAEGER_URL", f"http://127.0.0.1:{closed_port()}")
    assert main(["inspect", "--last", "2"]) == 1
    assert "no Jaeger answers at http://127.0.0.1:" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from dspy_otel import __version__

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"dspy-otel {__version__}"


def test_config_shows_service_endpoint_and_resource(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "triage-api")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod")
    assert main(["config"]) == 0
    lines = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()[1:]}
    assert lines["OTEL_SERVICE_NAME"] == ["triage-api", "env", "OTEL_SERVICE_NAME"]
    assert lines["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] == [
        "http://collector:4317",
        "env",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    assert lines["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] == ["grpc", "default"]
    assert lines["OTEL_RESOURCE_ATTRIBUTES"][0] == "deployment.environment=***"


def test_configure_takes_service_name_and_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    import dspy_otel
    from dspy_otel import _setup

    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-the-environment")
    provider = dspy_otel.configure(
        service_name="from-the-argument", endpoint="http://127.0.0.1:4318", protocol="http/protobuf", exit_timeout_ms=0
    )
    assert provider.resource.attributes["service.name"] == "from-the-argument"
    assert _setup._settings is not None
    assert _setup._settings.otlp_endpoint == "http://127.0.0.1:4318"
    (batch,) = _setup._batches
    assert batch.span_exporter.inner._endpoint == "http://127.0.0.1:4318/v1/traces"

"""Zero code change: ``opentelemetry-instrument python app.py`` traces a DSPy program through the entry point."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import env_without_settings

APP = """
import dspy
from dspy_otel._fake_lm import FakeOpenAIServer

with FakeOpenAIServer() as server:
    lm = dspy.LM("openai/gpt-4o-mini", api_base=server.base_url, api_key="sk-auto", cache=False)
    with dspy.context(lm=lm):
        prediction = dspy.Predict("question -> answer")(question="zero code change?")
assert prediction.answer == "42", prediction
"""


def console_spans(stdout: str) -> list[dict[str, Any]]:
    """The JSON objects the console exporter printed one after another."""
    decoder, spans, index = json.JSONDecoder(), [], 0
    while (index := stdout.find("{", index)) != -1:
        span, index = decoder.raw_decode(stdout, index)
        spans.append(span)
    return spans


def test_opentelemetry_instrument_traces_an_unmodified_app(tmp_path: Path) -> None:
    if importlib.util.find_spec("opentelemetry.distro") is None:
        pytest.fail(
            "opentelemetry-instrument configures no tracer provider without a configurator: "
            "install opentelemetry-distro (it must be in the package's dependencies or test extra)"
        )
    (tmp_path / "app.py").write_text(APP)
    env = env_without_settings()
    env.update(
        OTEL_TRACES_EXPORTER="console",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_SERVICE_NAME="dspy-otel-auto-test",
        LITELLM_LOCAL_MODEL_COST_MAP="True",
    )
    instrument = Path(sys.executable).parent / "opentelemetry-instrument"
    done = subprocess.run(
        [str(instrument), sys.executable, "app.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    spans = console_spans(done.stdout)
    by_name = {span["name"]: span for span in spans}
    assert set(by_name) == {"chat gpt-4o-mini", "Predict"}, done.stdout
    llm, predict = by_name["chat gpt-4o-mini"], by_name["Predict"]
    assert llm["kind"] == "SpanKind.CLIENT"
    assert llm["parent_id"] == predict["context"]["span_id"]
    assert llm["context"]["trace_id"] == predict["context"]["trace_id"]
    assert llm["attributes"]["gen_ai.provider.name"] == "openai"
    assert llm["attributes"]["gen_ai.usage.input_tokens"] > 0
    assert llm["resource"]["attributes"]["service.name"] == "dspy-otel-auto-test"
    assert "sk-auto" not in done.stdout

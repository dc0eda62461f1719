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
    """The JSON objects the console exporter printed (other output in between is skipped)."""
    decoder, spans, index = json.JSONDecoder(), [], 0
    while (index := stdout.find("{", index)) != -1:
        try:
            span, index = decoder.raw_decode(stdout, index)
        except json.JSONDecodeError:
            index += 1
            continue
        if isinstance(span, dict) and "context" in span:
            spans.append(span)
    return spans


def run_instrumented(tmp_path: Path, app: str) -> subprocess.CompletedProcess[str]:
    """Run ``app`` under ``opentelemetry-instrument`` with the console exporter; it must succeed."""
    if importlib.util.find_spec("opentelemetry.distro") is None:
        pytest.fail(
            "opentelemetry-instrument configures no tracer provider without a configurator: "
            "install opentelemetry-distro (it must be in the package's dependencies or test extra)"
        )
    (tmp_path / "app.py").write_text(app)
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
        timeout=300,  # a fresh interpreter importing DSPy and LiteLLM, on a slow shared machine
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_opentelemetry_instrument_traces_an_unmodified_app(tmp_path: Path) -> None:
    done = run_instrumented(tmp_path, APP)
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


APP_CONFIGURES = """
import dspy, dspy_otel
from dspy_otel._fake_lm import FakeOpenAIServer

dspy_otel.configure(profile="development", exporter="console")
with FakeOpenAIServer() as server:
    lm = dspy.LM("openai/gpt-4o-mini", api_base=server.base_url, api_key="sk-auto", cache=False)
    with dspy.context(lm=lm):
        dspy.Predict("question -> answer")(question="configured under opentelemetry-instrument")
dspy_otel.inspect_history(1)
dspy_otel.shutdown()
"""


def test_configure_under_opentelemetry_instrument_does_what_it_is_asked(tmp_path: Path) -> None:
    done = run_instrumented(tmp_path, APP_CONFIGURES)
    assert "configure() re-instruments it with its own settings" in done.stderr
    assert "Attempting to instrument while already instrumented" not in done.stderr
    spans = console_spans(done.stdout)
    assert sorted(span["name"] for span in spans) == ["Predict", "chat gpt-4o-mini"]  # once each, by one provider
    (llm,) = [span for span in spans if span["name"] == "chat gpt-4o-mini"]
    assert "configured under opentelemetry-instrument" in llm["attributes"]["gen_ai.input.messages"]  # development
    assert "trace=" in done.stdout  # the development window is on


def test_configure_after_an_explicit_instrument_takes_over(lm: Any, caplog: pytest.LogCaptureFixture) -> None:
    import dspy
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import dspy_otel

    first, second = InMemorySpanExporter(), InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(first))
    dspy_otel.DSPyInstrumentor().instrument(tracer_provider=provider)
    with caplog.at_level("WARNING", logger="dspy_otel"):
        mine = dspy_otel.configure(span_exporter=second)
    assert "DSPy was already instrumented" in caplog.text
    dspy.Predict("question -> answer")(question="q")
    mine.force_flush()
    assert first.get_finished_spans() == ()
    assert sorted(s.name for s in second.get_finished_spans()) == ["Predict", "chat gpt-4o-mini"]


def test_a_second_configure_says_what_it_did_not_change(lm: Any, caplog: pytest.LogCaptureFixture) -> None:
    import dspy_otel

    dspy_otel.configure(exporter="none")
    with caplog.at_level("WARNING", logger="dspy_otel"):
        dspy_otel.configure(exporter="none", window=5)
    assert "already configured, so configure() changes nothing (window: 0 -> 5)" in caplog.text

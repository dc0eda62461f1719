"""What a DSPy user sees in Arize Phoenix and MLflow: real servers, read back through their APIs.

The program: a module with a ``ChainOfThought`` and a ``Predict`` (``QA``), a
``ReAct`` agent with one tool (``{city: Paris}`` -> ``It is sunny in Paris.``),
and one failing LM call, traced with content capture on and sent over OTLP with
metrics on (neither server takes metrics: dspy-otel must say so once and stop).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import dspy
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai

import dspy_otel
from dspy_otel._attributes import RUN_INPUT_TOKENS, RUN_OUTPUT_TOKENS
from dspy_otel._fake_lm import FakeOpenAIServer
from integration.backends import MLflow, Phoenix, backend_python, mlflow, mlflow_attributes, phoenix
from integration.processes import wait_for
from programs import QA

pytestmark = pytest.mark.integration

LM_SPAN = "chat gpt-4o-mini"
MODULES = ("QA", "ChainOfThought think", "Predict check", "Predict react", "ChainOfThought extract", "Predict")
ARRIVAL_TIMEOUT_S = 180.0


def weather(city: str) -> str:
    """Today's weather in a city."""
    return f"It is sunny in {city}."


def run_program(fake_lm: FakeOpenAIServer, **settings: Any) -> list[ReadableSpan]:
    """Run the program traced by dspy-otel with ``settings``; return what it sent (an in-memory copy)."""
    before = dspy_otel.stats()
    provider = dspy_otel.configure(
        capture_content="SPAN_ONLY", metrics_exporter="otlp", exit_timeout_ms=120_000, **settings
    )
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    lm = dspy.LM("openai/gpt-4o-mini", api_base=fake_lm.base_url, api_key="x", cache=False, num_retries=0)
    with dspy.context(lm=lm):
        QA()(question="What is 6 x 7?")
        dspy.ReAct("question -> answer", tools=[weather])(question="What is the weather in Paris?")
        with pytest.raises(Exception, match="failed on purpose"):
            dspy.Predict("question -> answer")(question="Please FAIL")
    dspy_otel.shutdown()
    after = dspy_otel.stats()
    sent = list(memory.get_finished_spans())
    assert after.get("export_spans_exported", 0) - before.get("export_spans_exported", 0) == len(sent)
    # the server answered that it takes no metrics: counted, and no failure to report
    assert after.get("export_metric_batches_refused", 0) > before.get("export_metric_batches_refused", 0)
    assert after.get("export_metric_batches_failed", 0) == before.get("export_metric_batches_failed", 0)
    return sent


def _hex(span: ReadableSpan) -> str:
    return format(span.context.span_id, "016x")


def _tokens(span: ReadableSpan) -> tuple[Any, Any]:
    attributes = span.attributes or {}
    return attributes.get(gen_ai.GEN_AI_USAGE_INPUT_TOKENS), attributes.get(gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS)


@pytest.fixture(scope="module")
def phoenix_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phoenix]:
    with phoenix(backend_python("phoenix"), tmp_path_factory.mktemp("phoenix")) as server:
        yield server


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MLflow]:
    with mlflow(backend_python("mlflow"), tmp_path_factory.mktemp("mlflow")) as server:
        yield server


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_phoenix_shows_kinds_tokens_tool_calls_module_io_and_the_error(
    phoenix_server: Phoenix, fake_lm: FakeOpenAIServer, protocol: str
) -> None:
    project = f"dspy-{uuid.uuid4().hex[:8]}"
    endpoint = phoenix_server.grpc_endpoint if protocol == "grpc" else f"{phoenix_server.url}/v1/traces"
    sent = run_program(
        fake_lm, endpoint=endpoint, protocol=protocol, resource_attributes=f"openinference.project.name={project}"
    )
    wait_for(
        f"{len(sent)} spans in Phoenix", lambda: len(phoenix_server.spans(project)) == len(sent), ARRIVAL_TIMEOUT_S
    )
    shown = {span["context"]["span_id"]: span for span in phoenix_server.spans(project)}
    kinds = {(s.name, shown[_hex(s)]["span_kind"]) for s in sent}
    assert {(LM_SPAN, "LLM"), ("invoke_agent ReAct", "AGENT"), ("execute_tool weather", "TOOL")} <= kinds
    assert {(name, "CHAIN") for name in MODULES} <= kinds
    assert len({kind for name, kind in kinds if name == LM_SPAN}) == 1

    for span in sent:
        attributes = shown[_hex(span)]["attributes"]
        if span.name == LM_SPAN and span.status.is_ok:
            assert (attributes["llm.token_count.prompt"], attributes["llm.token_count.completion"]) == _tokens(span)
        elif span.name == "execute_tool weather":
            assert json.loads(attributes["input.value"]) == {"city": "Paris"}
            assert attributes["output.value"] == "It is sunny in Paris."
        elif span.name == "QA":
            assert json.loads(attributes["input.value"]) == {"question": "What is 6 x 7?"}
            assert "verdict" in json.loads(attributes["output.value"])
        elif span.name == "Predict":
            assert shown[_hex(span)]["status_code"] == "ERROR"
            assert "failed on purpose" in shown[_hex(span)]["status_message"]


def test_mlflow_shows_types_tokens_tool_calls_module_io_and_the_error(
    mlflow_server: MLflow, fake_lm: FakeOpenAIServer
) -> None:
    experiment = mlflow_server.create_experiment(f"dspy-{uuid.uuid4().hex[:8]}")
    sent = run_program(
        fake_lm,
        endpoint=f"{mlflow_server.url}/v1/traces",
        protocol="http/protobuf",
        otlp_headers=f"x-mlflow-experiment-id={experiment}",
    )

    def arrived() -> bool:
        return sum(len(trace["spans"]) for trace in mlflow_server.traces(experiment)) == len(sent)

    wait_for(f"{len(sent)} spans in MLflow", arrived, ARRIVAL_TIMEOUT_S)
    traces = mlflow_server.traces(experiment)
    shown: dict[str, list[dict[str, Any]]] = {}
    for trace in traces:
        for span in trace["spans"]:
            shown.setdefault(span["name"], []).append({**mlflow_attributes(span), "status": span.get("status", {})})
    types = {(name, attributes["mlflow.spanType"]) for name, spans in shown.items() for attributes in spans}
    assert {(LM_SPAN, "CHAT_MODEL"), ("invoke_agent ReAct", "AGENT"), ("execute_tool weather", "TOOL")} <= types
    assert {(name, "CHAIN") for name in MODULES} <= types
    assert len({kind for name, kind in types if name == LM_SPAN}) == 1

    sent_tokens = sorted(_tokens(s) for s in sent if s.name == LM_SPAN and s.status.is_ok)
    shown_tokens = sorted(
        (usage["input_tokens"], usage["output_tokens"])
        for attributes in shown[LM_SPAN]
        if (usage := attributes.get("mlflow.chat.tokenUsage"))
    )
    assert shown_tokens == sent_tokens
    (qa,) = [s for s in sent if s.name == "QA"]
    qa_trace = next(t for t in traces if any(span["name"] == "QA" for span in t["spans"]))
    usage = json.loads(qa_trace["trace_info"]["trace_metadata"]["mlflow.trace.tokenUsage"])
    assert (usage["input_tokens"], usage["output_tokens"]) == (  # the trace's total is the run total dspy-otel sent
        (qa.attributes or {})[RUN_INPUT_TOKENS],
        (qa.attributes or {})[RUN_OUTPUT_TOKENS],
    )

    (tool,) = shown["execute_tool weather"]
    assert tool["mlflow.spanInputs"] == {"city": "Paris"}
    assert tool["mlflow.spanOutputs"] == "It is sunny in Paris."
    (qa_shown,) = shown["QA"]
    assert qa_shown["mlflow.spanInputs"] == {"question": "What is 6 x 7?"}
    assert "verdict" in qa_shown["mlflow.spanOutputs"]
    (failed,) = shown["Predict"]
    assert "ERROR" in str(failed["status"].get("code"))
    assert "failed on purpose" in failed["status"].get("message", "")
    assert sorted(t["trace_info"]["state"] for t in traces) == ["ERROR", "OK", "OK"]

"""LM spans: name, kind and GenAI attributes for sync, async, streaming, cached and custom-``BaseLM`` calls."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import dspy
import pytest
from dspy.clients.cache import Cache
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.semconv.attributes import server_attributes as server
from opentelemetry.trace import SpanKind, StatusCode
from packaging.version import Version

from conftest import CANARY_KEY, Traced, parent_id
from dspy_otel._attributes import CACHE_HIT, LM_CLASS, USAGE_COST
from dspy_otel._fake_lm import FakeOpenAIServer, completion_text
from dspy_otel.instrumentation._support import dspy_version
from metric_points import count, points, total

LM_SPAN = "chat gpt-4o-mini"
USAGE = (gen_ai.GEN_AI_USAGE_INPUT_TOKENS, gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS, USAGE_COST)


def make_lm(base_url: str, **kwargs: Any) -> Any:
    return dspy.LM("openai/gpt-4o-mini", api_base=base_url, api_key=CANARY_KEY, **{"cache": False, **kwargs})


@pytest.fixture
def memory_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """DSPy's cache in memory only for this test: no disk cache survives the run."""
    monkeypatch.setattr(dspy, "cache", Cache(enable_disk_cache=False, enable_memory_cache=True, disk_cache_dir=None))


def assert_billed(span: ReadableSpan) -> None:
    """Token usage is present and the cost is gpt-4o-mini's price for it ($0.15 / $0.60 per million)."""
    attrs = span.attributes or {}
    tokens_in, tokens_out = attrs[gen_ai.GEN_AI_USAGE_INPUT_TOKENS], attrs[gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS]
    assert isinstance(tokens_in, int)
    assert tokens_in > 0
    assert isinstance(tokens_out, int)
    assert tokens_out > 0
    assert attrs[USAGE_COST] == pytest.approx(tokens_in * 0.15e-6 + tokens_out * 0.60e-6)


def test_lm_span_has_genai_attributes(traced: Callable[..., Traced], fake_server: FakeOpenAIServer) -> None:
    t = traced()
    model = make_lm(fake_server.base_url, temperature=0.2, max_tokens=256, top_p=0.9, n=1)
    with dspy.context(lm=model):
        dspy.Predict("question -> answer")(question="What is six times seven?")
    (span,) = t.named(LM_SPAN)
    (predict,) = t.named("Predict")
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert parent_id(span) == predict.context.span_id
    attrs = dict(span.attributes or {})
    expected = {
        gen_ai.GEN_AI_OPERATION_NAME: "chat",
        gen_ai.GEN_AI_PROVIDER_NAME: "openai",
        gen_ai.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
        gen_ai.GEN_AI_REQUEST_TEMPERATURE: 0.2,
        gen_ai.GEN_AI_REQUEST_MAX_TOKENS: 256,
        gen_ai.GEN_AI_REQUEST_TOP_P: 0.9,
        gen_ai.GEN_AI_REQUEST_CHOICE_COUNT: None,  # the conventions: only when it is not 1
        server.SERVER_ADDRESS: "127.0.0.1",
        server.SERVER_PORT: urlsplit(fake_server.base_url).port,
        gen_ai.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2025-01-01",
        gen_ai.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
        CACHE_HIT: None,  # only a cache hit carries it
        LM_CLASS: None,  # dspy.LM goes unsaid
        "dspy.lm.cost": None,  # gen_ai.usage.cost alone carries the cost
    }
    assert {key: attrs.get(key) for key in expected} == expected
    assert str(attrs[gen_ai.GEN_AI_RESPONSE_ID]).startswith("chatcmpl-fake-")
    assert_billed(span)


def test_per_call_parameters_override_the_lm_defaults(
    traced: Callable[..., Traced], fake_server: FakeOpenAIServer
) -> None:
    t = traced()
    model = make_lm(fake_server.base_url, temperature=0.2, max_tokens=256)
    outputs = model("Say hi", temperature=0.7, max_tokens=50, top_p=0.5, n=2)
    with dspy.context(lm=model):
        dspy.Predict("question -> answer")(question="hi", config={"temperature": 0.9})
    direct, via_predict = sorted(t.named(LM_SPAN), key=lambda s: s.start_time or 0)
    assert len(outputs) == 2
    attrs = direct.attributes or {}
    assert attrs[gen_ai.GEN_AI_REQUEST_TEMPERATURE] == 0.7
    assert attrs[gen_ai.GEN_AI_REQUEST_MAX_TOKENS] == 50
    assert attrs[gen_ai.GEN_AI_REQUEST_TOP_P] == 0.5
    assert attrs[gen_ai.GEN_AI_REQUEST_CHOICE_COUNT] == 2
    assert attrs[gen_ai.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop", "stop")
    assert (via_predict.attributes or {})[gen_ai.GEN_AI_REQUEST_TEMPERATURE] == 0.9
    assert (via_predict.attributes or {})[gen_ai.GEN_AI_REQUEST_MAX_TOKENS] == 256


def test_async_acall_is_traced(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()
    prediction = asyncio.run(dspy.ChainOfThought("question -> answer").acall(question="async?"))
    assert prediction.answer.startswith("42")
    (span,) = t.named(LM_SPAN)
    (cot,) = t.named("ChainOfThought")
    assert parent_id(span) == cot.context.span_id
    assert t.named("Predict") == []
    assert span.kind is SpanKind.CLIENT
    assert (span.attributes or {})[gen_ai.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert_billed(span)


def test_cache_hit_is_marked_and_not_billed(
    traced: Callable[..., Traced], fake_server: FakeOpenAIServer, memory_cache: None
) -> None:
    t = traced()
    question = f"cached {uuid.uuid4()}"
    before = fake_server.requests
    with dspy.context(lm=make_lm(fake_server.base_url, cache=True)):
        first = dspy.Predict("question -> answer")(question=question)
        second = dspy.Predict("question -> answer")(question=question)
    assert fake_server.requests == before + 1
    assert first.answer == second.answer
    miss, hit = sorted(t.named(LM_SPAN), key=lambda s: s.start_time or 0)
    assert CACHE_HIT not in (miss.attributes or {})
    assert_billed(miss)
    assert (hit.attributes or {})[CACHE_HIT] is True
    assert not set(USAGE) & set(hit.attributes or {})
    assert (hit.attributes or {})[gen_ai.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    (hit_parent,) = [s for s in t.named("Predict") if s.context.span_id == parent_id(hit)]
    assert hit_parent.context.trace_id == hit.context.trace_id


class AcmeLM(dspy.BaseLM):  # type: ignore[misc]  # dspy ships no type information
    """A legacy custom LM: ``forward`` returns an OpenAI-shaped response object."""

    def forward(self, prompt: Any = None, messages: Any = None, **kwargs: Any) -> Any:
        text = completion_text(messages or [{"role": "user", "content": prompt}])
        message = SimpleNamespace(role="assistant", content=text)
        return SimpleNamespace(
            id="acme-1",
            model="acme-large-v2",
            choices=[SimpleNamespace(index=0, finish_reason="stop", message=message)],
            usage={"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
        )


def legacy_lm_warning() -> contextlib.AbstractContextManager[Any]:
    """DSPy 3.4 warns that a custom LM returning provider responses is legacy; earlier releases do not."""
    if Version(dspy_version() or "0") >= Version("3.4"):
        return pytest.warns(DeprecationWarning, match="custom LMs")
    return contextlib.nullcontext()


def test_custom_base_lm_subclass_gets_an_lm_span(traced: Callable[..., Traced]) -> None:
    t = traced()
    with dspy.context(lm=AcmeLM("acme/acme-large")), legacy_lm_warning():
        prediction = dspy.Predict("question -> answer")(question="custom?")
    assert prediction.answer == "42"
    (span,) = t.named("chat acme-large")
    (predict,) = t.named("Predict")
    assert span.kind is SpanKind.CLIENT
    assert parent_id(span) == predict.context.span_id
    attrs = dict(span.attributes or {})
    expected = {
        gen_ai.GEN_AI_PROVIDER_NAME: "acme",
        gen_ai.GEN_AI_REQUEST_MODEL: "acme-large",
        gen_ai.GEN_AI_RESPONSE_MODEL: "acme-large-v2",
        gen_ai.GEN_AI_RESPONSE_ID: "acme-1",
        gen_ai.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
        gen_ai.GEN_AI_USAGE_INPUT_TOKENS: 5,
        gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS: 3,
        CACHE_HIT: None,
        LM_CLASS: "AcmeLM",
    }
    assert {key: attrs.get(key) for key in expected} == expected


# -- streaming --------------------------------------------------------------------------------------------------


class _SSEHandler(BaseHTTPRequestHandler):
    """Answers every chat request as an OpenAI server-sent-event stream, with a final usage chunk."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert body.get("stream") is True
        text = completion_text(body["messages"], answer_size=40)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        base = {"id": "chatcmpl-sse", "object": "chat.completion.chunk", "created": 1, "model": body["model"]}
        deltas = [
            {"index": 0, "delta": {"content": text[i : i + 8]}, "finish_reason": None} for i in range(0, len(text), 8)
        ]
        chunks = [{**base, "choices": [d]} for d in deltas]
        chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        chunks.append(
            {**base, "choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}}
        )
        for chunk in chunks:
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the server quiet."""


@pytest.fixture(scope="module")
def sse_base_url() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _SSEHandler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


async def _drain(stream: Any) -> list[Any]:
    return [value async for value in stream]


@pytest.mark.parametrize("async_streaming", [True, False])
def test_streamify_streams_through_one_lm_span(
    traced: Callable[..., Traced], sse_base_url: str, async_streaming: bool
) -> None:
    t = traced()
    listener = dspy.streaming.StreamListener(signature_field_name="answer")
    predict = dspy.Predict("question -> answer")
    program = dspy.streamify(predict, stream_listeners=[listener], async_streaming=async_streaming)
    with dspy.context(lm=make_lm(sse_base_url)):
        stream = program(question="stream please")
        values = asyncio.run(_drain(stream)) if async_streaming else list(stream)
    chunks = [v for v in values if isinstance(v, dspy.streaming.StreamResponse)]
    assert len(chunks) >= 2, "the answer arrived in pieces"
    assert isinstance(values[-1], dspy.Prediction)
    assert values[-1].answer.startswith("42")
    (span,) = t.named(LM_SPAN)
    (predict,) = t.named("Predict")
    assert parent_id(span) == predict.context.span_id
    assert span.status.status_code is StatusCode.UNSET
    attrs = span.attributes or {}
    assert attrs[gen_ai.GEN_AI_USAGE_INPUT_TOKENS] == 11
    assert attrs[gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS] == 7
    assert attrs[gen_ai.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)


@pytest.mark.skipif(
    Version(dspy_version() or "0") < Version("3.4"),
    reason="before DSPy 3.4 (the LiteLLM path) a streamed call to a non-streaming server raises nothing to record",
)
def test_streamify_against_a_non_streaming_server_ends_the_span_with_error(
    traced: Callable[..., Traced], fake_server: FakeOpenAIServer
) -> None:
    t = traced()
    program = dspy.streamify(dspy.Predict("question -> answer"))
    with dspy.context(lm=make_lm(fake_server.base_url, num_retries=0)), pytest.raises(dspy.LMError) as caught:
        asyncio.run(_drain(program(question="no SSE here")))
    (span,) = t.named(LM_SPAN)
    (predict,) = t.named("Predict")
    assert parent_id(span) == predict.context.span_id
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})[error_attributes.ERROR_TYPE] == type(caught.value).__qualname__


def test_streamed_calls_are_in_the_metrics_even_when_sampled_out(
    traced: Callable[..., Traced], sse_base_url: str
) -> None:
    reader = InMemoryMetricReader()
    t = traced(sampler="always_off", metric_reader=reader)
    program = dspy.streamify(dspy.Predict("question -> answer"), async_streaming=False)
    with dspy.context(lm=make_lm(sse_base_url)):
        list(program(question="stream please"))
    assert t.spans() == []
    found = points(reader)
    assert total(found, "gen_ai.client.token.usage", gen_ai__token__type="input") == 11
    assert total(found, "gen_ai.client.token.usage", gen_ai__token__type="output") == 7
    assert count(found, "gen_ai.client.operation.duration") == 1


def test_request_attributes_are_cached_per_lm_and_follow_its_changes(fake_server: FakeOpenAIServer) -> None:
    from dspy_otel.instrumentation import _lm

    model = make_lm(fake_server.base_url, temperature=0.2)
    first = _lm.request_attributes(model, {})
    assert _lm.request_attributes(model, {}) is first  # worked out once
    model.kwargs["temperature"] = 0.9
    changed = _lm.request_attributes(model, {})
    assert changed is not first
    assert changed[gen_ai.GEN_AI_REQUEST_TEMPERATURE] == 0.9
    per_call = _lm.request_attributes(model, {"temperature": 0.1})
    assert per_call[gen_ai.GEN_AI_REQUEST_TEMPERATURE] == 0.1
    assert _lm.request_attributes(model, {}) is changed  # a call's own arguments do not replace the cache

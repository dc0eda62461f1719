"""Content capture: off by default, every mode of the env variable, GenAI message JSON, truncation, no credentials."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import dspy
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes import server_attributes as server
from opentelemetry.trace import SpanKind

from conftest import CANARY_KEY, Traced
from dspy_otel._fake_lm import FakeOpenAIServer
from dspy_otel.instrumentation._content import truncate

LM_SPAN = "chat gpt-4o-mini"
DETAILS = "gen_ai.client.inference.operation.details"
CONTENT_KEYS = {gen_ai.GEN_AI_INPUT_MESSAGES, gen_ai.GEN_AI_OUTPUT_MESSAGES}
MARK = re.compile(r"(.*)…\[truncated (\d+) chars\]", re.DOTALL)
PASSWORD = "hunter2-PASSWORD-9c1e"


def content_anywhere(span: ReadableSpan) -> set[str]:
    keys = set(span.attributes or {}) & CONTENT_KEYS
    for event in span.events:
        keys |= set(event.attributes or {}) & CONTENT_KEYS
    return keys


def assert_genai_messages(value: Any, roles: set[str]) -> list[dict[str, Any]]:
    """``value`` is JSON in the GenAI message shape: ``[{"role", "parts": [{"type": "text", "content"}]}]``."""
    messages = json.loads(str(value))
    assert isinstance(messages, list)
    assert messages
    for message in messages:
        assert message["role"] in roles
        assert set(message) <= {"role", "parts", "finish_reason"}
        assert message["parts"]
        for part in message["parts"]:
            assert part["type"] == "text"
            assert isinstance(part["content"], str)
    return messages


def test_content_is_off_by_default(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()
    dspy.ChainOfThought("question -> answer")(question="secret business question")
    spans = t.spans()
    assert len(t.named(LM_SPAN)) == 1
    assert all(not content_anywhere(s) for s in spans)
    assert all(e.name != DETAILS for s in spans for e in s.events)
    assert all("secret business question" not in s.to_json() for s in spans)


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ("true", "span"),
        ("false", ""),
        ("NO_CONTENT", ""),
        ("SPAN_ONLY", "span"),
        ("span_only", "span"),
        ("EVENT_ONLY", "event"),
        ("SPAN_AND_EVENT", "span+event"),
    ],
)
def test_capture_modes_from_the_environment(
    traced: Callable[..., Traced], lm: Any, monkeypatch: pytest.MonkeyPatch, value: str, where: str
) -> None:
    on_span, in_event = "span" in where, "event" in where
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", value)
    t = traced()
    dspy.Predict("question -> answer")(question="What is six times seven?")
    (span,) = t.named(LM_SPAN)
    attrs = span.attributes or {}
    events = [e for e in span.events if e.name == DETAILS]
    assert (set(attrs) & CONTENT_KEYS == CONTENT_KEYS) is on_span
    assert not (set(attrs) & CONTENT_KEYS) or on_span
    assert len(events) == (1 if in_event else 0)
    (predict,) = t.named("Predict")
    assert not content_anywhere(predict)
    sources = [dict(attrs)] if on_span else []
    sources += [dict(e.attributes or {}) for e in events]
    for found in sources:
        inputs = assert_genai_messages(found[gen_ai.GEN_AI_INPUT_MESSAGES], {"system", "user"})
        assert "What is six times seven?" in inputs[-1]["parts"][0]["content"]
        (output,) = assert_genai_messages(found[gen_ai.GEN_AI_OUTPUT_MESSAGES], {"assistant"})
        assert output["finish_reason"] == "stop"
        assert "[[ ## answer ## ]]" in output["parts"][0]["content"]


def test_content_is_truncated_to_the_limit_and_marked(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced(capture_content="SPAN_AND_EVENT", content_max_length=64)
    dspy.Predict("question -> answer")(question="x" * 500)
    (span,) = t.named(LM_SPAN)
    (event,) = [e for e in span.events if e.name == DETAILS]
    for found in (span.attributes or {}, event.attributes or {}):
        for key in CONTENT_KEYS:
            value = str(found[key])
            assert len(value) == 64
            match = MARK.fullmatch(value)
            assert match is not None
            assert '[{"role": '.startswith(match[1][:10])
            assert int(match[2]) > 100


@settings(max_examples=300, database=None, deadline=None)
@given(text=st.text(max_size=300), limit=st.integers(min_value=0, max_value=200))
@example(text="a" * 1_000_000, limit=16)
@example(text="a" * 1_000_000, limit=30)
@example(text="b" * 10_010, limit=30)
def test_truncate_keeps_the_limit_and_counts_the_cut(text: str, limit: int) -> None:
    out = truncate(text, limit)
    if len(text) <= limit:
        assert out == text
        return
    assert len(out) <= limit
    if limit == 0 or out == text[: limit - 1] + "…":
        assert len(out) == limit  # the full mark does not fit: one ellipsis marks the cut
        return
    match = MARK.fullmatch(out)
    assert match is not None, out
    kept, count = match[1], int(match[2])
    assert text.startswith(kept)
    assert count == len(text) - len(kept)
    assert len(out) == limit


# -- credentials ------------------------------------------------------------------------------------------------


class LeakyLM(dspy.BaseLM):  # type: ignore[misc]  # dspy ships no type information
    """A custom LM whose error message carries its API key, as careless clients do."""

    def forward(self, prompt: Any = None, messages: Any = None, **kwargs: Any) -> Any:
        raise PermissionError(f"key {self.kwargs['api_key']} was rejected")


@pytest.fixture
def no_retries(fake_server: FakeOpenAIServer) -> Iterator[Any]:
    model = dspy.LM("openai/gpt-4o-mini", api_base=fake_server.base_url, api_key=CANARY_KEY, cache=False, num_retries=0)
    with dspy.context(lm=model):
        yield model


@pytest.mark.parametrize("mode", ["SPAN_AND_EVENT", "NO_CONTENT"])
def test_credentials_never_reach_an_exported_byte(
    traced: Callable[..., Traced], fake_server: FakeOpenAIServer, no_retries: Any, mode: str
) -> None:
    t = traced(capture_content=mode)
    program = dspy.ChainOfThought("question -> answer")
    program(question="an ordinary question")
    with pytest.raises(dspy.LMServerError):
        program(question="please FAIL")
    with (
        dspy.context(lm=LeakyLM("acme/leaky", api_key=CANARY_KEY, num_retries=0)),
        pytest.warns(DeprecationWarning, match="custom LMs"),
        pytest.raises(PermissionError) as leaked,
    ):
        program(question="leak it")
    assert CANARY_KEY in str(leaked.value), "the app's own exception is unchanged"
    port = fake_server.base_url.rsplit(":", 1)[1]
    userinfo_lm = dspy.LM(
        "openai/gpt-4o-mini",
        api_base=f"http://alice:{PASSWORD}@127.0.0.1:{port}",
        api_key=CANARY_KEY,
        cache=False,
        num_retries=0,
    )
    with pytest.raises(dspy.LMError) as refused:
        userinfo_lm("hello")
    assert PASSWORD in str(refused.value), "DSPy puts the URL with its password into the message"
    spans = t.spans()
    exported = [s.to_json() for s in spans]
    assert [s.kind for s in spans].count(SpanKind.CLIENT) == 4
    assert all(CANARY_KEY not in text for text in exported)
    assert all(PASSWORD not in text for text in exported)
    assert sum("[REDACTED]" in text for text in exported) >= 3  # leaky LM, its ChainOfThought, the URL
    (userinfo_span,) = [s for s in t.named(LM_SPAN) if "[REDACTED]@127.0.0.1" in (s.status.description or "")]
    assert (userinfo_span.attributes or {})[server.SERVER_ADDRESS] == "127.0.0.1"
    if mode == "SPAN_AND_EVENT":
        assert any(content_anywhere(s) for s in spans)

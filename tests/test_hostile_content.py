"""Hostile LM data with content capture and the development window on: the app never notices, spans stay exportable.

10 MB prompts, answers and error messages, lone surrogates (what ``surrogateescape``
decoding makes of non-UTF-8 bytes), 500-level nesting and objects that are not
JSON-serialisable: nothing raises into the program that would not without
tracing, every string on a span (attributes, event attributes, status) stays
within the content limit and ``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT``, cuts are
marked, and the OTLP protobuf encoder takes every span without dropping anything.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import dspy
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.trace import StatusCode

import dspy_otel
from conftest import CANARY_KEY, Traced, attr, parent_id
from dspy_otel._fake_lm import FakeOpenAIServer
from dspy_otel._window import current_window

pytestmark = [
    pytest.mark.filterwarnings("ignore:Implementing custom LMs:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Passing OpenAI-style message:DeprecationWarning"),
]

TEN_MB = 10_000_000
LIMIT = 4096
LM_SPAN = "chat gpt-4o-mini"
CONTENT_KEYS = (gen_ai.GEN_AI_INPUT_MESSAGES, gen_ai.GEN_AI_OUTPUT_MESSAGES)
MARK = re.compile(r"…\[truncated \d+ chars\]$")
SURROGATE = "\udcff"  # b"\xff" decoded with errors="surrogateescape"


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": True}
    for _ in range(depth):
        value = {"a": value}
    return value


class HostileLM(dspy.BaseLM):  # type: ignore[misc]  # dspy ships no type information
    """A custom LM that takes anything and answers ``self.answer`` (a string, or a dict with tool calls)."""

    answer: Any = "[[ ## answer ## ]]\nfine\n\n[[ ## completed ## ]]"

    def forward(self, prompt: Any = None, messages: Any = None, **kwargs: Any) -> Any:
        message = SimpleNamespace(role="assistant", content=self.answer)
        choice = SimpleNamespace(index=0, finish_reason="stop", message=message)
        return SimpleNamespace(id="hostile-1", model="hostile", choices=[choice], usage={})


class Opaque:
    def __repr__(self) -> str:
        return "<Opaque>"


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")

    __repr__ = __str__


class Garbled(Exception):
    """An exception whose message cannot be printed (a buggy ``__str__``, as some libraries ship)."""

    def __str__(self) -> str:
        raise RuntimeError("no message for you")


@pytest.fixture(scope="module")
def big_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(answer_size=TEN_MB) as server:
        yield server


def lm_for(server: FakeOpenAIServer) -> Any:
    return dspy.LM("openai/gpt-4o-mini", api_base=server.base_url, api_key=CANARY_KEY, cache=False, num_retries=0)


def strings(span: ReadableSpan) -> Iterator[tuple[str, str]]:
    """Every string the span carries: attributes, event attributes and the status description."""
    for key, value in (span.attributes or {}).items():
        if isinstance(value, str):
            yield key, value
    for event in span.events:
        for key, value in (event.attributes or {}).items():
            if isinstance(value, str):
                yield f"{event.name}.{key}", value
    yield "status.description", span.status.description or ""


def assert_exportable(spans: list[ReadableSpan], limit: int, caplog: pytest.LogCaptureFixture) -> None:
    """Each string within ``limit`` and valid UTF-8; the OTLP encoder keeps every attribute and logs no error."""
    assert spans
    for span in spans:
        for key, value in strings(span):
            assert len(value) <= limit, f"{span.name} {key} is {len(value)} characters"
            value.encode("utf-8")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        request = encode_spans(spans)
        request.SerializeToString()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    encoded = [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert sorted((len(s.attributes), [len(e.attributes) for e in s.events]) for s in encoded) == sorted(
        (len(s.attributes or {}), [len(e.attributes or {}) for e in s.events]) for s in spans
    ), "the encoder dropped an attribute"


def assert_cut_and_marked(span: ReadableSpan, key: str, limit: int) -> None:
    value = str(attr(span, key))
    assert len(value) == limit
    assert MARK.search(value), f"{key} is cut without a mark: ...{value[-40:]!r}"


def assert_window_bounded(limit: int) -> None:
    window = current_window()
    assert window is not None
    for record in window.last(10):
        parts = [p for m in record.messages or [] for p in m["parts"]]
        assert all(len(str(p.get("content", ""))) <= limit for p in parts)
        assert all(len(str(o)) <= limit + 64 for o in record.outputs or [])


def test_ten_megabyte_prompts_and_answers_are_cut_marked_and_exportable(
    traced: Callable[..., Traced],
    big_server: FakeOpenAIServer,
    fake_server: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("DSPY_OTEL_CONTENT_MAX_LENGTH", str(LIMIT))
    t = traced(capture_content="SPAN_ONLY", window=10)
    with dspy.context(lm=lm_for(fake_server)):
        assert dspy.Predict("question -> answer")(question="p" * TEN_MB).answer.startswith("42")
    with dspy.context(lm=lm_for(big_server)):
        assert len(dspy.Predict("question -> answer")(question="q").answer) == TEN_MB
    big_prompt, big_answer = sorted(t.named(LM_SPAN), key=lambda s: s.start_time or 0)
    assert_cut_and_marked(big_prompt, gen_ai.GEN_AI_INPUT_MESSAGES, LIMIT)
    assert_cut_and_marked(big_answer, gen_ai.GEN_AI_OUTPUT_MESSAGES, LIMIT)
    assert_exportable(t.spans(), LIMIT, caplog)
    assert_window_bounded(LIMIT)


@pytest.mark.parametrize("mode", ["SPAN_ONLY", "SPAN_AND_EVENT"])
def test_the_attribute_length_limit_from_the_environment_is_honoured_and_cuts_stay_marked(
    traced: Callable[..., Traced],
    big_server: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    mode: str,
) -> None:
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "1000")  # below the 16,384 content limit
    t = traced(capture_content=mode, window=10)
    with dspy.context(lm=lm_for(big_server)):
        dspy.Predict("question -> answer")(question="q")
    (span,) = t.named(LM_SPAN)
    assert_cut_and_marked(span, gen_ai.GEN_AI_OUTPUT_MESSAGES, 1000)
    if mode == "SPAN_AND_EVENT":
        (event,) = span.events
        assert MARK.search(str((event.attributes or {})[gen_ai.GEN_AI_OUTPUT_MESSAGES]))
    assert_exportable(t.spans(), 1000, caplog)


def test_a_ten_megabyte_error_message_is_cut_on_every_span(
    traced: Callable[..., Traced], big_server: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    t = traced(capture_content="SPAN_ONLY", window=10)
    with dspy.context(lm=lm_for(big_server)), pytest.raises(dspy.utils.exceptions.AdapterParseError) as caught:
        dspy.Predict("question -> answer: int")(question="q")  # "42 xxx…" is no int: DSPy quotes all 10 MB
    assert len(str(caught.value)) > TEN_MB, "the app's own exception is unchanged"
    spans = t.spans()
    (predict,) = t.named("Predict")
    assert predict.status.status_code is StatusCode.ERROR
    assert MARK.search(predict.status.description or "")
    assert_exportable(spans, 16384, caplog)
    assert sum(len(s.to_json()) for s in spans) < 1_000_000


def test_lone_surrogates_are_exported_escaped_and_never_dropped(
    traced: Callable[..., Traced], fake_server: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    t = traced(capture_content="SPAN_AND_EVENT", window=10)
    hostile = HostileLM("hostile/h")
    hostile.answer = f"[[ ## answer ## ]]\nnot {SURROGATE} utf-8\n\n[[ ## completed ## ]]"
    with dspy.context(lm=hostile):
        assert dspy.Predict("question -> answer")(question="q").answer == f"not {SURROGATE} utf-8"

    def refuse(city: str) -> str:
        raise ValueError(f"unknown city {city}")

    with pytest.raises(ValueError, match=SURROGATE):
        dspy.Tool(refuse)(city=f"Par{SURROGATE}is")
    with pytest.raises(ValueError, match="not valid Unicode"):  # DSPy refuses to send it; the span still records it
        lm_for(fake_server)(messages=[{"role": "user", "content": f"lone {SURROGATE}"}])
    spans = t.spans()
    assert_exportable(spans, 16384, caplog)
    (answer,) = t.named("chat h")
    assert "\\udcff" in str(attr(answer, gen_ai.GEN_AI_OUTPUT_MESSAGES))
    (tool,) = t.named("execute_tool refuse")
    assert "\\udcff" in (tool.status.description or "")


def test_deeply_nested_arguments_and_outputs_change_nothing_for_the_app(
    traced: Callable[..., Traced], fake_server: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    deep = nested(500)
    real_lm = lm_for(fake_server)
    message = [{"role": "user", "content": [{"type": "text", "text": deep}]}]
    # DSPy's own deepcopy of the request gives up at this depth, untraced and traced alike; whether DSPy wraps
    # the RecursionError in an LMUnexpectedError depends on how deep the caller's stack already is.
    dspy_gives_up = (RecursionError, dspy.LMUnexpectedError)
    with pytest.raises(dspy_gives_up):
        real_lm(messages=message)
    t = traced(capture_content="SPAN_ONLY", window=10)
    with pytest.raises(dspy_gives_up):
        real_lm(messages=message)

    def echo_depth(value: dict[str, Any]) -> int:
        depth = 0
        while "a" in value:
            value, depth = value["a"], depth + 1
        return depth

    assert dspy.Tool(echo_depth)(value=deep) == 500
    assert asyncio.run(dspy.Tool(echo_depth).acall(value=deep)) == 500
    hostile = HostileLM("hostile/h")
    hostile.answer = {"text": "ok", "tool_calls": [{"function": {"name": "f", "arguments": deep}}]}
    shallower = nested(300)  # DSPy deep-copies requests: 500 levels would fail in DSPy, traced or not
    assert hostile(messages=[{"role": "user", "content": [{"type": "text", "text": shallower}]}], tools=[shallower])
    assert_exportable(t.spans(), 16384, caplog)
    assert len(t.named("execute_tool echo_depth")) == 2


def test_objects_that_are_not_json_serialisable_never_reach_the_app(
    traced: Callable[..., Traced], caplog: pytest.LogCaptureFixture
) -> None:
    t = traced(capture_content="SPAN_ONLY", window=10)
    hostile = HostileLM("hostile/h")
    content = [{"type": "text", "text": Opaque()}, Opaque()]
    assert hostile(messages=[{"role": "user", "content": content}, Opaque()], weird=Opaque(), temperature=Opaque())
    assert hostile(messages=[{"role": "user", "content": Unprintable()}], weird=Unprintable())
    assert hostile(Unprintable())
    spans = t.named("chat h")
    assert len(spans) == 3
    assert "<Opaque>" in str(attr(spans[0], gen_ai.GEN_AI_INPUT_MESSAGES))
    assert all(s.status.status_code is StatusCode.UNSET for s in spans)
    assert_exportable(t.spans(), 16384, caplog)
    dspy_otel.shutdown()


def test_a_credential_where_content_is_cut_is_scrubbed_whole(
    traced: Callable[..., Traced], lm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DSPY_OTEL_CONTENT_MAX_LENGTH", "128")
    t = traced(capture_content="SPAN_ONLY")
    for pad in range(0, 60, 3):  # slide the key across the cut
        lm("x" * pad + f"my key is {CANARY_KEY} " + "y" * 500)
    contents = [str(attr(s, gen_ai.GEN_AI_INPUT_MESSAGES)) for s in t.named(LM_SPAN)]
    assert len(contents) == 20
    assert all(MARK.search(c) for c in contents)
    assert [c for c in contents if CANARY_KEY[:8] in c] == [], "the cut left part of the key"


def test_an_exception_that_cannot_be_printed_still_ends_its_span_and_context(
    traced: Callable[..., Traced], lm: Any
) -> None:
    t = traced()

    def broken() -> str:
        raise Garbled

    with pytest.raises(Garbled):
        dspy.Tool(broken)()
    dspy.Predict("question -> answer")(question="after the garbled error")
    (tool,) = t.named("execute_tool broken")
    assert tool.status.status_code is StatusCode.ERROR
    (predict,) = t.named("Predict")
    assert parent_id(predict) is None, "the failed tool span must not stay the current span"

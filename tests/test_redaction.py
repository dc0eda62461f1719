"""A redaction hook rewrites captured content before it reaches a span, an event or the window."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import Any

import dspy
import pytest
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai

import dspy_otel
from conftest import Traced
from dspy_otel.cli import main
from redact_hooks import mask_emails

ADDRESS = "jane.doe@example.com"


def everything_captured(t: Traced) -> str:
    texts: list[str] = []
    for span in t.spans():
        texts.extend(str(v) for v in (span.attributes or {}).values())
        texts.extend(str(v) for event in span.events for v in (event.attributes or {}).values())
    return "\n".join(texts)


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_redaction_reaches_spans_events_and_the_window(
    how: str, traced: Callable[..., Traced], lm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    if how == "environment":
        monkeypatch.setenv("DSPY_OTEL_REDACT", "redact_hooks:mask_emails")
        t = traced(capture_content="SPAN_AND_EVENT", window=5)
    else:
        t = traced(capture_content="SPAN_AND_EVENT", window=5, redact=mask_emails)
    dspy.Predict("question -> answer")(question=f"write to {ADDRESS} please")
    captured = everything_captured(t)
    assert "write to <email> please" in captured
    assert ADDRESS not in captured
    out = io.StringIO()
    dspy_otel.inspect_history(1, file=out)
    assert "write to <email> please" in out.getvalue()
    assert ADDRESS not in out.getvalue()


def test_a_failing_hook_drops_the_content_logs_once_and_the_call_goes_on(
    traced: Callable[..., Traced], lm: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("DSPY_OTEL_REDACT", "redact_hooks:broken")
    t = traced(capture_content="SPAN_ONLY")
    with caplog.at_level(logging.WARNING, logger="dspy_otel"):
        for _ in range(3):
            assert dspy.Predict("question -> answer")(question=f"mail {ADDRESS}").answer
    (lm_span, *_) = t.named("chat gpt-4o-mini")
    assert gen_ai.GEN_AI_INPUT_MESSAGES not in (lm_span.attributes or {})
    assert ADDRESS not in everything_captured(t)
    assert caplog.text.count("redacting content (the content is dropped) failed") == 1


def test_a_hook_returning_something_else_than_text_drops_the_content(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced(capture_content="SPAN_ONLY", redact=lambda text: None)
    dspy.Predict("question -> answer")(question="q")
    (lm_span,) = t.named("chat gpt-4o-mini")
    assert gen_ai.GEN_AI_INPUT_MESSAGES not in (lm_span.attributes or {})


@pytest.mark.parametrize(
    ("value", "why"),
    [("mask_emails", "allowed: module:function"), ("no_such_module:f", "importing it failed (ModuleNotFoundError")],
)
def test_a_bad_hook_name_is_named_and_check_fails(
    value: str, why: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capsys: Any
) -> None:
    monkeypatch.setenv("DSPY_OTEL_REDACT", value)
    with caplog.at_level(logging.WARNING, logger="dspy_otel"):
        dspy_otel.configure(exporter="none", metrics_exporter="none")
    assert f"ignoring DSPY_OTEL_REDACT={value!r} (allowed: module:function" in caplog.text
    assert why in caplog.text
    assert main(["check"]) == 1
    err = capsys.readouterr().err
    assert f"DSPY_OTEL_REDACT={value!r}: allowed: module:function" in err
    assert why in err

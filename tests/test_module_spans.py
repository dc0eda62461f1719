"""Module spans say which module they stand for and, with content capture, what it received and returned."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import dspy
import pytest

import dspy_otel
from conftest import CANARY_KEY, Traced
from dspy_otel.instrumentation._modules import INPUTS, MODULE_NAME, OUTPUTS, SIGNATURE


class Triage(dspy.Module):  # type: ignore[misc]  # dspy ships no type information
    def __init__(self) -> None:
        super().__init__()
        self.classify = dspy.Predict("ticket -> label")
        self.reply = dspy.Predict("ticket, label -> answer")

    def forward(self, ticket: str) -> Any:
        label = self.classify(ticket=ticket).label
        return self.reply(ticket=ticket, label=label)


class Desk(dspy.Module):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.triage = Triage()

    def forward(self, ticket: str) -> Any:
        return self.triage(ticket=ticket)


def test_two_predicts_under_one_module_are_told_apart_by_name(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()
    Desk()(ticket="my order is late")
    names = sorted(s.name for s in t.spans() if s.name != "chat gpt-4o-mini")
    assert names == ["Desk", "Predict triage.classify", "Predict triage.reply", "Triage triage"]
    (classify,) = t.named("Predict triage.classify")
    attributes = classify.attributes or {}
    assert attributes[MODULE_NAME] == "triage.classify"
    assert attributes[SIGNATURE] == "ticket -> label"
    assert INPUTS not in attributes  # content capture is off by default


def test_the_name_is_worked_out_once_per_instance(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()
    desk = Desk()
    calls = {"n": 0}
    original = Triage.named_sub_modules

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        return original(self, *args, **kwargs)

    Triage.named_sub_modules = counting
    try:
        for _ in range(5):
            desk(ticket="again")
    finally:
        Triage.named_sub_modules = original
    assert calls["n"] == 2  # once for each Predict under Triage, not once per call
    assert len(t.named("Predict triage.reply")) == 5


@pytest.mark.parametrize(
    ("semconv", "inputs", "outputs"),
    [("genai", INPUTS, OUTPUTS), ("genai,openinference", "input.value", "output.value")],
)
def test_module_inputs_and_outputs_with_content_capture(
    traced: Callable[..., Traced], lm: Any, semconv: str, inputs: str, outputs: str
) -> None:
    t = traced(capture_content="SPAN_ONLY", semconv=semconv, redact=lambda text: text.replace("late", "<redacted>"))
    Triage()(ticket=f"my order is late, key {CANARY_KEY}")
    (root,) = t.named("Triage")
    attributes = root.attributes or {}
    assert json.loads(str(attributes[inputs])) == {"ticket": "my order is <redacted>, key [REDACTED]"}
    assert set(json.loads(str(attributes[outputs]))) == {"answer"}
    (reply,) = t.named("Predict reply")
    assert "label" in json.loads(str((reply.attributes or {})[inputs]))
    for span in t.spans():  # once per span: under OpenInference's keys or under dspy's, never both
        keys = set(span.attributes or {})
        assert not {INPUTS, "input.value"} <= keys
        assert not {OUTPUTS, "output.value"} <= keys


def test_debug_captures_module_content_too(traced: Callable[..., Traced], lm: Any) -> None:
    t = traced()
    with dspy_otel.debug():
        Triage()(ticket="debug me")
    (root,) = t.named("Triage")
    assert "debug me" in str((root.attributes or {})["input.value"])

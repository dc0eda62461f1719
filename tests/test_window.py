"""The development window and inspect_history()."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest

import dspy_otel
from conftest import Traced
from dspy_otel._window import current_window


def _printed(n: int) -> str:
    out = io.StringIO()
    dspy_otel.inspect_history(n, file=out)
    return out.getvalue()


def test_window_keeps_only_the_last_n_calls(traced: Callable[..., Traced], lm: Any) -> None:
    import dspy

    traced(profile="production", window=3)
    program = dspy.Predict("question -> answer")
    for i in range(10):
        program(question=f"number {i}")
    window = current_window()
    assert window is not None
    records = window.last(10)
    assert len(records) == 3
    assert [r.messages for r in records] == [None, None, None]  # production: content is not captured
    assert all(r.output_tokens and r.output_tokens > 0 for r in records)
    assert "content not captured" in _printed(1)


def test_inspect_history_prints_like_dspy(traced: Callable[..., Traced], lm: Any) -> None:
    import dspy

    traced(profile="development")
    program = dspy.Predict("question -> answer")
    program(question="What is six times seven?")
    with pytest.raises(Exception, match="failed on purpose"):
        program(question="FAIL please")
    text = _printed(2)
    assert "openai/gpt-4o-mini" in text
    assert "User message:" in text
    assert "What is six times seven?" in text
    assert "Response:" in text
    assert "[[ ## answer ## ]]" in text
    assert "tokens in=" in text
    assert " ms " in text
    assert "Error: LMServerError: [openai/gpt-4o-mini] the fake model failed on purpose" in text
    assert dspy_otel.inspect_history.__doc__


def test_window_is_off_in_production(traced: Callable[..., Traced], lm: Any) -> None:
    traced(profile="production")
    assert current_window() is None
    assert "window is off" in _printed(1)


def test_window_records_cache_hits(traced: Callable[..., Traced], fake_server: Any, tmp_path: Any) -> None:
    import uuid

    import dspy

    traced(profile="development")
    cached = dspy.LM("openai/gpt-4o-mini", api_base=fake_server.base_url, api_key="k", cache=True)
    question = f"cache me {uuid.uuid4()}"
    with dspy.context(lm=cached):
        dspy.Predict("question -> answer")(question=question)
        dspy.Predict("question -> answer")(question=question)
    window = current_window()
    assert window is not None
    first, second = window.last(2)
    assert (first.cache_hit, second.cache_hit) == (False, True)
    assert second.input_tokens is None
    assert "(cache hit)" in _printed(1)

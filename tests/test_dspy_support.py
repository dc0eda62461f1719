"""Which DSPy is supported, and a DSPy outside the range or missing a hook: traced as far as it goes, and said so."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import dspy
import pytest

from conftest import Traced
from dspy_otel.instrumentation import DSPyInstrumentor, _auto, _support
from dspy_otel.retention import SwitchedOffHistory


@pytest.fixture
def fresh_report() -> Iterator[None]:
    """Each test sees the one-line warning again (it is logged once per process)."""
    _support._reported.clear()
    yield
    _support._reported.clear()


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "dspy_otel" and r.levelno == logging.WARNING]


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("3.0.0", True),
        ("3.4.1", True),
        ("3.5.0rc1", True),
        ("2.6.27", False),
        ("4.0.0", False),
        ("x", False),
        (None, False),
    ],
)
def test_the_supported_range(version: str | None, expected: bool) -> None:
    assert _support.supported(version) is expected


def test_the_declared_range_is_the_instruments_extra() -> None:
    from importlib import metadata

    from packaging.requirements import Requirement

    requirements = [Requirement(r) for r in metadata.requires("dspy-otel") or []]
    extra = [r for r in requirements if r.marker is not None and r.marker.evaluate({"extra": "instruments"})]
    assert [(r.name, r.specifier) for r in extra] == [("dspy", Requirement(_support.SUPPORTED).specifier)]
    assert tuple(DSPyInstrumentor().instrumentation_dependencies()) == (_support.SUPPORTED,)


@pytest.mark.usefixtures("fresh_report")
def test_a_supported_dspy_with_every_hook_says_nothing(
    traced: Callable[..., Traced], lm: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="dspy_otel"):
        traced()
    assert warnings_of(caplog) == []


@pytest.mark.usefixtures("fresh_report")
def test_a_dspy_outside_the_range_is_traced_with_retention_off_and_named(
    traced: Callable[..., Traced], lm: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(DSPyInstrumentor, "instrumentation_dependencies", lambda self: ("dspy >= 9",))
    monkeypatch.setattr(_support, "dspy_version", lambda: "9.0.0")
    with caplog.at_level(logging.WARNING, logger="dspy_otel"):
        t = traced(profile="production")
    dspy.Predict("question -> answer")(question="q")
    assert {s.name for s in t.spans()} == {"Predict", "chat gpt-4o-mini"}
    assert isinstance(lm.history, SwitchedOffHistory)
    assert warnings_of(caplog) == [
        "dspy-otel: DSPy 9.0.0, outside the range dspy-otel supports and tests (dspy >= 3.0, < 4), "
        "is traced as far as it goes (every hook was found, but untested)"
    ]


@pytest.mark.usefixtures("fresh_report")
def test_a_missing_hook_is_named_in_one_line(
    traced: Callable[..., Traced], lm: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dspy.adapters.types.tool import Tool
    from dspy.clients import execution

    monkeypatch.delattr(Tool, "acall")
    monkeypatch.delattr(execution, "finalize")
    monkeypatch.delattr(dspy.clients.base_lm.BaseLM, "_process_lm_response")
    with caplog.at_level(logging.WARNING, logger="dspy_otel"):
        traced()
    (line,) = warnings_of(caplog)
    assert line.startswith(f"dspy-otel: DSPy {_support.dspy_version()} is traced without ")
    assert "tool spans (dspy.adapters.types.tool.Tool.acall not found)" in line
    assert "token usage, cost, response model and cache hits" in line


def test_without_dspy_nothing_is_instrumented(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(DSPyInstrumentor, "instrumentation_dependencies", lambda self: ("no-such-dspy-dist >= 1",))
    instrumentor = DSPyInstrumentor()
    instrumentor.instrument()
    assert not instrumentor.is_instrumented_by_opentelemetry
    assert "no-such-dspy-dist" in caplog.text


@pytest.mark.parametrize("disabled", ["", "dspy", "requests, *"])
def test_opentelemetry_instrument_instruments_an_out_of_range_dspy_unless_disabled(
    monkeypatch: pytest.MonkeyPatch, disabled: str
) -> None:
    monkeypatch.setattr(_auto, "dspy_version", lambda: "2.6.27")
    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", disabled)
    refusal = logging.LogRecord(
        _auto._LOADER.name, logging.ERROR, __file__, 1, 'dspy only instruments "dspy<4,>=3.0", but ...', None, None
    )
    _auto.pre_instrument()
    assert _auto._LOADER.filter(refusal) is bool(disabled)
    _auto.post_instrument()
    assert _auto._LOADER.filter(refusal)
    assert DSPyInstrumentor().is_instrumented_by_opentelemetry is not bool(disabled)
    DSPyInstrumentor().uninstrument()


def test_opentelemetry_instrument_leaves_a_supported_dspy_to_the_loader() -> None:
    _auto.pre_instrument()
    assert not _auto._LOADER.filters
    _auto.post_instrument()
    assert not DSPyInstrumentor().is_instrumented_by_opentelemetry

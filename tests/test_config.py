"""The settings table: precedence, profiles, bad values, and what configure() builds from it."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace import sampling
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

import dspy_otel
from conftest import Traced
from dspy_otel._setup import build_sampler
from dspy_otel.config import TABLE, markdown_table, problems, resolve
from dspy_otel.export.otlp import build_exporters


def test_argument_beats_env_beats_profile_beats_default() -> None:
    env = {"DSPY_OTEL_PROFILE": "development", "DSPY_OTEL_WINDOW": "7"}
    settings = resolve({"window": 3}, env)
    assert (settings.window, settings.sources["window"]) == (3, "argument")
    settings = resolve({}, env)
    assert (settings.window, settings.sources["window"]) == (7, "env DSPY_OTEL_WINDOW")
    assert (settings.capture_content, settings.sources["capture_content"]) == ("SPAN_ONLY", "profile development")
    assert (settings.content_max_length, settings.sources["content_max_length"]) == (16384, "default")


def test_unset_profile_means_production_and_empty_env_is_unset() -> None:
    settings = resolve({}, {"DSPY_OTEL_PROFILE": "", "DSPY_OTEL_WINDOW": "  "})
    assert settings.profile == "production"
    assert settings.dspy_history == "off"
    assert settings.capture_content == "NO_CONTENT"
    assert settings.window == 0


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ("development", ("keep", 200, "SPAN_ONLY", "parentbased_always_on", None)),
        ("staging", ("off", 50, "NO_CONTENT", "parentbased_traceidratio", 0.25)),
        ("production", ("off", 0, "NO_CONTENT", "parentbased_always_on", None)),
    ],
)
def test_profiles_pick_coherent_defaults(profile: str, expected: tuple[Any, ...]) -> None:
    s = resolve({"profile": profile}, {})
    assert (s.dspy_history, s.window, s.capture_content, s.sampler, s.sampler_arg) == expected


@pytest.mark.parametrize(
    ("raw", "mode"),
    [
        ("true", "SPAN_ONLY"),
        ("False", "NO_CONTENT"),
        ("span_and_event", "SPAN_AND_EVENT"),
        ("EVENT_ONLY", "EVENT_ONLY"),
    ],
)
def test_content_capture_accepts_both_spellings(raw: str, mode: str) -> None:
    assert resolve({}, {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": raw}).capture_content == mode


def test_bad_env_value_logs_one_clear_line_and_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="dspy_otel"):
        settings = resolve({}, {"DSPY_OTEL_PROFILE": "staging", "OTEL_TRACES_SAMPLER_ARG": "1.5"})
    assert settings.sampler_arg == 0.25
    (record,) = caplog.records
    message = record.getMessage()
    assert "OTEL_TRACES_SAMPLER_ARG='1.5'" in message
    assert "a number from 0.0 to 1.0" in message
    assert "using 0.25 from the profile staging" in message


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"window": -1}, "window=-1 is not valid; allowed: an integer >= 0"),
        ({"sampler": "sometimes"}, "allowed: always_on"),
        ({"capture_content": "maybe"}, "allowed: true, false, NO_CONTENT"),
        ({"profile": ["production"]}, "give a string or a number"),
        ({"windw": 3}, "unknown setting(s) windw"),
        ({"otlp_encoder": "fast"}, "otlp_encoder='fast' is not valid; allowed: dspy_otel, sdk"),
    ],
)
def test_bad_arguments_raise_value_error(overrides: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        resolve(overrides, {})


def test_a_bad_encoder_in_the_environment_is_named_and_dspy_otel_encodes(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="dspy_otel"):
        settings = resolve({}, {"DSPY_OTEL_OTLP_ENCODER": "protobuf"})
    assert settings.otlp_encoder == "dspy_otel"
    (record,) = caplog.records
    assert record.getMessage() == (
        "dspy-otel: ignoring DSPY_OTEL_OTLP_ENCODER='protobuf' (allowed: dspy_otel, sdk); "
        "using dspy_otel from the default"
    )
    assert resolve({}, {"DSPY_OTEL_OTLP_ENCODER": " SDK "}).otlp_encoder == "sdk"


def test_problems_lists_every_bad_env_value() -> None:
    found = problems({"DSPY_OTEL_WINDOW": "many", "OTEL_TRACES_EXPORTER": "zipkin", "DSPY_OTEL_PROFILE": "staging"})
    assert found == [
        "DSPY_OTEL_WINDOW='many': allowed: an integer >= 0",
        "OTEL_TRACES_EXPORTER='zipkin': allowed: a comma-separated list of otlp, console, none",
    ]


@given(st.text(max_size=12))
def test_any_env_string_resolves_without_raising(raw: str) -> None:
    env = {s.env: raw for s in TABLE}
    resolve({}, env)


def test_generic_otlp_protocol_variable_is_read() -> None:
    settings = resolve({}, {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})
    assert (settings.protocol, settings.sources["protocol"]) == ("http/protobuf", "env OTEL_EXPORTER_OTLP_PROTOCOL")
    (http,) = build_exporters(settings, {})
    assert isinstance(http, HttpExporter)
    (grpc,) = build_exporters(resolve({}, {}), {})
    assert isinstance(grpc, GrpcExporter)
    (console,) = build_exporters(resolve({"exporter": "console"}, {}), {})
    assert isinstance(console, ConsoleSpanExporter)
    assert build_exporters(resolve({"exporter": "none"}, {}), {}) == []
    otlp, console = build_exporters(resolve({"exporter": "otlp,console"}, {}), {})
    assert isinstance(otlp, GrpcExporter)
    assert isinstance(console, ConsoleSpanExporter)


def test_standard_sampler_names_are_the_sdk_samplers() -> None:
    ratio = build_sampler(resolve({"sampler": "traceidratio", "sampler_arg": 0.1}, {})).inner
    assert isinstance(ratio, sampling.TraceIdRatioBased)
    assert ratio.rate == 0.1
    assert build_sampler(resolve({}, {})).inner is sampling.DEFAULT_ON
    assert build_sampler(resolve({"sampler": "always_off"}, {})).inner is sampling.ALWAYS_OFF


def test_configure_is_idempotent(traced: Callable[..., Traced], lm: Any, caplog: pytest.LogCaptureFixture) -> None:
    t = traced()
    with caplog.at_level(logging.WARNING, logger="dspy_otel"):
        assert dspy_otel.configure() is t.provider
        assert dspy_otel.configure(window=5) is t.provider
    assert "already configured" in caplog.text


def test_sdk_disabled_makes_no_spans(traced: Callable[..., Traced], lm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import dspy

    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    t = traced()
    dspy.Predict("question -> answer")(question="q")
    assert t.spans() == []


def test_always_off_sampler_exports_nothing(traced: Callable[..., Traced], lm: Any) -> None:
    import dspy

    t = traced(sampler="always_off")
    dspy.ChainOfThought("question -> answer")(question="q")
    assert t.spans() == []


def test_the_configuration_page_shows_the_table_and_every_argument_name() -> None:
    page = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert markdown_table() in page  # regenerate with `dspy-otel config --table`
    names = page[page.index("keyword arguments of `dspy_otel.configure()`") : page.index("in the order of")]
    assert [name for name in re.findall(r"`(\w+)`", names) if name != "endpoint"] == [s.name for s in TABLE]

"""Head samplers: rate limiting (fake clock), rules (grammar, matching), entry points, bad arguments."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk._configuration import _import_sampler
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, TraceIdRatioBased
from opentelemetry.trace import set_span_in_context

from dspy_otel._attributes import MODULE_CLASS
from dspy_otel._setup import build_sampler
from dspy_otel.config import problems, resolve
from dspy_otel.sampling.rate_limiting import RateLimitingSampler
from dspy_otel.sampling.rules import Rules, RulesSampler, parse_rules


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


def sampled(sampler: RateLimitingSampler | RulesSampler, trace_id: int = 1, name: str = "root", **attrs: str) -> bool:
    return sampler.should_sample(None, trace_id, name, attributes=attrs).decision is Decision.RECORD_AND_SAMPLE


def test_rate_limiting_keeps_at_most_n_new_traces_per_second() -> None:
    clock = Clock()
    sampler = RateLimitingSampler(2, clock)
    assert [sampled(sampler) for _ in range(4)] == [True, True, False, False]
    clock.now += 0.5  # one token back
    assert [sampled(sampler) for _ in range(2)] == [True, False]
    clock.now += 60  # a quiet minute refills the bucket to its size, not beyond
    assert [sampled(sampler) for _ in range(3)] == [True, True, False]


def test_rate_limiting_below_one_per_second() -> None:
    clock = Clock()
    sampler = RateLimitingSampler(0.5, clock)
    assert [sampled(sampler), sampled(sampler)] == [True, False]
    clock.now += 2
    assert sampled(sampler)


def test_rate_limited_traces_are_whole() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=build_sampler(resolve({"sampler": "dspy_otel_rate_limiting", "sampler_arg": 1})))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    for _ in range(5):
        root = tracer.start_span("root")
        tracer.start_span("child", context=set_span_in_context(root)).end()
        root.end()
    assert sorted(s.name for s in exporter.get_finished_spans()) == ["child", "root"]


@pytest.mark.parametrize(
    ("name", "attrs", "ratio"),
    [
        ("Triage", {MODULE_CLASS: "Triage"}, 1.0),
        ("Classify", {MODULE_CLASS: "app.Classify"}, 0.01),
        ("Classify", {MODULE_CLASS: "Pipeline.Classify"}, 0.01),
        ("chat gpt-4o-mini", {"gen_ai.request.model": "gpt-4o-mini"}, 0.5),
        ("chat gpt-4o-mini", {"gen_ai.request.model": "gpt-4o-mini", "gen_ai.provider.name": "openai"}, 0.25),
        ("ReAct", {MODULE_CLASS: "ReAct"}, 0.1),
    ],
)
def test_first_matching_rule_gives_the_ratio(name: str, attrs: dict[str, str], ratio: float) -> None:
    rules = parse_rules(
        "module=Triage:1.0; module=Classify:0.01;"
        "gen_ai.request.model=gpt-4o*&gen_ai.provider.name=openai:0.25; name=chat *:0.5; *:0.1"
    )
    assert rules.ratio_for(name, attrs) == ratio


def test_unmatched_roots_are_kept_and_a_bare_number_is_a_catch_all() -> None:
    assert parse_rules("module=Triage:0").ratio_for("QA", {MODULE_CLASS: "QA"}) == 1.0
    assert str(parse_rules("0.2")) == "*:0.2"


@given(st.integers(min_value=0, max_value=2**128 - 1), st.sampled_from([0.0, 0.01, 0.1, 0.5, 1.0]))
def test_rule_decisions_agree_with_the_sdk_ratio_sampler(trace_id: int, ratio: float) -> None:
    sdk = TraceIdRatioBased(ratio).should_sample(None, trace_id, "root").decision is Decision.RECORD_AND_SAMPLE
    assert sampled(RulesSampler(parse_rules(f"*:{ratio}")), trace_id) is sdk


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("", "allowed: rules 'CONDITIONS:RATIO;...'"),
        ("module=Triage:1.5", "'1.5' in 'module=Triage:1.5' is not a ratio from 0.0 to 1.0"),
        ("module:0.5", "'module' is not KEY=VALUE"),
        ("=x:0.5", "'=x' is not KEY=VALUE"),
    ],
)
def test_bad_rules_say_what_is_wrong(raw: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        parse_rules(raw)


def test_configure_builds_parent_based_dspy_samplers() -> None:
    rules = build_sampler(resolve({"sampler": "dspy_otel_rules", "sampler_arg": "module=QA:0.5;*:0"}))
    assert isinstance(rules.inner, ParentBased)
    assert rules.get_description().startswith("DSPyOtel{ParentBased{root:DSPyOtelRules{module=QA:0.5;*:0},")
    limited = build_sampler(resolve({"sampler": "dspy_otel_rate_limiting"}, {}))
    assert isinstance(limited.inner, ParentBased)
    assert "root:DSPyOtelRateLimiting{10/s}," in limited.get_description()


@pytest.mark.parametrize(
    ("env", "bad", "allowed"),
    [
        (
            {"OTEL_TRACES_SAMPLER": "dspy_otel_rate_limiting", "OTEL_TRACES_SAMPLER_ARG": "fast"},
            "OTEL_TRACES_SAMPLER_ARG='fast'",
            "allowed: traces per second, a number > 0",
        ),
        (
            {"OTEL_TRACES_SAMPLER": "dspy_otel_rules", "OTEL_TRACES_SAMPLER_ARG": "module=QA"},
            "OTEL_TRACES_SAMPLER_ARG='module=QA'",
            "allowed: rules 'CONDITIONS:RATIO;...'",
        ),
        ({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER='sometimes'", "allowed: always_on"),
    ],
)
def test_bad_sampler_settings_log_one_line_and_fail_check(
    env: dict[str, str], bad: str, allowed: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="dspy_otel"):
        settings = resolve({}, env)
    (record,) = caplog.records
    assert record.getMessage().startswith(f"dspy-otel: ignoring {bad} ({allowed}")
    assert "; using " in record.getMessage()
    assert settings.sampler_arg is None  # the sampler's own default
    (problem,) = problems(env)
    assert problem.startswith(f"{bad}: {allowed}")


def test_the_staging_ratio_goes_with_the_staging_sampler_only() -> None:
    env = {"DSPY_OTEL_PROFILE": "staging", "OTEL_TRACES_SAMPLER": "dspy_otel_rate_limiting"}
    assert resolve({}, env).sampler_arg is None  # 0.25 is a ratio for the staging sampler, not a rate
    assert resolve({"profile": "staging"}, {}).sampler_arg == 0.25


@pytest.mark.parametrize(
    ("name", "arg", "description"),
    [
        ("dspy_otel_rate_limiting", "3", "DSPyOtelRateLimiting{3/s}"),
        ("dspy_otel_rules", "module=QA:0.5;*:0.1", "DSPyOtelRules{module=QA:0.5;*:0.1}"),
        ("dspy_otel_rules", "module=QA", "DSPyOtelRules{*:1}"),  # bad: logged, default used
    ],
)
def test_entry_points_serve_opentelemetry_instrument(
    name: str, arg: str, description: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", arg)
    with caplog.at_level(logging.WARNING, logger="dspy_otel"):
        sampler = _import_sampler(name)
    assert sampler is not None
    assert description in sampler.get_description()
    if "{*:1}" in description:
        assert "ignoring OTEL_TRACES_SAMPLER_ARG='module=QA' for dspy_otel_rules" in caplog.text


def test_rules_type_is_comparable_for_idempotent_configure() -> None:
    assert parse_rules("module=QA:0.5") == parse_rules(" module=QA : 0.5 ") == Rules(parse_rules("module=QA:0.5").rules)

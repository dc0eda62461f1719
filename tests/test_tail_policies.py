"""Tail policies one by one (table-driven, fixed ids) and the registry that parses DSPY_OTEL_TAIL_POLICIES."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.sampling import Decision, TraceIdRatioBased
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.trace import SpanContext, Status, StatusCode, TraceFlags

from dspy_otel._attributes import USAGE_COST
from dspy_otel.sampling.policies import TraceView, names, parse_policies, register
from dspy_otel.sampling.policies.errors import parse as parse_errors

TRACE_ID = 0x0000_0000_0000_0000_0FFF_FFFF_FFFF_FFFF  # low bits small: kept by any ratio >= ~0.0000001


def span(attributes: dict[str, Any] | None = None, error: bool = False, trace_id: int = TRACE_ID) -> ReadableSpan:
    return ReadableSpan(
        "s",
        context=SpanContext(trace_id, 1, False, TraceFlags(0)),
        resource=Resource.get_empty(),
        attributes=attributes or {},
        status=Status(StatusCode.ERROR if error else StatusCode.UNSET),
        start_time=0,
        end_time=1,
    )


def view(*spans: ReadableSpan, duration_ms: float = 10.0, trace_id: int = TRACE_ID) -> TraceView:
    return TraceView(trace_id, spans, int(duration_ms * 1e6), True)


MINI = {gen_ai.GEN_AI_REQUEST_MODEL: "gpt-4o-mini"}
USAGE = {gen_ai.GEN_AI_USAGE_INPUT_TOKENS: 300, gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS: 200}


@pytest.mark.parametrize(
    ("spec", "trace", "kept"),
    [
        ("errors", view(span(), span(error=True)), True),
        ("errors", view(span(), span()), False),
        ("latency:5000", view(span(), duration_ms=5000), True),
        ("latency:5000", view(span(), duration_ms=4999.9), False),
        ("ratio:1", view(span(), trace_id=2**128 - 1), True),
        ("ratio:0", view(span()), False),
        (
            "attribute:gen_ai.request.model=gpt-4o*",
            view(span(), span({gen_ai.GEN_AI_REQUEST_MODEL: "gpt-4o-mini"})),
            True,
        ),
        ("attribute:gen_ai.request.model=gpt-4o", view(span({gen_ai.GEN_AI_REQUEST_MODEL: "gpt-4o-mini"})), False),
        ("attribute:dspy.lm.cache_hit=true", view(span({"dspy.lm.cache_hit": True})), True),
        ("tokens:1000", view(span(USAGE), span(USAGE)), True),
        ("tokens:1001", view(span(USAGE), span(USAGE)), False),
        ("cost:0.05", view(span({USAGE_COST: 0.03}), span({USAGE_COST: 0.02})), True),
        ("cost:0.06", view(span({USAGE_COST: 0.03}), span({USAGE_COST: 0.02})), False),
    ],
)
def test_policy_decides(spec: str, trace: TraceView, kept: bool) -> None:
    (policy,) = parse_policies(spec)
    assert policy.keeps(trace) is kept
    assert str(policy) == spec


@given(st.integers(min_value=0, max_value=2**128 - 1), st.floats(min_value=0.0, max_value=1.0))
def test_ratio_policy_agrees_with_the_sdk_ratio_sampler(trace_id: int, ratio: float) -> None:
    (policy,) = parse_policies(f"ratio:{ratio!r}")
    sdk = TraceIdRatioBased(ratio).should_sample(None, trace_id, "root").decision is Decision.RECORD_AND_SAMPLE
    assert policy.keeps(view(span(trace_id=trace_id), trace_id=trace_id)) is sdk


def test_rate_policy_keeps_at_most_n_per_second() -> None:
    (policy,) = parse_policies("rate:3")
    kept = [policy.keeps(view(span())) for _ in range(10)]
    assert kept.count(True) == 3  # the bucket refills 3 per second; ten calls take far less than 1/3 s


def test_list_keeps_order_and_accepts_none() -> None:
    assert [str(p) for p in parse_policies(" errors , latency:5000,ratio:0.05 ")] == [
        "errors",
        "latency:5000",
        "ratio:0.05",
    ]
    assert parse_policies("") == ()
    assert parse_policies("None") == ()


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("erors", "'erors' is not a known policy"),
        ("errors:1", "allowed: errors (no argument)"),
        ("latency", "allowed: latency:MS"),
        ("latency:-1", "allowed: latency:MS"),
        ("ratio:1.5", "allowed: ratio:R with R a number from 0.0 to 1.0"),
        ("rate:0", "allowed: rate:N with N > 0"),
        ("attribute:model", "allowed: attribute:KEY=VALUE"),
        ("tokens:1.5", "allowed: tokens:N with N an integer >= 1"),
        ("cost:free", "allowed: cost:USD"),
        ("errors,errors", "'errors' is listed twice"),
        ("errors,", "'' is not a known policy"),
    ],
)
def test_bad_policies_name_what_is_wrong_and_what_is_allowed(spec: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        parse_policies(spec)


def test_registry_rejects_a_duplicate_name() -> None:
    assert set(names()) == {"errors", "latency", "ratio", "rate", "attribute", "tokens", "cost"}
    with pytest.raises(ValueError, match="already registered"):
        register("errors", parse_errors)

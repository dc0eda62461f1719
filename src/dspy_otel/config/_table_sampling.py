"""The settings table's sampling rows: the head sampler and its argument, the tail policies and their bounds."""

from __future__ import annotations

from dspy_otel.config._parse import choice, int_at_least
from dspy_otel.config._setting import Setting
from dspy_otel.sampling.head import HEAD_SAMPLERS, parse_sampler_arg
from dspy_otel.sampling.policies import parse_policies

SAMPLERS = tuple(HEAD_SAMPLERS)

SAMPLING_ROWS: tuple[Setting, ...] = (
    Setting(
        "sampler",
        "OTEL_TRACES_SAMPLER",
        choice(SAMPLERS),
        "parentbased_always_on",
        f"Head sampler: {' | '.join(SAMPLERS)}.",
        {"staging": "parentbased_traceidratio"},
    ),
    Setting(
        "sampler_arg",
        "OTEL_TRACES_SAMPLER_ARG",
        parse_sampler_arg,
        None,
        "The head sampler's argument: a ratio 0.0 to 1.0 for the traceidratio samplers (default 1.0); "
        "traces per second for dspy_otel_rate_limiting (default 10); rules for dspy_otel_rules "
        "(module=Triage:1.0;*:0.1, default *:1).",
        {"staging": 0.25},
        needs=("sampler",),
    ),
    Setting(
        "tail_policies",
        "DSPY_OTEL_TAIL_POLICIES",
        parse_policies,
        (),
        "In-process tail sampling: keep a trace when any policy keeps it: errors, latency:MS, ratio:R, rate:N, "
        "attribute:KEY=VALUE, tokens:N, cost:USD (comma-separated; none = off).",
    ),
    Setting(
        "tail_decision_wait_ms",
        "DSPY_OTEL_TAIL_DECISION_WAIT_MS",
        int_at_least(1),
        30_000,
        "Tail sampling: a trace whose root has not ended this many ms after its first span is decided then.",
    ),
    Setting(
        "tail_max_traces",
        "DSPY_OTEL_TAIL_MAX_TRACES",
        int_at_least(1),
        10_000,
        "Tail sampling: traces buffered at once; past it the oldest is decided early on what it has.",
    ),
    Setting(
        "tail_max_spans_per_trace",
        "DSPY_OTEL_TAIL_MAX_SPANS_PER_TRACE",
        int_at_least(1),
        1_000,
        "Tail sampling: a trace with this many buffered spans is decided early on what it has.",
    ),
    Setting(
        "tail_max_mib",
        "DSPY_OTEL_TAIL_MAX_MIB",
        int_at_least(1),
        64,
        "Tail sampling: estimated MiB buffered in all; past it the oldest traces are decided early.",
    ),
)

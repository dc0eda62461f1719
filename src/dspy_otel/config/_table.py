"""Every setting dspy-otel reads, in one table: :data:`TABLE` and the frozen :class:`Settings` it resolves into.

Each row (a :class:`~dspy_otel.config._setting.Setting`) names the ``configure()`` keyword, the environment
variable, the parser, the default and the profile defaults. The rows live by area, in the order of the table:

- :mod:`~dspy_otel.config._table_spans` — the profile and what the spans carry (history, window, layout,
  conventions, content);
- :mod:`~dspy_otel.config._table_sampling` — head and tail sampling;
- :mod:`~dspy_otel.config._table_export` — service name, exporters, OTLP, the batch span processor;
- :mod:`~dspy_otel.config._table_process` — exit and signals, resource, redaction, logs, metrics, the off switch.

:func:`dspy_otel.config.resolve` walks :data:`TABLE` into a :class:`Settings`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dspy_otel.config._parse import KeyValues
from dspy_otel.config._setting import Setting
from dspy_otel.config._table_export import EXPORT_ROWS
from dspy_otel.config._table_process import PROCESS_ROWS
from dspy_otel.config._table_sampling import SAMPLING_ROWS
from dspy_otel.config._table_spans import SPAN_ROWS
from dspy_otel.sampling.policies import Policy

TABLE: tuple[Setting, ...] = (*SPAN_ROWS, *SAMPLING_ROWS, *EXPORT_ROWS, *PROCESS_ROWS)


@dataclass(frozen=True)
class Settings:
    """The effective settings, one field per row of :data:`TABLE`."""

    profile: str
    dspy_history: str
    window: int
    spans: str
    semconv: tuple[str, ...]
    capture_content: str
    content_max_length: int
    sampler: str
    sampler_arg: Any
    tail_policies: tuple[Policy, ...]
    tail_decision_wait_ms: int
    tail_max_traces: int
    tail_max_spans_per_trace: int
    tail_max_mib: int
    service_name: str | None
    exporter: tuple[str, ...]
    protocol: str
    otlp_endpoint: str | None
    otlp_headers: KeyValues | None
    otlp_timeout_s: float
    otlp_compression: str
    otlp_insecure: bool | None
    otlp_certificate: str | None
    otlp_client_key: str | None
    otlp_client_certificate: str | None
    otlp_encoder: str
    bsp_max_queue_size: int
    bsp_max_export_batch_size: int
    bsp_schedule_delay_ms: int
    bsp_export_timeout_ms: int
    exit_timeout_ms: int
    flush_on_signals: bool
    resource_attributes: KeyValues | None
    redact: Callable[[str], str] | None
    log_correlation: bool
    metrics_exporter: tuple[str, ...]
    metric_export_interval_ms: int
    sdk_disabled: bool
    sources: Mapping[str, str]

"""Every setting dspy-otel reads, in one table, resolved once into a frozen :class:`Settings`.

Precedence for each setting: explicit ``configure()`` argument > environment
variable > profile default > package default. An empty environment variable
counts as unset. A bad explicit argument raises :class:`ValueError`; a bad
environment value logs one line (the variable, the value, what is allowed,
what is used instead) and falls back, so a typo never stops a service.

Example:
    >>> from dspy_otel._config import resolve
    >>> resolve({"profile": "development"}, env={}).capture_content
    'SPAN_ONLY'
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("dspy_otel")

PROFILES = ("development", "staging", "production")
CONTENT_MODES = ("NO_CONTENT", "SPAN_ONLY", "EVENT_ONLY", "SPAN_AND_EVENT")
_CONTENT_ALIASES = {"TRUE": "SPAN_ONLY", "FALSE": "NO_CONTENT"}
SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)


def _choice(allowed: tuple[str, ...], *, upper: bool = False) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().upper() if upper else raw.strip().lower()
        if upper:
            value = _CONTENT_ALIASES.get(value, value)
        if value not in allowed:
            raise ValueError(f"allowed: {', '.join(allowed)}")
        return value

    return parse


def _content(raw: str) -> str:
    try:
        return _choice(CONTENT_MODES, upper=True)(raw)
    except ValueError:
        raise ValueError(f"allowed: true, false, {', '.join(CONTENT_MODES)}") from None


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"allowed: an integer >= {minimum}") from None
        if value < minimum:
            raise ValueError(f"allowed: an integer >= {minimum}")
        return value

    return parse


def _ratio(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError("allowed: a number from 0.0 to 1.0") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError("allowed: a number from 0.0 to 1.0")
    return value


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value not in ("true", "false"):
        raise ValueError("allowed: true, false")
    return value == "true"


@dataclass(frozen=True)
class Setting:
    """One row of the settings table.

    Attributes:
        name: The ``configure()`` keyword and :class:`Settings` field.
        env: The environment variable that sets it.
        parse: Turns a string into the value; raises ``ValueError("allowed: ...")``.
        default: The value when neither argument, env nor profile sets it.
        doc: What it means, for the README and ``dspy-otel config``.
        profiles: Profile name -> default for that profile (overrides ``default``).
    """

    name: str
    env: str
    parse: Callable[[str], Any]
    default: Any
    doc: str
    profiles: Mapping[str, Any] | None = None


TABLE: tuple[Setting, ...] = (
    Setting(
        "profile",
        "DSPY_OTEL_PROFILE",
        _choice(PROFILES),
        "production",
        "Coherent defaults for the settings below: development | staging | production.",
    ),
    Setting(
        "dspy_history",
        "DSPY_OTEL_DSPY_HISTORY",
        _choice(("keep", "off")),
        "off",
        "DSPy's own in-process retention (GLOBAL_HISTORY, lm.history, module history, settings.trace): keep | off.",
        {"development": "keep"},
    ),
    Setting(
        "window",
        "DSPY_OTEL_WINDOW",
        _int_at_least(0),
        0,
        "Keep a compact record of the last N LM calls for dspy_otel.inspect_history(); 0 = none.",
        {"development": 200, "staging": 50},
    ),
    Setting(
        "capture_content",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
        _content,
        "NO_CONTENT",
        "Record prompts and outputs: NO_CONTENT | SPAN_ONLY | EVENT_ONLY | SPAN_AND_EVENT "
        "(true = SPAN_ONLY, false = NO_CONTENT). Credentials are never recorded.",
        {"development": "SPAN_ONLY"},
    ),
    Setting(
        "content_max_length",
        "DSPY_OTEL_CONTENT_MAX_LENGTH",
        _int_at_least(16),
        16384,
        "Characters kept of each captured content attribute; longer values are cut and marked.",
    ),
    Setting(
        "sampler",
        "OTEL_TRACES_SAMPLER",
        _choice(SAMPLERS),
        "parentbased_always_on",
        f"Head sampler: {' | '.join(SAMPLERS)}.",
        {"staging": "parentbased_traceidratio"},
    ),
    Setting(
        "sampler_arg",
        "OTEL_TRACES_SAMPLER_ARG",
        _ratio,
        1.0,
        "Sampling ratio for the traceidratio samplers, 0.0 to 1.0.",
        {"staging": 0.25},
    ),
    Setting(
        "exporter",
        "OTEL_TRACES_EXPORTER",
        _choice(("otlp", "console", "none")),
        "otlp",
        "Where spans go: otlp | console | none.",
    ),
    Setting(
        "protocol",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        _choice(("grpc", "http/protobuf")),
        "grpc",
        "OTLP transport: grpc | http/protobuf (OTEL_EXPORTER_OTLP_PROTOCOL is read too).",
    ),
    Setting(
        "sdk_disabled",
        "OTEL_SDK_DISABLED",
        _bool,
        False,
        "true = create no spans at all (the instrumentation stays out of DSPy).",
    ),
)

_BY_NAME = {s.name: s for s in TABLE}
_FALLBACK_ENV = {"protocol": "OTEL_EXPORTER_OTLP_PROTOCOL"}


@dataclass(frozen=True)
class Settings:
    """The effective settings, one field per row of :data:`TABLE`."""

    profile: str
    dspy_history: str
    window: int
    capture_content: str
    content_max_length: int
    sampler: str
    sampler_arg: float
    exporter: str
    protocol: str
    sdk_disabled: bool
    sources: Mapping[str, str]


def _env_value(setting: Setting, env: Mapping[str, str]) -> tuple[str, str] | None:
    for name in (setting.env, _FALLBACK_ENV.get(setting.name)):
        if name and env.get(name, "").strip():
            return name, env[name]
    return None


def _explicit(setting: Setting, value: Any) -> Any:
    """Validate a ``configure()`` argument: it is parsed exactly like an env value."""
    if not isinstance(value, (str, int, float)):
        raise ValueError(f"{setting.name}={value!r} is not valid; give a string or a number")
    raw = str(value).lower() if isinstance(value, bool) else str(value)
    try:
        return setting.parse(raw)
    except ValueError as exc:
        raise ValueError(f"{setting.name}={value!r} is not valid; {exc}") from None


def resolve(overrides: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Settings:
    """Resolve every setting from explicit overrides, the environment and the profile.

    Args:
        overrides: ``configure()`` keywords; ``None`` values count as not given.
        env: The environment to read (default ``os.environ``).

    Returns:
        The frozen settings, with ``sources`` naming where each value came from.

    Raises:
        ValueError: For an unknown keyword or an invalid explicit value.
    """
    env = os.environ if env is None else env
    unknown = sorted(set(overrides) - set(_BY_NAME))
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)}; allowed: {', '.join(_BY_NAME)}")
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting in TABLE:
        value, source = _resolve_one(setting, overrides.get(setting.name), env, values.get("profile"))
        values[setting.name] = value
        sources[setting.name] = source
    return Settings(**values, sources=sources)


def _resolve_one(setting: Setting, given: Any, env: Mapping[str, str], profile: str | None) -> tuple[Any, str]:
    if given is not None:
        return _explicit(setting, given), "argument"
    found = _env_value(setting, env)
    if found is not None:
        name, raw = found
        try:
            return setting.parse(raw), f"env {name}"
        except ValueError as exc:
            fallback, source = _default(setting, profile)
            logger.warning("dspy-otel: ignoring %s=%r (%s); using %r from the %s", name, raw, exc, fallback, source)
            return fallback, source
    return _default(setting, profile)


def _default(setting: Setting, profile: str | None) -> tuple[Any, str]:
    if profile and setting.profiles and profile in setting.profiles:
        return setting.profiles[profile], f"profile {profile}"
    return setting.default, "default"


def problems(env: Mapping[str, str] | None = None) -> list[str]:
    """Every invalid environment value, one message each (for ``dspy-otel check``)."""
    env = os.environ if env is None else env
    found = []
    for setting in TABLE:
        hit = _env_value(setting, env)
        if hit is None:
            continue
        try:
            setting.parse(hit[1])
        except ValueError as exc:
            found.append(f"{hit[0]}={hit[1]!r}: {exc}")
    return found


def markdown_table() -> str:
    """The settings table as Markdown, as the README shows it (``dspy-otel config --table``)."""

    def cell(value: Any) -> str:
        return f"`{str(value).lower() if isinstance(value, bool) else value}`"

    rows = ["| Environment variable | Default | Profile defaults | Meaning |", "| --- | --- | --- | --- |"]
    for s in TABLE:
        by_profile = ", ".join(f"{p}: {cell(v)}" for p, v in (s.profiles or {}).items())
        rows.append(f"| `{s.env}` | {cell(s.default)} | {by_profile} | {s.doc.replace('|', chr(92) + '|')} |")
    return "\n".join(rows)

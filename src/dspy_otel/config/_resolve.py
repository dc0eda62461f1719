"""The precedence walk that turns :data:`~dspy_otel.config.TABLE` into :class:`~dspy_otel.config.Settings`.

Each row, in table order, takes the first of: the explicit ``configure()`` argument (parsed exactly
like an environment value, so a bad one raises), the environment variable (or the general OTLP
variable it falls back to), the profile default (see ``Setting.needs``), the package default.
A bad environment value does not raise: :func:`walk` collects it with what is used instead, for
:func:`resolve` to log and for :func:`problems` and :func:`rejected` to report.
A list with some bad items (``DSPY_OTEL_TAIL_POLICIES=errors,latncy:100``) keeps the good ones.
:func:`unknown_names` names each ``DSPY_OTEL_*`` variable that is no setting, with the closest one.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Mapping
from typing import Any, NamedTuple

from dspy_otel.config._display import display
from dspy_otel.config._parse import import_callable
from dspy_otel.config._setting import Setting
from dspy_otel.config._table import TABLE, Settings
from dspy_otel.config._table_export import FALLBACK_ENV
from dspy_otel.sampling.policies import PartlyValid

logger = logging.getLogger("dspy_otel")
_BY_NAME = {s.name: s for s in TABLE}
_PREFIX = "DSPY_OTEL_"
# DSPY_OTEL_* variables read elsewhere, not settings: the `inspect` command's Jaeger, the test setup's caches of
# Go binaries and venvs (scripts/), and the collector and Jaeger configurations (collector-config/*.yaml)
OTHER_VARIABLES = ("DSPY_OTEL_JAEGER_URL", "DSPY_OTEL_BIN_CACHE", "DSPY_OTEL_CACHE")
OTHER_PREFIXES = ("DSPY_OTEL_COLLECTOR_", "DSPY_OTEL_JAEGER_", "DSPY_OTEL_LB_")


class Rejected(NamedTuple):
    """A bad environment value: the variable, its value, why, and what is used instead.

    ``partly``: only some items of a list were bad; the rest is used.
    """

    name: str
    raw: str
    why: str
    fallback: str
    partly: bool = False


def _env_value(setting: Setting, env: Mapping[str, str]) -> tuple[str, str] | None:
    for name in (setting.env, FALLBACK_ENV.get(setting.name)):
        if name and env.get(name, "").strip():
            return name, env[name]
    return None


def _parse(setting: Setting, raw: str, values: Mapping[str, Any]) -> Any:
    return setting.parse(raw, **{name: values[name] for name in setting.needs})


def _explicit(setting: Setting, value: Any, values: Mapping[str, Any]) -> Any:
    """Validate a ``configure()`` argument: it is parsed exactly like an env value (``redact`` takes a callable)."""
    if setting.parse is import_callable and callable(value):
        return value
    if not isinstance(value, (str, int, float)):
        raise ValueError(f"{setting.name}={value!r} is not valid; give a string or a number")
    raw = str(value).lower() if isinstance(value, bool) else str(value)
    try:
        return _parse(setting, raw, values)
    except ValueError as exc:
        raise ValueError(f"{setting.name}={value!r} is not valid; {exc}") from None


def resolve(overrides: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Settings:
    """Resolve every setting from explicit overrides, the environment and the profile.

    A bad environment value is logged in one line (the variable, the value, what is allowed,
    what is used instead) and replaced by the profile or package default (a list keeps its good
    items). Each ``DSPY_OTEL_*`` variable that is not a setting is logged in one line with the
    closest setting's name.

    Args:
        overrides: ``configure()`` keywords; ``None`` values count as not given.
        env: The environment to read (default ``os.environ``).

    Returns:
        The frozen settings, with ``sources`` naming where each value came from.

    Raises:
        ValueError: For an unknown keyword or an invalid explicit value.
    """
    env = os.environ if env is None else env
    settings, bad = walk(overrides, env)
    for b in bad:
        if b.partly:
            logger.warning("dspy-otel: %s=%r: ignoring part of it (%s); using %s", b.name, b.raw, b.why, b.fallback)
        else:
            logger.warning("dspy-otel: ignoring %s=%r (%s); using %s", b.name, b.raw, b.why, b.fallback)
    for message in unknown_names(env):
        logger.warning("dspy-otel: %s", message)
    return settings


def walk(overrides: Mapping[str, Any], env: Mapping[str, str]) -> tuple[Settings, list[Rejected]]:
    """Resolve every setting in table order; also return each bad env value (variable, value, why, fallback).

    :func:`resolve` logs the bad values; :func:`problems` and :func:`rejected` report them.
    """
    unknown = sorted(set(overrides) - set(_BY_NAME))
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)}; allowed: {', '.join(_BY_NAME)}")
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    bad: list[Rejected] = []
    for setting in TABLE:
        value, source = _resolve_one(setting, overrides.get(setting.name), env, values, sources, bad)
        values[setting.name] = value
        sources[setting.name] = source
    return Settings(**values, sources=sources), bad


def _resolve_one(
    setting: Setting,
    given: Any,
    env: Mapping[str, str],
    values: Mapping[str, Any],
    sources: Mapping[str, str],
    bad: list[Rejected],
) -> tuple[Any, str]:
    if given is not None:
        return _explicit(setting, given, values), "argument"
    found = _env_value(setting, env)
    if found is not None:
        name, raw = found
        try:
            return _parse(setting, raw, values), f"env {name}"
        except PartlyValid as exc:
            bad.append(Rejected(name, raw, str(exc), f"{display(exc.value)}, dropping {exc.dropped!r}", partly=True))
            return exc.value, f"env {name}"
        except ValueError as exc:
            fallback, source = _default(setting, values, sources)
            bad.append(Rejected(name, raw, str(exc), f"{display(fallback) or 'none'} from the {source}"))
            return fallback, source
    return _default(setting, values, sources)


def _default(setting: Setting, values: Mapping[str, Any], sources: Mapping[str, str]) -> tuple[Any, str]:
    profile = values.get("profile")
    if profile and setting.profiles and profile in setting.profiles:
        from_profile = f"profile {profile}"
        if all(sources[name] == from_profile for name in setting.needs):
            return setting.profiles[profile], from_profile
    return setting.default, "default"


def problems(env: Mapping[str, str] | None = None) -> list[str]:
    """Every invalid environment value and misspelled name, one message each (for ``dspy-otel check``)."""
    env = os.environ if env is None else env
    _, bad = walk({}, env)
    return [f"{b.name}={b.raw!r}: {b.why}" for b in bad] + unknown_names(env)


def unknown_names(env: Mapping[str, str]) -> list[str]:
    """A message for each set ``DSPY_OTEL_*`` variable that no setting reads, naming the closest one.

    Variables that dspy-otel reads outside the settings table (:data:`OTHER_VARIABLES`, and the
    collector's and Jaeger's under :data:`OTHER_PREFIXES`) are not named.
    """
    known = [s.env for s in TABLE if s.env.startswith(_PREFIX)] + list(OTHER_VARIABLES)
    messages = []
    for name in sorted(env):
        if not name.startswith(_PREFIX) or name in known or name.startswith(OTHER_PREFIXES) or not env[name].strip():
            continue
        close = difflib.get_close_matches(name.removeprefix(_PREFIX), [k.removeprefix(_PREFIX) for k in known], 1)
        hint = f"did you mean {_PREFIX}{close[0]}?" if close else "dspy-otel config lists the settings"
        messages.append(f"{name} is not a dspy-otel setting; {hint}")
    return messages


def rejected(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment variables whose values are invalid, with those values (kept from the exporters)."""
    _, bad = walk({}, os.environ if env is None else env)
    return {b.name: b.raw for b in bad}

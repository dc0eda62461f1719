"""One row of the settings table: :class:`Setting` (the rows are in ``_table_*``, :data:`~dspy_otel.config.TABLE`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setting:
    """One row of the settings table.

    Attributes:
        name: The ``configure()`` keyword and :class:`~dspy_otel.config.Settings` field.
        env: The environment variable that sets it.
        parse: Turns a string into the value; raises ``ValueError("allowed: ...")``.
        default: The value when neither argument, env nor profile sets it.
        doc: What it means, for the README and ``dspy-otel config``.
        profiles: Profile name -> default for that profile (overrides ``default``).
        needs: Earlier settings that ``parse`` takes as keywords. Its profile default applies only
            when those came from the same profile (a profile's sampler ratio goes with its sampler).
    """

    name: str
    env: str
    parse: Callable[..., Any]
    default: Any
    doc: str
    profiles: Mapping[str, Any] | None = None
    needs: tuple[str, ...] = ()

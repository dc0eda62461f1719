"""What passes from the start of a span to its end: the :class:`Handle`, and for an LM span its :class:`LMCall`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextvars import Token
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.trace import Span

from dspy_otel.instrumentation._totals import Totals


@dataclass(slots=True)
class LMCall:
    """What the end of an LM span needs: the LM, its inputs, and what DSPy's call result said."""

    lm: Any
    prompt: Any
    messages: Any
    kwargs: dict[str, Any]
    token: Token[Handle | None]
    started_ns: int
    request: Mapping[str, Any]
    attributes: Mapping[str, Any] = field(default_factory=dict)
    finish_reasons: Sequence[str] = ()
    totals: Totals | None = None  # the run totals of the module the call is made in


@dataclass(slots=True)
class Handle:
    """An open span and the context token to restore.

    For LM spans the call; for module spans the class (metrics), whether content is captured and the
    run totals (its own and its parent's); for tool spans ``tool``.
    """

    span: Span
    token: object
    call: LMCall | None = None
    module: str | None = None
    started_ns: int = 0
    capture: bool = False
    owned: bool = True  # False: the span is the parent's, standing in (compact mode, a trace sampled out)
    tool: bool = False
    totals: Totals | None = None
    parent_totals: Totals | None = None

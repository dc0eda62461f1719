"""Tail-sampling policies and their registry: ``DSPY_OTEL_TAIL_POLICIES`` is parsed here.

The value is a comma-separated list of policies; a trace is kept when any of
them keeps it (as in the collector's ``tail_sampling``). They are tried in the
order written, and the first that keeps a trace decides, so ``rate:N`` put last
limits only the traces no other policy kept.

| policy | keeps a trace when |
| --- | --- |
| ``errors`` | any span has status ERROR |
| ``latency:MS`` | the local root took at least ``MS`` milliseconds |
| ``ratio:R`` | its trace ID falls within the share ``R`` (as ``traceidratio`` decides) |
| ``rate:N`` | fewer than ``N`` traces per second were kept by this policy |
| ``attribute:KEY=VALUE`` | a span has attribute ``KEY`` equal to ``VALUE`` (wildcards allowed) |
| ``tokens:N`` | its LM calls used at least ``N`` tokens (input + output) |
| ``cost:USD`` | its LM calls cost at least ``USD`` dollars |

Example:
    >>> from dspy_otel.sampling.policies import parse_policies
    >>> [str(p) for p in parse_policies("errors, latency:5000, ratio:0.05")]
    ['errors', 'latency:5000', 'ratio:0.05']
"""

from __future__ import annotations

from collections.abc import Callable

from dspy_otel.sampling.policies import attribute, cost, errors, latency, rate, ratio, tokens
from dspy_otel.sampling.policies._base import Policy, TraceView

__all__ = ["PartlyValid", "Policy", "TraceView", "names", "parse_policies", "register"]

_REGISTRY: dict[str, Callable[[str | None], Policy]] = {}


class PartlyValid(ValueError):
    """A list with some bad items: they are dropped, ``value`` (parsed from the rest) is used.

    The settings walk (:mod:`dspy_otel.config`) uses ``value`` and logs what was dropped.

    Args:
        message: ``"allowed: ..."`` naming the bad items.
        value: The value the good items make.
        dropped: The bad items, as written.
    """

    def __init__(self, message: str, value: object, dropped: str) -> None:
        super().__init__(message)
        self.value = value
        self.dropped = dropped


def register(name: str, parse: Callable[[str | None], Policy]) -> None:
    """Add a policy type: ``parse`` turns the text after ``name:`` (``None`` when absent) into a policy.

    Raises:
        ValueError: ``name`` is already registered.
    """
    if name in _REGISTRY:
        raise ValueError(f"tail policy {name!r} is already registered")
    _REGISTRY[name] = parse


for _module in (errors, latency, ratio, rate, attribute, tokens, cost):
    register(_module.NAME, _module.parse)


def names() -> tuple[str, ...]:
    """The registered policy names, in registration order."""
    return tuple(_REGISTRY)


def _allowed() -> str:
    return "allowed: none, or a comma-separated list of " + ", ".join(
        n if n == errors.NAME else f"{n}:..." for n in _REGISTRY
    )


def parse_policies(raw: str) -> tuple[Policy, ...]:
    """Parse a ``DSPY_OTEL_TAIL_POLICIES`` value; ``""`` or ``none`` gives no policy (tail sampling off).

    Raises:
        PartlyValid: Some items are unknown, malformed or repeated: the message names them, the
            exception's ``value`` holds the policies of the other items (used instead of the whole list).
        ValueError: ``"allowed: ..."`` when no item is valid.
    """
    text = raw.strip()
    if text.lower() in ("", "none"):
        return ()
    policies: list[Policy] = []
    bad: list[tuple[str, str]] = []
    for item in (part.strip() for part in text.split(",")):
        try:
            policy = _parse_one(item)
        except ValueError as exc:
            bad.append((item, str(exc)))
            continue
        if policy in policies:
            bad.append((item, f"{_allowed()}; {item!r} is listed twice"))
        else:
            policies.append(policy)
    if not bad:
        return tuple(policies)
    message = "; ".join(why for _, why in bad)
    if not policies:
        raise ValueError(message)
    raise PartlyValid(message, tuple(policies), ",".join(item for item, _ in bad))


def _parse_one(item: str) -> Policy:
    name, colon, arg = item.partition(":")
    parse = _REGISTRY.get(name.strip().lower())
    if parse is None:
        raise ValueError(f"{_allowed()}; {item!r} is not a known policy")
    try:
        return parse(arg.strip() if colon else None)
    except ValueError as exc:
        raise ValueError(f"{exc}; got {item!r}") from None

"""Interleaved, shuffled rounds and paired differences: how the benchmark resolves a few µs on a noisy machine.

Every round runs each variant once, in an order shuffled afresh (seeded, so a run
can be repeated); a variant's block starts with untimed calls (the caller's
business). Two variants are compared by the differences *within* each round,
so that load that moves a whole round moves both sides and cancels; the
summary is the median of those differences with their quartiles.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass


def shuffled_rounds(
    variants: Sequence[str], rounds: int, run_block: Callable[[str], float], seed: int
) -> dict[str, list[float]]:
    """Run ``run_block(variant)`` for every variant in every round, each round in a new random order.

    Returns:
        The values per variant, in round order (so index ``i`` of two variants is one pair).
    """
    order = list(variants)
    shuffle = random.Random(seed).shuffle
    samples: dict[str, list[float]] = {variant: [] for variant in variants}
    for _ in range(rounds):
        shuffle(order)
        for variant in order:
            samples[variant].append(run_block(variant))
    return samples


@dataclass(frozen=True)
class Paired:
    """Median and quartiles of per-round differences ``a - b``, and a 95 % confidence interval of the median.

    The quartiles say how much one round's difference spreads; the interval says how well the
    median itself is known (it narrows with more rounds, the quartiles do not).
    """

    median: float
    q1: float
    q3: float
    low: float
    high: float

    def cell(self, digits: int = 0) -> str:
        """``+36 [+20, +55]``: the median, then the first and third quartiles."""
        return f"{self.median:+,.{digits}f} [{self.q1:+,.{digits}f}, {self.q3:+,.{digits}f}]"

    def interval(self, digits: int = 0) -> str:
        """``+30 to +41``: the 95 % confidence interval of the median."""
        return f"{self.low:+,.{digits}f} to {self.high:+,.{digits}f}"


def paired(a: Sequence[float], b: Sequence[float]) -> Paired:
    """Median, quartiles and 95 % interval of the median of ``a[i] - b[i]`` (the lists come from the same rounds).

    The interval is the distribution-free one from order statistics: the values of rank
    ``n/2 -/+ 0.98 sqrt(n)`` among the ``n`` sorted differences (it needs no assumption on their shape).
    """
    differences = sorted(x - y for x, y in zip(a, b, strict=True))
    if len(differences) < 2:
        only = differences[0]
        return Paired(only, only, only, only, only)
    q1, median, q3 = statistics.quantiles(differences, n=4, method="inclusive")
    n = len(differences)
    spread = 0.98 * math.sqrt(n)
    low = differences[max(0, math.floor(n / 2 - spread) - 1)]
    high = differences[min(n - 1, math.ceil(n / 2 + spread) - 1)]
    return Paired(median, q1, q3, low, high)


def times(value: float, unit: float) -> str:
    """``value`` as a multiple of ``unit`` (``-`` when ``unit`` is not positive: no meaningful ratio)."""
    return f"{value / unit:.2f}x" if unit > 0 else "-"


def round_medians(values: Sequence[float], per_round: int) -> list[float]:
    """The median of each run of ``per_round`` consecutive values (one round of per-call timings each)."""
    return [statistics.median(values[start : start + per_round]) for start in range(0, len(values), per_round)]

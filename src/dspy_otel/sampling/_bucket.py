"""A thread-safe token bucket: at most ``rate`` events per second, bursts up to ``max(rate, 1)``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """Allows at most ``rate_per_s`` takes per second on average.

    Args:
        rate_per_s: Tokens added per second (> 0; fractions allowed: 0.5 = one every two seconds).
        clock: Monotonic seconds (a fake clock in tests).
    """

    def __init__(self, rate_per_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate_per_s
        self._capacity = max(rate_per_s, 1.0)
        self._tokens = self._capacity
        self._clock = clock
        self._last = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Take one token if there is one; ``False`` when the rate is used up."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self._capacity, self._tokens + (now - self._last) * self._rate)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False

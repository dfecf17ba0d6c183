"""Rate limits kept in the app's memory: a token bucket per key.

Students' answers reach the server inside one websocket per session, and a whole class usually shares one
NAT address, so a proxy in front (nginx's ``limit_req``) sees neither the answers nor who sent them. The
app limits them itself, per seat. The limit is per process: with several replicas a seat gets each
replica's allowance, which still bounds a script, and the database's primary key (one row per seat and
question) collapses whatever gets through.

Nothing about the sender is kept: the keys are whatever the caller passes (class code and a hash of the
seat token), never an address.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable


class RateLimiter:
    """A token bucket per key: ``burst`` requests at once, then ``rate`` a second.

    Thread-safe. Buckets that have filled up again are dropped once there are more than ``max_keys``, which
    loses nothing (a full bucket and a new one allow the same), so flooding it with new keys cannot reset a
    busy key's bucket; the count can pass ``max_keys`` only while that many keys are busy at once.

    Args:
        rate: tokens added per second (> 0).
        burst: the bucket's size, the requests allowed at once (>= 1).
        max_keys: how many buckets to keep before dropping full ones.
        clock: seconds from a monotonic clock (a test passes its own).
    """

    def __init__(
        self,
        rate: float = 1.0,
        burst: int = 5,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be > 0, got {rate!r}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst!r}")
        self.rate = float(rate)
        self.burst = int(burst)
        self.max_keys = int(max_keys)
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (tokens left, when they were counted); least recently used first.
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()

    def allow(self, key: Hashable) -> bool:
        """Take a token from ``key``'s bucket: True if there was one (go ahead), False if not (refuse)."""
        with self._lock:
            now = self._clock()
            tokens, then = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.rate)
            allowed = tokens >= 1.0
            self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
            self._drop_full(now)
            return allowed

    def wait(self, key: Hashable) -> float:
        """Seconds until ``key`` has a token again (0 if it has one now); takes nothing."""
        with self._lock:
            now = self._clock()
            tokens, then = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.rate)
            return max(0.0, (1.0 - tokens) / self.rate)

    def __len__(self) -> int:
        return len(self._buckets)

    def _drop_full(self, now: float) -> None:
        while len(self._buckets) > self.max_keys:
            key, (tokens, then) = next(iter(self._buckets.items()))
            if tokens + (now - then) * self.rate < self.burst:
                return  # the least recently used bucket is still busy, so every later one may be too
            del self._buckets[key]

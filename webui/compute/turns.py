"""Fair turns at the model: at most as many analyses at once as there are cores, first come first served.

When a whole class uploads at the same moment, 30 analyses started together on 2 cores all finish late
(each gets 1/15 of a core). A :class:`TurnQueue` lets ``slots`` of them run and makes the others wait in
arrival order, so early arrivals finish first; a waiting session is told its place ("2 ahead of you")
through a callback instead of showing a frozen page.

The queue guards what runs the model on a cache MISS. Whether a call will miss is not something
``st.cache_resource`` can be asked, so :class:`Recent` remembers the keys computed lately: those skip the
queue (a cache hit costs nothing), the others take a turn; if one of them was computed meanwhile, its
turn is short.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager

from backbone_viz.core.lru import LRU

#: Environment variable: analyses that may run at once (default: the machine's cores).
SLOTS_ENV = "BACKBONE_VIZ_ANALYSIS_SLOTS"
#: Seconds between two looks at the queue while waiting (a missed wake-up costs at most this).
POLL_S = 0.25

WaitCallback = Callable[[int], None]


class TurnQueue:
    """First-come-first-served turns for at most ``slots`` holders at once; thread-safe.

    Args:
        slots: how many may hold a turn at once (at least 1).
    """

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError(f"slots must be at least 1, got {slots}")
        self.slots = slots
        self._cond = threading.Condition()
        self._waiting: deque[object] = deque()
        self._running = 0
        self._held = threading.local()

    @property
    def waiting(self) -> int:
        """How many are waiting for a turn now."""
        with self._cond:
            return len(self._waiting)

    @property
    def running(self) -> int:
        """How many hold a turn now."""
        with self._cond:
            return self._running

    def held(self) -> bool:
        """Whether the calling thread holds a turn now."""
        return getattr(self._held, "depth", 0) > 0

    @contextmanager
    def turn(self, on_wait: WaitCallback | None = None) -> Iterator[None]:
        """Waits for this caller's turn, holds it for the ``with`` body, then passes it on.

        Args:
            on_wait: called as ``on_wait(ahead)`` while waiting, each time the number of callers ahead
                changes (``ahead`` counts those waiting before this one; 0: next). Not called when a
                turn is free at once. It may raise (Streamlit stops a script run for a newer one by
                raising inside it): the caller then leaves the queue.
        """
        if self.held():  # a model run inside another's turn (a cache that fills another): one turn
            yield
            return
        ticket = object()
        with self._cond:
            self._waiting.append(ticket)
        shown: int | None = None
        try:
            while True:
                with self._cond:
                    if self._waiting[0] is ticket and self._running < self.slots:
                        self._waiting.popleft()
                        self._running += 1
                        break
                    ahead = self._waiting.index(ticket)
                if on_wait is not None and ahead != shown:
                    on_wait(ahead)  # outside the lock: drawing must never block the queue
                    shown = ahead
                with self._cond:
                    if not (self._waiting[0] is ticket and self._running < self.slots):
                        self._cond.wait(POLL_S)
        except BaseException:
            with self._cond:
                if ticket in self._waiting:
                    self._waiting.remove(ticket)
                self._cond.notify_all()
            raise
        self._held.depth = 1
        try:
            yield
        finally:
            self._held.depth = 0
            with self._cond:
                self._running -= 1
                self._cond.notify_all()


class Recent:
    """A bounded, thread-safe set of keys computed lately (least recently used out)."""

    def __init__(self, size: int = 512) -> None:
        self._keys: LRU[Hashable, bool] = LRU(size)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._keys

    def add(self, key: Hashable) -> None:
        self._keys.put(key, True)

    def clear(self) -> None:
        self._keys.clear()


def default_slots() -> int:
    """``BACKBONE_VIZ_ANALYSIS_SLOTS`` if set, else the machine's core count."""
    value = os.environ.get(SLOTS_ENV, "").strip()
    return max(1, int(value)) if value else max(1, os.cpu_count() or 1)


#: The queue every session of this process shares.
QUEUE = TurnQueue(default_slots())
#: Keys of the model runs made lately (see the module docstring).
RECENT = Recent()

"""A bounded, thread-safe map shared by every session of this process, least recently used out.

For what ``st.cache_resource`` cannot do: put a value that was made elsewhere (a picture made with a
progress bar), or look one up without making it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Store(Generic[K, V]):
    """A bounded, thread-safe map, least recently used out."""

    def __init__(self, max_entries: int) -> None:
        self._items: OrderedDict[K, V] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> V:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._max:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

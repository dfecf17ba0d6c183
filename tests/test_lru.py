"""The one LRU map of the engine and the app."""

from __future__ import annotations

import threading

import pytest

from backbone_viz.core.lru import LRU


def test_the_least_recently_used_goes_first_and_a_look_counts_as_a_use() -> None:
    lru: LRU[str, int] = LRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # a is now the most recent
    lru.put("c", 3)
    assert "b" not in lru and lru.get("a") == 1 and lru.get("c") == 3 and len(lru) == 2
    assert "a" in lru  # a look: "c" is now the least recent
    lru.put("d", 4)
    assert "c" not in lru and "a" in lru
    lru.clear()
    assert len(lru) == 0 and lru.get("a") is None
    with pytest.raises(ValueError, match="at least 1"):
        LRU(0)


def test_threads_never_push_it_past_its_bound() -> None:
    lru: LRU[tuple[int, int], int] = LRU(16)

    def fill(t: int) -> None:
        for i in range(500):
            lru.put((t, i), i)
            lru.get((t, i - 1))

    threads = [threading.Thread(target=fill, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(lru) == 16

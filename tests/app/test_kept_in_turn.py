"""A result kept for every session: made once, in a turn of the queue, from inputs gathered outside it."""

from __future__ import annotations

from backbone_viz.core.lru import LRU
from webui.compute import caches


def test_a_miss_gathers_outside_the_turn_makes_inside_it_and_a_hit_runs_nothing() -> None:
    store: LRU[str, int] = LRU(2)
    calls: list[tuple[str, bool]] = []

    def inputs() -> int:
        calls.append(("inputs", caches.QUEUE.held()))
        return 20

    def make(given: int) -> int:
        calls.append(("make", caches.QUEUE.held()))
        return given + 1

    assert caches.kept_in_turn(store, "k", None, inputs=inputs, make=make) == 21
    assert calls == [("inputs", False), ("make", True)]
    assert store.get("k") == 21
    assert caches.kept_in_turn(store, "k", None, inputs=inputs, make=make) == 21
    assert len(calls) == 2  # the hit gathered and made nothing
    assert not caches.QUEUE.held()

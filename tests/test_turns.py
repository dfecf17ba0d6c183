"""Fair turns at the model: slots, arrival order, the place told to a waiting session."""

from __future__ import annotations

import threading
import time

import pytest

from webui.compute.turns import Recent, TurnQueue


def _wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)


def test_at_most_slots_hold_a_turn_and_early_arrivals_go_first() -> None:
    queue = TurnQueue(2)
    release = threading.Event()
    order: list[int] = []
    places: dict[int, list[int]] = {}
    running_max = [0]

    def job(i: int) -> None:
        with queue.turn(on_wait=lambda ahead: places.setdefault(i, []).append(ahead)):
            order.append(i)
            running_max[0] = max(running_max[0], queue.running)
            release.wait(10)

    threads = []
    for i in range(6):
        t = threading.Thread(target=job, args=(i,))
        t.start()
        threads.append(t)
        _wait_until(lambda i=i: len(order) + queue.waiting == i + 1)  # arrival order is i
    assert sorted(order) == [0, 1] and queue.waiting == 4
    release.set()
    for t in threads:
        t.join(10)
    assert order == [0, 1, 2, 3, 4, 5]
    assert running_max[0] <= 2
    assert places[5][0] == 3  # three waited before job 5 when it arrived
    assert places[5] == sorted(places[5], reverse=True)  # its place only moved forward
    assert 0 not in places and 1 not in places  # a free turn at once: nothing to tell


def test_a_caller_that_stops_waiting_leaves_the_queue() -> None:
    queue = TurnQueue(1)
    holding = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with queue.turn():
            holding.set()
            release.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    holding.wait(10)

    def impatient(ahead: int) -> None:
        raise KeyboardInterrupt  # what Streamlit does to a script run replaced by a newer one

    with pytest.raises(KeyboardInterrupt), queue.turn(on_wait=impatient):
        pass
    assert queue.waiting == 0
    release.set()
    t.join(10)
    with queue.turn():  # the queue still works
        assert queue.running == 1
    assert queue.running == 0


def test_recent_is_bounded_and_least_recently_used_out() -> None:
    recent = Recent(size=2)
    recent.add("a")
    recent.add("b")
    assert "a" in recent  # touches a
    recent.add("c")
    assert "a" in recent and "c" in recent and "b" not in recent
    with pytest.raises(ValueError):
        TurnQueue(0)

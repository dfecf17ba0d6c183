"""A waiting session is told its place; the warm start fills the caches every session reads."""

from __future__ import annotations

import gc
import sys
import threading
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import backbone_viz as bv
import webui
from tests.conftest import count_model_runs
from webui.compute import caches, turns, warm
from webui.shell.state import sample_choice, samples

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def test_a_waiting_session_sees_its_place_then_its_picture(monkeypatch: pytest.MonkeyPatch) -> None:
    queue = turns.TurnQueue(1)
    monkeypatch.setattr(caches, "QUEUE", queue)
    caches.clear_analyses()
    told: list[str] = []
    real_text = webui._ahead_text
    monkeypatch.setattr(webui, "_ahead_text", lambda ahead: told.append(real_text(ahead)) or told[-1])

    release_first, release_second = threading.Event(), threading.Event()
    first_holds = threading.Event()

    def first() -> None:  # another session's analysis, running
        with queue.turn():
            first_holds.set()
            release_first.wait(30)

    def second() -> None:  # another session, waiting before ours
        with queue.turn():
            release_second.wait(30)

    threads = [threading.Thread(target=first)]
    threads[0].start()
    first_holds.wait(30)
    threads.append(threading.Thread(target=second))
    threads[1].start()
    _wait_until(lambda: queue.waiting == 1)

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    run = threading.Thread(target=at.run)
    run.start()
    _wait_until(lambda: told)
    assert told[0] == "1 picture is ahead of yours."
    release_first.set()
    _wait_until(lambda: len(told) >= 2)
    assert told[1] == "Yours is next."
    release_second.set()
    run.join(60)
    for t in threads:
        t.join(30)
    assert not at.exception
    assert any("What does a CNN backbone see?" in t.value for t in at.title)
    assert not [i for i in at.info if "busy" in i.value]  # the notice is gone once the picture is shown


def test_warm_start_analyses_the_gallery_before_anyone_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    caches.clear_analyses()
    spec = next(s for s in bv.list_backbones() if s.bundled)
    try:
        seconds = warm.run()
        assert seconds > 0 and warm.is_done()
        assert gc.get_freeze_count() > 100_000  # torch, streamlit and the backbone: never walked again
        calls = count_model_runs(monkeypatch)
        for sample in samples():
            picture = sample_choice(sample.name)
            caches.cached_activations(spec.name, "pretrained", picture.sha256, picture.data)
            caches.cached_gradcam(spec.name, "pretrained", picture.sha256, picture.data)
        assert calls == []  # every sample picture's maps and top-class Grad-CAM were cache hits
        loads: list[str] = []
        monkeypatch.setattr(bv, "load_backbone", lambda *a, **k: loads.append("load"))
        for weights in ("pretrained", "untrained"):  # both kept: Feature build-up shows them side by side
            assert isinstance(caches.cached_backbone(spec.name, weights), bv.Backbone)
        assert loads == []
    finally:
        gc.unfreeze()

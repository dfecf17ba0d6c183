"""Every app test checks the gateway: a model run the app makes outside a turn of the fair queue fails
the test, whatever page or control made it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import watch_model_runs
from webui.compute import caches

ROOT = Path(__file__).resolve().parents[2]
#: Where the app's code lives: a model run called from a file here is the app's (a test may call the
#: engine itself, to compare).
APP = (ROOT / "webui", ROOT / "app_pages", ROOT / "app.py")


@pytest.fixture(autouse=True)
def model_runs_take_a_turn(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Wraps every model-running engine function on ``bv`` (as the app calls them) with a check that
    the calling thread holds a turn of the app's queue (``webui.compute.caches.QUEUE``, which a test may replace);
    the test fails at the end if one did not. Yields the list of runs made outside a turn."""
    outside: list[str] = []

    def seen(name: str, caller: Path) -> None:
        if not caches.QUEUE.held() and any(caller == a or a in caller.parents for a in APP):
            outside.append(f"{name} from {caller.name}")

    watch_model_runs(monkeypatch, seen)
    yield outside
    assert not outside, f"the app ran the model outside the fair queue: {outside}"


@pytest.fixture
def offline(_own_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch cache of the test's own and an unreachable mirror; returns the checkpoint folder
    (made, so that a test can put files there)."""
    from backbone_viz.files.weights import MIRROR_ENV

    monkeypatch.setenv(MIRROR_ENV, "http://127.0.0.1:9/")
    _own_cache.mkdir(parents=True, exist_ok=True)
    return _own_cache

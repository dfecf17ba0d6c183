"""Every app test checks the gateway: a model run the app makes outside a turn of the fair queue fails
the test, whatever page or control made it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import backbone_viz as bv
from backbone_viz.core.runs import model_runs
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
    for name in model_runs(bv):
        real = getattr(bv, name)

        def checked(*args, _real=real, _name=name, **kwargs):
            caller = Path(sys._getframe(1).f_code.co_filename)
            if not caches.QUEUE.held() and any(caller == a or a in caller.parents for a in APP):
                outside.append(f"{_name} from {caller.name}")
            return _real(*args, **kwargs)

        monkeypatch.setattr(bv, name, checked)
    yield outside
    assert not outside, f"the app ran the model outside the fair queue: {outside}"

"""The gateway check of tests/app/conftest.py can fail: a model run the app makes outside a turn is caught."""

from __future__ import annotations

import pytest

from tests.conftest import sample
from webui.compute import caches, heads_state


def test_a_model_run_outside_the_queue_is_caught(
    model_runs_take_a_turn: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    examples = {"living": [sample("cat"), sample("flower")], "made": [sample("rocket"), sample("coffee")]}
    heads_state.train_head("efficientnet_lite0", "pretrained", examples)  # through the gateway
    assert model_runs_take_a_turn == []
    # The same call with the gateway's turn taken away: the check sees the app's module run the model.
    monkeypatch.setattr(heads_state, "in_turn", lambda key, on_wait, compute: compute())
    heads_state.train_head("efficientnet_lite0", "pretrained", examples)
    assert model_runs_take_a_turn == ["fit_head from heads_state.py"]
    model_runs_take_a_turn.clear()  # seen: the test's own breach is not the app's
    assert not caches.QUEUE.held()

"""The one report of what in a checkpoint does not fit a model, shared by backbones and dense models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from backbone_viz.core.checkpoints import check_fit
from backbone_viz.errors import WeightsError


def _state(**shapes: tuple[int, ...]) -> dict[str, torch.Tensor]:
    return {name.replace("__", "."): torch.zeros(shape) for name, shape in shapes.items()}


def test_check_fit_names_the_first_three_of_each_and_counts_the_rest() -> None:
    expected = _state(a=(1,), b=(1,), c=(1,), d=(1,), e=(1,), w=(2, 3))
    state = _state(w=(3, 3), x=(1,), y=(1,))
    with pytest.raises(WeightsError) as info:
        check_fit(expected, state, path=Path("/usb/net.pth"), title="ResNet-18", hint="Pick another file.")
    assert info.value.message == (
        "net.pth does not fit ResNet-18: missing: a, b, c and 2 more; not in this model: x, y; "
        "wrong shape: w (3, 3) (needs (2, 3))."
    )
    assert info.value.hint == "Pick another file."


def test_check_fit_passes_a_fitting_state_and_keys_that_may_be_missing() -> None:
    expected = _state(conv__weight=(2,), bn__num_batches_tracked=())
    check_fit(
        expected,
        _state(conv__weight=(2,), bn__num_batches_tracked=()),
        path=Path("x.pth"),
        title="T",
        hint="",
    )
    with pytest.raises(WeightsError, match=r"^x.pth does not fit T: missing: bn.num_batches_tracked\.$"):
        check_fit(expected, _state(conv__weight=(2,)), path=Path("x.pth"), title="T", hint="")
    check_fit(
        expected,
        _state(conv__weight=(2,)),
        path=Path("x.pth"),
        title="T",
        hint="",
        may_miss=lambda key: key.endswith("num_batches_tracked"),
    )

"""Occlusion finds the region a class depends on, counts its cost before running, and leaves the model alone."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

import backbone_viz as bv
from backbone_viz.explain.occlusion import places
from tests.conftest import model_left_alone, sample
from tests.test_faithfulness import PixelNet, pixel_backbone


def sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


@pytest.fixture(scope="module")
def region() -> tuple[bv.Backbone, Image.Image]:
    """A white 8 x 8 picture; class 0's logit is the red of the 2 x 2 region at rows 4-5, columns 2-3."""
    weights = torch.zeros(8, 8)
    weights[4:6, 2:4] = 1.0
    return pixel_backbone(PixelNet(weights), 8), Image.new("RGB", (8, 8), "white")


def test_occlusion_finds_the_one_region_the_class_reads(region) -> None:
    bb, picture = region
    occ = bv.occlusion(bb, picture, patch=2, stride=2)
    # The mean colour is 0 here (mean 0, std 1): covering the region takes the logit from 4 to 0.
    expected = np.zeros((4, 4), np.float32)
    expected[2, 1] = sigmoid(4) - 0.5
    np.testing.assert_allclose(occ.map, expected, atol=1e-6)
    np.testing.assert_allclose(occ.logit_map, np.where(expected > 0, 4.0, 0.0), atol=1e-6)
    assert occ.tops == occ.lefts == (0, 2, 4, 6)
    assert occ.base_score == pytest.approx(sigmoid(4)) and occ.base_logit == pytest.approx(4)
    assert occ.target == bv.Prediction(0, "a", pytest.approx(sigmoid(4)))
    assert occ.passes == 17 and occ.fill == (0, 0, 0)
    np.testing.assert_allclose(occ.pixel_map[4:6, 2:4], sigmoid(4) - 0.5, atol=1e-6)
    assert occ.pixel_map.sum() == pytest.approx(4 * (sigmoid(4) - 0.5), abs=1e-5)


def test_overlapping_patches_cover_the_region_from_every_side(region) -> None:
    bb, picture = region
    occ = bv.occlusion(bb, picture, patch=4, stride=2)
    # Rows 4-5 lie inside the patches starting at rows 2 and 4; columns 2-3 inside those at 0 and 2.
    assert occ.map.shape == (3, 3)
    covering = np.zeros((3, 3), bool)
    covering[1:, :2] = True
    np.testing.assert_allclose(occ.map[covering], sigmoid(4) - 0.5, atol=1e-6)
    np.testing.assert_array_equal(occ.map[~covering], 0)  # no patch there touches the region
    assert occ.pixel_map[4:6, 2:4].min() == occ.pixel_map.max() > 0


def test_the_last_place_touches_the_border() -> None:
    assert places(224, 32, 16) == tuple(range(0, 193, 16))
    assert places(224, 32, 20)[-2:] == (180, 192)
    assert places(8, 3, 2) == (0, 2, 4, 5)
    assert places(8, 8, 3) == (0,)


def test_every_pixel_is_covered_and_the_picture_shows_the_patch(region) -> None:
    bb, picture = region
    occ = bv.occlusion(bb, picture, patch=3, stride=2)
    assert occ.map.shape == (4, 4) and occ.tops == (0, 2, 4, 5)
    assert np.isfinite(occ.pixel_map).all()
    shown = np.asarray(occ.picture(3, 0))
    assert (shown[5:8, 0:3] == 0).all() and (shown[:5] == 255).all()
    for array in (occ.map, occ.logit_map, occ.pixel_map):
        assert not array.flags.writeable
    with pytest.raises(AttributeError):
        occ.patch = 4  # type: ignore[misc]


def test_the_cost_is_said_before_and_progress_counts_every_picture(region) -> None:
    bb, picture = region
    cost = bv.occlusion_cost(bb, patch=3, stride=2)
    calls: list[tuple[int, int]] = []
    occ = bv.occlusion(
        bb, picture, patch=3, stride=2, batch_size=5, progress=lambda d, t: calls.append((d, t))
    )
    assert cost.passes == occ.passes == 17 and cost.seconds > 0
    assert calls[0] == (1, 17) and calls[-1] == (17, 17) and len(calls) == 1 + 4
    assert "17 forward passes, about" in str(cost)


def test_a_patch_that_does_not_fit_is_refused(region) -> None:
    bb, picture = region
    with pytest.raises(bv.PerturbationError, match="9 px patch") as info:
        bv.occlusion(bb, picture, patch=9)
    assert info.value.hint == "Pick a patch from 1 to 8 px."
    with pytest.raises(bv.PerturbationError, match="0 px patch"):
        bv.occlusion_cost(bb, patch=0)
    with pytest.raises(bv.PerturbationError, match="stride"):
        bv.occlusion(bb, picture, patch=2, stride=0)
    with pytest.raises(bv.BackboneVizError, match="no class called 'c'"):
        bv.occlusion(bb, picture, "c", patch=2)


def test_progress_may_stop_the_work(region) -> None:
    bb, picture = region
    check = model_left_alone(bb.model)

    def stop(done: int, total: int) -> None:
        if done > 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        bv.occlusion(bb, picture, patch=2, stride=2, batch_size=2, progress=stop)
    check()


def test_occlusion_on_the_bundled_backbone(lite0: bv.Backbone, one_thread: None) -> None:
    res = bv.analyze(lite0, sample("cat"))
    check = model_left_alone(lite0.model)
    occ = bv.occlusion(lite0, sample("cat"), patch=56, stride=56)
    check()
    assert occ.map.shape == (4, 4) and occ.pixel_map.shape == (224, 224) and occ.passes == 17
    assert occ.target.index == res.target.index
    assert occ.base_score == pytest.approx(res.target.probability, abs=1e-5)
    assert occ.fill == (128, 128, 128)  # Lite0 was trained with a mean of 0.5
    assert bv.occlusion.runs_model and bv.occlusion_cost.runs_model
    assert {"occlusion", "occlusion_cost"} <= set(bv.core.runs.model_runs(bv))

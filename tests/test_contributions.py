"""Contributions: a class score split exactly into one share per channel of the last stage.

Semantic tests use the bundled EfficientNet-Lite0 (real ImageNet weights); architecture tests use
untrained ResNet-50, GoogLeNet and VGG-16; the maths runs on a tiny hand-made backbone.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import backbone_viz as bv
from backbone_viz.core.backbones import Backbone
from tests.conftest import CATS, TinyNet, assert_splits_exactly, tiny_backbone, untrained


def test_cat_score_splits_into_channels(lite0: Backbone, cat: bv.AnalysisResult) -> None:
    res = cat
    assert res.target.label in CATS
    c = bv.head_contributions(lite0, res)
    assert_splits_exactly(c, res)
    assert c.target == res.target and c.values.shape == (1280,)
    up, down = c.top_up(5), c.top_down(5)
    assert len(up) == len(down) == 5 and not set(up) & set(down)
    assert (np.diff(c.values[up]) <= 0).all() and (c.values[up] > 0).all()
    assert (np.diff(c.values[down]) >= 0).all() and (c.values[down] < 0).all()
    assert c.values[up[0]] == c.values.max() and c.values[down[0]] == c.values.min()
    assert not c.values.flags.writeable
    # The head reads the mean of each channel of the last stage: that is why each channel's map can be
    # shown next to its share of the score.
    np.testing.assert_allclose(res.pooled, res.activations["bn2"].mean(axis=(1, 2)), rtol=1e-4, atol=1e-6)


def test_resnet50_and_googlenet_split_too(resnet50: tuple[Backbone, bv.AnalysisResult]) -> None:
    bb, res = resnet50
    assert_splits_exactly(bv.head_contributions(bb, res), res)
    np.testing.assert_allclose(res.pooled, res.activations["layer4.2"].mean(axis=(1, 2)), rtol=1e-4, atol=1e-4)
    bb, res = untrained("googlenet")
    assert_splits_exactly(bv.head_contributions(bb, res), res)
    # Untrained GoogLeNet's activations shrink to ~1e-13 by its last stage (its init has std 0.01 and
    # eval-mode BatchNorm does not rescale), so check the wiring with a relative tolerance only.
    np.testing.assert_allclose(res.pooled, res.activations["inception5b"].mean(axis=(1, 2)), rtol=1e-4, atol=0)


def test_vgg_does_not_split() -> None:
    bb, res = untrained("vgg16")
    with pytest.raises(bv.HeadError, match="not a sum") as info:
        bv.head_contributions(bb, res)
    assert "Grad-CAM" in info.value.hint


def test_contributions_match_hand_computation() -> None:
    bb = tiny_backbone(TinyNet(), 2, ("a", "b"))
    pixels = np.array([[[255, 0, 51], [0, 0, 255]], [[102, 0, 0], [204, 0, 102]]], dtype=np.uint8)
    res = bv.analyze(bb, Image.fromarray(pixels), target="b")
    red, blue = pixels[..., 0].mean() / 255, pixels[..., 2].mean() / 255
    c = bv.head_contributions(bb, res)
    np.testing.assert_allclose(c.values, [-1.0 * red, 3.0 * blue], atol=1e-6)
    assert c.bias == -0.25 and c.logit == pytest.approx(-red + 3 * blue - 0.25, abs=1e-6)
    assert list(c.top_up(5)) == [1] and list(c.top_down(5)) == [0]

"""Feature pyramid: the deepest map at each stride, as the spec's ``feature_info`` lists them."""

from __future__ import annotations

import pytest

import backbone_viz as bv
from backbone_viz.core.backbones import Backbone
from tests.conftest import untrained


def test_feature_pyramid_takes_the_last_layer_of_each_stride(
    cat: bv.AnalysisResult, resnet50: tuple[Backbone, bv.AnalysisResult]
) -> None:
    _, res = resnet50
    levels = bv.feature_pyramid(res)
    assert [(lv.name, lv.stride, lv.layer.name, lv.shape) for lv in levels] == [
        ("C3", 8, "layer2.3", (512, 28, 28)),
        ("C4", 16, "layer3.5", (1024, 14, 14)),
        ("C5", 32, "layer4.2", (2048, 7, 7)),
    ]
    assert levels[0].activation is res.activations["layer2.3"]
    lite = bv.feature_pyramid(cat)
    assert [(lv.name, lv.layer.name, lv.shape) for lv in lite] == [
        ("C3", "blocks.2.1", (40, 28, 28)),
        ("C4", "blocks.4.2", (112, 14, 14)),
        ("C5", "bn2", (1280, 7, 7)),
    ]
    assert [lv.name for lv in bv.feature_pyramid(res, strides=(32, 4))] == ["C5", "C2"]
    with pytest.raises(ValueError, match="powers of two"):
        bv.feature_pyramid(res, strides=(12,))


def test_vgg_gives_c3_and_c4_only() -> None:
    _, res = untrained("vgg16")
    # Its listed layers end at stride 16, so a detector neck gets C3 and C4 only.
    levels = bv.feature_pyramid(res)
    assert [(lv.name, lv.layer.label, lv.shape) for lv in levels] == [
        ("C3", "conv4_3", (512, 28, 28)),
        ("C4", "conv5_3", (512, 14, 14)),
    ]

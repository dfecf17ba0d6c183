"""Contract: every spec's declared layers match a real (untrained) model of that backbone."""

from __future__ import annotations

import pytest
import torch

import backbone_viz as bv
from backbone_viz.core.graph import LOGITS, POOLED, receptive_fields

NAMES = [spec.name for spec in bv.list_backbones()]


def test_seven_backbones_bundled_first() -> None:
    assert NAMES == ["efficientnet_lite0", "vgg16", "vgg19", "resnet18", "resnet50", "resnet101", "googlenet"]
    assert bv.list_backbones()[0].bundled
    assert not any(spec.bundled for spec in bv.list_backbones()[1:])


@pytest.mark.parametrize("name", NAMES)
def test_declared_layers_match_real_outputs(name: str) -> None:
    bb = bv.load_backbone(name, weights="untrained", device="cpu")
    spec = bb.spec
    size = spec.preprocessing.crop
    with torch.no_grad():
        out = bb.extract(torch.randn(1, 3, size, size), [*(lay.name for lay in spec.layers), LOGITS, POOLED])
    for layer in spec.layers:
        c, h, w = out[layer.name].shape[1:]
        assert c == layer.channels, layer.name
        assert (h * layer.stride, w * layer.stride) == (size, size), layer.name
    assert out[LOGITS].shape == (1, 1000)
    assert out[POOLED].shape[0] == 1 and out[POOLED].ndim == 2
    # The receptive field declared is the one a walk over the real graph finds.
    walked = receptive_fields(bb.extractor())
    for layer in spec.layers:
        assert walked[layer.name] == (layer.receptive_field, layer.stride), layer.name


@pytest.mark.parametrize("name", NAMES)
def test_stages_and_levels_follow_the_documented_rule(name: str) -> None:
    spec = bv.get_spec(name)
    labels = [layer.label for layer in spec.layers]
    assert len(set(labels)) == len(labels)
    stages = spec.stages
    assert len(stages) == 5  # every backbone here downsamples 4 times after its first stage
    assert [s.index for s in stages] == list(range(1, 6))
    strides = [s.stride for s in stages]
    assert strides == sorted(strides) and len(set(strides)) == 5
    for layer in spec.layers:
        expected = "low" if layer.stride <= 4 else "high" if layer.stride == strides[-1] else "mid"
        assert layer.level == expected
    assert stages[0].level == "low" and stages[-1].level == "high"
    assert {s.level for s in stages} == {"low", "mid", "high"}
    # Receptive fields only grow with depth.
    rfs = [layer.receptive_field for layer in spec.layers]
    assert rfs == sorted(rfs)


def test_layer_lookup_by_name_or_label() -> None:
    spec = bv.get_spec("vgg16")
    assert spec.layer("conv3_2").name == "features.13"
    assert spec.layer("features.13").label == "conv3_2"
    with pytest.raises(ValueError, match="conv1_1"):
        spec.layer("conv9_9")
    with pytest.raises(ValueError, match="resnet50"):
        bv.get_spec("resnet5")


def test_preprocessing_comes_from_the_weights() -> None:
    lite0 = bv.get_spec("efficientnet_lite0").preprocessing
    assert (lite0.crop, lite0.interpolation, lite0.mean, lite0.std) == (224, "bicubic", (0.5,) * 3, (0.5,) * 3)
    vgg = bv.get_spec("vgg16").preprocessing
    assert (vgg.resize, vgg.crop, vgg.interpolation) == (256, 224, "bilinear")
    assert vgg.mean == pytest.approx((0.485, 0.456, 0.406))

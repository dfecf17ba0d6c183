"""The zoo: each family registers its backbones as data, and that data is what torchvision and timm declare."""

from __future__ import annotations

import dataclasses

import pytest
import timm
import torch
import torchvision

import backbone_viz as bv
from backbone_viz import zoo
from backbone_viz.core.specs import Preprocessing

TORCHVISION = [spec for spec in bv.list_backbones() if spec.weights_file is not None]
#: The torchvision weights each downloadable backbone's row describes.
ENUMS = {
    "vgg16": torchvision.models.VGG16_Weights.IMAGENET1K_V1,
    "vgg19": torchvision.models.VGG19_Weights.IMAGENET1K_V1,
    "resnet18": torchvision.models.ResNet18_Weights.IMAGENET1K_V1,
    "resnet50": torchvision.models.ResNet50_Weights.DEFAULT,
    "resnet101": torchvision.models.ResNet101_Weights.DEFAULT,
    "googlenet": torchvision.models.GoogLeNet_Weights.DEFAULT,
}


@pytest.mark.parametrize("spec", TORCHVISION, ids=lambda s: s.name)
def test_each_weights_row_and_preprocessing_is_what_torchvision_declares(spec: bv.BackboneSpec) -> None:
    weights = ENUMS[spec.name]
    assert spec.weights_file.url == weights.url
    assert spec.weights_file.filename == weights.url.rsplit("/", 1)[-1]
    assert spec.weights_file.size_bytes == round(float(weights.meta["_file_size"]) * 2**20)
    t = weights.transforms()
    p = spec.preprocessing
    assert (p.resize, p.crop, p.interpolation) == (t.resize_size[0], t.crop_size[0], t.interpolation.value)
    assert p.mean == pytest.approx(tuple(t.mean)) and p.std == pytest.approx(tuple(t.std))
    assert spec.params_millions == pytest.approx(weights.meta["num_params"] / 1e6, abs=0.05)
    assert weights.meta["categories"][0] == "tench"  # ImageNet's 1000 classes, as every head here


def test_the_bundled_backbones_preprocessing_is_what_timm_declares() -> None:
    cfg = timm.models.get_pretrained_cfg("tf_efficientnet_lite0")
    p = bv.get_spec("efficientnet_lite0").preprocessing
    crop = cfg.input_size[-1]
    assert p == Preprocessing(round(crop / cfg.crop_pct), crop, cfg.interpolation, tuple(cfg.mean), tuple(cfg.std))


def test_every_spec_builds_the_architecture_its_rows_describe() -> None:
    """``build`` makes the untrained model with the 1000-class head; its parameter count is the spec's."""
    for spec in bv.list_backbones():
        model = spec.build()
        count = sum(p.numel() for p in model.parameters())
        assert count / 1e6 == pytest.approx(spec.params_millions, abs=0.05), spec.name
        assert isinstance(model, torch.nn.Module)


def test_a_name_registered_twice_and_a_family_of_strangers_are_refused() -> None:
    resnet18 = bv.get_spec("resnet18")
    with pytest.raises(ValueError, match="registered already"):
        zoo.register_backbone(resnet18)
    with pytest.raises(ValueError, match="unregistered backbones: resnet34"):
        zoo.register_family(zoo.Family("ResNet", 2015, ("resnet34",), "layer1.0", "", ""))
    with pytest.raises(ValueError, match="no block 'layer9.0'"):
        zoo.register_family(zoo.Family("ResNet", 2015, ("resnet18",), "layer9.0", "", ""))
    assert [f.title for f in zoo.families()] == ["VGG", "GoogLeNet", "ResNet", "EfficientNet"]
    assert sorted(m for f in zoo.families() for m in f.members) == sorted(s.name for s in bv.list_backbones())


def test_listing_the_backbones_loads_no_torch() -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = (
        "import sys, backbone_viz as bv; names = [s.name for s in bv.list_backbones()]; "
        "print(len(names), *[m for m in ('torch', 'torchvision', 'timm') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["7"]


def test_specs_are_frozen_data() -> None:
    spec = bv.get_spec("resnet18")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.title = "ResNet-19"  # type: ignore[misc]

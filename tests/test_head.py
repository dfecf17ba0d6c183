"""The head contract: check_fits refuses a head made for another backbone or other weights."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

import backbone_viz as bv
from backbone_viz.core.backbones import Backbone


@dataclass(frozen=True)
class _Head:
    """The smallest Head: it fits exactly one (spec name, weights) pair."""

    name: str = "my head"
    categories: tuple[str, ...] = ("a", "b")
    backbone: str = "efficientnet_lite0"
    weights: str = "pretrained"

    def logits(self, pooled: torch.Tensor) -> torch.Tensor:
        return pooled[:, :2]

    def fits(self, backbone: Backbone) -> bool:
        return (self.backbone, self.weights) == (backbone.spec.name, backbone.weights)


def test_a_head_on_its_own_backbone_passes(lite0: Backbone) -> None:
    bv.check_fits(_Head(), lite0)


def test_a_head_on_other_weights_is_refused(lite0: Backbone) -> None:
    with pytest.raises(bv.HeadError) as info:
        bv.check_fits(_Head(weights="untrained"), lite0)
    assert info.value.message == (
        "The head 'my head' was trained on efficientnet_lite0 (untrained weights), "
        "not on efficientnet_lite0 (pretrained weights)."
    )
    assert info.value.hint == (
        "Train a new head on this backbone, or switch back to the backbone the head was made for."
    )


def test_a_head_on_another_backbone_is_refused(lite0: Backbone) -> None:
    with pytest.raises(bv.HeadError, match=r"trained on resnet50 \(pretrained weights\), not on efficientnet_lite0"):
        bv.check_fits(_Head(backbone="resnet50"), lite0)

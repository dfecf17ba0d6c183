"""Top patches: strongest first, each value the channel's real value there, one per neighbourhood."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import backbone_viz as bv
from backbone_viz.probes.patches import MIN_PATCH
from tests.conftest import count_hooks, sample

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def pictures() -> list:
    return [sample("cat"), sample("coffee"), sample("rocket")]


def channel_map(bb: bv.Backbone, image, layer: str, channel: int) -> np.ndarray:
    with torch.no_grad():
        return bb.extract(bb.preprocess(image), [layer])[layer][0, channel].numpy()


@pytest.mark.parametrize(("layer", "channel"), [("blocks.1.1", 5), ("blocks.2.1", 5)])
def test_patches_are_the_strongest_places_with_their_real_values(
    lite0: bv.Backbone, pictures: list, layer: str, channel: int
) -> None:
    patches = bv.top_patches(lite0, layer, channel, pictures, k=6)
    assert len(patches) == 6
    values = [p.value for p in patches]
    assert values == sorted(values, reverse=True)
    maps = [channel_map(lite0, image, layer, channel) for image in pictures]
    assert values[0] == pytest.approx(max(float(m.max()) for m in maps), abs=1e-5)
    spec = lite0.spec.layer(layer)
    side = max(spec.receptive_field, MIN_PATCH)
    radius = max(1, math.ceil(side / spec.stride / 2))
    for p in patches:
        assert p.value == pytest.approx(float(maps[p.source][p.position]), abs=1e-5)
        left, top, right, bottom = p.box
        assert 0 <= left < right <= 224 and 0 <= top < bottom <= 224
        assert right - left == bottom - top == min(side, 224)
        assert p.image.size == (right - left, bottom - top)
        # The patch is the picture's crop at that box.
        expected = lite0.crop(pictures[p.source]).crop(p.box)
        np.testing.assert_array_equal(np.asarray(p.image), np.asarray(expected))
    for a in patches:
        for b in patches:
            if a is not b and a.source == b.source:
                far = max(abs(a.position[0] - b.position[0]), abs(a.position[1] - b.position[1]))
                assert far >= radius


def test_a_channel_at_its_floor_gives_no_patch(lite0: bv.Backbone, pictures: list) -> None:
    """last_conv ends in ReLU6: where it is 0 the channel does not fire, so no patch comes from there."""
    layer = "bn2"
    maps = [channel_map(lite0, image, layer, 0) for image in pictures]
    patches = bv.top_patches(lite0, layer, 0, pictures, k=9)
    assert any((m == 0).any() for m in maps)  # the floor is there to be skipped
    assert patches and all(p.value > 0 for p in patches)


def test_no_hooks_and_bad_requests(lite0: bv.Backbone, pictures: list) -> None:
    bv.top_patches(lite0, "bn1", 3, pictures[:1], k=2)
    assert count_hooks(lite0.model) == 0
    with pytest.raises(bv.BackboneVizError, match="no channel 32"):
        bv.top_patches(lite0, "bn1", 32, pictures)
    with pytest.raises(ValueError, match="k must"):
        bv.top_patches(lite0, "bn1", 0, pictures, k=0)


def test_maps_at_hand_give_the_same_patches_without_running_the_model(lite0: bv.Backbone) -> None:
    images = [sample("cat"), sample("coffee")]
    layer, channel = "blocks.2.1", 5
    computed = bv.top_patches(lite0, layer, channel, images, k=6)
    maps = [bv.analyze(lite0, image).activations[layer][channel] for image in images]
    given = bv.top_patches(lite0, layer, channel, images, k=6, maps=maps)
    assert [(p.source, p.box) for p in given] == [(p.source, p.box) for p in computed]
    assert [p.value for p in given] == pytest.approx([p.value for p in computed], rel=1e-5)
    with pytest.raises(ValueError, match="one map per image"):
        bv.top_patches(lite0, layer, channel, images, maps=maps[:1])


def test_crops_at_hand_give_the_same_patches(lite0: bv.Backbone) -> None:
    """An analysis's crop (``input_image``) and maps give the patches of the pictures themselves."""
    images = [sample("cat"), sample("rocket")]
    layer, channel = "blocks.1.1", 5
    computed = bv.top_patches(lite0, layer, channel, images, k=5)
    results = [bv.analyze(lite0, image) for image in images]
    crops = [r.input_image for r in results]
    maps = [r.activations[layer][channel] for r in results]
    given = bv.top_patches(lite0, layer, channel, crops, k=5, maps=maps, cropped=True)
    assert [(p.source, p.box) for p in given] == [(p.source, p.box) for p in computed]
    assert all(
        np.array_equal(np.asarray(a.image), np.asarray(b.image)) for a, b in zip(given, computed, strict=True)
    )
    # Without ``cropped`` a crop would be resized and cropped again: other pixels.
    again = bv.top_patches(lite0, layer, channel, crops, k=5, maps=maps)
    assert not all(
        np.array_equal(np.asarray(a.image), np.asarray(b.image)) for a, b in zip(again, computed, strict=True)
    )

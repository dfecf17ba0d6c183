"""The sentences of the feature-visualization views, from their numbers: what a top patch is against what
one map position sees, and the atlas's one caption format."""

from __future__ import annotations

import re

from PIL import Image

import backbone_viz as bv
from backbone_viz.probes.atlas import ATLAS_DIR, MANIFEST, read_atlas
from backbone_viz.probes.patches import MIN_PATCH, patch_side
from webui.views.featurevis_view import atlas_caption, patch_sentence, ratio_words


def _entry(activation: float, gallery_max: float, channel: int = 6) -> bv.AtlasEntry:
    return bv.AtlasEntry(1, "blocks.0.0", channel, Image.new("RGB", (8, 8)), activation, gallery_max, 0)


def test_a_patch_sentence_agrees_with_the_receptive_field_for_every_kind_of_layer() -> None:
    spec = bv.get_spec("efficientnet_lite0")
    crop = spec.preprocessing.crop
    stem, middle, head = spec.layer("stem"), spec.layer("blocks.2.1"), spec.stages[-1].last
    assert stem.receptive_field < MIN_PATCH < middle.receptive_field < crop < head.receptive_field
    for layer in (stem, middle, head):
        rf, side = layer.receptive_field, patch_side(layer, (crop, crop))
        text = patch_sentence(layer, side)
        # The field a map position sees is always the spec's (as the red square says), never the patch's.
        assert f"{rf} × {rf} px" in text and f"map position of {layer.label}" in text
        assert f"{side} px square of a photo that one map position" not in text or side == rf
    # The stem's 3 px field is shown enlarged, and says so.
    text = patch_sentence(stem, patch_side(stem, (crop, crop)))
    assert f"sees only {stem.receptive_field} × {stem.receptive_field} px" in text
    assert f"with its surroundings ({MIN_PATCH} × {MIN_PATCH} px)" in text
    # A field of the patch's own size is the patch; one wider than the photo is the whole crop.
    side = middle.receptive_field
    assert patch_sentence(middle, side).startswith(f"Each patch is the {side} × {side} px square")
    assert f"the whole {crop} × {crop} px crop" in patch_sentence(head, patch_side(head, (crop, crop)))


def test_every_atlas_caption_has_one_format_the_key_explains() -> None:
    # Above and below the best sample photo: the same "#channel · ratio×", never a bare mean.
    assert atlas_caption(_entry(13.0, 10.0)) == "#6 · 1.3×"
    assert atlas_caption(_entry(0.44, 0.55)) == "#6 · 0.8×"
    assert atlas_caption(_entry(0.44, 0.0)) == "#6 · no photo fires it"
    assert atlas_caption(_entry(0.44, -0.2)) == "#6 · no photo fires it"
    assert all("mean" not in atlas_caption(_entry(a, g)) for a, g in ((1, 2), (2, 1), (1, 0)))
    # The enlarged picture's words give the two numbers the ratio comes from.
    assert "13 on this picture, 10 on its best sample photo" in ratio_words(_entry(13.0, 10.0))


def test_the_shipped_atlas_captions_are_ratios() -> None:
    atlas = read_atlas(ATLAS_DIR / "efficientnet_lite0" / MANIFEST)
    for entries in atlas.rows.values():
        for e in entries:
            assert re.fullmatch(r"#\d+ · \d+\.\d×", atlas_caption(e))
            assert atlas_caption(e).endswith(f"{e.activation / e.gallery_max:.1f}×")

"""The shipped atlas: small, complete, honest (each picture beats every sample photo), reproducible, and
never shown for other weights."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import backbone_viz as bv
from backbone_viz.cli import main
from backbone_viz.probes.atlas import (
    ATLAS_DIR,
    JPEG_QUALITY,
    MANIFEST,
    gallery_means,
    manifest_problem,
    read_atlas,
)
from backbone_viz.probes.featurevis import channel_means

pytestmark = pytest.mark.usefixtures("one_thread")

SHIPPED = ATLAS_DIR / "efficientnet_lite0"


@pytest.fixture(scope="module")
def shipped() -> bv.Atlas:
    return read_atlas(SHIPPED / MANIFEST)


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((SHIPPED / MANIFEST).read_text(encoding="utf-8"))


def test_the_shipped_atlas_is_small_and_has_every_stage(lite0: bv.Backbone, shipped: bv.Atlas) -> None:
    assert sum(f.stat().st_size for f in SHIPPED.iterdir()) < 1_000_000
    stages = lite0.spec.stages
    assert list(shipped.rows) == [s.index for s in stages]
    for stage in stages:
        entries = shipped.rows[stage.index]
        assert len(entries) == 8
        assert {e.layer for e in entries} == {stage.last.name}
        assert all(e.image.size == (shipped.size, shipped.size) for e in entries)


def test_it_is_shown_only_for_the_weights_it_was_made_with(
    lite0: bv.Backbone, manifest: dict, tmp_path: Path
) -> None:
    assert bv.load_atlas(lite0) is not None
    assert manifest_problem(manifest, lite0) is None
    untrained = bv.load_backbone("efficientnet_lite0", weights="untrained", device="cpu")
    assert bv.load_atlas(untrained) is None
    assert "other weights" in manifest_problem(manifest, untrained)
    assert "not 'efficientnet_lite0'" in manifest_problem({**manifest, "backbone": "resnet50"}, lite0)
    # A manifest made with another weights file (another hash) is stale.
    stale = tmp_path / "efficientnet_lite0"
    shutil.copytree(SHIPPED, stale)
    (stale / MANIFEST).write_text(json.dumps({**manifest, "weights_sha256": "0" * 64}), encoding="utf-8")
    assert bv.load_atlas(lite0, root=tmp_path) is None
    assert "another weights file" in manifest_problem(json.loads((stale / MANIFEST).read_text()), lite0)


def test_recorded_activations_are_those_of_the_shipped_pictures(
    lite0: bv.Backbone, shipped: bv.Atlas
) -> None:
    for entries in shipped.rows.values():
        measured = channel_means(
            lite0, entries[0].layer, [e.image for e in entries], [e.channel for e in entries]
        )
        np.testing.assert_allclose(measured, [e.activation for e in entries], rtol=1e-3, atol=1e-3)


def test_each_picture_drives_its_channel_harder_than_any_sample_photo(
    lite0: bv.Backbone, shipped: bv.Atlas
) -> None:
    """The atlas's honesty check: every channel of every stage of the shipped atlas beats the gallery."""
    for entries in shipped.rows.values():
        best = gallery_means(lite0, entries[0].layer).max(axis=0)
        for e in entries:
            assert e.gallery_max == pytest.approx(float(best[e.channel]), rel=1e-4, abs=1e-4)
            assert e.activation > best[e.channel], (e.layer, e.channel, e.activation, best[e.channel])


def test_a_fresh_optimization_beats_the_gallery_too(lite0: bv.Backbone) -> None:
    layer = lite0.spec.stages[2].last
    channel = int(np.argmax(gallery_means(lite0, layer).mean(axis=0)))
    best = float(gallery_means(lite0, layer).max(axis=0)[channel])
    assert bv.visualize_channel(lite0, layer, channel, size=96, steps=24, seed=3).activation > best


def _means_the_same(activation: float, entry: bv.AtlasEntry) -> bool:
    """A picture means what ``entry``'s means: it drives the channel within 10 % of the shipped picture's
    activation, and harder than the gallery's best photo."""
    return activation == pytest.approx(entry.activation, rel=0.10) and activation > entry.gallery_max


def test_an_entry_recomputed_means_what_the_shipped_picture_means(lite0: bv.Backbone, shipped: bv.Atlas) -> None:
    """Recomputed on this machine, a picture drives its channel about as hard as the shipped one, and
    harder than any sample photo.

    Not the same pixels: 256 steps of gradient ascent amplify the last-bit differences between two
    CPUs' kernels (an AMD machine's picture differed from the shipped one by 14.9 grey levels on
    average), so only what the picture means is reproducible across machines.
    """
    entry = shipped.rows[1][0]  # the first stage: the cheapest to recompute
    again = bv.visualize_channel(
        lite0, entry.layer, entry.channel, size=shipped.size, steps=shipped.steps, seed=entry.seed
    )
    # Measured as the atlas measures it: on the picture saved as the atlas saves it.
    buffer = io.BytesIO()
    again.image.save(buffer, "JPEG", quality=JPEG_QUALITY)
    with Image.open(buffer) as written:
        (activation,) = channel_means(lite0, entry.layer, [written.convert("RGB")], [entry.channel])
    assert _means_the_same(activation, entry), (activation, entry.activation, entry.gallery_max)


def test_the_recomputation_check_fails_for_pictures_that_do_not_drive_the_channel(
    lite0: bv.Backbone, shipped: bv.Atlas
) -> None:
    """The check above can fail: a plain grey picture and the other channels' pictures of the same stage
    do not mean what the entry's picture means."""
    entry, *others = shipped.rows[1]
    grey = Image.new("RGB", (shipped.size, shipped.size), (128, 128, 128))
    pictures = [grey, *(o.image for o in others)]
    activations = channel_means(lite0, entry.layer, pictures, [entry.channel] * len(pictures))
    assert not any(_means_the_same(a, entry) for a in activations), activations


def test_the_command_line_writes_an_atlas(tmp_path: Path) -> None:
    out = tmp_path / "atlas"
    assert main(["atlas", "--out", str(out), "--per-stage", "1", "--size", "32", "--steps", "1"]) == 0
    atlas = read_atlas(out / MANIFEST)
    assert [len(r) for r in atlas.rows.values()] == [1] * 5
    assert (
        json.loads((out / MANIFEST).read_text())["weights_sha256"]
        == json.loads((SHIPPED / MANIFEST).read_text())["weights_sha256"]
    )


def test_gallery_maps_of_several_layers_come_from_one_pass_equal_to_one_layer_each(
    lite0: bv.Backbone,
) -> None:
    from backbone_viz.files.samples import list_samples

    both = bv.gallery_maps(lite0, ["blocks.1.1", "blocks.4.2"])
    pictures = [bv.load_image(s.path) for s in list_samples()]
    for layer, maps in both.items():
        alone = bv.gallery_maps(lite0, [layer], pictures)[layer]
        assert maps.shape == alone.shape and maps.shape[0] == len(pictures)
        np.testing.assert_allclose(maps, alone, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(gallery_means(lite0, layer), maps.mean(axis=(2, 3)), rtol=1e-5, atol=1e-6)

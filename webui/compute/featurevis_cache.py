"""Feature visualizations shared by every session: the shipped atlas, pictures made on demand, small
atlases, gallery maxima and top patches.

Where the web app runs the model for feature visualization (``visualize_channel``, ``compute_atlas``,
``gallery_maps``), each in a turn of the fair queue; top patches are read off the gallery's maps. A picture takes seconds to minutes to make, so it is made in the
page's own script run, with a progress bar: when the learner leaves the page or changes a widget,
Streamlit stops the run at the next progress update and nothing is left running (the engine lets the
exception through and keeps nothing). What is finished is kept for every session, least recently used
out:

* the shipped atlas: checked against the loaded weights' file (:func:`backbone_viz.load_atlas`), one per
  (backbone, weights);
* single pictures: :data:`MAX_PICTURES` of (backbone, weights, layer, channel), ~20 kB each;
* small atlases: :data:`MAX_ATLASES` of (backbone, weights);
* the sample photos' maps: every layer of a bundled backbone from one pass (2 entries, ~30 MB each), a
  large backbone's per layer (8); top patches: 32 sets of up to 9 small crops, read off those maps and
  the uploads' analyses, so that a new channel or layer never runs the model for them.

Single pictures and small atlases live in a store that can be asked whether it holds a key without
computing anything (``st.cache_resource`` cannot), so a page shows a finished picture at once and offers
a button for one that is not made yet.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

import numpy as np
import streamlit as st
from PIL import Image

import backbone_viz as bv
from backbone_viz.core.lru import LRU
from webui.compute.caches import cached_activations, cached_backbone, cached_picture, in_turn, kept_in_turn
from webui.shell.state import ImageChoice, sample_choice, samples

MAX_PICTURES = 128
MAX_ATLASES = 6
#: The on-demand picture: as the shipped atlas's size and seed, with the engine's default steps.
PICTURE = {"size": 128, "steps": None, "seed": 0}
#: A small atlas made on demand: 3 channels per stage, smaller and shorter than the shipped one.
SMALL_ATLAS = {"per_stage": 3, "size": 96, "steps": 64, "seed": 0}

#: What a page shows as a channel's feature visualization: a shipped atlas entry or a picture made here.
Visual = bv.AtlasEntry | bv.FeatureVis
Progress = Callable[[int, int], None]


@st.cache_resource(show_spinner=False)
def _pictures() -> LRU[tuple[str, str, str, int], bv.FeatureVis]:
    return LRU(MAX_PICTURES)


@st.cache_resource(show_spinner=False)
def _atlases() -> LRU[tuple[str, str], bv.Atlas]:
    return LRU(MAX_ATLASES)


@st.cache_resource(max_entries=12, show_spinner=False)
def shipped_atlas(name: str, weights: str) -> bv.Atlas | None:
    """The atlas that ships for this backbone, when it was made with exactly these weights."""
    return bv.load_atlas(cached_backbone(name, weights))


def visual(name: str, weights: str, layer: str, channel: int) -> Visual | None:
    """The channel's feature visualization when it is ready (shipped or made before), else None."""
    atlas = shipped_atlas(name, weights)
    entry = atlas.entry(layer, channel) if atlas is not None else None
    return entry if entry is not None else _pictures().get((name, weights, layer, channel))


def make_visual(name: str, weights: str, layer: str, channel: int, progress: Progress) -> Visual:
    """The channel's feature visualization, made now unless it is ready (see :func:`visual`)."""
    atlas = shipped_atlas(name, weights)
    shipped = atlas.entry(layer, channel) if atlas is not None else None
    if shipped is not None:
        return shipped
    return kept_in_turn(
        _pictures(),
        (name, weights, layer, channel),
        None,
        inputs=lambda: cached_backbone(name, weights),
        make=lambda backbone: bv.visualize_channel(backbone, layer, channel, progress=progress, **PICTURE),
    )


def atlas(name: str, weights: str) -> bv.Atlas | None:
    """The shipped atlas, or a small one made before for this backbone and weights, or None."""
    return shipped_atlas(name, weights) or _atlases().get((name, weights))


def make_atlas(name: str, weights: str, progress: Progress) -> bv.Atlas:
    """:func:`atlas`, made now (small) when there is none."""
    shipped = shipped_atlas(name, weights)
    if shipped is not None:
        return shipped
    return kept_in_turn(
        _atlases(),
        (name, weights),
        None,
        inputs=lambda: cached_backbone(name, weights),
        make=lambda backbone: bv.compute_atlas(backbone, progress=progress, **SMALL_ATLAS),
    )


def _gallery_pictures() -> list[Image.Image]:
    """The sample photos, each decoded once for every session (shared pictures: read, never change)."""
    return [
        cached_picture(choice.sha256, choice.data) for choice in (sample_choice(s.name) for s in samples())
    ]


@st.cache_resource(max_entries=2, show_spinner=False)
def _gallery_all(name: str, weights: str) -> Mapping[str, np.ndarray]:
    """Every listed layer's maps on the sample photos, from ONE pass (a bundled backbone: ~30 MB)."""
    backbone = cached_backbone(name, weights)
    pictures = _gallery_pictures()
    maps = in_turn(
        None, None, lambda: bv.gallery_maps(backbone, [layer.name for layer in backbone.spec.layers], pictures)
    )
    return MappingProxyType({layer: _frozen(m) for layer, m in maps.items()})


@st.cache_resource(max_entries=8, show_spinner=False)
def _gallery_layer(name: str, weights: str, layer: str) -> np.ndarray:
    backbone, pictures = cached_backbone(name, weights), _gallery_pictures()
    return _frozen(in_turn(None, None, lambda: bv.gallery_maps(backbone, [layer], pictures))[layer])


def gallery_maps(name: str, weights: str, layer: str) -> np.ndarray:
    """(pictures, channels, h, w) the layer's maps on the sample photos, shared by every session.

    A bundled backbone's gallery is kept for every layer at once (one pass, made by the warm start), so
    moving the layer slider never runs the model for it; a large backbone's is kept per layer (a VGG-16
    gallery of every layer would take ~400 MB).
    """
    if bv.get_spec(name).bundled:
        return _gallery_all(name, weights)[layer]
    return _gallery_layer(name, weights, layer)


def gallery_max(name: str, weights: str, layer: str) -> np.ndarray:
    """(channels,) each channel's largest mean value over the sample photos."""
    return gallery_maps(name, weights, layer).mean(axis=(2, 3)).max(axis=0)


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def top_patches(
    name: str, weights: str, layer: str, channel: int, uploads: Sequence[ImageChoice]
) -> tuple[bv.Patch, ...]:
    """The channel's top 9 patches among the sample photos, then ``uploads`` (``source`` counts in that order)."""
    key = tuple(u.sha256 for u in uploads)
    return _top_patches(name, weights, layer, channel, key, tuple(u.data for u in uploads))


@st.cache_resource(max_entries=4, show_spinner=False)
def _gallery_crops(name: str, weights: str) -> tuple[Image.Image, ...]:
    """The sample photos as the backbone sees them (resized and cropped once, not per layer and channel)."""
    backbone = cached_backbone(name, weights)
    return tuple(backbone.crop(picture) for picture in _gallery_pictures())


@st.cache_resource(max_entries=32, show_spinner=False)
def _top_patches(
    name: str,
    weights: str,
    layer: str,
    channel: int,
    uploads_sha256: tuple[str, ...],
    _uploads: tuple[bytes, ...],
) -> tuple[bv.Patch, ...]:
    backbone = cached_backbone(name, weights)
    crops = list(_gallery_crops(name, weights))
    maps = list(gallery_maps(name, weights, layer)[:, channel])
    for sha256, data in zip(uploads_sha256, _uploads, strict=True):
        # An upload was analysed when it was chosen: its crop and maps are in the shared analysis cache.
        activations = cached_activations(name, weights, sha256, data)
        crops.append(activations.input_image)
        maps.append(activations.activations[layer][channel])
    return bv.patches_from_maps(backbone.spec.layer(layer), crops, maps, k=9)  # no model run: maps at hand


def clear_made() -> None:
    """Forgets every picture and small atlas made on demand (the shipped atlas stays)."""
    _pictures.clear()
    _atlases.clear()

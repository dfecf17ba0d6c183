"""The Real detectors page's "where did it look?" section: a detector's map inside each box it drew, beside
the same map over the whole picture; a segmenter's map for each class it found. Which maps the map is made
from is the learner's choice (the neck's, or one backbone stage's)."""

from __future__ import annotations

import numpy as np
import streamlit as st
from PIL import Image

import backbone_viz as bv
import webui
from backbone_viz import render
from webui.compute.dense_cache import LOOKED_CLASSES
from webui.shell.state import Choices, persistent
from webui.views import widgets
from webui.views.dense_view import colour, draw_boxes, share_text, shown_width


def _overlay(picture: Image.Image, heat: np.ndarray) -> Image.Image:
    """``heat`` (h, w) in [0, 1] over ``picture`` resized to (w, h)."""
    return render.overlay(picture, heat, alpha=0.5, vmin=0.0, vmax=1.0)


def pick_source(spec: bv.DenseSpec) -> bv.LookSource:
    """The maps the learner chose to make the map from, kept per model."""
    sources = bv.look_sources(spec)
    by_key = {s.key: s for s in sources}
    keys = list(by_key)
    key = st.selectbox(
        "Make the map from",
        keys,
        format_func=lambda k: by_key[k].title,
        **persistent(f"dense.looked.{spec.name}", keys[0], options=keys),
    )
    return by_key[key]


def looked_section(choices: Choices, spec: bv.DenseSpec, picture: Image.Image, threshold: float | None) -> None:
    """Where the trained model looked on the picture (an untrained one finds nothing to explain).

    Args:
        threshold: the score an object needs to be shown (the findings' slider); None for a segmenter.
    """
    source = pick_source(spec)
    looked = webui.dense_looked(choices, spec, source.key)
    h, w = looked.whole.shape
    small = picture.convert("RGB").resize((w, h), Image.Resampling.BILINEAR)
    if spec.kind == "semantic segmenter" or threshold is None:
        _per_class(looked, small)
    else:
        found = webui.dense_findings(choices, spec)  # kept by every session: this asks nothing new
        shown = int((found.scores >= threshold).sum())
        _in_boxes(looked, small, picture.width, threshold, shown)
    st.caption(f"{looked.why} Made from {source.title} in {looked.seconds:.1f} s.")


def _in_boxes(
    looked: bv.LookedMaps, small: Image.Image, picture_width: int, threshold: float, shown: int
) -> None:
    """The map rescaled inside each box shown (``shown`` objects score ``threshold`` or more; maps are
    made for the best ``dense_cache.LOOKED_REGIONS``), beside the same map over the whole picture."""
    scale = small.width / picture_width
    kept = [r for r in looked.regions if r.score >= threshold]
    boxes = np.array([[v * scale for v in r.box] for r in kept], np.float32).reshape(-1, 4)
    inside = bv.renormalise_in_boxes(looked.whole, boxes)
    drawn = _overlay(small, inside)
    ids = {name: i for i, name in enumerate(bv.get_dense_spec(looked.model).categories)}
    draw_boxes(
        drawn,
        [tuple(float(v) for v in box) for box in boxes],
        [f"{r.label} {r.score:.0%}" for r in kept],
        [colour(ids.get(r.label, 0)) for r in kept],
    )
    left, right = st.columns(2)
    width = min(shown_width(small), 600)
    left.image(widgets.shown(drawn, photo=True), width=width)
    if kept:
        which = (
            f"the best {len(kept)} of the {shown} objects scoring {threshold:.0%} or more"
            if shown > len(kept)
            else f"each object scoring {threshold:.0%} or more"
        )
        left.caption(
            f"Inside each box ({which}), the map rescaled to that box: bright marks the part of the box "
            "that stands out most in the features."
        )
    else:
        left.caption(
            f"No object scores {threshold:.0%} or more: move the slider above down to see boxes here."
        )
    right.image(widgets.shown(_overlay(small, looked.whole), photo=True), width=width)
    right.caption(
        f"The same {looked.method} map over the whole picture: one map for every box, with no class in it."
    )


def _per_class(looked: bv.LookedMaps, small: Image.Image) -> None:
    """A map for each of the largest classes found, side by side."""
    regions = [r for r in looked.regions if r.heat is not None][:LOOKED_CLASSES]
    if not regions:
        st.markdown("It gave every pixel to the background, so no class has a map to show.")
        return
    cells = st.columns(LOOKED_CLASSES)
    for cell, region in zip(cells, regions, strict=False):
        cell.image(widgets.shown(_overlay(small, region.heat), photo=True), width="stretch")
        empty = "; no feature raises its score, so its map is empty" if not region.heat.any() else ""
        cell.caption(f"**{region.label}**: {share_text(region.score)} of the picture{empty}")

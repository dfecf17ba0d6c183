"""Feature atlas: one row of feature visualizations per stage, low to high, from edges to objects."""

import streamlit as st

import webui
from webui.compute import featurevis_cache
from webui.shell.weights_ui import load
from webui.views import featurevis_view, widgets

choices = webui.page_setup()
spec = choices.spec

st.title("Feature atlas: what each stage looks for")
widgets.explain(
    "Each picture below was **made for one channel**: starting from noise, the computer changed the pixels "
    "step by step until that channel fired as hard as it could. Each row is one stage of the backbone, "
    "from the first (top) to the last (bottom), showing the channels of its last layer that fire most "
    "on the sample photos. A channel fires at every position of the picture, so the picture repeats "
    "what it looks for all over itself: every row reads as a texture, and what changes from row to row "
    "is the size and kind of the pattern. The photo patches (click the number under a picture) show "
    "what the channel fires on in real photos. "
    + (
        "Read it from top to bottom: with learned weights the patterns grow from colours and fine stripes "
        "to textures, then to parts of objects; no single channel draws a whole object."
        if choices.weights == "pretrained"
        else "These weights are random: no row has learned anything to look for, so there is no growth from "
        "edges to objects. Switch to pretrained in the sidebar to see it."
    )
)

if load(choices.backbone, choices.weights, key="atlas") is None:
    st.stop()
atlas = featurevis_cache.atlas(choices.backbone, choices.weights)
if atlas is None:
    small = featurevis_cache.SMALL_ATLAS
    offer = st.empty()  # the note and its button, gone once the atlas is made
    with offer.container():
        st.info(
            f"No atlas of {spec.title} with {choices.weights} weights is ready yet. A small one has "
            f"{small['per_stage']} channels per stage, {small['size']} × {small['size']} px, "
            f"{small['steps']} optimization steps each; on a CPU it takes minutes. Leaving this page "
            "stops it."
        )
        clicked = st.button("Make a small atlas", icon=":material/auto_awesome:", key="atlas.make")
    if not clicked:
        st.stop()
    offer.empty()  # the work runs in this script run: a click elsewhere or leaving the page stops it
    with featurevis_view.progress_bar("Making the atlas…") as progress:
        atlas = featurevis_cache.make_atlas(choices.backbone, choices.weights, progress)

st.caption(featurevis_view.atlas_key(atlas))
featurevis_view.atlas_rows(atlas, spec, choices)

shipped = atlas is featurevis_cache.shipped_atlas(choices.backbone, choices.weights)
count = sum(len(entries) for entries in atlas.rows.values())
shown = sum(min(len(entries), featurevis_view.per_row()) for entries in atlas.rows.values())
st.caption(
    f"{spec.title}, {choices.weights} weights: {count} pictures of {atlas.size} × {atlas.size} px, "
    f"{atlas.steps} steps each, "
    + (
        "made once and shipped with backbone-viz (checked against these weights)."
        if shipped
        else "made here."
    )
    + (f" Projector mode shows {shown} of them: the strongest of each stage." if shown < count else "")
)  # after the rows: in projector mode the pictures come first

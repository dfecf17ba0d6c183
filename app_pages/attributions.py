"""Pixel attributions: which pixels of the picture count for a class, five ways, and whether to trust them."""

import streamlit as st

import webui
from backbone_viz.explain.attributions import METHODS
from webui.shell.state import persistent
from webui.views import attribution_view, widgets

choices = webui.page_setup()
spec = choices.spec

st.title("Pixel attributions: which pixels count?")
widgets.explain(
    "Grad-CAM answers *where* at the coarse resolution of the last stage. The methods below answer for "
    "**every pixel** of the picture the model saw: how much does this pixel count for the class? Bright "
    "pixels count most, in either direction. They all start from the same gradient, yet draw quite "
    "different maps; the sanity check at the bottom tests which of them really depend on what the "
    "network learned."
)

result = webui.analysis_or_stop(choices)
indices = [p.index for p in result.predictions]
labels = {p.index: f"{p.label} ({p.probability:.1%})" for p in result.predictions}
target = st.radio(
    "Class to explain (the head's top-5)",
    indices,
    format_func=labels.__getitem__,
    horizontal=True,
    **persistent("attr.target", indices[0], options=indices),
)
result = result if target == result.target.index else webui.analysis_or_stop(choices, target)

st.subheader(f"Five maps for “{result.target.label}”, beside Grad-CAM")
h, w = result.input_image.height, result.input_image.width
cells = ["picture", "gradcam", *METHODS]
made = {}
per_row = attribution_view.per_row()
for start in range(0, len(cells), per_row):
    # Bottom-aligned: a title that wraps in a narrow column does not push its map out of line.
    row = st.columns(per_row, vertical_alignment="bottom")
    for column, cell in zip(row, cells[start : start + per_row], strict=False):
        with column:
            if cell == "picture":
                st.markdown("**The picture** the model saw")
                st.image(widgets.shown(result.input_image, photo=True), width="stretch")
            elif cell == "gradcam":
                attribution_view.gradcam_cell(result)
            else:
                made[cell] = attribution_view.method_cell(choices, cell, result.target.index)

attribution_view.legend(result, made)  # after the maps: in projector mode they come first
st.caption(
    f"Each map has one value per pixel of the {w} × {h} crop, summed over its three colour channels "
    "as absolute values; each is scaled to its own 99th percentile, so compare shapes, not brightness."
)

st.subheader("Can we trust this map?")
widgets.explain(
    "Adebayo et al. (“Sanity Checks for Saliency Maps”, 2018) asked a simple question: if we destroy what "
    "the network learned, does the map change? The check below replaces the weights by random numbers, "
    "first the head, then one stage at a time down to the first, and draws the map again after each "
    "step. **ρ** is the rank correlation of each map with the first one: 1 means the same bright pixels, "
    "0 means no likeness."
)
attribution_view.sanity_section(choices, result.target.index)

data = attribution_view.measured()
if data is not None:
    st.markdown("**What the check gave with the sample pictures**")
    st.markdown(attribution_view.measured_summary(data))
    table = attribution_view.measured_table(data)
    st.dataframe(
        table,
        hide_index=True,
        column_config={c: st.column_config.NumberColumn(format="%.2f") for c in table.columns[2:]},
    )
    st.caption(
        "Median rank correlation with the trained map over the pictures, after each step of the check. "
        + attribution_view.rule_sentence()
        + f" The check above runs on {spec.title} {choices.weights}, with your picture."
    )

"""Which map is right? The CAM methods and occlusion, measured on the learner's picture: deletion and
insertion (with the pictures along the curves), two baselines that explain nothing, and ROAD."""

import streamlit as st

import backbone_viz as bv
import webui
from backbone_viz import render
from backbone_viz.explain.faithfulness import RANDOM, SOBEL, random_map, sobel_map
from webui.compute import faithfulness_cache
from webui.views import faithfulness_view as view
from webui.views import widgets

choices = webui.page_setup()
spec = choices.spec

st.title("Which map is right? Measure it")
widgets.explain(
    "Grad-CAM and its cousins often disagree. To test a map without knowing the answer, **take away the "
    "pixels it calls most important first**: if the map is right, the class's probability falls fast. "
    "Put them back first onto a blurred picture: it should rise fast. Two maps that explain nothing, a "
    "random one and the picture's edges, show what chance looks like."
)

base = webui.analysis_or_stop(choices)
target = base.target
crop = base.input_image
layer = spec.stages[-1].last

# ----------------------------------------------------------------------------------------- 1. the maps
st.subheader(f"1 · The maps of “{target.label}” at the last stage")
methods = {m.name: m.title for m in bv.list_cams()}
chosen = st.multiselect(
    "Methods to measure",
    list(methods),
    default=["gradcam", "gradcampp", "eigencam"],
    format_func=lambda name: methods[name],
    key="faith.methods",
)
patch = st.session_state.get("faith.patch", 32)
stride = st.session_state.get("faith.stride", 16)
occluded = faithfulness_cache.ready_occlusion(
    choices.backbone, choices.weights, choices.image, target.index, patch, stride
)
family = webui.cam_maps(choices, target.index, chosen) if chosen else None
maps = faithfulness_cache.shown_maps(family, layer.name, chosen, occluded) if family else {}
if occluded is not None and family is None:
    maps = {faithfulness_cache.OCCLUSION: occluded.pixel_map}
view.show_maps(crop, maps, {RANDOM: random_map(), SOBEL: sobel_map(crop)})

with st.expander("Occlusion: cover each part of the picture with a grey square", expanded=occluded is None):
    st.markdown(
        "**Occlusion** (Zeiler and Fergus, 2014) needs no gradient and no map inside the network: it covers "
        "one place at a time and watches the probability. Slow but direct; once made, it joins the maps "
        "measured above and below."
    )
    left, right = st.columns(2)
    left.select_slider("Square's side (px)", [16, 24, 32, 48, 64], key="faith.patch", value=32)
    right.select_slider("Step between places (px)", [8, 16, 32], key="faith.stride", value=16)
    if occluded is None:
        cost = faithfulness_cache.cost_of_occlusion(choices.backbone, choices.weights, patch, stride)
        st.caption(f"{cost.passes} forward passes, about {cost.seconds:.0f} s on this server.")
        if st.button("Run occlusion", key="faith.occlude", icon=":material/play_arrow:"):
            occluded = webui.occlusion_map(choices, target.index, patch, stride)
            st.rerun()
    else:
        shown, caption = st.columns([1, 2])
        shown.image(
            widgets.shown(
                render.overlay(crop, occluded.map, alpha=0.6, cmap=render.GRADCAM_CMAP), photo=True
            ),
            width="stretch",
        )
        caption.markdown(view.occlusion_caption(occluded))

# -------------------------------------------------------------------------------- 2. deletion, insertion
st.subheader("2 · Take the pixels away, put them back")
occlusion_key = (patch, stride) if occluded is not None else None
ranking = faithfulness_cache.ranking(
    choices.backbone, choices.weights, choices.image, target.index, maps, occlusion_key
)
if ranking is None:
    cost = faithfulness_cache.cost_of_curves(choices.backbone, choices.weights, len(maps) + 2)
    st.markdown(
        f"Each map's pixels are deleted onto black, {len(maps) + 2} maps with the baselines: "
        f"{cost.passes} pictures through the model, about {cost.seconds:.0f} s on this server."
    )
    if st.button("Measure", key="faith.measure", icon=":material/straighten:", disabled=not maps):
        ranking = webui.ranking(choices, target.index, maps, occlusion_key)
if ranking is not None:
    st.markdown(view.verdict(ranking))
    deletion, insertion = st.columns(2)
    deletion.markdown(f"**Deletion**: *{target.label}*'s probability as the pixels go black")
    deletion.line_chart(view.curves_chart(ranking, "deletion"), height=260)
    insertion.markdown(f"**Insertion**: *{target.label}*'s probability as they come back")
    insertion.line_chart(view.curves_chart(ranking, "insertion"), height=260)
    st.dataframe(view.ranking_table(ranking), hide_index=True)
    names = view.titles(list(ranking.curves))
    watch, step_place = st.columns([1, 2])
    watched = watch.selectbox(
        "Watch the pictures of", list(ranking.curves), format_func=names.get, key="faith.watch"
    )
    steps = len(next(iter(ranking.curves.values())).deletion.scores) - 1
    step = step_place.slider("Step", 0, steps, value=steps // 8, key="faith.step")
    view.show_steps(ranking, watched or next(iter(ranking.curves)), step)

# ---------------------------------------------------------------------------------------------- 3. ROAD
st.subheader("3 · A second opinion: ROAD")
st.markdown(
    "Deletion alone can mislead: a picture full of black holes is unlike any photo the network learned "
    "from, so the probability may fall because of the holes, not because those pixels mattered, and the "
    "holes' shape can give away where the map pointed. **ROAD** (Rong et al., 2022) fills each removed "
    "pixel from its neighbours instead, then removes the most relevant pixels first (the probability "
    "should fall) and the least relevant first (it should stay)."
)
roads = faithfulness_cache.roads(
    choices.backbone, choices.weights, choices.image, target.index, maps, occlusion_key
)
if roads is None:
    passes = faithfulness_cache.road_cost(choices.backbone, choices.weights, len(maps) + 1)
    st.caption(f"{len(maps)} maps and the random one: {passes} pictures through the model.")
    if st.button("Run ROAD", key="faith.road", icon=":material/straighten:", disabled=not maps):
        roads = webui.roads(choices, target.index, maps, occlusion_key)
if roads is not None:
    st.markdown(view.road_verdict(roads, ranking))
    st.dataframe(view.road_table(roads), hide_index=True)

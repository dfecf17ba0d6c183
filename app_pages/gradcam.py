"""Grad-CAM: which parts of the picture made the head choose a class, at every stage."""

import streamlit as st

import webui
from backbone_viz import render
from webui.shell import projector
from webui.shell.state import persistent
from webui.views import cam_methods, widgets

choices = webui.page_setup()
spec = choices.spec

st.title("Grad-CAM: where did the network look?")
widgets.explain(
    "The head gives every class a score. **Grad-CAM** asks each stage: which places in your maps would "
    "raise this class's score most? Bright places are the evidence for that class. The first row shows "
    "it over your picture at every stage, from the first to the last; the rows below show each stage's "
    "map on its own. Pick another class, for example the head's second guess, and see whether the "
    "bright places move."
)

base = webui.analysis_or_stop(choices)
categories = base.categories

# In projector mode the figure comes first: the class and the opacity share one row, the top-5 goes below.
present = projector.on()
if present:
    right, class_place, slider_place = st.columns(3, vertical_alignment="bottom")
    left = None
else:
    left, right = st.columns([3, 2])
    class_place = slider_place = None
with right:
    if not present:
        st.subheader("Which class should Grad-CAM explain?")
    mode = widgets.choice(
        "Which class should Grad-CAM explain?",
        {"top": f"the top prediction ({base.predictions[0].label})", "other": "a class I choose"},
        key="target_mode",
        label_visibility="visible" if present else "collapsed",
    )
    target = None
    if mode == "other":
        indices = list(range(len(categories)))
        chosen = (class_place or st).selectbox(
            "Search the classes (type to filter)",
            indices,
            format_func=lambda i: f"{categories[i]} (#{i})",
            **persistent("target_class", base.predictions[0].index, options=indices),
        )
        target = None if chosen == base.predictions[0].index else chosen

result = base if target is None else webui.analysis_or_stop(choices, target)
if target is not None:
    right.markdown(
        f"Grad-CAM now explains **{result.target.label}**, which the head gives {result.target.probability:.2%}."
    )


def top5() -> None:
    st.subheader("The head's top-5")
    widgets.class_bars(base.predictions, result.target)


if left is not None:
    with left:
        top5()
crop = result.input_image
stem = f"{choices.image.stem}-{spec.name}-gradcam-{result.target.index}"
st.subheader(f"What counts for “{result.target.label}”, stage by stage")
with slider_place or st.container():
    opacity = st.slider(
        "Opacity of Grad-CAM over the picture", 0.0, 1.0, step=0.05, **persistent("cam_opacity", 0.55)
    )

# The figure every student should see first: Grad-CAM over the picture at each stage, in one row.
overlays = {}
for stage in spec.stages:
    cam_map = result.gradcam[stage.last.name]
    overlays[stage.index] = render.overlay(crop, cam_map, alpha=opacity, cmap=render.GRADCAM_CMAP)
first = st.columns(len(spec.stages))
for place, stage in zip(first, spec.stages, strict=True):
    place.image(widgets.shown(overlays[stage.index], photo=True), width="stretch")
    place.markdown(f"**stage {stage.index}**  \n{widgets.level_badge(stage.level)}")

st.subheader(f"Other ways to map “{result.target.label}”")
st.markdown(
    "Grad-CAM is one recipe among several. Each method below turns the same maps (and, but for EigenCAM, "
    "the same gradient) into a map of its own: where they agree, you can trust the picture more."
)
cam_methods.show_family(choices, result, opacity)
if st.toggle("Show Score-CAM (slow: one forward pass per channel)", key="cam.score_on"):
    cam_methods.show_score_cam(choices, result, opacity)

st.subheader("Each stage on its own")
# In projector mode a spare column keeps each row's pictures within one screen's height.
ratios = [1.3, 2, 2, 2] + ([1.0] if present else [])
heads = st.columns(ratios)
heads[1].markdown("**Activation** (a strongly active channel)")
heads[2].markdown("**Grad-CAM** (raw map)")
heads[3].markdown("**Grad-CAM over the picture**")
for stage in spec.stages:
    layer = stage.last
    act = render.map_image(render.representative(result, layer), size=crop.width)
    cam_map = result.gradcam[layer.name]
    cam = render.map_image(cam_map, size=crop.width, cmap=render.GRADCAM_CMAP)
    over = overlays[stage.index]
    row = st.columns(ratios, vertical_alignment="center")
    with row[0]:
        st.markdown(f"**stage {stage.index}**  \n`{layer.label}`  \n{widgets.level_badge(stage.level)}")
        h, w = cam_map.shape
        st.caption(f"{h} × {w} map, each pixel sees {layer.receptive_field} px")
        if float(cam_map.max()) <= 0.0:
            st.caption("Grad-CAM is zero everywhere here: nothing at this stage pushes the class up.")
        widgets.download_png(
            lambda act=act, cam=cam, over=over, stage=stage: render.image_row(
                [act, cam, over],
                labels=[
                    widgets.stage_label(result, stage),
                    "Grad-CAM",
                    f"Grad-CAM on the picture\n{result.target.label}",
                ],
            ),
            f"{stem}-stage{stage.index}.png",
            key=f"gc.dl.stage{stage.index}",
        )
    row[1].image(widgets.shown(act), width="stretch")
    row[2].image(widgets.shown(cam), width="stretch")
    row[3].image(widgets.shown(over, photo=True), width="stretch")

if left is None:
    top5()
last_h, last_w = result.gradcam[spec.stages[-1].last.name].shape
st.subheader("Why the rows look so different")
if choices.weights == "pretrained":
    last_line = (
        f"**The last stage is coarse but meaningful.** Its map is tiny ({last_h} × {last_w} here), so the "
        "bright blob is blurry, but it sits on the object, because this is the stage the head reads."
    )
else:
    last_line = (
        f"**The last stage is coarse.** Its map is tiny ({last_h} × {last_w} here), so the bright blob is "
        "blurry. With untrained weights it need not sit on any object: the head has learned nothing, so "
        "its guess has no evidence to point at."
    )
st.markdown(
    "- **Early stages are noisy.** Their maps are big and every pixel sees only a small patch, so the "
    "evidence for a whole class is scattered over edges and specks.\n"
    f"- {last_line}\n"
    "- That is why Grad-CAM is usually shown for the last stage only."
)
widgets.report_button(lambda: result, stem, key="gc.dl.report")

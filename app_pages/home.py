"""Home: what a backbone is, drawn from the chosen backbone's real stages with this picture's maps."""

import streamlit as st

import webui
from backbone_viz import render
from webui.compute import figures
from webui.shell import pages
from webui.views import widgets

choices = webui.page_setup()
spec = choices.spec

st.title("What does a CNN backbone see?")
widgets.explain(
    "A **backbone** is the part of an image network that turns pixels into features. It works in "
    f"**stages**. In {spec.title}, {widgets.stages_sentence(spec)}. So early stages see small details "
    "(edges, colours) and late stages see large things (parts, whole objects). At the end, a **head** "
    "reads the last stage and names what it sees. New here? Start with the **Lessons**."
)

result = webui.activations_or_stop(choices)
stages = spec.stages
crop = result.input_image

st.subheader(f"{spec.title}, stage by stage")
st.caption(f"The real {spec.title} ({choices.weights} weights) looking at your picture: one map per stage.")
# One column per picture, a narrow one for each arrow between them.
ratios = [3]
for _ in stages:
    ratios += [0.6, 3]
cells = st.columns(ratios, vertical_alignment="center", gap=None)  # no gap: the arrows' columns are narrow
cells[0].image(figures.figure(choices.image, result, ("crop",), lambda: crop, photo=True), width="stretch")
cells[0].caption(f"**your picture**  \n3 × {crop.height} × {crop.width}")
for i, stage in enumerate(stages):
    cells[1 + 2 * i].markdown("→")
    cells[2 + 2 * i].image(figures.layer_map(choices.image, result, stage.last), width="stretch")
    cells[2 + 2 * i].caption(widgets.stage_label(result, stage).replace("\n", "  \n"))
st.caption(
    "Each square is one strongly active channel of the stage's last layer (bright = strongly active). "
    "“channels × height × width” is the stage's output shape: watch the height and width shrink while "
    "the channels grow. " + " ".join(f"Stage {s.index}: {widgets.level_badge(s.level)}" for s in stages)
)

last = stages[-1]
pool, arrow1, head, arrow2, top = st.columns([3, 0.5, 3, 0.5, 5], vertical_alignment="center")
arrow1.markdown("→")
arrow2.markdown("→")
with pool.container(border=True):
    maps = result.activations[last.last.name].shape[0]
    numbers = result.pooled.shape[0]
    if spec.head_splits:
        st.markdown(
            f"**global pool**  \nstage {last.index}'s {maps} maps, each averaged to one number: {numbers} numbers"
        )
    else:  # VGG: the maps are pooled to 7 x 7, flattened and mixed by two fully connected layers
        st.markdown(
            f"**pool + 2 layers**  \nstage {last.index}'s {maps} maps, pooled and mixed into {numbers} numbers"
        )
with head.container(border=True):
    st.markdown(
        f"**head**  \none score per class: {len(result.categories)} scores, turned into probabilities"
    )
with top.container(border=True):
    st.markdown("**top-5**")
    widgets.class_bars(result.predictions)

with st.container(horizontal=True):
    widgets.download_png(
        lambda: render.image_row(
            [
                crop,
                *(render.map_image(render.representative(result, s.last), size=crop.width) for s in stages),
            ],
            labels=[f"your picture\n3 × {crop.height} × {crop.width}"]
            + [widgets.stage_label(result, s) for s in stages],
        ),
        f"{choices.image.stem}-{spec.name}-stages.png",
        key="home.dl.stages",
        label="Stages (PNG)",
    )
    widgets.report_button(webui.full_analysis(choices), f"{choices.image.stem}-{spec.name}", key="home.dl.report")

st.subheader("Where to go next")
for page in pages.next_pages():
    st.page_link(page.file, label=page.next_line, icon=page.icon)

"""Compare backbones: one picture through 2 or 3 backbones, their stages lined up by stride."""

import streamlit as st

import backbone_viz as bv
import webui
from backbone_viz import render
from webui.shell.state import persistent
from webui.views import compare_rows, widgets

choices = webui.page_setup()

st.title("Compare backbones")
widgets.explain(
    "Here the same picture goes through two or three backbones. Each column holds the stages that shrink "
    "the picture by the same factor (the **stride**), so you compare like with like: VGG starts at full "
    "size, the others halve the picture at once. Notice that all of them go from small details to big "
    "shapes, even though their layers are built very differently."
)

specs = {spec.name: spec for spec in bv.list_backbones()}
# A row is a backbone with its own weights, so pretrained and untrained versions can stand side by side.
rows = compare_rows.options()
picked = st.multiselect(
    "Backbones to compare (up to 3; each with its own weights)",
    rows,
    format_func=compare_rows.title,
    max_selections=3,
    **persistent(compare_rows.KEY, compare_rows.default(choices)),
)
picked = [row for row in picked if row in rows][:3]
if not picked:
    st.warning("Pick at least one backbone above.")
    st.stop()
st.page_link(
    "app_pages/inside_block.py",
    label="Inside a block: how these backbones build their blocks differently",
    icon=":material/account_tree:",
)
st.caption(
    "Pick the same backbone twice, pretrained and untrained, to see what training changes. Big backbones "
    "take a few seconds the first time; after that they are remembered."
)

names = [compare_rows.backbone(row) for row in picked]
strides = sorted({stage.stride for n in names for stage in specs[n].stages})
crop_side = specs[names[0]].preprocessing.crop
ratios = [1.6] + [1.0] * len(strides) + [1.2]
header = st.columns(ratios)
header[0].markdown("**Backbone and its top-5**")
for cell, stride in zip(header[1:], strides, strict=False):
    cell.markdown(f"**stride {stride}**  \n{crop_side // stride} × {crop_side // stride} maps")
header[-1].markdown("**Grad-CAM, last stage**")

for picked_row in picked:
    name, weights = compare_rows.backbone(picked_row), compare_rows.weights(picked_row)
    spec = specs[name]
    st.divider()
    result = webui.analysis(
        name,
        weights,
        choices.image,
        key=f"compare.{name}",
        offer_bundled=not any(specs[n].bundled for n in names),
        use_untrained=lambda row=picked_row: compare_rows.make_untrained(row),
    )
    if result is None:
        continue
    crop = result.input_image
    by_stride = {stage.stride: stage for stage in spec.stages}
    row = st.columns(ratios, vertical_alignment="top")
    with row[0]:
        st.markdown(f"**{spec.title}**  \n{weights} · {spec.params_millions:.1f} M parameters")
        st.markdown(widgets.top5_lines(result))
    pictures, labels = [], []
    for cell, stride in zip(row[1:], strides, strict=False):
        stage = by_stride.get(stride)
        if stage is None:
            cell.caption("no stage at this stride")
            pictures.append(None)
            labels.append("")
            continue
        image = render.map_image(render.representative(result, stage.last), size=crop.width)
        cell.image(widgets.shown(image), width="stretch")
        cell.caption(
            # One line each, so that no "·" dangles when a narrow column wraps.
            f"stage {stage.index}  \n{stage.level}  \n{widgets.shape_text(result.activations[stage.last.name].shape)}"
        )
        pictures.append(image)
        labels.append(widgets.stage_label(result, stage))
    last = spec.stages[-1].last
    cam = render.overlay(crop, result.gradcam[last.name], alpha=0.55)
    with row[-1]:
        st.image(widgets.shown(cam, photo=True), width="stretch")
        st.caption(f"for its top class: {result.target.label}")
    with row[0]:
        widgets.download_png(
            lambda pictures=pictures, labels=labels, cam=cam, result=result: render.image_row(
                [*pictures, cam], labels=[*labels, f"Grad-CAM\n{result.target.label}"]
            ),
            f"{choices.image.stem}-{name}-{weights}-row.png",
            key=f"cmp.dl.{picked_row}",
            label="PNG",
        )

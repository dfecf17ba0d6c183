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
names = [compare_rows.backbone(row) for row in picked]
strides = sorted({stage.stride for n in names for stage in specs[n].stages})
crop_side = specs[names[0]].preprocessing.crop
# One column per stride and one for Grad-CAM; each backbone's name and top-5 go on a line above its maps,
# so that the maps get the width (at least ~150 px on a 1280 px projector).
ratios = [1.0] * (len(strides) + 1)
header = st.columns(ratios)
for cell, stride in zip(header, strides, strict=False):
    cell.markdown(f"**stride {stride}**  \n{crop_side // stride} × {crop_side // stride} maps")
header[-1].markdown("**Grad-CAM, last stage**")


def draw_row(picked_row: str, download_place: st.delta_generator.DeltaGenerator) -> None:
    """One backbone's row: its name and top-5, a map per stride, its Grad-CAM; its PNG in download_place."""
    name, weights = compare_rows.backbone(picked_row), compare_rows.weights(picked_row)
    spec = specs[name]
    result = webui.analysis(
        name,
        weights,
        choices.image,
        key=f"compare.{name}",
        offer_bundled=not any(specs[n].bundled for n in names),
        use_untrained=lambda row=picked_row: compare_rows.make_untrained(row),
    )
    if result is None:
        return
    crop = result.input_image
    by_stride = {stage.stride: stage for stage in spec.stages}
    st.markdown(
        f"**{spec.title}** · {weights} · {spec.params_millions:.1f} M parameters · "
        f"top-5: {widgets.top5_inline(result)}"
    )
    row = st.columns(ratios, vertical_alignment="top")
    pictures, labels = [], []
    for cell, stride in zip(row, strides, strict=False):
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
            f"stage {stage.index} · {stage.level}  \n{widgets.shape_text(result.activations[stage.last.name].shape)}"
        )
        pictures.append(image)
        labels.append(widgets.stage_label(result, stage))
    last = spec.stages[-1].last
    cam = render.overlay(crop, result.gradcam[last.name], alpha=0.55)
    with row[-1]:
        st.image(widgets.shown(cam, photo=True), width="stretch")
        st.caption(f"for its top class: {result.target.label}")
    with download_place:
        widgets.download_png(
            lambda: render.image_row([*pictures, cam], labels=[*labels, f"Grad-CAM\n{result.target.label}"]),
            f"{choices.image.stem}-{name}-{weights}-row.png",
            key=f"cmp.dl.{picked_row}",
            label=f"PNG: {spec.title}, {weights}",
        )


# The rows first, so that they fill the first screen; their downloads and the notes follow them.
rows_place = st.container()
st.divider()
downloads = st.container(horizontal=True)
for number, picked_row in enumerate(picked):
    with rows_place:
        if number:
            st.divider()
        draw_row(picked_row, downloads)
st.page_link(
    "app_pages/inside_block.py",
    label="Inside a block: how these backbones build their blocks differently",
    icon=":material/account_tree:",
)
st.caption(
    "Pick the same backbone twice, pretrained and untrained, to see what training changes. Big backbones "
    "take a few seconds the first time; after that they are remembered."
)

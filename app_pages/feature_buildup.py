"""Feature build-up: the layer explorer, from low-level edges to high-level objects."""

import streamlit as st
from PIL import Image

import backbone_viz as bv
import webui
from backbone_viz import render
from webui.compute import figures
from webui.shell import links
from webui.shell.state import persistent
from webui.views import featurevis_view, widgets

#: Session key of the (backbone, layer) the channel choice was made in.
CHANNEL_LAYER = "channel.layer"

choices = webui.page_setup()
spec = choices.spec

st.title("Feature build-up: from edges to objects")
widgets.explain(
    "Every layer of the backbone makes many maps of the picture, one per **channel**; each channel lights "
    "up where it finds its own pattern. Early layers react to edges and colours, middle layers to "
    "textures and parts, the last layers to whole objects. Move the slider from left to right and watch "
    "the maps get smaller but more meaningful, while each map pixel sees a bigger part of the picture."
)

result = webui.activations_or_stop(choices)
crop = result.input_image
stem = f"{choices.image.stem}-{spec.name}"

# ---------------------------------------------------------------------------- the strip, low -> high
st.subheader("One map per stage, low → mid → high")
stages = spec.stages


def strip_picture(stage: bv.StageSpec) -> Image.Image:
    return render.overlay(
        crop, render.representative(result, stage.last), alpha=0.65, cmap=render.ACTIVATION_CMAP
    )


for column, stage in zip(st.columns(len(stages)), stages, strict=True):
    with column:
        st.image(
            figures.figure(
                choices.image,
                result,
                ("strip", stage.index),
                lambda stage=stage: strip_picture(stage),
                photo=True,
            ),
            width="stretch",
        )
        st.markdown(f"**stage {stage.index}**  \n`{stage.last.label}`  \n{widgets.level_badge(stage.level)}")
        st.caption(widgets.shape_text(result.activations[stage.last.name].shape))
widgets.download_png(
    lambda: render.image_row(
        [strip_picture(s) for s in stages], labels=[widgets.stage_label(result, s) for s in stages]
    ),
    f"{stem}-strip.png",
    key="fb.dl.strip",
    label="Strip (PNG)",
)

# ------------------------------------------------------------------------------- one layer, in detail
st.subheader("Pick a layer")
names = [layer.name for layer in spec.layers]
layers = {layer.name: layer for layer in spec.layers}
name = st.select_slider(
    "Layer (left: early, low level · right: deep, high level)",
    names,
    format_func=lambda n: f"{layers[n].label} (stage {layers[n].stage})",
    **persistent(f"layer.{spec.name}", names[0], options=names),
)
layer = layers[name]
activation = result.activations[layer.name]
channels_total, height, width = activation.shape

facts = st.columns([1.6, 1, 1.2, 1.4])
facts[0].metric("Output shape", widgets.shape_text(activation.shape), help="channels × height × width")
facts[1].metric("Stride", f"{layer.stride} px", help="How many picture pixels one map pixel steps over")
facts[2].metric(
    "Receptive field",
    f"{layer.receptive_field} px",
    help="The side of the square of the picture that can change one map pixel",
)
facts[3].metric(
    "Level", f"{layer.level} · stage {layer.stage}", help=f"In the model's code this layer is `{layer.name}`."
)

controls = st.columns([2, 2, 3])
k_options = [k for k in (4, 8, 16, 32, 64) if k <= channels_total] or [channels_total]
k = controls[0].select_slider(
    "How many channels (the most active first)",
    k_options,
    **persistent("k", 16 if 16 in k_options else k_options[-1], options=k_options),
)
scale = controls[1].radio(
    "Colour scale",
    ["own", "shared"],
    format_func=lambda s: {"own": "each map its own", "shared": "one for the whole layer"}[s],
    help="Own: every map is stretched from dark to bright, so its pattern shows. Shared: all maps use "
    "the same scale, so you can compare how strongly they fire.",
    **persistent("scale", "own", options=["own", "shared"]),
)
channels = render.top_channels(activation, k)
chosen = activation[channels]
low, high = float(chosen.min()), float(chosen.max())
with controls[2]:
    if scale == "shared":
        st.markdown(
            f"**Shared scale:** dark = {low:.3g}, bright = {high:.3g} (raw values of these {len(channels)} maps)"
        )
    else:
        st.markdown(
            f"**Own scale:** each map runs from its own minimum (dark) to its own maximum (bright). "
            f"All {len(channels)} maps together range from {low:.3g} to {high:.3g}."
        )

tile_min, tile_max = (low, high) if scale == "shared" else (None, None)
# A shared scale depends on which channels are shown (k); an own scale on the channel alone.
tile_view = ("tile", layer.name, scale, k if scale == "shared" else None)
tiles = [
    figures.figure(
        choices.image,
        result,
        (*tile_view, int(c)),
        lambda c=c: render.map_image(activation[c], size=96, vmin=tile_min, vmax=tile_max),
    )
    for c in channels
]
means = activation.reshape(channels_total, -1).mean(axis=1)
st.image(tiles, caption=[f"#{int(c)}" for c in channels], width=96)
widgets.download_png(
    lambda: render.channel_grid(activation, channels, shared_scale=scale == "shared"),
    f"{stem}-{layer.label}-channels.png",
    key="fb.dl.grid",
    label="Channel grid (PNG)",
)

st.subheader("One channel, enlarged and laid over the picture")
pick = st.columns([2, 3])
channel_options = [int(c) for c in channels]
linked = links.linked_channel(layer.name)  # a link's channel, even outside the most active ones
if linked is not None and linked not in channel_options:
    channel_options.append(linked)
# A channel number means nothing in another layer: on a new layer, start from its most active channel,
# or from the channel a link asked for in this layer.
if st.session_state.get(CHANNEL_LAYER) != (spec.name, layer.name):
    st.session_state[CHANNEL_LAYER] = (spec.name, layer.name)
    st.session_state[links.CHANNEL] = linked if linked is not None else channel_options[0]
channel = pick[0].selectbox(
    "Channel",
    channel_options,
    format_func=lambda c: f"#{c} (rank {int((means > means[c]).sum()) + 1}, mean {means[c]:.3g})",
    **persistent(links.CHANNEL, channel_options[0], options=channel_options),
)
opacity = pick[1].slider("Opacity of the map", 0.0, 1.0, step=0.05, **persistent("opacity", 0.6))
one = activation[channel]
big_min, big_max = (low, high) if scale == "shared" else (float(one.min()), float(one.max()))
views = st.columns(3)
with views[0]:
    widgets.picture(
        render.map_image(one, size=crop.width, vmin=big_min, vmax=big_max),
        caption=f"channel #{channel} of {layer.label}: {height} × {width} values, from {float(one.min()):.3g} to {float(one.max()):.3g}",
        file_name=f"{stem}-{layer.label}-ch{channel}.png",
        key="fb.dl.channel",
    )
with views[1]:
    widgets.picture(
        render.overlay(crop, one, alpha=opacity, cmap=render.ACTIVATION_CMAP, vmin=big_min, vmax=big_max),
        photo=True,
        caption="the same map, stretched over the picture the model saw",
        file_name=f"{stem}-{layer.label}-ch{channel}-overlay.png",
        key="fb.dl.overlay",
    )
with views[2]:
    widgets.picture(
        render.receptive_field_box(crop, layer),
        photo=True,
        caption=f"red square: the {layer.receptive_field} × {layer.receptive_field} px a map pixel of "
        f"{layer.label} can see",
        file_name=f"{stem}-{layer.label}-receptive-field.png",
        key="fb.dl.rf",
    )
st.markdown(f":material/crop_free: {widgets.receptive_field_note(layer, crop.width)}")

featurevis_view.channel_card(choices, result, layer, channel)
featurevis_view.weights_pair(choices, layer, channel)

widgets.report_button(webui.full_analysis(choices), stem, key="fb.dl.report")

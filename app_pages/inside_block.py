"""Inside a block: how VGG, ResNet, GoogLeNet and EfficientNet build their blocks, and what a shortcut does."""

import streamlit as st

import backbone_viz as bv
import webui
from backbone_viz.core.block_kinds import get_kind
from webui.compute import block_cache
from webui.shell import projector
from webui.shell.state import persistent
from webui.views import block_view, widgets
from webui.views.block_diagram import draw_block, readable_width, style_for, thumb_channels

PROJECTOR_HEIGHT = 250  # px of the first screen left for the diagram, below the title, the slider and a banner
PROJECTOR_WIDTH = 1180  # px: the page's width on a 1280 px screen

choices = webui.page_setup()
spec = choices.spec

st.title("Inside a block: how backbones are built")
widgets.explain(
    "A backbone is a chain of **blocks**, and backbones differ in how a block is built. VGG stacks plain "
    "3×3 convolutions. ResNet adds a **shortcut** around each block, so a block's output is its input plus a "
    "correction: F(x) + x. GoogLeNet's **inception modules** run several filters side by side. "
    "EfficientNet's **inverted residual** blocks widen the channels, filter each channel alone and narrow "
    "them again. Pick a block and watch your picture flow through it; then knock parts out and see what breaks."
)

result = webui.analysis_or_stop(choices)

# ---------------------------------------------------------------------------------------- pick a block
blocks = {block.name: block for block in spec.blocks}
names = list(blocks)
# In projector mode the block's heading and the slider share one row, leaving the first screen's height to
# the diagram (an inception module is tall).
heading_place, slider_place = st.columns(2, vertical_alignment="bottom") if projector.on() else (st, st)
name = slider_place.select_slider(
    "Block (left: the first, low level · right: the last, high level)",
    names,
    format_func=lambda n: block_view.block_option(blocks[n]),
    label_visibility="collapsed" if projector.on() else "visible",
    **persistent(f"block.{spec.name}", block_view.default_block(spec), options=names),
)
block = blocks[name]
try:
    with st.spinner(f"Opening {block.label}…"):
        inside = block_cache.cached_inside_block(
            choices.backbone, choices.weights, choices.image.sha256, choices.image.data, block.name
        )
except bv.BackboneVizError as error:
    st.error(f"{error.message}\n\n{error.hint}")
    st.stop()

first, last = inside.parts[0], inside.parts[-1]
heading_place.subheader(f"{block.label}: {get_kind(block.kind).title}")

# The diagram comes right under its heading, so that it stays on a projector's first screen; its facts follow.
diagram = draw_block(block, inside)
if projector.on():
    # As tall as the rest of a 1280 × 720 first screen allows, but never so small that its text is under
    # 12 px, nor wider than the page or than drawn.
    fit = round(PROJECTOR_HEIGHT * diagram.width / diagram.height)
    readable = readable_width(diagram, style_for(block, maps=True))
    shown_width: int | str = min(diagram.width, PROJECTOR_WIDTH, max(fit, readable))
else:
    shown_width = "stretch"
st.image(widgets.shown(diagram), width=shown_width)
st.markdown(
    f"Stage {block.stage} of {spec.title} {widgets.level_badge(spec.layer(block.name).level)} · "
    f"{block_view.place_text(spec, block)} · {widgets.shape_text(first.shape)} in → "
    f"{widgets.shape_text(last.shape)} out"
)
st.caption(
    "Each box shows one strongly active channel of that part for your picture (bright = strongly active); "
    "the arrows carry the maps, with their channels and size. "
    + ("The green arrow is the shortcut. " if block.has_shortcut else "")
    + "The red box is the block's output, what the next block reads."
)
for sentence in block_view.notice(inside, spec):
    st.markdown(f":material/visibility: {sentence}")

with st.expander("What each box computes"):
    channels = thumb_channels(inside)
    st.markdown(
        "\n".join(
            f"- **{part.role}** · {part.label} · `{widgets.shape_text(part.shape)}`"
            + (f" · box shows channel #{channels[part.name]}" if part.name in channels else "")
            for part in inside.parts
        )
    )
widgets.download_png(
    lambda: diagram,
    f"{choices.image.stem}-{spec.name}-{block.label}-block.png",
    key="ib.dl.block",
    label="Diagram (PNG)",
)

# ------------------------------------------------------------------------------------------ knock-outs
st.subheader("Knock it out: what breaks?")
block_view.knockout_section(choices, result, block)

# ------------------------------------------------------------------------------------- block ablation
st.subheader("Remove each block in turn")
st.markdown(
    "Veit, Wilber and Belongie (2016) removed one block at a time from trained networks: a ResNet barely "
    "noticed the loss of any one residual block, while removing a layer of the plain VGG broke it. Try it "
    f"on {spec.title} with your picture: each removable block is taken out alone, and the head asks again "
    f"how likely **{result.predictions[0].label}** is."
)
block_view.ablation_section(choices, result)

# ----------------------------------------------------------------------------------- backbone families
st.subheader("Four families, four ideas")
st.caption(
    "Each card draws a typical block of its family. The blocks counted are the ones a backbone repeats; "
    "convolutions before them (the stem) or after them, where a backbone has some, are not counted. The "
    "number in a name like ResNet-50 or VGG-16 counts layers, not blocks."
)
block_view.family_cards(choices)
st.page_link(
    "app_pages/compare.py",
    label="Compare backbones: the same picture through 2 or 3 of them",
    icon=":material/compare:",
)

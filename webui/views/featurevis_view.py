"""Drawing feature visualizations: the "What does this channel look for?" card, pretrained beside
untrained, and the atlas's rows. Pictures come from :mod:`webui.compute.featurevis_cache`; what is not made yet
is made in this script run behind a button, with a progress bar (leaving the page stops it)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import streamlit as st

import backbone_viz as bv
from backbone_viz import render
from webui.compute import featurevis_cache as fc
from webui.compute import figures
from webui.shell import projector
from webui.shell.state import Choices, ImageChoice, samples
from webui.views import widgets

#: Session key of this learner's uploads searched for top patches (the latest :data:`MAX_UPLOADS`).
UPLOADS = "fv.uploads"
MAX_UPLOADS = 8
WEIGHT_WORDS = {"pretrained": "pretrained (learned from ImageNet)", "untrained": "untrained (random numbers)"}


@contextmanager
def progress_bar(text: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar while the block runs, and the ``progress(done, total)`` that moves it (about 50
    updates in all); the bar goes away when the block ends."""
    slot = st.empty()
    bar = slot.progress(0.0, text=text)
    last = [-1]

    def progress(done: int, total: int) -> None:
        step = 50 * done // total
        if step != last[0]:
            last[0] = step
            bar.progress(done / total, text=f"{text} step {done} of {total}")

    yield progress
    slot.empty()


def remember_upload(image: ImageChoice) -> tuple[ImageChoice, ...]:
    """This learner's latest uploads and camera photos, ``image`` included when it is one."""
    uploads: list[ImageChoice] = st.session_state.setdefault(UPLOADS, [])
    if image.kind != "sample" and all(u.sha256 != image.sha256 for u in uploads):
        uploads.append(image)
        del uploads[:-MAX_UPLOADS]
    return tuple(uploads)


def strength_text(visual: fc.Visual, best_photo: float) -> str:
    """The visualization's mean activation beside the best sample photo's, in words."""
    made = f"mean {visual.activation:.3g} on this picture"
    if best_photo > 0 and visual.activation > best_photo:
        return (
            f"{made}: {visual.activation / best_photo:.1f}× the most any sample photo gets ({best_photo:.3g})"
        )
    return f"{made}; the best sample photo gets {best_photo:.3g}"


def visual_or_button(choices: Choices, weights: str, layer: bv.LayerSpec, channel: int, *, key: str) -> None:
    """The channel's feature visualization under ``weights``, or a button that makes it."""
    name = choices.backbone
    try:
        visual = fc.visual(name, weights, layer.name, channel)
        slot = st.empty()
        if visual is None and slot.button("Make it", key=key, icon=":material/auto_awesome:"):
            with progress_bar("Optimizing the picture…") as progress:
                visual = fc.make_visual(name, weights, layer.name, channel, progress)
            slot.empty()
        best = float(fc.gallery_max(name, weights, layer.name)[channel])
    except bv.BackboneVizError as error:
        st.info(f"{error.message}\n\n{error.hint}")
        return
    if visual is None:
        st.caption(
            f"Not made yet for {weights} weights: starting from noise, the computer changes the picture "
            "step by step until this channel fires as hard as it can. On a CPU that takes from seconds to "
            "minutes: longer for deeper layers and bigger backbones."
        )
        return
    shown = figures.kept(
        ("visual", name, weights, layer.name, channel, type(visual).__name__), lambda: visual.image
    )
    st.image(shown, width="stretch")
    st.caption(strength_text(visual, best))


def patch_grid(choices: Choices, layer: bv.LayerSpec, channel: int, *, per_row: int = 3) -> None:
    """The channel's top patches among the sample photos and this learner's uploads, ``per_row`` to a
    row, each with its value and photo, then what a patch is."""
    uploads = remember_upload(choices.image)
    with st.spinner("Looking through the photos…"):
        patches = fc.top_patches(choices.backbone, choices.weights, layer.name, channel, uploads)
    if not patches:
        st.caption("This channel is at its lowest value everywhere in these photos: it does not fire.")
        return
    names = [s.name for s in samples()] + [u.stem for u in uploads]
    # Named by what chose them: the backbone, weights, layer, channel and the uploads looked through.
    view = ("patch", choices.backbone, choices.weights, layer.name, channel, tuple(u.sha256 for u in uploads))
    for start in range(0, len(patches), per_row):
        row = list(enumerate(patches))[start : start + per_row]
        for column, (i, p) in zip(st.columns(per_row), row, strict=False):
            with column:
                thumb = figures.kept((*view, i), lambda p=p: p.image.resize((96, 96)), photo=True)
                st.image(thumb, width="stretch")
                st.caption(f"{p.value:.3g} · {names[p.source]}")
    st.caption(patch_sentence(layer, patches[0].image.width))


def patch_sentence(layer: bv.LayerSpec, side: int) -> str:
    """What one patch of ``side`` px is, against what one map position of ``layer`` sees (its receptive
    field): the same square, or that square with its surroundings (a field under
    :data:`~backbone_viz.probes.patches.MIN_PATCH`), or the whole crop (a field larger than it)."""
    rf = layer.receptive_field
    under = " Under each: the channel's value there, and the photo."
    if rf < side:
        return (
            f"Each patch is centred on one map position of {layer.label}. That position sees only "
            f"{rf} × {rf} px of the photo, shown here with its surroundings ({side} × {side} px) so "
            "that it can be seen." + under
        )
    if rf > side:
        return (
            f"One map position of {layer.label} sees {rf} × {rf} px, more than the whole photo: each patch "
            f"is the whole {side} × {side} px crop, for its strongest position." + under
        )
    return (
        f"Each patch is the {rf} × {rf} px square of a photo that one map position of {layer.label} sees."
        + under
    )


def channel_card(choices: Choices, result: bv.Activations, layer: bv.LayerSpec, channel: int) -> None:
    """The card: the channel's feature visualization, its top patches, and its map on ``result``'s picture."""
    crop = result.input_image
    st.subheader(f"What does channel #{channel} of {layer.label} look for?")
    widgets.explain(
        "Left: a picture **made for this channel**. The computer started from noise and changed the pixels "
        "until the channel fired as hard as it could, so it shows what the channel looks for. Middle: the "
        "places among the sample photos (and your uploads) where it fires most. Right: where it fires on "
        "your picture."
    )
    columns = st.columns([1, 1.3, 1])
    with columns[0]:
        st.markdown(f"**Made for channel #{channel}**")
        visual_or_button(choices, choices.weights, layer, channel, key=f"fv.make.{choices.weights}")
    with columns[1]:
        st.markdown("**Where it fires most in real photos**")
        patch_grid(choices, layer, channel)
    with columns[2]:
        st.markdown("**Where it fires on your picture**")
        one = result.activations[layer.name][channel]
        st.image(
            figures.figure(
                choices.image,
                result,
                ("card overlay", layer.name, channel),
                lambda: render.overlay(crop, one, alpha=0.6, cmap=render.ACTIVATION_CMAP),
                photo=True,
            )
        )
        st.caption(
            f"values from {float(one.min()):.3g} to {float(one.max()):.3g}, mean {float(one.mean()):.3g}"
        )


def weights_pair(choices: Choices, layer: bv.LayerSpec, channel: int) -> None:
    """The channel's feature visualization with pretrained and with untrained weights, side by side."""
    st.subheader("The same channel, pretrained and untrained")
    widgets.explain(
        "Training is what gives a channel something to look for. With learned weights, the pictures of "
        "deeper layers show textures and parts of objects. With random weights, a channel's picture is "
        "a few blotches of colour, a blurry cloud or a fine regular ripple, whatever the depth: no fur, "
        "eyes or other parts of objects appear. Compare a layer of the last stage (move the layer slider "
        "to the right)."
    )
    for column, weights in zip(st.columns(2), ("pretrained", "untrained"), strict=True):
        with column:
            st.markdown(f"**{WEIGHT_WORDS[weights]}**")
            visual_or_button(choices, weights, layer, channel, key=f"fv.pair.{weights}")


#: What the pictures of a pretrained stage mostly show, by its level. A picture repeats the pattern its
#: channel likes all over itself, so even a low stage reads as a texture, and a high one as parts of
#: things jumbled together, never one whole object.
ROW_WORDS = {
    "low": "mostly colours and fine grain or stripes, repeated",
    "mid": "stripes, weaves and textures; in deeper stages parts such as eyes and fur",
    "high": "parts of things (fur, eyes, snouts…) jumbled together, not whole objects",
}
#: What pictures made with random weights show, at any stage.
UNTRAINED_WORDS = "colour blotches, clouds or fine ripples: nothing learned"


def per_row() -> int:
    """Pictures in an atlas row: six on a projector (~190 px each at 1280 px), eight beside the sidebar."""
    return 6 if projector.on() else 8


def atlas_key(atlas: bv.Atlas) -> str:
    """The sentence that says what a caption under an atlas picture means (one line on a projector)."""
    text = (
        "Under each picture: **#channel · how many times harder the picture makes it fire than its best "
        "sample photo** (below 1×: the photo wins). Click a number to enlarge."
    )
    if any(e.gallery_max <= 0 for entries in atlas.rows.values() for e in entries):
        text += " “No photo fires it”: not one sample photo makes that channel fire."
    return text


def row_words(level: str, weights: str) -> str:
    """What the pictures of a stage of this level show, with these weights."""
    return ROW_WORDS[level] if weights == "pretrained" else UNTRAINED_WORDS


def atlas_rows(atlas: bv.Atlas, spec: bv.BackboneSpec, choices: Choices) -> None:
    """One row per stage, low to high: its level and what its pictures show, then its strongest
    channels' pictures, each with a button that opens it large beside its top patches."""
    stages = {s.index: s for s in spec.stages}
    width = per_row()
    for index, entries in atlas.rows.items():
        stage = stages[index]
        rf = stage.last.receptive_field
        st.markdown(
            f"**stage {index}** · :{widgets.LEVEL_COLOURS[stage.level]}-badge[{stage.level}] "
            f"{row_words(stage.level, atlas.weights)} · `{stage.last.label}` sees {rf} × {rf} px"
        )
        for column, e in zip(st.columns(width), entries[:width], strict=False):
            with column:
                st.image(widgets.shown(e.image), width="stretch")
                if st.button(
                    atlas_caption(e),
                    key=f"atlas.large.{index}.{e.channel}",
                    icon=":material/zoom_in:",
                    type="tertiary",
                    help=f"Show channel #{e.channel} large, with the photo patches where it fires most",
                    wrap=True,  # a narrow column beside the sidebar: two lines rather than "#7 · 2…"
                ):
                    show_large(choices, e, stage.last)


def show_large(choices: Choices, entry: bv.AtlasEntry, layer: bv.LayerSpec) -> None:
    """A dialog: the channel's picture large, beside the places in real photos where it fires most."""

    def body() -> None:
        left, right = st.columns([1, 1.6])
        with left:
            st.markdown("**Made for this channel**")
            st.image(widgets.shown(entry.image), width="stretch")
            st.caption(f"{atlas_caption(entry)}: {ratio_words(entry)}")
        with right:
            st.markdown("**Where it fires most in the sample photos**")
            patch_grid(choices, layer, entry.channel)

    st.dialog(f"Channel #{entry.channel} of {layer.label}", width="large")(body)()


def ratio_words(entry: bv.AtlasEntry) -> str:
    """The caption's number in words: the picture's mean value against the best sample photo's."""
    made = f"the channel's mean is {entry.activation:.3g} on this picture"
    if entry.gallery_max > 0:
        return f"{made}, {entry.gallery_max:.3g} on its best sample photo"
    return f"{made}; no sample photo makes it fire (their best mean: {entry.gallery_max:.3g})"


def atlas_caption(entry: bv.AtlasEntry) -> str:
    """``#12 · 2.6×``: the picture's mean value over the best sample photo's; where no sample photo
    makes the channel fire (a best mean of 0 or below), no ratio can say how much harder."""
    if entry.gallery_max > 0:
        return f"#{entry.channel} · {entry.activation / entry.gallery_max:.1f}×"
    return f"#{entry.channel} · no photo fires it"

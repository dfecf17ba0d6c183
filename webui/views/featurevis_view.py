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
        uploads = remember_upload(choices.image)
        with st.spinner("Looking through the photos…"):
            patches = fc.top_patches(choices.backbone, choices.weights, layer.name, channel, uploads)
        names = [s.name for s in samples()] + [u.stem for u in uploads]
        if patches:
            # Named by what chose them: the backbone, weights, layer, channel and the uploads looked through.
            view = (
                "patch",
                choices.backbone,
                choices.weights,
                layer.name,
                channel,
                tuple(u.sha256 for u in uploads),
            )
            for start in range(0, len(patches), 3):
                for column, (i, p) in zip(
                    st.columns(3), list(enumerate(patches))[start : start + 3], strict=False
                ):
                    with column:
                        thumb = figures.kept((*view, i), lambda p=p: p.image.resize((96, 96)), photo=True)
                        st.image(thumb, width="stretch")
                        st.caption(f"{p.value:.3g} · {names[p.source]}")
            st.caption(
                f"Each patch is the {patches[0].image.width} px square of a photo that one map position of "
                f"{layer.label} sees, with the channel's value there."
            )
        else:
            st.caption("This channel is at its lowest value everywhere in these photos: it does not fire.")
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
        "deeper layers show textures and parts of objects. With random weights, a channel's picture is a "
        "random texture at every depth: nothing grows from edges to objects. Compare a layer of the last "
        "stage (move the layer slider to the right)."
    )
    for column, weights in zip(st.columns(2), ("pretrained", "untrained"), strict=True):
        with column:
            st.markdown(f"**{WEIGHT_WORDS[weights]}**")
            visual_or_button(choices, weights, layer, channel, key=f"fv.pair.{weights}")


def atlas_rows(atlas: bv.Atlas, spec: bv.BackboneSpec) -> None:
    """One row per stage, low to high: the stage's last layer, its level, its pictures side by side."""
    stages = {s.index: s for s in spec.stages}
    width = max(len(entries) for entries in atlas.rows.values())
    for index, entries in atlas.rows.items():
        stage = stages[index]
        st.markdown(
            f"**stage {index}** · `{stage.last.label}` · {widgets.level_badge(stage.level)} · "
            f"receptive field {stage.last.receptive_field} px"
        )
        for column, e in zip(st.columns(width), entries, strict=False):
            with column:
                st.image(widgets.shown(e.image), width="stretch")
                st.caption(atlas_caption(e))


def atlas_caption(entry: bv.AtlasEntry) -> str:
    """``#12 · 2.6×`` (the picture's mean activation over the best sample photo's), or its mean."""
    if entry.gallery_max > 0 and entry.activation > entry.gallery_max:
        return f"#{entry.channel} · {entry.activation / entry.gallery_max:.1f}×"
    return f"#{entry.channel} · mean {entry.activation:.3g}"

"""The "Build a head" page's second dense head, where is it? A box from Grad-CAM at each stage, drawn on
the picture, for any class the learner chooses."""

from __future__ import annotations

import streamlit as st
from PIL import Image, ImageDraw

import backbone_viz as bv
import webui
from webui.shell.links import BOX_CLASS
from webui.shell.state import Choices, persistent
from webui.views import widgets

#: Session key: the picture whose class :data:`BOX_CLASS` was chosen for.
_BOXED_PICTURE = "build.boxed_picture"
#: The box's colours: a light line inside a dark one, visible on a light and on a dark picture.
LIGHT, DARK = (255, 214, 0), (0, 0, 0)


def boxed(picture: Image.Image, box: bv.CamBox | None) -> Image.Image:
    """A copy of the crop with ``box`` drawn on it (inclusive crop pixels), or the crop alone for None."""
    drawn = picture.convert("RGB")  # a copy: the shared crop is never drawn on
    if box is not None:
        draw = ImageDraw.Draw(drawn)
        x0, y0, x1, y1 = box.box
        draw.rectangle((x0, y0, x1, y1), outline=DARK, width=5)
        draw.rectangle((x0 + 1, y0 + 1, x1 - 1, y1 - 1), outline=LIGHT, width=3)
    return drawn


def box_caption(stage: bv.StageSpec, box: bv.CamBox | None) -> str:
    """One stage's box in words: its size, and how many separate bright regions there were."""
    head = f"**stage {stage.index}** · `{stage.last.label}`"
    if box is None:
        return f"{head}  \nGrad-CAM is zero everywhere here: nothing to box."
    regions = "one bright region" if box.regions == 1 else f"the largest of {box.regions} bright regions"
    return f"{head}  \n{box.width} × {box.height} px ({box.box_share:.0%} of the picture), around {regions}"


def why_it_works(weights: str, label: str) -> str:
    """Why a classifier never shown a box can still point at the object (honest for untrained weights)."""
    common = (
        "The head was only ever told which class a whole picture shows, never where. But its last stage is "
        "still a map: each cell holds the features of one place of the picture, and the head adds up what "
        "every cell says. Grad-CAM reads back which cells raised the score, and the box surrounds the "
        "largest place where it is bright (above 20 % of its peak, as Zhou et al. 2016 did)."
    )
    if weights == "pretrained":
        return f"{common} So the box falls where the evidence for *{label}* is, with no detector trained."
    return (
        f"{common} With untrained weights no channel has learned any object, so the box follows no learned "
        f"object: it surrounds whatever happens to raise the random score of *{label}*."
    )


def show(choices: Choices, base: bv.AnalysisResult) -> None:
    """Draws the section under its title: the class to box (the head's top-5 first, then every class by
    name), and its box at every stage."""
    spec = choices.spec
    categories = base.categories
    top = [p.index for p in base.predictions]
    indices = top + sorted(set(range(len(categories))) - set(top), key=lambda i: categories[i].lower())
    ranked = {p.index: p.probability for p in base.predictions}
    # A class chosen for another picture is not this picture's question: a new picture starts at its top-1
    # (a link's class, read before any picture was seen here, is kept).
    state = st.session_state
    if state.get(_BOXED_PICTURE, choices.image.sha256) != choices.image.sha256:
        state[BOX_CLASS] = top[0]
    state[_BOXED_PICTURE] = choices.image.sha256
    chosen = st.selectbox(
        "Box the class (the head's top-5 first; type to search every class)",
        indices,
        format_func=lambda i: (
            f"{categories[i]} ({ranked[i]:.1%})" if i in ranked else f"{categories[i]} (#{i})"
        ),
        **persistent(BOX_CLASS, top[0], options=indices),
    )
    chosen = top[0] if chosen is None else int(chosen)
    result = base if chosen == base.target.index else webui.analysis_or_stop(choices, chosen)
    boxes = bv.boxes_by_stage(result)
    cells = st.columns(len(spec.stages))
    for cell, stage in zip(cells, spec.stages, strict=True):
        box = boxes.get(stage.index)
        cell.image(widgets.shown(boxed(result.input_image, box), photo=True), width="stretch")
        cell.markdown(box_caption(stage, box))
    if chosen not in ranked:
        st.caption(
            f"The head gives *{result.target.label}* {result.target.probability:.2%}: a class it does not see "
            "here is boxed around whatever raises its score most, which may be nothing like it."
        )
    st.markdown(why_it_works(choices.weights, result.target.label))

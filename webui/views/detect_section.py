"""The "Build a head" page's third dense head, a detector from a few boxes: the learner boxes one kind of
thing on their picture, the app pastes it onto the other sample photos to make a training set, a small
head trains with a progress bar, and finds the thing on a picture it never saw."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st
from PIL import Image, ImageDraw, ImageFont

import backbone_viz as bv
import webui
from backbone_viz.render import overlay
from webui.compute import detect_cache
from webui.shell import projector
from webui.shell.state import Choices, samples
from webui.views import paint, widgets
from webui.views.cam_boxes import DARK, LIGHT

#: The true box on the held-out picture: thin and white, beside the found boxes' yellow.
TRUTH = (255, 255, 255)
#: Training pictures shown in one row.
SHOWN_EXAMPLES = 7


def show(choices: Choices, base: bv.AnalysisResult) -> None:
    """Draws the section under its title, for the chosen picture (``base`` is its analysis)."""
    spec = choices.spec
    crop = base.input_image
    st.markdown(
        "Drag a box around one kind of thing on your picture, and around **every** one you see: what you "
        "leave unboxed is learned as *not the thing*. The app pastes what you boxed onto the other sample "
        "photos, at other places and sizes, and a small head learns from those pictures where such a "
        "thing is and how big, reading one stage of the frozen backbone."
    )
    st.space("small")  # the canvas's toolbar floats above its top edge: keep it off the text
    left, middle, right = st.columns([1, 1, 1] if projector.on() else [5, 5, 4])
    with right:
        thing = st.text_input("The thing you box", value="thing", key="build.thing").strip() or "thing"
    with left:
        drawn = paint.box_canvas(
            crop, label=thing, key=f"build.boxes.{spec.name}.{choices.image.sha256[:12]}"
        )
    boxes = detect_cache.boxes_key(paint.boxes_from_canvas(drawn, crop.width))
    if not boxes:
        middle.image(widgets.shown(crop, photo=True), width=paint.CANVAS_PX)
        middle.caption("Drag a box on the picture: the detector trains as soon as you let go.")
        return
    try:
        with middle:
            trained = webui.detector(choices, boxes)
    except bv.DetectError as error:
        middle.info(f"{error.message}\n\n{error.hint}", icon=":material/crop_free:")
        return

    held = detect_cache.held_out(choices.image)
    captions = {sample.name: sample.caption for sample in samples()}
    places = [detect_cache.NEW, detect_cache.YOURS] + [
        name for name in captions if not (choices.image.kind == "sample" and name == choices.image.name)
    ]
    seen = set(detect_cache.backgrounds(choices.image)[0])

    def place_name(where: str) -> str:
        if where == detect_cache.NEW:
            return f"a new picture: your {thing} pasted onto {captions[held]}"
        if where == detect_cache.YOURS:
            return "your picture"
        return f"{captions[where]}{' (a background it trained on)' if where in seen else ''}"

    with right:
        where = st.selectbox("Look for it on", places, format_func=place_name, key="build.find_on")
        where = where if where in places else detect_cache.NEW
        threshold = st.slider(
            "Least score a box needs",
            min_value=0.05,
            max_value=0.95,
            value=0.3,
            step=0.05,
            key="build.threshold",
        )
    found = webui.detections(choices, boxes, trained, where, threshold)
    truth = (
        detect_cache.new_picture(choices.backbone, choices.weights, choices.image, boxes)[1]
        if where == detect_cache.NEW
        else None
    )
    with middle:
        st.image(
            widgets.shown(drawn_boxes(found.input_image, found.boxes, found.scores, truth), photo=True),
            width=paint.CANVAS_PX,
        )
        st.caption(found_sentence(found, thing, truth))

    st.markdown(
        f"**Trained in {trained.fit_ms / 1000:.1f} s** on {trained.pictures} pictures and their mirror images "
        f"({trained.boxes} boxes). {trained.why}"
    )
    heat, examples_cell = st.columns([1, 3])
    heat.image(
        widgets.shown(overlay(found.input_image, found.heatmap, alpha=0.6, vmin=0.0, vmax=1.0), photo=True),
        width="stretch",
    )
    heat.caption(
        f"The head's centre score (dark 0, bright 1) at each of the {found.heatmap.shape[1]} × {found.heatmap.shape[0]} cells "
        f"of stage {found.stage}: a box is drawn at each peak above {threshold:.2f}."
    )
    with examples_cell:
        made = detect_cache.example_crops(choices.backbone, choices.weights, choices.image, boxes)
        st.markdown(
            f"**What it learned from**: your picture, then your {thing} pasted onto {len(made) - 1} photos"
        )
        cells = st.columns(min(len(made), SHOWN_EXAMPLES))
        for cell, (picture, drawn_on) in zip(cells, made, strict=False):
            cell.image(widgets.shown(drawn_boxes(picture, drawn_on), photo=True), width="stretch")
    if choices.weights == "untrained":
        st.caption(
            "Untrained weights: the stage's channels are random filters, so the head can only learn the "
            "colours and textures of the very patch you boxed, pasted unchanged into every training picture. "
            "Whether it finds that patch on a new picture depends on whether random filters happen to tell it "
            "apart from the background (the found boxes above show whether they did); nothing here could find "
            "another thing of its kind. Measured on the cat's eye with each of 6 photos held out in turn: "
            "pretrained EfficientNet-Lite0 found it on all 6 (overlap 0.68 to 0.91), untrained on 1 of 6."
        )


def found_sentence(found: bv.Detections, thing: str, truth: tuple[int, int, int, int] | None) -> str:
    """What was found, with the scores, and on the held-out picture how well the best box fits the truth."""
    if not found.boxes:
        text = "No box: no cell's score reaches the threshold. Lower it to see the detector's best guesses."
    else:
        scores = ", ".join(f"{score:.2f}" for score in found.scores)
        if len(found.boxes) == 1:
            text = f"**Found one box** of *{thing}*, score {scores}."
        else:
            text = f"**Found {len(found.boxes)} boxes** of *{thing}*, scores {scores}."
    if truth is not None:
        if found.boxes:
            text += f" The white box is where it really is: the best box overlaps it by IoU {bv.box_iou(found.boxes[0], truth):.2f} (1 is perfect, above 0.5 counts as found)."
        else:
            text += " The white box is where it really is."
    return text


def drawn_boxes(
    picture: Image.Image,
    boxes: Sequence[tuple[int, int, int, int]],
    scores: Sequence[float] | None = None,
    truth: tuple[int, int, int, int] | None = None,
) -> Image.Image:
    """A copy of the crop with ``boxes`` drawn (light in dark, as the Grad-CAM boxes), each with its score,
    and ``truth`` as a thin white box."""
    drawn = picture.convert("RGB")
    draw = ImageDraw.Draw(drawn)
    if truth is not None:
        draw.rectangle(truth, outline=TRUTH, width=2)
    font = ImageFont.load_default(size=16)
    for n, (x0, y0, x1, y1) in enumerate(boxes):
        draw.rectangle((x0, y0, x1, y1), outline=DARK, width=4)
        draw.rectangle((x0 + 1, y0 + 1, x1 - 1, y1 - 1), outline=LIGHT, width=2)
        if scores is not None:
            text = f"{scores[n]:.2f}"
            left, top, right, bottom = draw.textbbox((x0 + 3, y0 + 3), text, font=font)
            draw.rectangle((left - 2, top - 2, right + 2, bottom + 2), fill=DARK)
            draw.text((x0 + 3, y0 + 3), text, fill=LIGHT, font=font)
    return drawn

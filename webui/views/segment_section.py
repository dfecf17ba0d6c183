"""The "Build a head" page's first dense head, paint to segment: the canvas, the mask beside it, which
stages a segmenter needs, and the same segmenter on another picture."""

from __future__ import annotations

import streamlit as st

import backbone_viz as bv
import webui
from webui.shell import projector
from webui.shell.state import Choices, sample_choice, samples
from webui.views import paint, widgets


def show(choices: Choices, base: bv.AnalysisResult) -> None:
    """Draws the section under its title, for the chosen picture (``base`` is its analysis)."""
    spec = choices.spec
    crop = base.input_image
    size = crop.width
    count = int(st.session_state.get("build.count", 2))
    names = [st.session_state.get(f"build.name.{i}", paint.DEFAULT_NAMES[i]) for i in range(count)]
    colours = [rgb for _name, rgb in paint.COLOURS[:count]]
    marks = [f":{colour}[■]" for colour, _rgb in paint.COLOURS[:count]]

    brush = st.radio(
        "Paint with",
        list(range(count)),
        format_func=lambda i: f"{marks[i]} {names[i]}",
        horizontal=True,
        key="build.paint_with",
    )
    brush = brush if brush is not None and brush < count else 0
    st.space("small")  # the canvas's toolbar floats above its top edge: keep it off the labels
    left, middle, right = st.columns([1, 1, 1] if projector.on() else [5, 5, 4])
    with left:
        rgba = paint.canvas(
            crop, colour=colours[brush], key=f"build.canvas.{spec.name}.{choices.image.sha256[:12]}"
        )
    strokes = paint.strokes_from_canvas(rgba, colours, size)
    segmentation: bv.Segmentation | None = None
    with middle:
        place = st.empty()
        if paint.painted_labels(strokes) == 0:
            place.image(widgets.shown(crop, photo=True), width=paint.CANVAS_PX)
            st.caption("Paint a stroke of each label on the picture: its mask appears here.")
        else:
            try:
                segmentation = webui.segmentation(choices, strokes, names)
            except bv.SegmentError as error:
                place.image(widgets.shown(crop, photo=True), width=paint.CANVAS_PX)
                st.info(f"{error.message}\n\n{error.hint}", icon=":material/brush:")
            else:
                mask = paint.mask_over(segmentation.input_image, segmentation.mask, colours)
                place.image(widgets.shown(mask, photo=True), width=paint.CANVAS_PX)
                shares = ", ".join(
                    f"{marks[k]} {name} {float((segmentation.mask == k).mean()):.0%}"
                    for k, name in enumerate(segmentation.labels)
                )
                st.caption(f"**The mask**, from every stage: {shares} of the picture")
    with right:
        st.number_input(
            "How many labels", min_value=2, max_value=paint.MAX_LABELS, value=2, key="build.count"
        )
        for i in range(count):
            st.text_input(f"{marks[i]} label {i + 1}", value=paint.DEFAULT_NAMES[i], key=f"build.name.{i}")
    if segmentation is None:
        return

    st.subheader("Which stages does a segmenter need?")
    st.markdown(
        "The same strokes, with a segmenter that reads one stage only, and one that reads them all. "
        "There is no true mask here, so nothing says which is right: look where their edges go."
    )
    choices_of_stages = paint.stage_choices(spec)
    cells = st.columns(len(choices_of_stages))
    for n, (cell, option) in enumerate(zip(cells, choices_of_stages, strict=True)):
        with cell:
            try:
                partial = (
                    segmentation
                    if option.stages is None
                    else webui.segmentation(choices, strokes, names, levels=option.stages)
                )
            except bv.SegmentError as error:  # the same strokes fitted once already: not expected
                st.info(f"{error.message}\n\n{error.hint}")
                continue
            st.image(
                widgets.shown(paint.mask_over(partial.input_image, partial.mask, colours), photo=True),
                width="stretch",
            )
            st.markdown(f"**{option.title}**")
            st.caption(
                paint.stage_sentence(
                    option, partial, segmentation, size, first=n == 0, last=n == len(choices_of_stages) - 2
                )
            )
    if choices.weights == "untrained":
        st.caption(
            "Untrained weights: the segmenter still separates colours and textures, because random filters "
            "still pass them through; what it lacks is features that know objects."
        )

    st.subheader("The same segmenter on another picture")
    others = [sample for sample in samples() if sample.name != choices.image.name]
    other_name = st.selectbox(
        "Another picture",
        [sample.name for sample in others],
        format_func=lambda n: next(s.caption for s in others if s.name == n),
        key="build.other",
    )
    other = sample_choice(other_name or others[0].name)
    moved = webui.applied_segmentation(choices, strokes, names, other)
    shown_other, note = st.columns([1, 2])
    shown_other.image(
        widgets.shown(paint.mask_over(moved.input_image, moved.mask, colours), photo=True), width="stretch"
    )
    shares = ", ".join(
        f"{marks[k]} {name} {float((moved.mask == k).mean()):.0%}" for k, name in enumerate(moved.labels)
    )
    note.markdown(
        f"Your head, unchanged, on {other.caption}: {shares} of the picture. It was fitted on a few pixels "
        "of one picture, so it learned what tells your labels apart **there**, including what the "
        "background of that picture looks like. On a picture with another background it often paints "
        "the wrong places: it never learned what the new background is not."
    )

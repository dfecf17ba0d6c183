"""The heads page, tab 2, a new head on the same backbone: the classes to train on, the training, the
trained head and a new picture through it (state and callbacks in :mod:`webui.compute.heads_state`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

import streamlit as st
from PIL import Image, ImageOps
from streamlit.runtime.uploaded_file_manager import UploadedFile

import backbone_viz as bv
from backbone_viz import render
from backbone_viz.files.images import EXTENSIONS
from backbone_viz.heads.transfer import RANDOM_CROPS
from webui import analysis
from webui.compute import heads_state
from webui.shell.state import Choices, ImageChoice, persistent, set_backbone
from webui.views import widgets
from webui.views.widgets import Metric

CLASS_COUNTS = [2, 3, 4, 5]
COPIES = RANDOM_CROPS + 1  # altered copies fit_head makes of each photo: its mirror image + random crops

#: One class's photos as the page collects them: its label and the photos (example set) or uploads.
ClassPhotos = tuple[str, Sequence[Image.Image] | Sequence[UploadedFile]]


@st.cache_resource(max_entries=1, show_spinner=False)
def _example_thumbnails(side: int = 120) -> Mapping[str, tuple[bytes, ...]]:
    """Square JPEG thumbnails of the example set's photos, per class (made once per process)."""
    return MappingProxyType(
        {
            label: tuple(
                widgets.shown(ImageOps.fit(photo, (side, side), Image.Resampling.LANCZOS), photo=True)
                for photo in photos
            )
            for label, photos in heads_state.example_set().items()
        }
    )


def example_classes() -> list[ClassPhotos]:
    """Shows the example set (and a button back to the learner's own photos); returns its classes."""
    st.markdown("**The example set**, made from the sample pictures:")
    thumbnails = _example_thumbnails()
    classes: list[ClassPhotos] = []
    for column, (label, photos) in zip(
        st.columns(len(thumbnails)), heads_state.example_set().items(), strict=True
    ):
        with column.container(border=True):
            st.markdown(f"**{label}** · {len(photos)} photos")
            st.image(
                list(thumbnails[label]), caption=[f"{label} {i + 1}" for i in range(len(photos))], width=72
            )
        classes.append((label, list(photos)))
    st.caption(
        "Only a few sample pictures ship with backbone-viz, so “cat” and “coffee” are three crops of one "
        "photo each: easy to recognise again. “person” is the real test: the astronaut and Grace Hopper "
        "are two different people."
    )
    st.button("Use my own photos instead", on_click=heads_state.use_source, args=("own",), key="heads.own")
    return classes


def own_classes() -> list[ClassPhotos]:
    """A name and an uploader per class (and a button to the example set); returns the filled-in ones."""
    left, right = st.columns([3, 2], vertical_alignment="bottom")
    count = left.radio(
        "How many classes?",
        CLASS_COUNTS,
        horizontal=True,
        **persistent("heads.classes", CLASS_COUNTS[0], options=CLASS_COUNTS),
    )
    right.button(
        "Use the example set",
        on_click=heads_state.use_source,
        args=("example",),
        key="heads.example",
        icon=":material/photo_library:",
        help="Cat, coffee and person photos made from the sample pictures: no uploads needed.",
    )
    st.caption(
        "Give each class a name and at least 2 photos (3 to 10 is better). Leave a box empty to skip it."
    )
    classes: list[ClassPhotos] = []
    boxes = st.columns(min(count, 3))
    for i in range(count):
        with boxes[i % len(boxes)].container(border=True):
            name = st.text_input(
                f"Class {i + 1}", placeholder="a short name, e.g. dog", **persistent(f"heads.label.{i}", "")
            )
            files = st.file_uploader(
                f"Photos of class {i + 1}",
                type=list(EXTENSIONS),
                accept_multiple_files=True,
                key=f"heads.files.{i}",
                label_visibility="collapsed",
            )
            if name.strip() or files:
                classes.append((name, list(files or [])))
    return classes


def train(choices: Choices, classes: Sequence[ClassPhotos], *, from_examples: bool) -> None:
    """Fits the learner's head on ``classes`` and keeps it; what goes wrong is shown with ``st.error``."""
    examples: dict[str, list[Image.Image]] = {}
    names: dict[tuple[str, int], str] = {}
    seen: set[str] = set()
    unreadable = False
    for label, items in classes:
        if from_examples:
            photos = [(f"{label} {i + 1}", photo) for i, photo in enumerate(items)]
            seen |= {heads_state.fingerprint(photo) for _, photo in photos}
        else:
            photos, problems, fingerprints = heads_state.read_photos(items)
            seen |= fingerprints
            for name, error in problems:
                st.error(f"**{name} could not be used.** {error.message}\n\n{error.hint}")
                unreadable = True
        key = label
        while key in examples:  # two boxes with one name: fit_head strips the spaces and names the repeat
            key += " "
        examples[key] = [photo for _, photo in photos]
        names.update({(label.strip(), i): name for i, (name, _) in enumerate(photos)})
    if unreadable:
        st.error("Remove the files that could not be used (✕ next to their names), then train again.")
        return
    count = sum(len(photos) for photos in examples.values())
    try:
        with st.spinner(f"Training a new head on {count} photos with {choices.spec.title}…"):
            head = heads_state.train_head(choices.backbone, choices.weights, examples)
    except bv.HeadError as error:
        st.error(f"{error.message}\n\n{error.hint}")
        return
    heads_state.keep_head(head, names, frozenset(seen))


def head_for_another_backbone(choices: Choices, head: bv.LinearHead) -> None:
    """Says that the head reads another backbone's numbers; offers to train again or to switch back."""
    made_for, title = bv.get_spec(head.backbone).title, choices.spec.title
    st.warning(
        f"**Your head belongs to another backbone.** It was trained on {made_for} ({head.weights} "
        f"weights), but the sidebar now shows {title} ({choices.weights}). A head only understands "
        "the numbers of the backbone it was trained on: train it again on this one, or switch back."
    )
    again, back = st.columns(2)
    again.button(
        f"Train again on {title}", on_click=heads_state.ask_retrain, key="heads.retrain", type="primary"
    )
    back.button(
        f"Switch back to {made_for}",
        on_click=set_backbone,
        args=(head.backbone, head.weights),
        key="heads.back",
    )


def trained_head(choices: Choices, head: bv.LinearHead) -> None:
    """The trained head: its honest test (each photo left out in turn) and what was trained."""
    n_photos = sum(head.n_images)
    right = sum(p.correct for p in head.loo_predictions)
    k, d = head.weight.shape
    st.subheader(f"Your {head.name}")
    widgets.metrics(
        [
            Metric(
                "Leave-one-out accuracy",
                f"{head.loo_accuracy:.0%}",
                "For each photo, a head was trained WITHOUT it (and without its altered copies) and asked "
                "what it shows: an honest test on photos the head had not seen.",
            ),
            Metric("Photos right", f"{right} of {n_photos}"),
            Metric(
                "Fit time",
                f"{head.fit_seconds:.1f} s",
                "Altering the photos, running them through the backbone, and fitting the head once per "
                "left-out photo plus once with all of them.",
            ),
            Metric("Numbers learned", f"{k * d + k:,}", f"{k} × {d} weights + {k} biases"),
        ],
        per_row=4,
    )
    st.markdown(
        f"**Only the head was trained.** The backbone's {choices.spec.params_millions:.1f} million weights did "
        f"not change. Each photo and {COPIES} altered copies of it (mirrored, cropped, recoloured) "
        f"went once through the frozen backbone to become {d} numbers; that is where most of the fit time "
        f"goes. The head then learned {k} × {d} weights + {k} biases from those lists of numbers, a small "
        "problem solved in a blink. Training the backbone itself took over a million ImageNet photos and "
        "days of computing."
    )
    names = heads_state.photo_names()
    with st.expander(
        f"Each photo, left out in turn ({right} of {n_photos} right)", expanded=right < n_photos
    ):
        st.dataframe(
            [
                {
                    "photo": names.get((p.label, p.index), f"{p.label} {p.index + 1}"),
                    "class": p.label,
                    "a head trained without it says": p.predicted,
                    "how sure": f"{p.probability:.0%}",
                    "right?": "✓" if p.correct else "✗",
                }
                for p in head.loo_predictions
            ],
            hide_index=True,
        )


def _test_picture(
    choices: Choices, result: bv.AnalysisResult, head: bv.LinearHead
) -> tuple[ImageChoice, bv.AnalysisResult] | None:
    """Asks which picture to show the new head: by default a sample picture it was not trained on.

    Returns:
        The picture and the ImageNet head's analysis of it, or ``None`` while there is none to show.
    """
    held_out = heads_state.samples_not_trained_on()
    options = {
        "sidebar": f"the sidebar's picture ({choices.image.caption})",
        "upload": "a picture I upload here",
    }
    if held_out:
        options = {"held_out": "a picture it was not trained on", **options}
    which = widgets.choice("Picture for the new head", options, key="heads.test_picture", horizontal=True)
    if which == "sidebar":
        return choices.image, result
    if which == "held_out":
        by_name = {picture.name: picture for picture in held_out}
        names = list(by_name)
        default = choices.image.name if choices.image.name in by_name else names[0]
        name = st.selectbox(
            "A sample picture it was not trained on",
            names,
            format_func=lambda n: by_name[n].caption,
            **persistent("heads.held_out", default, options=names),
        )
        image = by_name[name]
        st.caption(
            f"The {len(names)} sample pictures that were not among its training photos. For a fair test on "
            f"a class it knows ({', '.join(head.categories)}), upload a new photo of one."
        )
    else:
        file = st.file_uploader("Picture for the new head", type=list(EXTENSIONS), key="heads.test_upload")
        if file is None:
            st.caption("Upload a picture to see what the new head calls it.")
            return None
        image = ImageChoice.from_bytes("upload", file.name, f"your picture {file.name}", file.getvalue())
    if image.sha256 == choices.image.sha256:
        return image, result
    imagenet = analysis(choices.backbone, choices.weights, image, key="heads.test")
    return None if imagenet is None else (image, imagenet)


def head_on_a_new_picture(choices: Choices, result: bv.AnalysisResult, head: bv.LinearHead) -> None:
    """A picture (by default one it was not trained on) through the new head beside the ImageNet head's
    answer, and where the new head's Grad-CAM lies when the picture's parts are known."""
    st.subheader("The new head looks at a picture")
    picked = _test_picture(choices, result, head)
    if picked is None:
        return
    image, imagenet = picked
    if heads_state.trained_on(image):
        st.warning(
            f"**Not a fair test: the new head was trained on this picture** ({image.caption}). Recognising "
            "a photo it has already seen proves little: pick “a picture it was not trained on”.",
            icon=":material/warning:",
        )
    else:
        st.markdown(f"**{image.caption}: a picture it was not trained on.**")
    try:
        view = heads_state.head_view(choices.backbone, choices.weights, image, head)
    except bv.BackboneVizError as error:
        st.error(f"{error.message}\n\n{error.hint}")
        return
    last_stage = choices.spec.stages[-1]
    layer = last_stage.last
    new_cam = render.overlay(view.input_image, view.gradcam, alpha=0.55)
    old_cam = render.overlay(imagenet.input_image, imagenet.gradcam[layer.name], alpha=0.55)
    cells = st.columns([1.4, 1, 1, 1])
    with cells[0]:
        st.markdown("**The new head says**")
        widgets.class_bars(view.predictions, view.target)
        top = imagenet.predictions[0]
        st.caption(f"The ImageNet head says: **{top.label}** ({top.probability:.0%})")
    cells[1].image(
        widgets.shown(view.input_image, photo=True), caption="the crop the backbone saw", width="stretch"
    )
    cells[2].image(
        widgets.shown(new_cam, photo=True),
        caption=f"new head: Grad-CAM for “{view.target.label}”",
        width="stretch",
    )
    cells[3].image(
        widgets.shown(old_cam, photo=True),
        caption=f"ImageNet head: Grad-CAM for “{imagenet.target.label}”",
        width="stretch",
    )
    on_part = heads_state.where_cam_lies(view, image, choices.spec.preprocessing)
    if on_part is not None:
        cam_on_part_note(on_part, view.target.label)
    shape = widgets.shape_text(imagenet.activations[layer.name].shape)
    st.caption(
        f"Both Grad-CAMs come from the same {shape} maps of `{layer.label}` (stage {last_stage.index}): the "
        "same backbone features, read by two different heads."
    )
    widgets.download_png(
        lambda: render.image_row(
            [view.input_image, new_cam, old_cam],
            labels=[
                "the crop",
                f"new head\n{view.target.label} {view.target.probability:.0%}",
                f"ImageNet head\n{imagenet.target.label} {imagenet.target.probability:.0%}",
            ],
        ),
        f"{image.stem}-{choices.backbone}-new-head.png",
        key="heads.dl.newhead",
        label="Both heads (PNG)",
    )
    st.info(
        f"**A head can only choose among its own classes.** This one knows only {', '.join(head.categories)}: "
        "show it a picture of something else, a rocket or a flower, and it still answers one of those, often "
        "very sure. It has never learned to say “none of these”.",
        icon=":material/priority_high:",
    )


def cam_on_part_note(on_part: heads_state.CamOnPart, label: str) -> None:
    """Says whether the new head's Grad-CAM lies on the part that shows ``label``, or mostly elsewhere."""
    inside = f"{on_part.share:.0%} of it lies in a box drawn around {on_part.part}, which covers {on_part.area:.0%} of the crop"
    if on_part.share >= heads_state.MOSTLY:
        st.caption(f"The new head's Grad-CAM for “{label}” lies mostly on {on_part.part}: {inside}.")
        return
    brightest = (
        f" Its brightest place is on {on_part.brightest}."
        if on_part.brightest not in (None, on_part.part)
        else ""
    )
    st.info(
        f"**The new head's Grad-CAM for “{label}” is mostly not on {on_part.part}:** only {inside}."
        f"{brightest} A head trained on a few photos can learn any cue that came with them (a suit, a "
        f"uniform, a background) rather than the {label} itself.",
        icon=":material/visibility:",
    )

"""The Real detectors page's parts: picking a model built on the backbone, its weights (here, to download,
or missing), what it finds drawn on the picture, and its backbone beside the classifier's."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import streamlit as st
from PIL import Image, ImageDraw

import backbone_viz as bv
import webui
from backbone_viz import render
from backbone_viz.dense.models import PALETTE
from backbone_viz.files import weights as weights_mod
from backbone_viz.files.sizes import describe_size
from webui.compute import dense_cache
from webui.shell import projector
from webui.shell.state import WEIGHTS, Choices, persistent, set_backbone, set_choice
from webui.shell.weights_ui import download_with_progress, weights_status
from webui.views import widgets

#: The width, in px, the picture with its findings is drawn at.
DRAWN_WIDTH = 640
NOT_CLASSES = ("__background__", "N/A")


def colour(index: int) -> tuple[int, int, int]:
    """The colour of class ``index``."""
    return PALETTE[index % len(PALETTE)]


def class_count(spec: bv.DenseSpec) -> int:
    """The real classes of its head: COCO's 80 or VOC's 20 (background and unused entries left out)."""
    return sum(c not in NOT_CLASSES for c in spec.categories)


def share_text(share: float) -> str:
    """A share of the picture in whole percent, never rounded to 0 % or 100 % when it is neither."""
    if 0.0 < share < 0.005:
        return "under 1%"
    if 0.995 <= share < 1.0:
        return "over 99%"
    return f"{share:.0%}"


def what_it_shows(spec: bv.DenseSpec) -> str:
    """What the model shows with trained weights, in a phrase."""
    n = class_count(spec)
    if spec.kind == "detector":
        return f"a box around each object it finds, named from {spec.label_set}'s {n} classes, with its score"
    if spec.kind == "instance segmenter":
        return (
            f"a box and the outline (mask) of each object it finds, named from {spec.label_set}'s {n} "
            "classes, with its score"
        )
    return f"a class for every pixel, from {spec.label_set}'s {n} classes and background, with a legend"


# ------------------------------------------------------------------------------------------ picking


def no_models(choices: Choices) -> None:
    """For a backbone no listed detector or segmenter is built on: which backbones have which, a button to
    switch to each, and the heads a learner builds on this one."""
    by_backbone: dict[str, list[bv.DenseSpec]] = {}
    for spec in bv.list_dense():
        by_backbone.setdefault(spec.backbone, []).append(spec)
    st.info(
        f"**No ready-made detector or segmenter is built on {choices.spec.title}.** These backbones have "
        "some; switch to one to see them:",
        icon=":material/info:",
    )
    for backbone, specs in by_backbone.items():
        title = bv.get_spec(backbone).title
        left, right = st.columns([1, 3], vertical_alignment="center")
        left.button(
            f"Use {title}",
            key=f"dense.switch.{backbone}",
            on_click=set_backbone,
            args=(backbone, choices.weights),
        )
        right.markdown(", ".join(f"**{s.title}** ({s.kind})" for s in specs))
    st.page_link(
        "app_pages/build_head.py",
        label=f"Build a head: your own segmenter and detector on {choices.spec.title}, trained here on your picture",
        icon=":material/brush:",
    )


def pick_model(choices: Choices, specs: Sequence[bv.DenseSpec]) -> bv.DenseSpec:
    """A choice among the models built on the backbone, kept per backbone."""
    names = [s.name for s in specs]
    by_name = {s.name: s for s in specs}
    left, right = st.columns([1, 2], vertical_alignment="bottom")
    name = left.selectbox(
        f"A model built on {choices.spec.title}",
        names,
        format_func=lambda n: f"{by_name[n].title} ({by_name[n].kind})",
        **persistent(f"dense.model.{choices.backbone}", names[0], options=names),
    )
    spec = by_name[name]
    if choices.weights == "untrained" and projector.on():  # in place of its summary: the maps need the room
        right.caption(untrained_line(spec))
    else:
        right.caption(f"**{spec.full_title}** ({spec.paper}): {spec.summary}")
    return spec


# ------------------------------------------------------------------------------------------ weights


def _download(spec: bv.DenseSpec) -> bool:
    """Downloads the trained weights with a progress bar; on failure explains and returns False."""
    try:
        download_with_progress(spec.weights_file, spec.weights_file.filename)
    except bv.WeightsError as error:
        st.error(
            f"**The download did not work.** {error.message}\n\n{error.hint}", icon=":material/cloud_off:"
        )
        return False
    return True


def _how_to_get(spec: bv.DenseSpec) -> None:
    wf = spec.weights_file
    with st.expander("For the teacher: how to get these weights onto this computer"):
        st.markdown(
            f"The file is **{wf.filename}** ({describe_size(wf.size_bytes)}), checked by its SHA-256 once "
            "here. On a computer with the internet:\n\n"
            f"- `python -m backbone_viz weights fetch {spec.name}` downloads it into the torch cache;\n"
            "- or set `BACKBONE_VIZ_WEIGHTS_MIRROR` to a school server or a shared folder that holds it;\n"
            "- or copy it onto a USB stick and run `python -m backbone_viz weights import /path/to/stick` "
            "on each computer.\n\n"
            f"It comes from {wf.url}."
        )


def weights_ready(choices: Choices, spec: bv.DenseSpec) -> bool:
    """Whether the model can be shown with the sidebar's weights; if not, says what it would show, which
    file it needs and how big, and offers the download, the untrained layout and the learner's own heads.
    With untrained weights, says where the trained file stands."""
    wf = spec.weights_file
    size = describe_size(wf.size_bytes)
    here = dense_cache.weights_here(spec)
    if choices.weights == "untrained":
        if projector.on():  # the first screen belongs to the maps; the teacher's details are off it
            return True
        where = "are on this computer" if here else "are not on this computer"
        st.caption(
            f"Trained, {spec.title} would show {what_it_shows(spec)}. Its trained weights, {wf.filename} "
            f"({size}), {where}."
        )
        if not here:
            _how_to_get(spec)
        return True
    if here:
        return True
    st.warning(
        f"**{spec.full_title} needs its trained weights, {wf.filename} ({size}); they are not on this "
        f"computer.** With them it shows {what_it_shows(spec)}.",
        icon=":material/cloud_off:",
    )
    left, right = st.columns(2)
    download = left.button(
        f"Download them ({size})",
        key=f"dense.download.{spec.name}",
        type="primary",
        icon=":material/download:",
    )
    right.button(
        f"Use an untrained {spec.title}: its layout only",
        key=f"dense.untrained.{spec.name}",
        on_click=lambda: set_choice(WEIGHTS, "untrained"),
        help="The same layers with random weights: its backbone's stages and what its neck reads, no findings.",
    )
    st.page_link(
        "app_pages/build_head.py",
        label=f"Or build your own heads on {choices.spec.title}: no download needed",
        icon=":material/brush:",
    )
    _how_to_get(spec)
    return download and _download(spec)


def model_or_stop(choices: Choices, spec: bv.DenseSpec) -> bv.DenseModel:
    """The loaded model; on failure the page explains and stops."""
    try:
        return webui.dense_model(choices, spec)
    except bv.WeightsError as error:
        if choices.weights != "pretrained":
            st.error(f"{error.message}\n\n{error.hint}")
            st.stop()
        wf = spec.weights_file
        folder = weights_mod.cache_dir()
        st.error(
            f"**The file {wf.filename} on this computer cannot be used:** it is damaged or it is not "
            f"{spec.full_title}'s trained weights. {error.message}\n\n"
            f"Delete it from {folder}, then download it again (`python -m backbone_viz weights fetch "
            f"{spec.name}`) or copy the right file there.",
            icon=":material/broken_image:",
        )
        st.button(
            f"Use an untrained {spec.title}: its layout only",
            key=f"dense.untrained_after_error.{spec.name}",
            on_click=lambda: set_choice(WEIGHTS, "untrained"),
        )
        st.stop()
        raise  # st.stop() raises; this line only tells type checkers so
    except bv.BackboneVizError as error:
        st.error(f"{error.message}\n\n{error.hint}")
        st.stop()
        raise


# ------------------------------------------------------------------------------------------ findings


def _work_picture(image: Image.Image) -> tuple[Image.Image, float]:
    scale = min(1.0, DRAWN_WIDTH / image.width)
    if scale == 1.0:
        return image.convert("RGB"), 1.0
    size = (DRAWN_WIDTH, max(1, round(image.height * scale)))
    return image.convert("RGB").resize(size, Image.Resampling.BILINEAR), scale


def drawn(image: Image.Image, result: bv.DenseResult, threshold: float) -> Image.Image:
    """The picture (at most :data:`DRAWN_WIDTH` px wide) with the objects scoring at least ``threshold``:
    masks tinted, boxes with their class and score; or the class map tinted (background left as it is)."""
    picture, scale = _work_picture(image)
    base = np.asarray(picture, dtype=np.float32).copy()
    size = picture.size
    if result.class_map is not None:
        small = np.asarray(Image.fromarray(result.class_map).resize(size, Image.Resampling.NEAREST))
        tint = np.array([colour(i) for i in range(len(result.categories))], np.float32)
        shown = small > 0
        base[shown] = 0.45 * base[shown] + 0.55 * tint[small[shown]]
    keep = [i for i, s in enumerate(result.scores) if s >= threshold]
    if result.masks is not None:
        for i in keep:
            mask = np.asarray(Image.fromarray(result.masks[i]).resize(size, Image.Resampling.NEAREST))
            base[mask] = 0.5 * base[mask] + 0.5 * np.array(colour(int(result.label_ids[i])), np.float32)
    out = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    draw_boxes(
        out,
        [tuple(float(v) * scale for v in result.boxes[i]) for i in keep],
        [f"{result.labels[i]} {result.scores[i]:.0%}" for i in keep],
        [colour(int(result.label_ids[i])) for i in keep],
    )
    return out


def draw_boxes(
    image: Image.Image,
    boxes: Sequence[Sequence[float]],
    texts: Sequence[str],
    colours: Sequence[tuple[int, int, int]],
) -> None:
    """Draws each box (``x0, y0, x1, y1`` in ``image``'s pixels) on ``image`` in place, its text on a tab of
    its colour above it (inside it at the top edge)."""
    draw = ImageDraw.Draw(image)
    font = render.font(16, bold=True)
    for (x0, y0, x1, y1), text, tint in zip(boxes, texts, colours, strict=True):
        draw.rectangle([x0, y0, x1, y1], outline=tint, width=3)
        left, top, right, bottom = draw.textbbox((x0, y0), text, font=font)
        ty = y0 - (bottom - top) - 4 if y0 - (bottom - top) - 4 >= 0 else y0
        # A box at the right edge gets its tab moved left, so that its text is not cut off.
        tx = max(0.0, min(x0, image.width - (right - left) - 6))
        draw.rectangle([tx, ty, tx + (right - left) + 6, ty + (bottom - top) + 4], fill=tint)
        ink = (0, 0, 0) if 0.299 * tint[0] + 0.587 * tint[1] + 0.114 * tint[2] > 110 else (255, 255, 255)
        draw.text((tx + 3 - (left - x0), ty + 1 - (top - y0)), text, fill=ink, font=font)


#: The tallest the drawn picture is shown, in px, so that it fits the first screen of a projector.
SHOWN_HEIGHT = 380


def shown_width(picture: Image.Image) -> int:
    """The width a picture is shown at: at most :data:`DRAWN_WIDTH`, at most :data:`SHOWN_HEIGHT` tall."""
    return max(200, min(DRAWN_WIDTH, round(SHOWN_HEIGHT * picture.width / picture.height)))


def findings(choices: Choices, spec: bv.DenseSpec, picture: Image.Image) -> float | None:
    """What the trained model finds on the picture: the drawn picture beside the list or legend.

    Returns:
        The score an object needs to be shown (the learner's slider), or None for a semantic segmenter.
    """
    result = webui.dense_findings(choices, spec)
    left, right = st.columns([3, 2])
    threshold: float | None = None
    if spec.kind == "semantic segmenter":
        left.image(widgets.shown(drawn(picture, result, 1.0), photo=True), width=shown_width(picture))
        right.markdown(f"**Each pixel's class** ({spec.label_set}'s {class_count(spec)} and background)")
        right.markdown(
            "\n".join(
                f"- <span style='color:rgb{colour(i)}'>■</span> **{name}**: {share_text(share)} of the picture"
                for i, name, share in result.legend
            ),
            unsafe_allow_html=True,
        )
    else:
        threshold = right.slider(
            "Keep objects scoring at least",
            min_value=dense_cache.SCORE_FLOOR,
            max_value=0.95,
            step=0.05,
            **persistent("dense.threshold", 0.5),
        )
        kept = [i for i, s in enumerate(result.scores) if s >= threshold]
        left.image(widgets.shown(drawn(picture, result, threshold), photo=True), width=shown_width(picture))
        if kept:
            by_label: dict[str, list[float]] = {}
            for i in kept:  # best first, so each label's first score is its best
                by_label.setdefault(result.labels[i], []).append(float(result.scores[i]))
            right.markdown(
                f"**{len(kept)} {'object' if len(kept) == 1 else 'objects'}** scoring {threshold:.0%} or more:\n"
                + "\n".join(
                    f"- **{label}**"
                    + (f" × {len(scores)}, best {scores[0]:.0%}" if len(scores) > 1 else f" {scores[0]:.0%}")
                    for label, scores in list(by_label.items())[:8]
                )
                + (f"\n- and {len(by_label) - 8} more classes" if len(by_label) > 8 else "")
            )
        else:
            right.markdown(
                f"**Nothing scores {threshold:.0%} or more.** Move the slider down to see less sure guesses."
            )
    st.caption(
        f"{spec.title} read the picture at {result.input_size[1]} × {result.input_size[0]} px; "
        f"{result.ms / 1000:.1f} s on this server."
    )
    return threshold


def untrained_line(spec: bv.DenseSpec) -> str:
    """Why an untrained model's output is not shown, in one line."""
    output = "classes" if spec.kind == "semantic segmenter" else "boxes and classes"
    return (
        f":material/casino: **An untrained {spec.title} finds nothing:** its {output} would be noise, so none "
        "are shown. Below: its layout."
    )


def untrained_note(spec: bv.DenseSpec) -> None:
    """Why an untrained model's output is not shown."""
    if projector.on():  # said in one line beside the model's name (pick_model): the maps need the room
        return
    output = "classes" if spec.kind == "semantic segmenter" else "boxes and classes"
    st.warning(
        f"**An untrained {spec.title} finds nothing.** Its weights are random numbers, so any {output} it puts "
        "out are noise, not findings: none are shown. What is real is its layout: the backbone's stages below, "
        "and which of them its neck reads.",
        icon=":material/casino:",
    )


def stages_text(indices: Sequence[int]) -> str:
    """``[1, 2]`` -> ``"stages 1 and 2"``; ``[1]`` -> ``"stage 1"``."""
    if len(indices) == 1:
        return f"stage {indices[0]}"
    return "stages " + ", ".join(str(i) for i in indices[:-1]) + f" and {indices[-1]}"


# ------------------------------------------------------------------------------------------ the backbone inside


def stage_maps(choices: Choices, spec: bv.DenseSpec) -> dense_cache.StageMaps:
    """The model's own backbone maps on the chosen picture (shared; the place in the queue shown)."""
    return webui.dense_inside(choices, spec)


#: The tallest a stage map is shown, in px: a row of five fits the first screen of a projector.
MAP_HEIGHT = 150


def _map_width(mean: np.ndarray) -> int:
    """The width a stage map is shown at: its column's (about 230 px on a projector) unless that would
    make it taller than :data:`MAP_HEIGHT` (SSD's square maps)."""
    h, w = mean.shape
    return max(100, min(240, round(MAP_HEIGHT * w / h)))


def _map_picture(mean: np.ndarray, width: int) -> Image.Image:
    h, w = mean.shape
    image = Image.fromarray(render.colorize(mean))
    return image.resize((width, max(1, round(width * h / w))), Image.Resampling.NEAREST)


def backbone_inside(
    choices: Choices, spec: bv.DenseSpec, dense: bv.DenseModel, maps: dense_cache.StageMaps
) -> None:
    """The model's own stage maps above the classifier's, stage by stage, with the stages training kept and
    those the neck reads marked."""
    backbone = bv.get_spec(spec.backbone)
    classifier = None
    if choices.weights == "untrained" or weights_status(backbone) != "download needed":
        classifier = webui.activations(choices.backbone, choices.weights, choices.image, key="dense.load")
    kept = {s.index for s in bv.frozen_stages(spec)}
    cells = st.columns(len(backbone.stages))
    for cell, stage, own in zip(cells, backbone.stages, maps.stages, strict=True):
        # Two short marks on one line in every column, so that the maps line up and fit the first screen.
        neck = ":green-badge[neck reads]" if own.layer in spec.neck_inputs else ":gray-badge[neck skips]"
        frozen = ":blue-badge[kept]" if stage.index in kept else ":orange-badge[retrained]"
        cell.markdown(f"**stage {stage.index}** · `{stage.last.label}`  \n{neck} {frozen}")
        cell.image(widgets.shown(_map_picture(own.mean, 240)), width=_map_width(own.mean))
        cell.caption(f"{spec.title}: {widgets.shape_text(own.shape)}")
        if classifier is not None:
            mine = classifier.activations[stage.last.name]
            cell.image(widgets.shown(_map_picture(mine.mean(axis=0), 240)), width=_map_width(mine[0]))
            cell.caption(f"classifier: {widgets.shape_text(mine.shape)}")
    crop = backbone.preprocessing.crop
    h, w = maps.input_size
    seen = (
        f"Top row: {spec.title}'s backbone, which reads the whole picture as an input of {w} × {h} px. "
        f"Bottom row: the {choices.weights} {backbone.title} classifier, which reads a {crop} × {crop} crop. "
        if classifier is not None
        else f"{spec.title}'s backbone reads the whole picture as an input of {w} × {h} px. The {backbone.title} "
        "classifier's pretrained weights are not on this computer, so its row is not shown. "
    )
    st.caption(
        seen + "Each map is the average of the stage's channels at each place (bright: a strong response)."
    )
    kept_text = (
        "torchvision's recipe froze "
        + stages_text(sorted(kept))
        + " during detection training, so they keep the ImageNet weights it started from; the later stages "
        "were trained (the comparison below measures it)."
        if kept
        else "Training changed every stage of its backbone."
    )
    st.markdown(
        f"**What the neck reads:** {spec.neck}. {kept_text} "
        + (
            "Its batch norms were frozen too, so their statistics are ImageNet's."
            if spec.frozen_batch_norm
            else ""
        )
    )
    if spec.dilated:
        st.caption(
            f"{' and '.join(spec.dilated)} run dilated here: they keep stride 8 where the classifier's "
            "halve the map, so their maps are finer than the classifier's."
        )
    st.page_link(
        "app_pages/heads.py",
        label="Backbone → heads: the maps of several strides that a detector's neck reads, on this backbone",
        icon=":material/call_split:",
    )


def comparison_section(
    choices: Choices, spec: bv.DenseSpec, dense: bv.DenseModel, maps: dense_cache.StageMaps
) -> None:
    """How much training changed each stage: linear CKA over the sample pictures, on request, with the
    untrained baseline and the classifier weights compared said first."""
    backbone = bv.get_spec(spec.backbone)
    if not dense.trained:
        st.markdown(
            f"Untrained, {spec.title}'s backbone holds the same random weights as the untrained "
            f"{backbone.title} classifier: they would match perfectly, which shows nothing. With the trained "
            "weights, this section measures how much detection training changed each stage."
        )
        return
    start = spec.start_file
    which = dense_cache.comparison_classifier(spec)
    if which == "start":
        against = (
            f"It compares with {backbone.title} holding {spec.start_enum} ({start.filename}), the ImageNet "
            f"weights {spec.title}'s backbone started from."
        )
    elif which == "classifier":
        against = (
            f"The weights {spec.title}'s backbone started from, {spec.start_enum} ({start.filename}, "
            f"{describe_size(start.size_bytes)}), are not on this computer, so it compares with this app's "
            f"own pretrained {backbone.title} ({backbone.weights_file.filename}), which {spec.title} did NOT "
            "start from: every difference then includes the two classifiers' own difference."
        )
    else:
        against = (
            f"It needs the weights {spec.title}'s backbone started from, {spec.start_enum} "
            f"({start.filename}, {describe_size(start.size_bytes)}); they are not on this computer and "
            "are downloaded first."
        )
    ready = dense_cache.comparison(spec.name, choices.weights)
    n = dense_cache.sample_count()
    if ready is None:
        st.markdown(
            f"Linear CKA measures how alike two stages' features are over many places (1: the same up to "
            f"rotation and scale). {against} Measuring runs three backbones ({spec.title}'s, the "
            f"classifier's and an untrained one as the baseline) on the {n} sample pictures, {3 * n} passes "
            "in all: expect tens of seconds on a server without a graphics card."
        )
        if not st.button("Measure how much each stage changed", key=f"dense.compare.{spec.name}"):
            return
        try:
            ready = webui.dense_comparison(choices, spec)
        except bv.WeightsError as error:
            st.error(f"{error.message}\n\n{error.hint}", icon=":material/cloud_off:")
            return
    rows = "\n".join(
        f"| {s.stage} · `{s.label}` | {s.stride} | {s.cka:.2f} | {s.baseline_cka:.2f} | "
        f"{'0 (kept)' if s.max_weight_change == 0.0 else f'{s.max_weight_change:.3g}'} | "
        f"{'yes' if s.frozen else 'no'} |"
        for s in ready.stages
    )
    st.markdown(
        f"{ready.note}; pooled over {ready.pictures} pictures.\n\n"
        "| stage | stride | CKA with the classifier | CKA with an untrained one | largest weight change "
        "| kept by training |\n|---|---|---|---|---|---|\n" + rows
    )
    low = min(ready.stages, key=lambda s: s.cka)
    st.caption(
        f"The stage least like the classifier's is stage {low.stage} (CKA {low.cka:.2f}, against "
        f"{low.baseline_cka:.2f} for the untrained baseline). A CKA well above its baseline means the features "
        "survived detection training."
    )

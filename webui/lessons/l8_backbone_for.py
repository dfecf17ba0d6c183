"""Lesson 8, what is a backbone for: a segmenter learns from a few painted strokes on the frozen stages, and
each choice of stages is scored against a true mask.

The picture is made so that its true mask is known: the cat's fur, cut by a random blob, pasted onto the
temple by the lake (:func:`backbone_viz.composite`). It is made at the backbone's resize side, so the crop
the backbone sees is its centre square, unresampled, and the true mask is cut the same way. The strokes
are scripted from the true mask as a learner would paint them (:func:`strokes`): a stroke inside the cat,
one in the background, then dabs spread over each; no fit chooses them.

Which choice of stages wins is not the same everywhere. IoU of the cat's mask with these strokes (stage 1
alone / the middle stage alone / the last alone / all stages): EfficientNet-Lite0 pretrained 0.76 / 0.75
/ 0.80 / 0.88; untrained: Lite0 0.72 / 0.56 / 0.68 / 0.80, ResNet-18 0.76 / 0.66 / 0.74 / 0.81, ResNet-50
0.80 / 0.60 / 0.65 / 0.82, ResNet-101 0.73 / 0.69 / 0.64 / 0.80, VGG-16 0.77 / 0.70 / 0.72 / 0.80, VGG-19
0.78 / 0.75 / 0.73 / 0.81, GoogLeNet 0.76 / 0.73 / 0.00 / 0.77 (its untrained last stage is nearly zero
everywhere). With the fur on the astronaut or on the coffee cup, stage 1 alone or the last stage alone won
on some of them, and the other backbones' pretrained weights cannot be measured offline. So the question
asks what the last stage alone cannot do, true by construction (its grid), and the reveal says what won.
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from functools import cache

import numpy as np
import streamlit as st
from PIL import Image
from scipy import ndimage

import backbone_viz as bv
import webui
from webui.lessons.base import Lesson, picture_columns, view
from webui.lessons.progress import Explore, Question
from webui.shell.state import Choices, ImageChoice, sample_choice
from webui.views import paint, widgets

#: The sample whose fur is pasted, the sample it is pasted onto, and the blob's seed.
THING, BACKGROUND, SEED = "cat", "china", 1
LABELS = ("cat", "background")
#: The first stroke of each label: its length and its width, in crop pixels.
STROKE_LENGTH, STROKE_WIDTH = 40, 3
#: The dabs after the first strokes: radius, how many in the cat and in the background, and how far from
#: the region's edge their centres stay (a learner dabs where a region clearly is, not on its border).
DAB_RADIUS = 4
DABS = (6, 12)
MARGIN = 6
#: Where the true outline is drawn on each mask.
OUTLINE = (255, 255, 255)


@dataclass(frozen=True, eq=False)
class Example:
    """The made picture and what is known about it.

    Attributes:
        image: the composite's PNG, ``resize`` × ``resize`` px: the backbone's crop is its centre square.
        truth: (crop, crop) bool, read-only: the true mask of the cat in the crop's coordinates.
        strokes: (crop, crop) int64, read-only: ``-1`` unpainted, ``0`` cat, ``1`` background.
    """

    image: ImageChoice
    truth: np.ndarray
    strokes: np.ndarray


@cache
def example(resize: int, crop: int) -> Example:
    """The picture a backbone with this preprocessing is shown (the same for every session)."""
    made = bv.composite(_sample(THING), _sample(BACKGROUND), resize, seed=SEED)
    data = io.BytesIO()
    made.image.save(data, format="PNG")
    caption = f"The cat's fur on {_lower(sample_choice(BACKGROUND).caption)}"
    # The offset torchvision's centre crop takes.
    top = int(round((resize - crop) / 2.0))
    truth = np.array(made.mask[top : top + crop, top : top + crop])
    truth.flags.writeable = False
    painted = strokes(truth)
    painted.flags.writeable = False
    return Example(ImageChoice.from_bytes("sample", "cat_fur.png", caption, data.getvalue()), truth, painted)


def _sample(name: str) -> Image.Image:
    return Image.open(io.BytesIO(sample_choice(name).data))


def _lower(caption: str) -> str:
    """``"A Chinese temple"`` -> ``"a Chinese temple"``."""
    return caption[:1].lower() + caption[1:]


def strokes(truth: np.ndarray) -> np.ndarray:
    """What a learner paints on a picture whose true mask is ``truth``: for the cat (label 0), then the
    background (label 1), a stroke of ``STROKE_LENGTH`` × ``STROKE_WIDTH`` px through the region's deepest
    point (clipped to stay off its edge), and ``DABS`` discs spread over the region (each as far as it can
    be from the others), all inside the region.

    Args:
        truth: (H, W) bool, True on the cat.

    Returns:
        (H, W) int64: ``-1`` unpainted, else the label's index.
    """
    truth = np.asarray(truth, dtype=bool)
    painted = np.full(truth.shape, -1, dtype=np.int64)
    rows, cols = np.ogrid[: truth.shape[0], : truth.shape[1]]
    for label, (region, count) in enumerate(zip((truth, ~truth), DABS, strict=True)):
        # Padded, so the picture's frame counts as an edge: a learner paints inside the picture.
        depth = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
        y, x = np.unravel_index(int(np.argmax(depth)), region.shape)
        stroke = (np.abs(rows - y) <= STROKE_WIDTH // 2) & (np.abs(cols - x) <= STROKE_LENGTH // 2)
        # Kept off the region's edge, as a learner keeps a first stroke clearly inside.
        painted[stroke & (depth > STROKE_WIDTH)] = label
        for dy, dx in _spread(depth, count, (int(y), int(x))):
            painted[((rows - dy) ** 2 + (cols - dx) ** 2 <= DAB_RADIUS**2) & region] = label
    return painted


def _spread(depth: np.ndarray, count: int, start: tuple[int, int]) -> list[tuple[int, int]]:
    """``count`` points at least ``MARGIN`` deep in a region, each the farthest from ``start`` and the
    points before it (farthest-point sampling; the first of equals on a tie, so always the same)."""
    ys, xs = np.nonzero(depth >= min(MARGIN, depth.max()))
    nearest = np.full(ys.shape, np.inf)
    points, (y, x) = [], start
    for _ in range(count):
        nearest = np.minimum(nearest, (ys - y) ** 2 + (xs - x) ** 2)
        i = int(np.argmax(nearest))
        y, x = int(ys[i]), int(xs[i])
        points.append((y, x))
    return points


def _cell(stride: int) -> str:
    return "one cell per pixel" if stride == 1 else f"one cell per {stride} × {stride} px"


def _q8(spec: bv.BackboneSpec) -> Question:
    last = spec.stages[-1]
    side = spec.preprocessing.crop // last.stride
    return Question(
        "A segmenter learns from a few painted strokes which features mean cat, then labels every pixel. "
        f"Reading only {spec.title}'s last stage (a {side} × {side} map, where a trained backbone recognises "
        "objects), what limits its mask?",
        (
            "Nothing: the stage that recognises objects gives a perfect mask",
            f"Its size: a {side} × {side} map gives a mask of only {side} × {side} pixels",
            f"Its outline: it cannot follow anything smaller than one of its cells ({last.stride} × "
            f"{last.stride} px)",
            "Its labels: the last stage can tell only two labels apart",
        ),
        2,
        f"The segmenter labels each cell of the {side} × {side} map, and the mask is that grid smoothed up "
        f"to the {spec.preprocessing.crop} × {spec.preprocessing.crop} px picture: a bay or a tip smaller than "
        f"a cell is lost. The first stage's finer map ({_cell(spec.stages[0].stride)}) can put the edges "
        "back, which is why a segmenter usually reads several stages.",
    )


def sentence(
    spec: bv.BackboneSpec, weights: str, ious: list[float], masks: list[np.ndarray], labels: tuple[str, ...]
) -> str:
    """What the four masks show, from their numbers.

    Args:
        ious: the cat mask's IoU with the true mask for :func:`webui.views.paint.stage_choices`' choices
            (the first stage alone, the middle one alone, the last one alone, every stage).
        masks: the four (crop, crop) label masks, in the same order.
    """
    first, middle, last = spec.stages[0], spec.stages[len(spec.stages) // 2], spec.stages[-1]
    f, m, la, a = ious
    count = len(spec.stages)
    best = int(np.argmax(ious))
    if best == 3:
        won = (
            f"**All {count} stages together** cut the cat out best (IoU {a:.2f}, stage {first.index} alone "
            f"{f:.2f}, stage {last.index} alone {la:.2f}): the first stage's fine map ({_cell(first.stride)}) "
            "and the last stage's coarse one each put right some of the other's mistakes."
        )
    elif best == 2:
        won = (
            f"Here **stage {last.index} alone** scored best (IoU {la:.2f}; all {count} stages {a:.2f}): on this "
            "picture, which region a pixel lies in mattered more than the exact outline, and adding the "
            "finer stages added their mistakes too."
        )
    elif best == 0:
        won = (
            f"Here **stage {first.index} alone** scored best (IoU {f:.2f}; all {count} stages {a:.2f}): on "
            f"this picture the fur's colours and edges, on the finest grid ({_cell(first.stride)}), told it "
            "from the background better than any later stage."
        )
    else:
        won = (
            f"Here **stage {middle.index} alone** scored best (IoU {m:.2f}; all {count} stages {a:.2f}): its "
            f"grid ({_cell(middle.stride)}) was fine enough for this outline, and its features told the fur "
            "from the background better than the others'."
        )
    coarse = masks[2]
    if (coarse == coarse.flat[0]).all():
        grid = (
            f"Stage {last.index} alone labels every pixel *{labels[int(coarse.flat[0])]}*: from these "
            "strokes, its features told the two apart nowhere."
        )
    else:
        side = spec.preprocessing.crop // last.stride
        grid = (
            f"Stage {last.index} alone draws its outline from a {side} × {side} grid "
            f"({_cell(last.stride)}): compare its edge with the white line, the true outline."
        )
    untrained = (
        " With untrained weights no stage has learned what a cat is: the masks separate colours and "
        "textures, which random filters still pass on."
        if weights == "untrained"
        else ""
    )
    return f":material/visibility: {won} {grid}{untrained}"


def _outlined(picture: Image.Image, truth: np.ndarray) -> Image.Image:
    """``picture`` with the true mask's outline drawn on it, one pixel wide."""
    edge = truth & ~ndimage.binary_erosion(truth)
    pixels = np.array(picture.convert("RGB"))
    pixels[edge] = OUTLINE
    return Image.fromarray(pixels)


def _painted(picture: Image.Image, painted: np.ndarray, colours: list[tuple[int, int, int]]) -> Image.Image:
    """``picture`` with each painted pixel in its label's colour."""
    pixels = np.array(picture.convert("RGB"))
    for label, rgb in enumerate(colours):
        pixels[painted == label] = rgb
    return Image.fromarray(pixels)


def _r8(choices: Choices, result: bv.Activations) -> None:
    spec = choices.spec
    made = example(spec.preprocessing.resize, spec.preprocessing.crop)
    made_choices = dataclasses.replace(choices, image=made.image)
    options = paint.stage_choices(spec)
    colours = [rgb for _name, rgb in paint.COLOURS[: len(LABELS)]]
    try:
        fits = [webui.segmentation(made_choices, made.strokes, LABELS, levels=o.stages) for o in options]
    except bv.BackboneVizError as error:
        st.error(f"{error.message}\n\n{error.hint}")
        return
    ious = [bv.mask_iou(fit.mask == 0, made.truth) for fit in fits]
    legend = " ".join(
        f":{name}[■] {label}"
        for (name, _rgb), label in zip(paint.COLOURS[: len(LABELS)], LABELS, strict=True)
    )
    st.markdown(f"**{made.image.caption}** ({legend}). IoU: 1 = the same pixels as the true mask.")
    cells = picture_columns(len(options) + 1)
    crop = fits[0].input_image
    cells[0].image(
        widgets.shown(_painted(crop, made.strokes, colours), photo=True),
        caption=f"the strokes: {int((made.strokes >= 0).sum())} px",
        width="stretch",
    )
    for cell, option, fit, iou in zip(cells[1:], options, fits, ious, strict=True):
        shown = _outlined(paint.mask_over(fit.input_image, fit.mask, colours), made.truth)
        cell.image(
            widgets.shown(shown, photo=True), caption=f"{option.title} · IoU {iou:.2f}", width="stretch"
        )
    st.markdown(sentence(spec, choices.weights, ious, [fit.mask for fit in fits], LABELS))


def _e8(choices: Choices, result: bv.Activations) -> Explore:
    return Explore("app_pages/build_head.py", "Explore this: paint your own segmenter", view(choices))


LESSON = Lesson(8, "What is a backbone for?", _q8, _r8, _e8)

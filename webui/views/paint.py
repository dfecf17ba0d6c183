"""The "Build a head" page's drawing: the canvas to paint strokes on (the segmenter) or to drag boxes on
(the detector), what was drawn in the crop's pixels, the mask over the picture and what each choice of
stages gives.

The canvas is ``streamlit-drawable-canvas`` (a Streamlit components-v2 package). It is imported inside
:func:`canvas` only: its module declares its component when imported, which works under ``streamlit run``
and AppTest but raises in a plain Python process (a test, a notebook) that imports this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

import backbone_viz as bv
from backbone_viz.heads.segment import MAX_LABELS as MAX_SEGMENT_LABELS

#: Most labels a learner paints (the engine's own limit).
MAX_LABELS = MAX_SEGMENT_LABELS
#: Each label's colour: its name in Streamlit's Markdown (``:red[...]``) and the RGB it is painted with.
COLOURS: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("red", (230, 40, 40)),
    ("blue", (30, 110, 230)),
    ("green", (30, 170, 70)),
    ("orange", (255, 150, 0)),
)
#: The colour boxes are drawn in (the detector has one kind of thing).
BOX_COLOUR = (255, 214, 0)
#: The labels a page starts with.
DEFAULT_NAMES = ("object", "background", "label 3", "label 4")
#: The canvas's side in CSS px (its strokes are scaled to the crop the backbone sees).
CANVAS_PX = 256
#: The brush's width in canvas px.
BRUSH_PX = 12
#: A canvas pixel counts as painted when its alpha is at least this (a stroke's soft edge is less).
MIN_ALPHA = 128
#: ... and when its colour is this close (Euclidean RGB distance) to a label's colour.
MAX_COLOUR_DISTANCE = 80.0


def hex_colour(rgb: tuple[int, int, int]) -> str:
    """``(230, 40, 40)`` -> ``"#e62828"``."""
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def canvas(picture: Image.Image, *, colour: tuple[int, int, int], key: str) -> np.ndarray | None:
    """A drawing canvas over ``picture`` (stretched to ``CANVAS_PX`` square) painting in ``colour``.

    Returns:
        (h, w, 4) uint8 RGBA of the strokes alone (transparent where nothing is painted; the picture is
        not in it), or None before the canvas has sent anything.
    """
    from streamlit_drawable_canvas import st_canvas  # see the module docstring

    result = st_canvas(
        stroke_width=BRUSH_PX,
        stroke_color=hex_colour(colour),
        background_image=picture,
        height=CANVAS_PX,
        width=CANVAS_PX,
        drawing_mode="freedraw",
        return_image_data=True,
        key=key,
    )
    data = result.image_data
    return None if data is None else np.asarray(data)


def box_canvas(picture: Image.Image, *, label: str, key: str) -> list[dict[str, float]]:
    """A canvas over ``picture`` (stretched to ``CANVAS_PX`` square) on which the learner drags boxes.

    Returns:
        The boxes drawn, as ``{"left", "top", "width", "height"}`` in canvas px (see :func:`boxes_from_canvas`).
    """
    from streamlit_drawable_canvas import st_canvas  # see the module docstring

    result = st_canvas(
        fill_color="rgba(0, 0, 0, 0)",
        stroke_width=3,
        stroke_color=hex_colour(BOX_COLOUR),
        background_image=picture,
        height=CANVAS_PX,
        width=CANVAS_PX,
        drawing_mode="labeled_rect",
        label=label,
        key=key,
    )
    return list(result.boxes)


def boxes_from_canvas(drawn: Sequence[dict[str, float]], size: int) -> list[tuple[int, int, int, int]]:
    """The canvas's boxes in the crop's inclusive pixels ``(x0, y0, x1, y1)``, clipped to the crop, in the
    order drawn. A box of no width or height stays so (the engine explains why it cannot be used).

    Args:
        drawn: from :func:`box_canvas`: ``left``, ``top``, ``width``, ``height`` in canvas px (a box dragged
            up or left may have a negative width or height).
        size: the side of the backbone's square crop (224).
    """
    scale = size / CANVAS_PX
    boxes = []
    for box in drawn:
        left, top = float(box["left"]), float(box["top"])
        right, bottom = left + float(box["width"]), top + float(box["height"])
        x0, x1 = sorted((left, right))
        y0, y1 = sorted((top, bottom))
        corners = (round(x0 * scale), round(y0 * scale), round(x1 * scale) - 1, round(y1 * scale) - 1)
        a, b, c, d = (min(max(v, 0), size - 1) for v in corners)
        boxes.append((a, b, max(c, a), max(d, b)))
    return boxes


def strokes_from_canvas(
    rgba: np.ndarray | None, colours: Sequence[tuple[int, int, int]], size: int
) -> np.ndarray:
    """The canvas's strokes as a label map of the crop: each label's colour becomes its index.

    Args:
        rgba: (h, w, 4) uint8 from :func:`canvas` (any size: it is scaled to the crop), or None.
        colours: the RGB of labels 0..K-1.
        size: the side of the backbone's square crop (224).

    Returns:
        (size, size) int64: -1 where nothing (or a colour of no label) is painted, else the label's index.
    """
    if rgba is None:
        return np.full((size, size), -1, dtype=np.int64)
    rgba = np.asarray(rgba)
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError(f"the canvas's image is (h, w, 4) RGBA, got {rgba.shape}")
    rgb = rgba[..., :3].astype(np.float32)
    palette = np.asarray(colours, dtype=np.float32)  # (K, 3)
    distance = np.linalg.norm(rgb[:, :, None, :] - palette[None, None], axis=-1)  # (h, w, K)
    nearest = distance.argmin(axis=-1)
    painted = (rgba[..., 3] >= MIN_ALPHA) & (distance.min(axis=-1) <= MAX_COLOUR_DISTANCE)
    labels = np.where(painted, nearest, -1)
    # Nearest neighbour keeps every value a label (a smooth resize would mix two labels into a third).
    small = Image.fromarray((labels + 1).astype(np.uint8)).resize((size, size), Image.Resampling.NEAREST)
    return np.asarray(small, dtype=np.int64) - 1


def painted_labels(strokes: np.ndarray) -> int:
    """How many different labels have at least one painted pixel."""
    return int(np.unique(strokes[strokes >= 0]).size)


def mask_over(picture: Image.Image, mask: np.ndarray, colours: Sequence[tuple[int, int, int]]) -> Image.Image:
    """The picture with each pixel tinted by its label's colour, half transparent.

    Args:
        picture: the (H, W) crop the backbone saw.
        mask: (H, W) label indices into ``colours``.
    """
    palette = np.asarray(colours, dtype=np.float32)
    tint = palette[np.asarray(mask)]
    base = np.asarray(picture.convert("RGB"), dtype=np.float32)
    if base.shape[:2] != tint.shape[:2]:
        base = np.asarray(picture.convert("RGB").resize(tint.shape[1::-1]), dtype=np.float32)
    return Image.fromarray((0.5 * base + 0.5 * tint).round().astype(np.uint8))


@dataclass(frozen=True)
class StageChoice:
    """One of the comparison's choices of stages: its title and the stage indices (None: every stage)."""

    title: str
    stages: tuple[int, ...] | None
    stride: int | None


def stage_choices(spec: bv.BackboneSpec) -> tuple[StageChoice, ...]:
    """The first stage alone, a middle stage alone, the last stage alone, and every stage."""
    stages = spec.stages
    first, middle, last = stages[0], stages[len(stages) // 2], stages[-1]
    return (
        StageChoice(f"stage {first.index} only", (first.index,), first.stride),
        StageChoice(f"stage {middle.index} only", (middle.index,), middle.stride),
        StageChoice(f"stage {last.index} only", (last.index,), last.stride),
        StageChoice(f"all {len(stages)} stages", None, None),
    )


def stage_sentence(
    choice: StageChoice,
    segmentation: bv.Segmentation,
    every: bv.Segmentation,
    crop: int,
    *,
    first: bool,
    last: bool,
) -> str:
    """What one choice of stages gives, from its mask only (there is no true mask: nothing about accuracy).

    Args:
        every: the segmentation with every stage, the one the others are compared with.
        first, last: the choice is the first stage alone, the last stage alone.
    """
    label = segmentation.labels[0]
    share = float((segmentation.mask == 0).mean())
    given = f"Gives {share:.0%} of the picture to *{label}*."
    if choice.stages is None:
        return (
            f"{given} Reads the fine maps of the early stages and the coarse map of the last one together: "
            "this is the big mask above."
        )
    agree = float((segmentation.mask == every.mask).mean())
    side = max(crop // (choice.stride or 1), 1)
    grid = f"Its map is {side} × {side}: one cell per {choice.stride} × {choice.stride} px"
    if first:
        what = f"{grid}, so the mask's edges can follow small details, but this stage reads only edges and colours."
    elif last:
        what = f"{grid}, so the mask's edges are coarse: nothing smaller than a cell can be cut out."
    else:
        what = f"{grid}: finer than the last stage, coarser than the first."
    return f"{given} {what} Agrees with all stages on {agree:.0%} of the pixels."

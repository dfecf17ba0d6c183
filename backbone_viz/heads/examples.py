"""Pictures made for a dense head to learn from or to be checked on, from pictures a learner already has.

Two recipes, both deterministic (the same arguments give the same pixels):

* :func:`paste_examples`: one boxed example becomes a training set. The boxed region of a picture is
  pasted onto other pictures (the backgrounds), at a random place and size, each with its true box; the
  detector of :mod:`backbone_viz.heads.detect` learns from them what a learner would otherwise box by
  hand on several photos. The region is pasted through a rounded, feathered alpha, so its straight edges
  are not a cue the detector could learn in place of the thing.
* :func:`composite`: a region of one picture cut by a random smooth blob (:func:`blob`) and pasted onto
  another, with its true mask: a picture on which a segmenter's mask can be scored (lesson 8, the tests).

**Coordinates.** Boxes are inclusive pixels ``(x0, y0, x1, y1)`` of the backbone's crop, as everywhere in
:mod:`backbone_viz.heads`: ``backbone.crop(picture)``, 224 x 224 for every bundled backbone. The crop
resizes a picture's shorter side (to 256 for EfficientNet-Lite0) and cuts its centre, so a picture made
here is a square of the RESIZED side with the copy inside its centre crop: ``backbone.crop`` gives that
centre back pixel for pixel, and the box is where the copy is. Feed :func:`paste_examples`' pictures to
:func:`backbone_viz.fit_detector` unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from backbone_viz.core.backbones import Backbone
from backbone_viz.errors import DetectError
from backbone_viz.heads.detect import check_box

__all__ = ["AREA", "Composite", "blob", "composite", "paste_examples", "square"]

#: Share of the picture a blob covers, drawn uniformly in this range (the recipe of the dense-head notes).
AREA = (0.12, 0.30)
#: A pasted copy's side against the boxed original's: smaller and larger, so the detector learns the thing
#: at more than one size.
SCALES = (0.7, 1.15)
#: The feathered edge of a pasted copy, in pixels: wide enough to hide the seam, narrow enough to keep the
#: thing's outline.
FEATHER = 3
#: The corner radius of a pasted copy against its shorter side.
ROUNDING = 0.25

Box = tuple[int, int, int, int]


def square(picture: Image.Image, size: int) -> Image.Image:
    """The picture's centre square resized to ``size`` x ``size`` RGB (as a backbone's crop would see it).

    Raises:
        TypeError: ``picture`` is not a PIL image.
    """
    if not isinstance(picture, Image.Image):
        raise TypeError(f"picture must be a PIL image, not {type(picture).__name__}")
    side = min(picture.size)
    left, top = (picture.width - side) // 2, (picture.height - side) // 2
    cut = picture.convert("RGB").crop((left, top, left + side, top + side))
    return cut if cut.size == (size, size) else cut.resize((size, size), Image.Resampling.BICUBIC)


def paste_examples(
    backbone: Backbone,
    picture: Image.Image,
    boxes: Sequence[Sequence[float]],
    backgrounds: Sequence[Image.Image],
    *,
    seed: int = 0,
) -> list[tuple[Image.Image, list[Box]]]:
    """Training examples for a detector from one boxed picture: its things pasted onto each background.

    Only the backbone's preprocessing is used (its crop's geometry); no model runs.

    Args:
        backbone: the backbone the detector will read, from :func:`backbone_viz.load_backbone`.
        picture: the learner's RGB picture, any size.
        boxes: ``(x0, y0, x1, y1)`` boxes, inclusive pixels of ``backbone.crop(picture)``, around every
            thing of the kind on it (a thing left unboxed is learned as "not the thing").
        backgrounds: pictures to paste onto; each is first cut to its centre square.
        seed: seeds the copies' places and sizes.

    Returns:
        ``[(picture, boxes), (pasted_1, [box_1]), ...]``: the learner's own example first, then one picture
        per background (a square of the backbone's resize side) holding one copy (of each box in turn),
        with the copy's box in its crop, ready for :func:`backbone_viz.fit_detector`.

    Raises:
        DetectError: no box, a box of zero size, or one reaching outside the crop.
        TypeError: a picture that is not a PIL image, a box that is not 4 numbers.
    """
    if not isinstance(picture, Image.Image):
        raise TypeError(f"picture must be a PIL image, not {type(picture).__name__}")
    crop = backbone.crop(picture)
    size = crop.width
    if boxes is None or isinstance(boxes, (str, bytes)) or len(boxes) == 0:
        raise DetectError("There is no box to learn from.", "Drag a box around the thing on the picture.")
    if len(boxes) == 4 and all(isinstance(v, (int, float, np.number)) for v in boxes):
        raise TypeError(f"boxes must be a list of boxes: [{tuple(boxes)!r}], not one box")
    checked = [_rounded(check_box(box, 1, size)) for box in boxes]
    things = [crop.crop((x0, y0, x1 + 1, y1 + 1)) for x0, y0, x1, y1 in checked]
    side = backbone.preprocessing.resize
    # Where the crop's top-left corner lies in a square of the resized side (torchvision's centre crop).
    offset = int(round((side - size) / 2.0))
    rng = np.random.default_rng(seed)
    examples: list[tuple[Image.Image, list[Box]]] = [(picture.convert("RGB"), checked)]
    for n, background in enumerate(backgrounds):
        thing = things[n % len(things)]
        scale = rng.uniform(*SCALES)
        width = max(2, min(size, round(thing.width * scale)))
        height = max(2, min(size, round(thing.height * scale)))
        left = int(rng.integers(0, size - width + 1))
        top = int(rng.integers(0, size - height + 1))
        copy = thing.resize((width, height), Image.Resampling.BICUBIC)
        made = square(background, side)
        made.paste(copy, (left + offset, top + offset), _alpha(width, height))
        examples.append((made, [(left, top, left + width - 1, top + height - 1)]))
    return examples


def _rounded(box: tuple[float, float, float, float]) -> Box:
    x0, y0, x1, y1 = (round(v) for v in box)
    return x0, y0, x1, y1


def _alpha(width: int, height: int) -> Image.Image:
    """(height, width) "L" mask: a rounded rectangle, feathered by :data:`FEATHER` px at its edge."""
    mask = Image.new("L", (width, height), 0)
    inset = min(FEATHER, (min(width, height) - 1) // 4)
    radius = max(1, round(ROUNDING * min(width, height)))
    ImageDraw.Draw(mask).rounded_rectangle(
        (inset, inset, width - 1 - inset, height - 1 - inset), radius, fill=255
    )
    return mask.filter(ImageFilter.GaussianBlur(FEATHER / 2)) if inset else mask


@dataclass(frozen=True, eq=False)
class Composite:
    """A picture whose true object mask is known.

    Attributes:
        image: ``size`` x ``size`` RGB PIL image.
        mask: (size, size) bool, read-only: True where the pasted region is.
    """

    image: Image.Image
    mask: np.ndarray = field(repr=False)


def composite(
    thing: Image.Image, background: Image.Image, size: int, *, seed: int | Sequence[int] = 0
) -> Composite:
    """A region of ``thing`` cut by a random :func:`blob` and pasted onto ``background``, with its true mask.

    Both pictures are cut to their centre square of ``size`` first, so the region shows ``thing`` at the
    blob's own place (the cat's fur where the blob lies over the cat).

    Args:
        seed: seeds the blob (an int or a sequence of ints, as ``numpy.random.default_rng`` takes).
    """
    mask = blob(size, np.random.default_rng(seed))
    pixels = np.where(mask[..., None], np.asarray(square(thing, size)), np.asarray(square(background, size)))
    mask.flags.writeable = False
    return Composite(Image.fromarray(pixels), mask)


def blob(size: int, rng: np.random.Generator) -> np.ndarray:
    """(size, size) bool: one random smooth star-shaped region covering :data:`AREA` of the square.

    The outline is a radius varying with the angle as a few low harmonics (so it has bays and lobes, not
    a disc); the radius is scaled to the drawn area and the centre placed so the blob stays inside.
    """
    if size < 16:
        raise ValueError(f"size must be at least 16, not {size}")
    target = rng.uniform(*AREA)
    angles = np.linspace(0, 2 * math.pi, 180, endpoint=False)
    wobble = np.ones_like(angles)
    for k in (2, 3, 4, 5):
        wobble += rng.uniform(0.0, 0.3 / k * 2) * np.cos(k * angles + rng.uniform(0, 2 * math.pi))
    wobble = np.clip(wobble, 0.3, None)
    # Area of the polygon at unit radius; the area grows as the radius squared.
    unit = 0.5 * np.sum(wobble * np.roll(wobble, -1)) * math.sin(2 * math.pi / len(angles))
    radius = math.sqrt(target * size * size / unit)
    reach_x = radius * np.abs(wobble * np.cos(angles)).max()
    reach_y = radius * np.abs(wobble * np.sin(angles)).max()
    cx = rng.uniform(min(reach_x, size / 2), max(size - reach_x, size / 2))
    cy = rng.uniform(min(reach_y, size / 2), max(size - reach_y, size / 2))
    points = [
        (cx + radius * w * math.cos(a), cy + radius * w * math.sin(a))
        for w, a in zip(wobble, angles, strict=True)
    ]
    canvas = Image.new("L", (size, size), 0)
    ImageDraw.Draw(canvas).polygon(points, fill=1)
    return np.asarray(canvas, dtype=bool).copy()

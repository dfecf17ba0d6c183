"""Pictures with a known object mask, for tests of heads that find where something is (segmenters, boxes).

A region of a sample photo (the cat's fur or the dahlia's petals) is cut by a random smooth blob and
pasted onto another sample photo (china, coffee, rocket, grace_hopper, astronaut), so the true mask is
exactly the blob. The recipe of ``../shared/notes/dense-heads.md``: blobs cover 12-30 % of the picture.

Everything is deterministic: the same ``size``, ``count`` and ``seed`` give the same pixels, and composite
``i`` does not depend on ``count`` (a generator per composite).

Example::

    from tests.composites import composites
    for c in composites(224, count=8):
        c.image, c.mask.mean(), c.source, c.background
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from PIL import Image, ImageDraw

from tests.conftest import sample

#: The photos whose region is pasted (the object), in turn.
SOURCES = ("cat", "flower")
#: The photos pasted onto (the background), in turn.
BACKGROUNDS = ("china", "coffee", "rocket", "grace_hopper", "astronaut")
#: Share of the picture a blob covers, drawn uniformly in this range.
AREA = (0.12, 0.30)


@dataclass(frozen=True, eq=False)
class Composite:
    """One picture with its true object mask.

    Attributes:
        image: size x size RGB PIL image.
        mask: (size, size) bool, True where the pasted object is.
        source: the sample pasted, ``"cat"`` or ``"flower"``.
        background: the sample it is pasted onto (``"china"``...).
    """

    image: Image.Image
    mask: np.ndarray = field(repr=False)
    source: str
    background: str


def composites(size: int = 224, count: int = 8, seed: int = 0) -> list[Composite]:
    """``count`` composites of ``size`` x ``size``: sources and backgrounds in turn, blobs from ``seed``.

    Composite ``i`` pastes ``SOURCES[i % 2]`` onto ``BACKGROUNDS[i % 5]`` (8 composites: every
    background at least once, cat and flower 4 times each). The source is the sample's centre square at
    the same size, so the pasted region shows the object (fur, petals) at the position of the blob.

    Args:
        size: side of the pictures and masks, in pixels.
        count: number of composites.
        seed: seeds the blobs' shapes, sizes and positions.

    Returns:
        A list of ``count`` frozen :class:`Composite`.
    """
    if size < 16:
        raise ValueError(f"size must be at least 16, not {size}")
    out = []
    for i in range(count):
        source, background = SOURCES[i % len(SOURCES)], BACKGROUNDS[i % len(BACKGROUNDS)]
        mask = blob(size, np.random.default_rng([seed, i]))
        picture = np.where(mask[..., None], _square(source, size), _square(background, size))
        out.append(Composite(Image.fromarray(picture), mask, source, background))
    return out


def blob(size: int, rng: np.random.Generator) -> np.ndarray:
    """(size, size) bool: one random smooth star-shaped region covering ``AREA`` of the square.

    The outline is a radius varying with the angle as a few low harmonics (so it has bays and lobes, not
    a disc); the radius is scaled to the drawn area and the centre placed so the blob stays inside.
    """
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
    points = [(cx + radius * w * math.cos(a), cy + radius * w * math.sin(a)) for w, a in zip(wobble, angles, strict=True)]
    canvas = Image.new("L", (size, size), 0)
    ImageDraw.Draw(canvas).polygon(points, fill=1)
    return np.asarray(canvas, dtype=bool)


@cache
def _square(name: str, size: int) -> np.ndarray:
    """(size, size, 3) uint8: the sample's centre square resized to ``size``; read-only, cached."""
    photo = sample(name)
    side = min(photo.size)
    left, top = (photo.width - side) // 2, (photo.height - side) // 2
    square = photo.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BICUBIC)
    array = np.asarray(square.convert("RGB"))
    array.flags.writeable = False
    return array

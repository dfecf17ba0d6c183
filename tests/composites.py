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

from dataclasses import dataclass, field
from functools import cache

import numpy as np
from PIL import Image

from backbone_viz.heads.examples import blob, square
from tests.conftest import sample

#: The photos whose region is pasted (the object), in turn.
SOURCES = ("cat", "flower")
#: The photos pasted onto (the background), in turn.
BACKGROUNDS = ("china", "coffee", "rocket", "grace_hopper", "astronaut")


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


@cache
def _square(name: str, size: int) -> np.ndarray:
    """(size, size, 3) uint8: the sample's centre square resized to ``size``; read-only, cached."""
    array = np.asarray(square(sample(name), size))
    array.flags.writeable = False
    return array

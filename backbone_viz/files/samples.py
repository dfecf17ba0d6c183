"""The sample pictures of the gallery: real photos with known, free licences (``assets/samples``).

Sources and licences are listed in ``assets/samples/LICENSES.md``; captions in
``assets/samples/captions.json``. Read a sample with :func:`backbone_viz.files.images.load_image`, like any
other picture, so that samples and uploads go through the same door. :func:`example_set` makes the
transfer-learning page's labelled photos from the same pictures.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from PIL import Image

from backbone_viz.files.images import load_image
from backbone_viz.files.shipped import assets_dir

__all__ = ["SAMPLES_DIR", "Sample", "example_set", "list_samples"]

SAMPLES_DIR: Final[Path] = assets_dir() / "samples"
"""Folder of the sample pictures: ``assets/samples`` beside the ``backbone_viz`` package."""

_CAPTIONS_FILE: Final[str] = "captions.json"

# The gallery opens on the cat: a familiar ImageNet class whose Grad-CAM students can check by eye.
_FIRST: Final[str] = "cat"

_SUFFIXES: Final = frozenset({".jpg", ".jpeg", ".png"})


@dataclass(frozen=True)
class Sample:
    """One sample picture.

    Attributes:
        name: the file name without its extension, e.g. ``"cat"``; one word to show or to key on.
        path: absolute path of the picture file.
        caption: a short description for the gallery, e.g. ``"A tabby cat (Chelsea)"``.
    """

    name: str
    path: Path
    caption: str


def list_samples(*, samples_dir: Path = SAMPLES_DIR) -> list[Sample]:
    """List the sample pictures: the cat first, then the others by name.

    Args:
        samples_dir: folder holding the pictures and ``captions.json``; the bundled one by default.

    Returns:
        One :class:`Sample` per picture file (``.jpg``, ``.jpeg`` or ``.png``) in ``samples_dir``.
        A picture missing from ``captions.json`` gets its name as caption.

    Raises:
        FileNotFoundError: ``samples_dir`` or its ``captions.json`` is missing (a broken install,
            not something a user did).
    """
    captions: dict[str, str] = json.loads((samples_dir / _CAPTIONS_FILE).read_text(encoding="utf-8"))
    samples = [
        Sample(name=path.stem, path=path.resolve(), caption=captions.get(path.name, path.stem))
        for path in samples_dir.iterdir()
        if path.is_file() and path.suffix.lower() in _SUFFIXES
    ]
    return sorted(samples, key=lambda sample: (sample.name != _FIRST, sample.name))


def example_set() -> dict[str, list[Image.Image]]:
    """The ready-made example set of the transfer-learning page, made from ``assets/samples``.

    Three classes; only 7 sample photos ship, one per subject, so two classes are crops of one photo:

    * ``"cat"``: 3 different crops of the one cat photo (whole, left 70 %, right 70 %);
    * ``"coffee"``: 3 different crops of the one espresso photo;
    * ``"person"``: two genuinely different photos, the astronaut Eileen Collins and Grace Hopper.

    Leave-one-out on ``cat`` and ``coffee`` therefore only tests recognising another crop of a photo the
    head has seen (easy); ``person`` tests generalising from one person's photo to another person's.

    Returns:
        ``{label: [RGB PIL images]}`` in a fixed order: 3 + 3 + 2 photos.
    """
    cat, coffee = _sample("cat"), _sample("coffee")
    return {
        "cat": _crops(cat, [(0.0, 0.0, 1.0, 1.0), (0.0, 0.0, 0.7, 1.0), (0.3, 0.05, 1.0, 1.0)]),
        "coffee": _crops(coffee, [(0.0, 0.0, 1.0, 1.0), (0.1, 0.0, 0.8, 0.9), (0.2, 0.1, 1.0, 1.0)]),
        "person": [_sample("astronaut"), _sample("grace_hopper")],
    }


def _sample(name: str) -> Image.Image:
    return load_image(SAMPLES_DIR / f"{name}.jpg")


def _crops(photo: Image.Image, boxes: Sequence[tuple[float, float, float, float]]) -> list[Image.Image]:
    """Crops of ``photo`` at fractional ``(left, top, right, bottom)`` boxes."""
    w, h = photo.size
    return [photo.crop((round(x0 * w), round(y0 * h), round(x1 * w), round(y1 * h))) for x0, y0, x1, y1 in boxes]

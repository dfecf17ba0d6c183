"""The sample pictures of the gallery: real photos with known, free licences (``assets/samples``).

Sources and licences are listed in ``assets/samples/LICENSES.md``; captions in
``assets/samples/captions.json``. Read a sample with :func:`backbone_viz.images.load_image`, like any
other picture, so that samples and uploads go through the same door.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["SAMPLES_DIR", "Sample", "list_samples"]

SAMPLES_DIR: Final[Path] = Path(__file__).resolve().parent.parent / "assets" / "samples"
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

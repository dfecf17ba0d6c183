"""A detector from a few boxes through the gateway: trained once per picture and boxes, shared by every session.

A learner boxes one kind of thing on their picture; the training set is made from it
(:func:`backbone_viz.paste_examples`: the boxed things pasted onto the other sample photos) and a one-class
head is trained on it (:func:`backbone_viz.fit_detector`, about a second). Training shows a progress bar,
so it runs in the page's own script run (a cached function would replay the bar on every hit), in a turn
of the fair queue; the finished detector is kept for every session, least recently used out, in a store
that can be asked whether it holds a key without computing anything. A rerun with nothing changed, or a
second learner who draws the same boxes on the same picture, trains nothing.

One sample photo is kept out of the training set (:func:`held_out`): the detector is tried on the
boxed thing pasted onto it, a picture it never saw, the honest test.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import streamlit as st
from PIL import Image

import backbone_viz as bv
from backbone_viz.core.lru import LRU
from webui.compute.caches import TwoTier, cached_backbone, cached_picture, in_turn, kept_in_turn
from webui.compute.turns import WaitCallback
from webui.shell.state import ImageChoice, sample_choice, samples

__all__ = [
    "NEW",
    "YOURS",
    "backgrounds",
    "boxes_key",
    "cached_detections",
    "detector",
    "example_crops",
    "examples",
    "held_out",
    "new_picture",
    "train_detector",
]

MAX_DETECTORS = 32
BUNDLED_DETECTIONS = 40
OTHER_DETECTIONS = 20
#: Seeds the copies' places and sizes in the training pictures, and (another) the held-out picture's copy.
TRAIN_SEED, NEW_SEED = 0, 5
#: Where a detector can be tried: the boxed thing pasted onto the held-out photo, or the learner's picture;
#: else a sample photo's name.
NEW, YOURS = "new", "yours"

Box = tuple[int, int, int, int]
Boxes = tuple[Box, ...]
Progress = Callable[[int, int], object]


def backgrounds(image: ImageChoice) -> tuple[tuple[str, ...], str]:
    """The sample photos the training pictures are made on, and the one kept out (the last), by name.

    The learner's own picture is never a background: when it is a sample, the others are used.
    """
    names = [
        sample.name for sample in samples() if not (image.kind == "sample" and sample.name == image.name)
    ]
    return tuple(names[:-1]), names[-1]


def held_out(image: ImageChoice) -> str:
    """The sample photo no training picture is made on."""
    return backgrounds(image)[1]


def _sample_picture(name: str) -> Image.Image:
    choice = sample_choice(name)
    return cached_picture(choice.sha256, choice.data)


@st.cache_resource(max_entries=8, show_spinner=False)
def _examples(
    name: str, weights: str, image_sha256: str, boxes: Boxes, _image: ImageChoice
) -> tuple[tuple[Image.Image, tuple[Box, ...]], ...]:
    made = bv.paste_examples(
        cached_backbone(name, weights),
        cached_picture(_image.sha256, _image.data),
        list(boxes),
        [_sample_picture(n) for n in backgrounds(_image)[0]],
        seed=TRAIN_SEED,
    )
    return tuple((picture, tuple(found)) for picture, found in made)


def examples(
    name: str, weights: str, image: ImageChoice, boxes: Boxes
) -> tuple[tuple[Image.Image, tuple[Box, ...]], ...]:
    """The training pictures: the learner's picture with its boxes first, then one per background photo
    with the box of its pasted copy; boxes in each picture's crop (shared pictures: read, never change).

    Raises:
        DetectError: a box a detector cannot learn from (no size, outside the crop).
    """
    return _examples(name, weights, image.sha256, boxes, image)


@st.cache_resource(max_entries=8, show_spinner=False)
def _example_crops(
    name: str, weights: str, image_sha256: str, boxes: Boxes, _image: ImageChoice
) -> tuple[tuple[Image.Image, tuple[Box, ...]], ...]:
    backbone = cached_backbone(name, weights)
    return tuple((backbone.crop(picture), found) for picture, found in examples(name, weights, _image, boxes))


def example_crops(
    name: str, weights: str, image: ImageChoice, boxes: Boxes
) -> tuple[tuple[Image.Image, tuple[Box, ...]], ...]:
    """:func:`examples` as the backbone sees them (its crops, in which the boxes lie), for showing."""
    return _example_crops(name, weights, image.sha256, boxes, image)


@st.cache_resource(show_spinner=False)
def _detectors() -> LRU[tuple[str, str, str, Boxes], bv.Detector]:
    return LRU(MAX_DETECTORS)


def detector(name: str, weights: str, image: ImageChoice, boxes: Boxes) -> bv.Detector | None:
    """The detector trained on these boxes when one is ready, else None (nothing is computed)."""
    return _detectors().get((name, weights, image.sha256, boxes))


def train_detector(
    name: str,
    weights: str,
    image: ImageChoice,
    boxes: Boxes,
    progress: Progress | None = None,
    on_wait: WaitCallback | None = None,
) -> bv.Detector:
    """:func:`detector`, trained now (in a turn of the queue, reporting ``progress(done, total)``) unless ready.

    Raises:
        DetectError: boxes a detector cannot learn from.
    """

    def inputs() -> tuple[bv.Backbone, list[tuple[Image.Image, list[Box]]]]:
        made = [(picture, list(found)) for picture, found in examples(name, weights, image, boxes)]
        return cached_backbone(name, weights), made

    return kept_in_turn(
        _detectors(),
        (name, weights, image.sha256, boxes),
        on_wait,
        inputs=inputs,
        make=lambda given: bv.fit_detector(*given, progress=progress),
    )


@st.cache_resource(max_entries=8, show_spinner=False)
def _new_picture(
    name: str, weights: str, image_sha256: str, boxes: Boxes, _image: ImageChoice
) -> tuple[Image.Image, Box]:
    [(picture, [box])] = bv.paste_examples(
        cached_backbone(name, weights),
        cached_picture(_image.sha256, _image.data),
        [boxes[0]],
        [_sample_picture(held_out(_image))],
        seed=NEW_SEED,
    )[1:]
    return picture, box


def new_picture(name: str, weights: str, image: ImageChoice, boxes: Boxes) -> tuple[Image.Image, Box]:
    """The first boxed thing pasted onto the held-out photo at a new place and size, and its true box (in
    the picture's crop)."""
    return _new_picture(name, weights, image.sha256, boxes, image)


def _detections() -> Callable[..., bv.Detections]:
    def detections(
        name: str,
        weights: str,
        image_sha256: str,
        boxes: Boxes,
        where: str,
        threshold: float,
        _image: ImageChoice,
        _detector: bv.Detector,
    ) -> bv.Detections:
        if where == NEW:
            picture = new_picture(name, weights, _image, boxes)[0]
        elif where == YOURS:
            picture = cached_picture(_image.sha256, _image.data)
        else:
            picture = _sample_picture(where)
        return bv.detect(cached_backbone(name, weights), _detector, picture, threshold=threshold)

    return detections


_DETECTIONS = TwoTier(_detections, bundled=BUNDLED_DETECTIONS, other=OTHER_DETECTIONS)


def cached_detections(
    name: str,
    weights: str,
    image: ImageChoice,
    boxes: Boxes,
    trained: bv.Detector,
    where: str,
    threshold: float,
    *,
    on_wait: WaitCallback | None = None,
) -> bv.Detections:
    """What ``trained`` (the detector of these boxes) finds on the picture ``where`` names: :data:`NEW`,
    :data:`YOURS` or a sample photo's name; cached for every session."""
    key = ("detect", name, weights, image.sha256, boxes, where, float(threshold))
    return in_turn(
        key,
        on_wait,
        lambda: _DETECTIONS(name, weights, image.sha256, boxes, where, float(threshold), image, trained),
    )


def boxes_key(boxes: Sequence[Sequence[int]]) -> Boxes:
    """Boxes as a hashable key: a tuple of int 4-tuples, in the order drawn."""
    return tuple(tuple(int(v) for v in box) for box in boxes)  # type: ignore[misc]

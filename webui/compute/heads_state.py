"""The "Backbone → heads" page's state: its session keys, the learner's own head and the page's callbacks.

Splitting a score and finding the pyramid only read a frozen analysis; a new head is fitted per learner
(kept in that learner's session state, never in a cache shared across sessions) on the shared backbone,
whose fit and analysis are stateless (no_grad / autograd.grad only). The analysis under a learner's head
is kept per session too, slimmed to what the page draws (:class:`HeadView`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import streamlit as st
from PIL import Image
from streamlit.runtime.uploaded_file_manager import UploadedFile

import backbone_viz as bv
from backbone_viz.core.specs import Preprocessing
from backbone_viz.files.samples import SAMPLES_DIR, list_samples
from webui.compute.caches import cached_backbone, in_turn
from webui.shell.state import Choices, ImageChoice

#: Session keys of the page: the learner's own head, the names of the photos it was trained on, where the
#: photos come from ("example" or "own"), and a request to train again on the sidebar's backbone.
HEAD = "heads.head"
PHOTO_NAMES = "heads.photo_names"
TRAINED_ON = "heads.trained_on"
SOURCE = "heads.source"
RETRAIN = "heads.retrain"
#: Session key of the per-session analysis under a learner's own head (see :func:`head_view`).
_HEAD_VIEW = "_heads.view"

#: Hand-drawn boxes around parts of some sample pictures (see :func:`picture_parts`).
PARTS_FILE = SAMPLES_DIR / "parts.json"
#: A Grad-CAM with less than this share of its mass on the class's part is "mostly not on it".
MOSTLY = 0.5

#: Longest side a training photo is shrunk to after decoding: the backbones look at a ~224 px crop of a
#: ~256 px picture, and a class of 20 phone photos would otherwise hold 20 decoded 12-megapixel images.
PHOTO_SIDE = 768


def contributions(name: str, weights: str, result: bv.AnalysisResult) -> bv.Contributions:
    """Splits ``result``'s target score over the channels the head reads (only reads the shared head).

    Raises:
        HeadError: the backbone's score does not split (VGG).
    """
    return bv.head_contributions(cached_backbone(name, weights), result)


@st.cache_resource(max_entries=1, show_spinner=False)
def example_set() -> Mapping[str, tuple[Image.Image, ...]]:
    """The ready-made example set (cat, coffee, person), made once per process and only ever read."""
    return MappingProxyType({label: tuple(photos) for label, photos in bv.example_set().items()})


def fingerprint(picture: Image.Image) -> str:
    """The sha256 of a decoded picture's size and RGB pixels: one picture, however its file was stored."""
    rgb = picture.convert("RGB")
    return hashlib.sha256(f"{rgb.width}x{rgb.height}".encode() + rgb.tobytes()).hexdigest()


@st.cache_resource(max_entries=1, show_spinner=False)
def example_fingerprints() -> frozenset[str]:
    """The fingerprints of the example set's photos (only its whole photos match a sample picture)."""
    return frozenset(fingerprint(photo) for photos in example_set().values() for photo in photos)


def read_photos(
    files: Sequence[UploadedFile],
) -> tuple[list[tuple[str, Image.Image]], list[tuple[str, bv.ImageError]], frozenset[str]]:
    """Decodes a class's uploaded photos, each shrunk to at most ``PHOTO_SIDE`` px.

    Returns:
        ``(photos, problems, fingerprints)``: ``(file name, photo)`` for each photo that could be read,
        in upload order; ``(file name, error)`` for each that could not (not a picture, too large...);
        the sha256 of each readable file's bytes and the :func:`fingerprint` of its picture before
        shrinking, so that the page can tell a test picture the head was trained on.
    """
    photos: list[tuple[str, Image.Image]] = []
    problems: list[tuple[str, bv.ImageError]] = []
    seen: set[str] = set()
    for file in files:
        try:
            photo = bv.load_image(file)
        except bv.ImageError as error:
            problems.append((file.name, error))
            continue
        seen |= {hashlib.sha256(file.getvalue()).hexdigest(), fingerprint(photo)}
        photo.thumbnail((PHOTO_SIDE, PHOTO_SIDE), Image.Resampling.LANCZOS)
        photos.append((file.name, photo))
    return photos, problems, frozenset(seen)


def train_head(name: str, weights: str, examples: Mapping[str, Sequence[Image.Image]]) -> bv.LinearHead:
    """Fits a new linear head on the shared, frozen backbone (not cached: the head is one learner's).

    Raises:
        HeadError: unusable examples (fewer than 2 classes, a class with fewer than 2 photos...).
    """
    backbone = cached_backbone(name, weights)
    return in_turn(None, None, lambda: bv.fit_head(backbone, examples))


def head_fits(head: bv.LinearHead, name: str, weights: str) -> bool:
    """Whether ``head`` reads the features of this backbone with these weights (the engine's one check)."""
    return head.fits(cached_backbone(name, weights))


@dataclass(frozen=True, eq=False)
class HeadView:
    """What the page draws of one picture under a learner's own head: a slim part of the analysis.

    The whole ``AnalysisResult`` holds every layer's activation (tens of MB for ResNet-50); a session
    keeps only this.

    Attributes:
        predictions: the head's classes, most probable first (at most 5).
        target: the class Grad-CAM explains (the top one).
        gradcam: (h, w) Grad-CAM of ``target`` at the last stage's last layer.
        input_image: the crop the model saw.
        picture_size: (width, height) of the picture before the crop.
    """

    predictions: tuple[bv.Prediction, ...]
    target: bv.Prediction
    gradcam: np.ndarray
    input_image: Image.Image
    picture_size: tuple[int, int]


def head_view(name: str, weights: str, image: ImageChoice, head: bv.LinearHead) -> HeadView:
    """The picture analysed with the learner's head; the last one is kept in this session's state.

    Raises:
        HeadError: the head was fitted on another backbone or other weights.
        ImageError: the picture cannot be read.
    """
    kept = st.session_state.get(_HEAD_VIEW)
    key = (name, weights, image.sha256)
    if kept is not None and kept[0] is head and kept[1] == key:
        return kept[2]
    backbone = cached_backbone(name, weights)
    picture = bv.load_image(image.data)
    result = in_turn(None, None, lambda: bv.analyze(backbone, picture, head=head))
    last = backbone.spec.stages[-1].last.name
    view = HeadView(result.predictions, result.target, result.gradcam[last], result.input_image, picture.size)
    st.session_state[_HEAD_VIEW] = (head, key, view)
    return view


# ------------------------------------------------------------------------- is the test picture a fair one?


@st.cache_resource(max_entries=1, show_spinner=False)
def _sample_pictures() -> tuple[tuple[ImageChoice, str], ...]:
    """Every sample picture as the sidebar would give it, with its :func:`fingerprint`."""
    pictures = []
    for sample in list_samples():
        choice = ImageChoice.from_bytes("sample", sample.name, sample.caption, sample.path.read_bytes())
        pictures.append((choice, fingerprint(bv.load_image(choice.data))))
    return tuple(pictures)


def trained_on(image: ImageChoice) -> bool:
    """Whether the current head was trained on this very picture (the same file or the same pixels)."""
    seen: frozenset[str] = st.session_state.get(TRAINED_ON, frozenset())
    if image.sha256 in seen:
        return True
    known = {choice.sha256: mark for choice, mark in _sample_pictures()}
    mark = known.get(image.sha256)
    if mark is None:
        try:
            mark = fingerprint(bv.load_image(image.data))
        except bv.ImageError:
            return False
    return mark in seen


def samples_not_trained_on() -> list[ImageChoice]:
    """The sample pictures the current head was not trained on, in the gallery's order."""
    seen: frozenset[str] = st.session_state.get(TRAINED_ON, frozenset())
    return [choice for choice, mark in _sample_pictures() if mark not in seen and choice.sha256 not in seen]


@dataclass(frozen=True)
class CamOnPart:
    """How much of a Grad-CAM lies on the part of a picture that shows its class best.

    Attributes:
        part: what the part is, e.g. ``"her head"``.
        share: the Grad-CAM's mass inside the part's box (0 to 1), upsampled to the crop.
        area: the box's share of the crop's area (0 to 1): what a Grad-CAM spread evenly would give.
        brightest: the smallest box that holds the Grad-CAM's brightest pixel, or ``None``.
    """

    part: str
    share: float
    area: float
    brightest: str | None


@st.cache_resource(max_entries=1, show_spinner=False)
def _parts() -> Mapping[str, Mapping[str, object]]:
    """``parts.json`` keyed by the sha256 of each sample file it describes."""
    described = json.loads(PARTS_FILE.read_text(encoding="utf-8"))
    return MappingProxyType(
        {
            hashlib.sha256((SAMPLES_DIR / name).read_bytes()).hexdigest(): entry
            for name, entry in described.items()
            if isinstance(entry, dict) and (SAMPLES_DIR / name).is_file()
        }
    )


def box_in_crop(
    box: Sequence[float], picture_size: tuple[int, int], preprocessing: Preprocessing
) -> tuple[int, int, int, int]:
    """A box given as fractions of a picture, in pixels of the crop the backbone sees.

    The backbone resizes the picture's short side to ``preprocessing.resize`` and cuts the centre
    ``crop x crop`` square out (torchvision's ``resize`` and ``center_crop``); the box follows.

    Args:
        box: ``(left, top, right, bottom)`` as fractions of the picture's width and height.
        picture_size: ``(width, height)`` of the picture.

    Returns:
        ``(x0, y0, x1, y1)`` in crop pixels, clipped to the crop (empty when the box lies outside it).
    """
    width, height = picture_size
    short, long = min(width, height), max(width, height)
    resized_long = int(preprocessing.resize * long / short)
    resized = (
        (resized_long, preprocessing.resize) if width >= height else (preprocessing.resize, resized_long)
    )
    crop = preprocessing.crop
    left = int(round((resized[0] - crop) / 2.0))
    top = int(round((resized[1] - crop) / 2.0))
    x0, y0, x1, y1 = (
        round(box[0] * resized[0]) - left,
        round(box[1] * resized[1]) - top,
        round(box[2] * resized[0]) - left,
        round(box[3] * resized[1]) - top,
    )
    x0, x1 = (min(max(v, 0), crop) for v in (x0, x1))
    y0, y1 = (min(max(v, 0), crop) for v in (y0, y1))
    return x0, y0, x1, y1


def cam_on_part(
    cam: np.ndarray,
    boxes: Mapping[str, tuple[int, int, int, int]],
    part: str,
    crop: int,
) -> CamOnPart | None:
    """How much of ``cam`` lies in the box of ``part`` and which box holds its brightest place.

    Args:
        cam: (h, w) Grad-CAM of the crop, values >= 0.
        boxes: named ``(x0, y0, x1, y1)`` boxes in crop pixels (:func:`box_in_crop`), ``part`` among them.
        part: the name of the box that shows the class.
        crop: side of the square crop.

    Returns:
        ``None`` when the Grad-CAM is zero everywhere or the part's box lies outside the crop.
    """
    big = np.clip(bv.upsample(cam, (crop, crop)), 0.0, None)
    total = float(big.sum())
    x0, y0, x1, y1 = boxes[part]
    if total <= 0.0 or x1 <= x0 or y1 <= y0:
        return None
    row, column = np.unravel_index(int(big.argmax()), big.shape)
    holding = [
        ((bx1 - bx0) * (by1 - by0), name)
        for name, (bx0, by0, bx1, by1) in boxes.items()
        if bx0 <= column < bx1 and by0 <= row < by1
    ]
    return CamOnPart(
        part=part,
        share=float(big[y0:y1, x0:x1].sum()) / total,
        area=(x1 - x0) * (y1 - y0) / crop**2,
        brightest=min(holding)[1] if holding else None,
    )


def where_cam_lies(view: HeadView, image: ImageChoice, preprocessing: Preprocessing) -> CamOnPart | None:
    """Where the new head's Grad-CAM lies, for a sample picture with a hand-drawn box around the part
    that shows the head's answer (``assets/samples/parts.json``); ``None`` for any other picture or class."""
    entry = _parts().get(image.sha256)
    if entry is None:
        return None
    part = entry["classes"].get(view.target.label.strip().lower())
    if part is None:
        return None
    boxes = {name: box_in_crop(box, view.picture_size, preprocessing) for name, box in entry["boxes"].items()}
    return cam_on_part(view.gradcam, boxes, part, preprocessing.crop)


# ------------------------------------------------------------------------------------ the page's callbacks


def use_source(source: str) -> None:
    """Trains the next head on the example set (``"example"``) or on the learner's photos (``"own"``)."""
    st.session_state[SOURCE] = source


def ask_retrain() -> None:
    """Trains the learner's classes again on the sidebar's backbone in the next run."""
    st.session_state[RETRAIN] = True


def take_retrain() -> bool:
    """Whether a retrain was asked for (the request is used up)."""
    return bool(st.session_state.pop(RETRAIN, False))


def keep_head(
    head: bv.LinearHead, photo_names: Mapping[tuple[str, int], str], trained_on: frozenset[str]
) -> None:
    """Keeps a freshly trained head, the names of the photos it was trained on and their fingerprints
    (:func:`fingerprint`, and the sha256 of uploaded files)."""
    st.session_state[HEAD] = head
    st.session_state[PHOTO_NAMES] = photo_names
    st.session_state[TRAINED_ON] = trained_on


def current_head() -> bv.LinearHead | None:
    """The learner's head, if one was trained in this session."""
    return st.session_state.get(HEAD)


def photo_names() -> Mapping[tuple[str, int], str]:
    """``(class label, photo index) -> file name`` of the current head's photos."""
    return st.session_state.get(PHOTO_NAMES, {})


def from_examples() -> bool:
    """Whether the page offers the example set rather than the learner's own photos."""
    return st.session_state.get(SOURCE) == "example"


def file_stem(choices: Choices) -> str:
    """The start of the heads page's download names: the picture's and the backbone's names."""
    return f"{choices.image.stem}-{choices.backbone}"

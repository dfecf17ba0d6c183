"""The "Backbone → heads" page's state: its session keys, the learner's own head and the page's callbacks.

Splitting a score and finding the pyramid only read a frozen analysis; a new head is fitted per learner
(kept in that learner's session state, never in a cache shared across sessions) on the shared backbone,
whose fit and analysis are stateless (no_grad / autograd.grad only). The analysis under a learner's head
is kept per session too, slimmed to what the page draws (:class:`HeadView`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import streamlit as st
from PIL import Image
from streamlit.runtime.uploaded_file_manager import UploadedFile

import backbone_viz as bv
from webui.compute.caches import cached_backbone, in_turn
from webui.shell.state import Choices, ImageChoice

#: Session keys of the page: the learner's own head, the names of the photos it was trained on, where the
#: photos come from ("example" or "own"), and a request to train again on the sidebar's backbone.
HEAD = "heads.head"
PHOTO_NAMES = "heads.photo_names"
SOURCE = "heads.source"
RETRAIN = "heads.retrain"
#: Session key of the per-session analysis under a learner's own head (see :func:`head_view`).
_HEAD_VIEW = "_heads.view"

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


def read_photos(
    files: Sequence[UploadedFile],
) -> tuple[list[tuple[str, Image.Image]], list[tuple[str, bv.ImageError]]]:
    """Decodes a class's uploaded photos, each shrunk to at most ``PHOTO_SIDE`` px.

    Returns:
        ``(photos, problems)``: ``(file name, photo)`` for each photo that could be read, in upload
        order, and ``(file name, error)`` for each that could not (not a picture, too large...).
    """
    photos: list[tuple[str, Image.Image]] = []
    problems: list[tuple[str, bv.ImageError]] = []
    for file in files:
        try:
            photo = bv.load_image(file)
        except bv.ImageError as error:
            problems.append((file.name, error))
            continue
        photo.thumbnail((PHOTO_SIDE, PHOTO_SIDE), Image.Resampling.LANCZOS)
        photos.append((file.name, photo))
    return photos, problems


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
    """

    predictions: tuple[bv.Prediction, ...]
    target: bv.Prediction
    gradcam: np.ndarray
    input_image: Image.Image


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
    view = HeadView(result.predictions, result.target, result.gradcam[last], result.input_image)
    st.session_state[_HEAD_VIEW] = (head, key, view)
    return view


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


def keep_head(head: bv.LinearHead, photo_names: Mapping[tuple[str, int], str]) -> None:
    """Keeps a freshly trained head and the names of the photos it was trained on."""
    st.session_state[HEAD] = head
    st.session_state[PHOTO_NAMES] = photo_names


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

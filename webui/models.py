"""The one place the web app calls the engine's ``load_backbone`` and ``analyze``, behind caches.

Caches (``st.cache_resource``: one object shared by every session and thread, never copied):

* backbones: the bundled EfficientNet-Lite0 has its own cache (pretrained and untrained, 2 entries of
  ~20 MB), so the default every first-time visitor needs is never evicted by a large backbone; the
  torchvision backbones share a cache of 2 entries (two VGG-19s are ~1.2 GB), least recently used out.
* analyses: keyed by (backbone name, weights, sha256 of the image bytes, target class); the bytes travel
  as the unhashed ``_image_bytes``. ``AnalysisResult`` holds read-only arrays in ``MappingProxyType``
  (not picklable), so ``st.cache_resource`` returns the shared frozen object itself, which is safe
  because nobody writes to it. Bounded by count: 16 small analyses (~4 MB each for Lite0) and 8 large
  ones (up to ~55 MB each for VGG-16).

Heads (the "Backbone → heads" page): a learner's own head is fitted on the shared backbone and kept in
that learner's session state, never in a shared cache; the analysis under it is kept per session too,
slimmed to what the page draws (:class:`HeadView`).

Weights that must be downloaded are fetched *before* the cached loader runs (``weights.ensure`` with a
progress callback driving ``st.progress``), so that no element is drawn inside a cached function (which
Streamlit would replay on every cache hit) and a failure is never cached.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import streamlit as st
import torch
from PIL import Image
from streamlit.runtime.uploaded_file_manager import UploadedFile

import backbone_viz as bv
from backbone_viz import weights as weights_mod

from .state import BACKBONE, DEFAULT_BACKBONE, WEIGHTS, ImageChoice, set_choice

SMALL_ANALYSES = 16
LARGE_ANALYSES = 8

# Every session analyses in its own thread; torch's default (one intra-op thread per core, for each
# analysis) oversubscribes the CPU when a whole class works at once. One thread per analysis lost nothing
# for a lone session and used less CPU for the same work at N=16 (bench/engine_load.py, bench/load.py).
# BACKBONE_VIZ_TORCH_THREADS overrides it (e.g. a single-user machine with many cores).
torch.set_num_threads(int(os.environ.get("BACKBONE_VIZ_TORCH_THREADS", "1")))


def _is_small(name: str) -> bool:
    return name == DEFAULT_BACKBONE


@st.cache_resource(max_entries=2, show_spinner=False)
def _load_bundled(name: str, weights: str) -> bv.Backbone:
    return bv.load_backbone(name, weights)


@st.cache_resource(max_entries=2, show_spinner=False)
def _load_large(name: str, weights: str) -> bv.Backbone:
    return bv.load_backbone(name, weights)


def cached_backbone(name: str, weights: str) -> bv.Backbone:
    """The shared backbone (loads it on first use; raises ``WeightsError`` like ``load_backbone``)."""
    return (_load_bundled if _is_small(name) else _load_large)(name, weights)


def _run_analysis(name: str, weights: str, target: int | None, image_bytes: bytes) -> bv.AnalysisResult:
    backbone = cached_backbone(name, weights)
    return bv.analyze(backbone, bv.load_image(image_bytes), target)


@st.cache_resource(max_entries=SMALL_ANALYSES, show_spinner=False)
def _analysis_small(
    name: str, weights: str, image_sha256: str, target: int | None, _image_bytes: bytes
) -> bv.AnalysisResult:
    return _run_analysis(name, weights, target, _image_bytes)


@st.cache_resource(max_entries=LARGE_ANALYSES, show_spinner=False)
def _analysis_large(
    name: str, weights: str, image_sha256: str, target: int | None, _image_bytes: bytes
) -> bv.AnalysisResult:
    return _run_analysis(name, weights, target, _image_bytes)


def cached_analysis(
    name: str, weights: str, image_sha256: str, image_bytes: bytes, target: int | None = None
) -> bv.AnalysisResult:
    """The shared analysis of one image (runs the model only on a cache miss)."""
    cache = _analysis_small if _is_small(name) else _analysis_large
    return cache(name, weights, image_sha256, target, image_bytes)


def clear_analyses() -> None:
    """Empties the analysis caches (the benchmark's "first analysis"); backbones stay loaded."""
    _analysis_small.clear()
    _analysis_large.clear()


# ------------------------------------------------------------------------------------ weights on disk


def weights_status(spec: bv.BackboneSpec) -> str:
    """Where the pretrained weights are: ``"bundled"``, ``"in cache"`` or ``"download needed"``."""
    if spec.bundled:
        return "bundled"
    return "in cache" if weights_mod.cached_path(spec.weights_file) is not None else "download needed"


def weights_size(spec: bv.BackboneSpec) -> str:
    """The pretrained weights' file size for people ("98 MB")."""
    if spec.weights_file is not None:
        return weights_mod.describe_size(spec.weights_file.size_bytes)
    path = weights_mod.bundled_path(spec.name)
    return weights_mod.describe_size(path.stat().st_size) if path is not None else "unknown size"


def _download_with_progress(spec: bv.BackboneSpec) -> None:
    """Fetches missing pretrained weights into the torch cache, showing a progress bar.

    Raises:
        WeightsError: offline, mirror unreachable, damaged download...
    """
    size = weights_size(spec)
    text = f"Downloading the pretrained weights of {spec.title} ({size}), once for everyone…"
    bar = st.progress(0.0, text=text)
    shown = [-1]

    def progress(done: int, total: int | None) -> None:
        # The callback fires per chunk; redraw only when the whole percent changes.
        fraction = min(done / total, 1.0) if total else 0.0
        if int(fraction * 100) != shown[0]:
            shown[0] = int(fraction * 100)
            bar.progress(fraction, text=f"{text} {weights_mod.describe_size(done)}")

    try:
        weights_mod.ensure(spec.weights_file, progress=progress)
    finally:
        bar.empty()


def load(name: str, weights: str, *, key: str = "load", offer_bundled: bool = True) -> bv.Backbone | None:
    """The backbone for this run, or ``None`` after explaining on the page why it cannot be loaded.

    Downloads pretrained weights first when needed (with a progress bar). A ``WeightsError`` (offline, a
    damaged file) is shown with ``st.error`` and buttons that switch to the bundled or the untrained
    backbone; never a traceback.

    Args:
        name: backbone spec name.
        weights: ``"pretrained"`` or ``"untrained"``.
        key: prefix of the buttons' keys (several backbones may fail on one page).
        offer_bundled: offer a button that switches the sidebar to the bundled backbone.
    """
    spec = bv.get_spec(name)
    try:
        if weights == "pretrained" and weights_status(spec) == "download needed":
            _download_with_progress(spec)
        with st.spinner(f"Loading {spec.title} ({weights})…"):
            return cached_backbone(name, weights)
    except bv.WeightsError as error:
        weights_problem(spec, error, key=key, offer_bundled=offer_bundled)
        return None


def weights_problem(
    spec: bv.BackboneSpec, error: bv.WeightsError, *, key: str, offer_bundled: bool = True
) -> None:
    """Explains a weights failure and offers backbones that need no download."""
    st.error(f"**{spec.title}: the pretrained weights are not available.** {error.message}\n\n{error.hint}")
    st.write(
        "You can keep exploring without a download: the bundled EfficientNet-Lite0 has real weights, "
        f"and an untrained {spec.title} shows what the same architecture does before any learning."
    )
    left, right = st.columns(2)
    if offer_bundled and spec.name != DEFAULT_BACKBONE:
        left.button(
            "Use the bundled EfficientNet-Lite0",
            key=f"{key}.bundled.{spec.name}",
            on_click=_use_bundled,
            type="primary",
        )
    right.button(
        f"Use an untrained {spec.title}",
        key=f"{key}.untrained.{spec.name}",
        on_click=set_choice,
        args=(WEIGHTS, "untrained"),
    )


def _use_bundled() -> None:
    set_choice(BACKBONE, DEFAULT_BACKBONE)
    set_choice(WEIGHTS, "pretrained")


def analysis(
    name: str,
    weights: str,
    image: ImageChoice,
    target: int | None = None,
    *,
    key: str = "load",
    offer_bundled: bool = True,
) -> bv.AnalysisResult | None:
    """The analysis of ``image`` by a backbone, or ``None``.

    Loads the backbone first (see :func:`load`); shows an ``st.error`` and returns ``None`` when the
    backbone or the image cannot be used.
    """
    if load(name, weights, key=key, offer_bundled=offer_bundled) is None:
        return None
    try:
        with st.spinner(f"Looking at the picture with {bv.get_spec(name).title}…"):
            return cached_analysis(name, weights, image.sha256, image.data, target)
    except bv.BackboneVizError as error:
        st.error(f"{error.message}\n\n{error.hint}")
        return None


# ------------------------------------------------------------------------------------------------ heads
# The "Backbone → heads" page. Splitting a score and finding the pyramid only read a frozen analysis; a
# new head is fitted per learner (kept in that learner's session state, never in a cache shared across
# sessions) on the shared backbone, whose fit and analysis are stateless (no_grad / autograd.grad only).

#: Longest side a training photo is shrunk to after decoding: the backbones look at a ~224 px crop of a
#: ~256 px picture, and a class of 20 phone photos would otherwise hold 20 decoded 12-megapixel images.
PHOTO_SIDE = 768
#: Session key of the per-session analysis under a learner's own head (see :func:`head_view`).
_HEAD_VIEW = "_heads.view"


def contributions(name: str, weights: str, result: bv.AnalysisResult) -> bv.Contributions:
    """Splits ``result``'s target score over the channels the head reads (only reads the shared head).

    Raises:
        HeadError: the backbone's score does not split (VGG).
    """
    return bv.head_contributions(cached_backbone(name, weights), result)


def pyramid(result: bv.AnalysisResult) -> list[bv.PyramidLevel]:
    """The maps at strides 8, 16 and 32 (C3, C4, C5) that a detector's neck reads from this analysis."""
    return bv.feature_pyramid(result)


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
    return bv.fit_head(cached_backbone(name, weights), examples)


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
    result = bv.analyze(backbone, bv.load_image(image.data), head=head)
    last = backbone.spec.stages[-1].last.name
    view = HeadView(result.predictions, result.target, result.gradcam[last], result.input_image)
    st.session_state[_HEAD_VIEW] = (head, key, view)
    return view

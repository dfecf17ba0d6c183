"""The one place the web app calls the engine's ``load_backbone`` and ``analyze``, behind caches.

Caches (``st.cache_resource``: one object shared by every session and thread, never copied):

* backbones: the bundled EfficientNet-Lite0 has its own cache (pretrained and untrained, 2 entries of
  ~20 MB), so the default every first-time visitor needs is never evicted by a large backbone; the
  torchvision backbones share a cache of 2 entries (two VGG-19s are ~1.2 GB), least recently used out.
* analyses: keyed by (backbone name, weights, sha256 of the image bytes, target class); the bytes travel
  as the unhashed ``_image_bytes``. ``AnalysisResult`` holds read-only arrays in ``MappingProxyType``
  (not picklable), so ``st.cache_resource`` returns the shared frozen object itself, which is safe
  because nobody writes to it. Bounded by count: 32 small analyses (~4 MB each for Lite0) and 8 large
  ones (up to ~55 MB each for VGG-16).

Weights that must be downloaded are fetched *before* the cached loader runs (``weights.ensure`` with a
progress callback driving ``st.progress``), so that no element is drawn inside a cached function (which
Streamlit would replay on every cache hit) and a failure is never cached.
"""

from __future__ import annotations

import streamlit as st

import backbone_viz as bv
from backbone_viz import weights as weights_mod

from .state import BACKBONE, DEFAULT_BACKBONE, WEIGHTS, ImageChoice, set_choice

SMALL_ANALYSES = 32
LARGE_ANALYSES = 8


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

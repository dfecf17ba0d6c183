"""The caches every session shares: loaded backbones, what a picture does to them, and Grad-CAMs.

Where the web app runs the model for everyone (``load_backbone``, ``layer_activations``, ``layer_gradcam``);
a learner's own head is run in :mod:`webui.compute.heads_state`. ``st.cache_resource`` keeps ONE object per key for every session and thread and never
copies it. That is safe here because nothing cached is ever written to: a backbone is only run
(statelessly, see :mod:`backbone_viz.explain.analysis`), and the analyses hold read-only arrays in
``MappingProxyType``.

A picture's activations are kept apart from the Grad-CAM of each class: the activations do not
depend on the class Grad-CAM explains and are large (~55 MB for VGG-16), a Grad-CAM is a few small (h, w)
maps. Explaining another class adds only its Grad-CAM, and :func:`cached_analysis` joins the parts with
``AnalysisResult.from_parts``, which shares their arrays. The activations come from a forward pass
without a gradient, and even the top class's Grad-CAM is made only when a page shows one:
Home, the page every student opens, then costs half a model pass (``bench/analysis.py``: 0.46 to 0.60 of
a full analysis). A student who opens Grad-CAM afterwards pays for its own pass there (forward and
backward, about the full analysis again).

* backbones: keyed by (backbone name, weights);
* activations: keyed by (backbone name, weights, sha256 of the image bytes; the bytes travel as the
  unhashed ``_image_bytes``);
* Grad-CAMs: keyed by (backbone name, weights, sha256, class index), the top class's like any other;
* decoded pictures: keyed by sha256, so that a picture is decoded once, not once per analysis, Grad-CAM
  and preview (PIL images: every user copies before changing one).

Each cache comes twice, chosen by ``spec.bundled``, so that the backbone every first-time visitor needs,
and its analyses, are never evicted by a large backbone. Least recently used out:

* backbones: 2 bundled (pretrained and untrained, ~20 MB each) and 2 others (two VGG-19s are ~1.2 GB);
* activations: 16 pictures for the bundled backbone (~4 MB each) and 8 for the others (up to ~55 MB
  each for VGG-16); Grad-CAMs twice as many (the top class and one other per picture; well under 1 MB
  each).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import streamlit as st
from PIL import Image

import backbone_viz as bv
from backbone_viz.core.lru import LRU
from webui.compute import figures
from webui.compute.turns import QUEUE, RECENT, WaitCallback

BUNDLED_BACKBONES = 2
OTHER_BACKBONES = 2
BUNDLED_ANALYSES = 16
OTHER_ANALYSES = 8

PICTURES = 32

F = TypeVar("F", bound=Callable[..., object])
T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
A = TypeVar("A")


@st.cache_resource(max_entries=PICTURES, show_spinner=False)
def _picture(image_sha256: str, _image_bytes: bytes) -> Image.Image:
    return bv.load_image(_image_bytes)


def cached_picture(image_sha256: str, image_bytes: bytes) -> Image.Image:
    """The decoded picture, shared by every session: read it, never change it (copy first).

    Raises:
        ImageError: the bytes are not a usable picture.
    """
    return _picture(image_sha256, image_bytes)


def shared(function: F, kind: str, max_entries: int) -> F:
    """``function`` behind its own ``st.cache_resource`` of ``max_entries``.

    Streamlit names a cache after the function's module, qualified name and source, not after the
    function object, so the functions made by one factory below would otherwise share ONE cache and its
    first ``max_entries`` (streamlit#11157). Each gets a name of its own.
    """
    function.__qualname__ = f"{function.__name__}.{kind}"
    return st.cache_resource(max_entries=max_entries, show_spinner=False)(function)


class TwoTier(Generic[F]):
    """A function cached twice, by whether the backbone it is called for (its first argument, a spec name)
    is bundled: the bundled backbone's results are small and every session uses them, a large backbone's
    are big and rarer, so each tier has its own size.

    Args:
        make: returns a NEW function object on each call (a closure), cached once per tier.
        bundled: entries kept for the bundled backbone.
        other: entries kept for the others.
    """

    def __init__(self, make: Callable[[], F], *, bundled: int, other: int) -> None:
        self._tiers = {True: shared(make(), "bundled", bundled), False: shared(make(), "other", other)}

    def __call__(self, name: str, *args: object) -> object:
        return self._tiers[bv.get_spec(name).bundled](name, *args)

    def clear(self) -> None:
        for tier in self._tiers.values():
            tier.clear()  # type: ignore[attr-defined]


class Slot(Generic[T]):
    """Where one long computation's result is kept for every session: empty until the first session that
    needs it fills it, then read-only.

    A cached function replays what it drew on every later hit, so a computation that shows its progress
    cannot run inside one; a cached function hands out the slot, and :meth:`fill` runs the computation
    outside it, in the session's own script run, under the slot's lock (a second session asking
    meanwhile waits for the first one's result).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value: T | None = None

    def fill(self, compute: Callable[[], T]) -> T:
        """The value, computed now (in a turn of the fair queue) if no session has computed it yet."""
        with self._lock:
            if self.value is None:
                # A certain miss (the slot is empty): always a turn, whatever ran lately under its key.
                self.value = in_turn(None, None, compute)
            return self.value


def _backbone() -> Callable[[str, str], bv.Backbone]:
    def backbone(name: str, weights: str) -> bv.Backbone:
        return bv.load_backbone(name, weights)

    return backbone


def _activations() -> Callable[[str, str, str, bytes], bv.Activations]:
    def activations(name: str, weights: str, image_sha256: str, _image_bytes: bytes) -> bv.Activations:
        return bv.layer_activations(cached_backbone(name, weights), cached_picture(image_sha256, _image_bytes))

    return activations


def _gradcam() -> Callable[[str, str, str, int, bytes], bv.GradCam]:
    def gradcam(name: str, weights: str, image_sha256: str, target: int, _image_bytes: bytes) -> bv.GradCam:
        return bv.layer_gradcam(
            cached_backbone(name, weights), cached_picture(image_sha256, _image_bytes), target
        )

    return gradcam


_BACKBONES = TwoTier(_backbone, bundled=BUNDLED_BACKBONES, other=OTHER_BACKBONES)
_ACTIVATIONS = TwoTier(_activations, bundled=BUNDLED_ANALYSES, other=OTHER_ANALYSES)
_GRADCAMS = TwoTier(_gradcam, bundled=2 * BUNDLED_ANALYSES, other=2 * OTHER_ANALYSES)


def cached_backbone(name: str, weights: str) -> bv.Backbone:
    """The shared backbone (loads it on first use; raises ``WeightsError`` like ``load_backbone``)."""
    return _BACKBONES(name, weights)


def cached_activations(
    name: str, weights: str, image_sha256: str, image_bytes: bytes, *, on_wait: WaitCallback | None = None
) -> bv.Activations:
    """What the picture does to the backbone (a forward pass without a gradient runs on a miss).

    A model run waits for its turn (:mod:`webui.compute.turns`); ``on_wait(ahead)`` is told the place meanwhile.
    """
    key = ("activations", name, weights, image_sha256)
    return in_turn(key, on_wait, lambda: _ACTIVATIONS(name, weights, image_sha256, image_bytes))


def cached_gradcam(
    name: str,
    weights: str,
    image_sha256: str,
    image_bytes: bytes,
    target: int | None = None,
    *,
    on_wait: WaitCallback | None = None,
) -> bv.GradCam:
    """The shared Grad-CAM of class ``target`` (``None``: the top class) for one picture.

    A miss runs the model once (forward and backward) and keeps only the maps.

    Raises:
        BackboneVizError: ``target`` is not a class of the head.
    """
    if target is None:
        target = cached_activations(name, weights, image_sha256, image_bytes, on_wait=on_wait).predictions[0].index
    key = ("gradcam", name, weights, image_sha256, target)
    return in_turn(key, on_wait, lambda: _GRADCAMS(name, weights, image_sha256, target, image_bytes))


def cached_analysis(
    name: str,
    weights: str,
    image_sha256: str,
    image_bytes: bytes,
    target: int | None = None,
    *,
    on_wait: WaitCallback | None = None,
) -> bv.AnalysisResult:
    """The analysis of one picture with Grad-CAM for ``target``, joined from the shared parts (no copy)."""
    activations = cached_activations(name, weights, image_sha256, image_bytes, on_wait=on_wait)
    return bv.AnalysisResult.from_parts(
        activations, cached_gradcam(name, weights, image_sha256, image_bytes, target, on_wait=on_wait)
    )


def in_turn(key: tuple | None, on_wait: WaitCallback | None, compute: Callable[[], T]) -> T:
    """``compute()``, in a turn of the shared queue unless ``key`` was computed lately (a cache hit).

    Every call in the app that may run the model goes through here (the other pages' caches, feature
    visualizations and a learner's own head too), so that all of them share the same fair turns;
    ``tests/app/conftest.py`` fails any model run made outside a turn. ``key`` None: a computation no
    cache keeps (a learner's head), which always takes a turn.
    """
    if key is not None and key in RECENT:
        return compute()
    with QUEUE.turn(on_wait):
        value = compute()
    if key is not None:
        RECENT.add(key)
    return value


def kept_in_turn(
    store: LRU[K, T],
    key: K,
    on_wait: WaitCallback | None,
    *,
    inputs: Callable[[], A],
    make: Callable[[A], T],
) -> T:
    """A result made in the caller's own script run, in a turn of the queue, once for every session, and
    kept in an LRU ``store`` (least recently used out) that a page can ask without computing anything.

    A hit returns ``store``'s value at once. A miss gathers ``inputs()`` first, outside the turn: what
    takes a turn of its own (a dense model) or should not hold the queue while it loads (a backbone,
    decoded pictures, checked boxes); then ``make(inputs())`` runs in a turn, where a progress callback it
    closes over draws into the caller's run (a cached function would replay the bar on every hit).
    """
    ready = store.get(key)
    if ready is not None:
        return ready
    given = inputs()
    return store.put(key, in_turn(None, on_wait, lambda: make(given)))


def clear_backbones() -> None:
    """Forgets every loaded backbone (a test's fake weights must not outlive it), and what was drawn."""
    _BACKBONES.clear()
    figures.clear()


def clear_analyses() -> None:
    """Empties the activations and Grad-CAM caches (the benchmark's "first analysis"); backbones stay."""
    figures.clear()
    _ACTIVATIONS.clear()
    _GRADCAMS.clear()
    RECENT.clear()

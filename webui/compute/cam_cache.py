"""The CAM family through the gateway: every chosen method at every stage from one pass, shared by every
session; Score-CAM, which runs the model once per channel, made in the page's own run with a progress bar.

* the family: keyed by (backbone, weights, sha256 of the picture, class, methods); one forward pass and one
  gradient give every gradient method at once (:func:`backbone_viz.cam_family`), so asking for one more
  method recomputes the pass, not one pass per method. Each entry is a few (h, w) maps per method.
* Score-CAM: seconds to tens of seconds, so it is run only when the learner asks (the page shows its cost
  first), with a progress bar, in a turn of the fair queue, and kept afterwards in a store that can be
  asked whether it holds a key without computing anything (as the feature visualizations are).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import streamlit as st

import backbone_viz as bv
from backbone_viz.core.lru import LRU
from webui.compute.caches import TwoTier, cached_backbone, cached_picture, in_turn, kept_in_turn
from webui.compute.turns import WaitCallback
from webui.shell.state import ImageChoice

BUNDLED_FAMILIES = 16
OTHER_FAMILIES = 8
MAX_SCORE_CAMS = 32

Progress = Callable[[int, int], object]


def _stage_layers(name: str) -> list[str]:
    """The last layer of every stage: the maps the pages show."""
    return [stage.last.name for stage in bv.get_spec(name).stages]


def _family() -> Callable[..., bv.CamFamily]:
    def family(
        name: str, weights: str, image_sha256: str, target: int, methods: tuple[str, ...], _image_bytes: bytes
    ) -> bv.CamFamily:
        return bv.cam_family(
            cached_backbone(name, weights),
            cached_picture(image_sha256, _image_bytes),
            target,
            methods=list(methods),
            layers=_stage_layers(name),
        )

    return family


_FAMILIES = TwoTier(_family, bundled=BUNDLED_FAMILIES, other=OTHER_FAMILIES)


def cached_cam_family(
    name: str,
    weights: str,
    image: ImageChoice,
    target: int,
    methods: Sequence[str],
    *,
    on_wait: WaitCallback | None = None,
) -> bv.CamFamily:
    """The CAM ``methods`` for class ``target`` at the last layer of every stage (see
    :func:`backbone_viz.cam_family`), cached for every session.

    Raises:
        CamError: an unknown method.
    """
    chosen = tuple(methods)
    key = ("cam_family", name, weights, image.sha256, int(target), chosen)
    return in_turn(
        key, on_wait, lambda: _FAMILIES(name, weights, image.sha256, int(target), chosen, image.data)
    )


def clear() -> None:
    """Forgets every CAM family and Score-CAM made (a test that counts the model's runs starts empty)."""
    _FAMILIES.clear()
    _score_cams().clear()


@st.cache_resource(show_spinner=False)
def _score_cams() -> LRU[tuple[str, str, str, int, str, int | None], bv.ScoreCam]:
    return LRU(MAX_SCORE_CAMS)


def score_cam(
    name: str, weights: str, image: ImageChoice, target: int, layer: str, top: int | None
) -> bv.ScoreCam | None:
    """The Score-CAM of this picture, class, layer and number of channels when one is ready, else None."""
    return _score_cams().get((name, weights, image.sha256, int(target), layer, top))


def make_score_cam(
    name: str,
    weights: str,
    image: ImageChoice,
    target: int,
    layer: str,
    top: int | None,
    progress: Progress | None = None,
    on_wait: WaitCallback | None = None,
) -> bv.ScoreCam:
    """:func:`score_cam`, made now (in a turn of the queue, reporting ``progress(done, total)``) unless ready."""
    return kept_in_turn(
        _score_cams(),
        (name, weights, image.sha256, int(target), layer, top),
        on_wait,
        inputs=lambda: (cached_backbone(name, weights), cached_picture(image.sha256, image.data)),
        make=lambda given: bv.score_cam(*given, int(target), layer=layer, k=top, progress=progress),
    )


@st.cache_resource(max_entries=32, show_spinner=False)
def _score_cam_cost(name: str, weights: str, layer: str, top: int | None) -> bv.ScoreCamCost:
    backbone = cached_backbone(name, weights)
    return in_turn(None, None, lambda: bv.score_cam_cost(backbone, layer=layer, k=top))


def score_cam_cost(name: str, weights: str, layer: str, top: int | None) -> bv.ScoreCamCost:
    """How many forward passes Score-CAM needs here and about how long they take: the engine times one
    batch once per backbone, layer and number of channels, for every session."""
    return _score_cam_cost(name, weights, layer, top)

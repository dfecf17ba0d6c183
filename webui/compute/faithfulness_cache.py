"""Which map is right? Occlusion, the deletion and insertion ranking, and ROAD through the gateway.

Each runs the model on tens to hundreds of perturbed pictures (seconds), so it is run only when the learner
asks, with its cost said first and a progress bar, in the page's own script run and in a turn of the fair
queue; what is finished is kept for every session, least recently used out, in stores that can be asked
whether they hold a key without computing anything. A rerun with nothing changed runs nothing.

The maps measured are the CAM family's at the last stage (:mod:`webui.compute.cam_cache`), and occlusion's
pixel map when it was made; keys name them, so a ranking is found again whatever order they were chosen in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import streamlit as st
from PIL import Image

import backbone_viz as bv
from backbone_viz.core.lru import LRU
from backbone_viz.explain.faithfulness import RANDOM, ROAD_PERCENTAGES
from backbone_viz.explain.occlusion import Cost
from webui.compute.caches import cached_backbone, cached_picture, in_turn, kept_in_turn
from webui.compute.turns import WaitCallback
from webui.shell.state import ImageChoice

MAX_OCCLUSIONS = 16
MAX_RANKINGS = 16
MAX_ROADS = 16
#: The name occlusion's map gets among the maps ranked.
OCCLUSION = "occlusion"

Progress = Callable[[int, int], object]
Maps = Mapping[str, np.ndarray]


@st.cache_resource(show_spinner=False)
def _stores() -> dict[str, LRU]:
    return {"occlusion": LRU(MAX_OCCLUSIONS), "ranking": LRU(MAX_RANKINGS), "road": LRU(MAX_ROADS)}


def _picture(image: ImageChoice) -> Image.Image:
    return cached_picture(image.sha256, image.data)


# ------------------------------------------------------------------------------------------------ costs


@st.cache_resource(max_entries=64, show_spinner=False)
def _occlusion_cost(name: str, weights: str, patch: int, stride: int) -> Cost:
    backbone = cached_backbone(name, weights)
    return in_turn(None, None, lambda: bv.occlusion_cost(backbone, patch=patch, stride=stride))


def cost_of_occlusion(name: str, weights: str, patch: int, stride: int) -> Cost:
    """Forward passes and about how long occlusion takes (the engine times one batch once per backbone)."""
    return _occlusion_cost(name, weights, patch, stride)


@st.cache_resource(max_entries=64, show_spinner=False)
def _curves_cost(name: str, weights: str, maps: int, step: int | None) -> Cost:
    backbone = cached_backbone(name, weights)
    steps = {} if step is None else {"step": step}
    return in_turn(None, None, lambda: bv.curves_cost(backbone, maps=maps, **steps))


def cost_of_curves(name: str, weights: str, maps: int, step: int | None = None) -> Cost:
    """Forward passes and about how long the deletion and insertion curves of ``maps`` maps take."""
    return _curves_cost(name, weights, maps, step)


def road_cost(name: str, weights: str, maps: int) -> int:
    """Forward passes ROAD takes for ``maps`` maps: one per percentage and order, plus the picture itself."""
    del name, weights  # the count does not depend on the backbone
    return 1 + maps * 2 * len(ROAD_PERCENTAGES)


# ------------------------------------------------------------------------------------------------ occlusion


def _inputs(name: str, weights: str, image: ImageChoice) -> tuple[bv.Backbone, Image.Image]:
    """The backbone and the picture a measurement runs on, gathered before its turn of the queue."""
    return cached_backbone(name, weights), _picture(image)


def ready_occlusion(
    name: str, weights: str, image: ImageChoice, target: int, patch: int, stride: int
) -> bv.Occlusion | None:
    """The occlusion map when one is ready, else None (nothing is computed)."""
    return _stores()["occlusion"].get((name, weights, image.sha256, int(target), patch, stride))


def make_occlusion(
    name: str,
    weights: str,
    image: ImageChoice,
    target: int,
    patch: int,
    stride: int,
    progress: Progress | None = None,
    on_wait: WaitCallback | None = None,
) -> bv.Occlusion:
    """:func:`ready_occlusion`, made now unless ready.

    Raises:
        PerturbationError: a patch or stride that does not fit the crop.
    """
    return kept_in_turn(
        _stores()["occlusion"],
        (name, weights, image.sha256, int(target), patch, stride),
        on_wait,
        inputs=lambda: _inputs(name, weights, image),
        make=lambda given: bv.occlusion(*given, int(target), patch=patch, stride=stride, progress=progress),
    )


# ------------------------------------------------------------------------------------------------ rankings


def _key(
    kind: str, name: str, weights: str, image: ImageChoice, target: int, maps: Maps, extra: object
) -> tuple:
    return (kind, name, weights, image.sha256, int(target), tuple(sorted(maps)), extra)


def ranking(
    name: str,
    weights: str,
    image: ImageChoice,
    target: int,
    maps: Maps,
    occluded: tuple[int, int] | None,
    step: int | None = None,
) -> bv.Ranking | None:
    """The ranking of ``maps`` (and the baselines) when one is ready, else None.

    Args:
        occluded: the occlusion's (patch, stride) when its map is among ``maps``, else None.
        step: pixels changed per step; None for the engine's default.
    """
    return _stores()["ranking"].get(_key("ranking", name, weights, image, target, maps, (occluded, step)))


def make_ranking(
    name: str,
    weights: str,
    image: ImageChoice,
    target: int,
    maps: Maps,
    occluded: tuple[int, int] | None,
    progress: Progress | None = None,
    on_wait: WaitCallback | None = None,
    step: int | None = None,
) -> bv.Ranking:
    """:func:`ranking`, measured now (:func:`backbone_viz.rank_maps`) unless ready."""
    return kept_in_turn(
        _stores()["ranking"],
        _key("ranking", name, weights, image, target, maps, (occluded, step)),
        on_wait,
        inputs=lambda: _inputs(name, weights, image),
        make=lambda given: bv.rank_maps(*given, dict(maps), int(target), progress=progress),
    )


def roads(
    name: str, weights: str, image: ImageChoice, target: int, maps: Maps, occluded: tuple[int, int] | None
) -> Mapping[str, bv.Road] | None:
    """ROAD of every map (and the random baseline) when ready, else None."""
    return _stores()["road"].get(_key("road", name, weights, image, target, maps, occluded))


def make_roads(
    name: str,
    weights: str,
    image: ImageChoice,
    target: int,
    maps: Maps,
    occluded: tuple[int, int] | None,
    progress: Progress | None = None,
    on_wait: WaitCallback | None = None,
) -> Mapping[str, bv.Road]:
    """:func:`roads`, measured now unless ready: ``{name: Road}`` for ``maps`` and the random map, in that order."""

    def measure(given: tuple[bv.Backbone, Image.Image]) -> dict[str, bv.Road]:
        named = {**maps, RANDOM: bv.random_map()}
        per_map = road_cost(name, weights, 1)
        total = len(named) * per_map
        out = {}
        for n, (label, saliency) in enumerate(named.items()):
            step = None if progress is None else (lambda done, _t, n=n: progress(n * per_map + done, total))
            out[label] = bv.road(*given, saliency, int(target), progress=step)
        return out

    return kept_in_turn(
        _stores()["road"],
        _key("road", name, weights, image, target, maps, occluded),
        on_wait,
        inputs=lambda: _inputs(name, weights, image),
        make=measure,
    )


def shown_maps(
    family: bv.CamFamily, layer: str, chosen: Sequence[str], occluded: bv.Occlusion | None
) -> dict[str, np.ndarray]:
    """The maps a page measures: each chosen CAM method's at ``layer``, then occlusion's pixel map."""
    maps = {method: family.maps[method][layer] for method in chosen}
    if occluded is not None:
        maps[OCCLUSION] = occluded.pixel_map
    return maps

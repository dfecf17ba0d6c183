"""Pictures a page draws from an analysis, drawn and encoded once, shared by every rerun and session.

A map or an overlay costs 1 to 5 ms to draw and encode, and a page shows 5 to 15 of them on every
rerun: moving a slider redraws the whole page, and a class opens the same pages on the same sample
pictures. What they show depends only on the analysis (backbone, weights, picture) and the view (which
figure, which layer or channel), so their bytes are kept under that key: each figure is encoded once
per (analysis, view). ``st.image`` then sends the same bytes, which Streamlit's media store
keeps once.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from PIL import Image

import backbone_viz as bv
from backbone_viz import render
from backbone_viz.core.lru import LRU
from webui.shell.state import ImageChoice
from webui.views import widgets

#: Encoded figures kept: a map or overlay is 2 to 50 kB, so at most about 25 MB.
MAX_FIGURES = 1024

_FIGURES: LRU[tuple[Hashable, ...], bytes] = LRU(MAX_FIGURES)


def figure(
    image: ImageChoice,
    result: bv.Activations,
    view: tuple[Hashable, ...],
    draw: Callable[[], Image.Image],
    *,
    photo: bool = False,
) -> bytes:
    """The bytes ``st.image`` gets for one figure drawn from ``result``, the analysis of ``image``.

    The analysis is named by the result itself (backbone, weights, head, knock-out) and the picture's
    hash, so a figure of another analysis (the other weights, a knock-out) is never mistaken for it.

    Args:
        view: what else the figure depends on, e.g. ``("strip", 3)`` or ``("card overlay", layer, ch)``:
            every value that ``draw`` reads besides the analysis.
        draw: draws the figure (only when it is not kept yet).
        photo: as :func:`webui.views.widgets.shown` (JPEG for photo-like pictures, else a fast PNG).
    """
    analysis = (result.backbone, result.weights, result.head, result.knockout, image.sha256)
    return kept((*analysis, *view), draw, photo=photo)


def layer_map(image: ImageChoice, result: bv.Activations, layer: bv.LayerSpec) -> bytes:
    """The map that stands for ``layer`` (its representative channel) on the model's crop, as Home, the
    lessons and Feature build-up show it for each stage."""
    size = result.input_image.width
    return figure(
        image,
        result,
        ("layer map", layer.name),
        lambda: render.map_image(render.representative(result, layer), size=size),
    )


def kept(key: tuple[Hashable, ...], draw: Callable[[], Image.Image], *, photo: bool = False) -> bytes:
    """The bytes of a figure that ``key`` names completely (for one that is not drawn from the analysis,
    e.g. a channel's feature visualization: backbone, weights, layer, channel)."""
    made = _FIGURES.get(key)
    if made is None:
        made = _FIGURES.put(key, widgets.shown(draw(), photo=photo))
    return made


def clear() -> None:
    """Forgets every kept figure (with the analyses and backbones they were drawn from)."""
    _FIGURES.clear()

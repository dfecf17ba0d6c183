"""Numbers about one analysis that a sentence can quote: which channel follows the picture's edges or its
brightness, how many bright spots a Grad-CAM map has.

The lessons (:mod:`webui.lessons`) build their sentences from these, so each claim is measured on the
learner's own picture and backbone; tests check the functions on their own. Pure functions: no model
run, nothing changed.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from backbone_viz.core.specs import LayerSpec
from backbone_viz.explain.analysis import Activations

#: A Grad-CAM cell is part of a bright spot above this fraction of the map's maximum.
SPOT_LEVEL = 0.5


def edges(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """The picture's edge map (gradient magnitude of its brightness), resized to ``size`` = (w, h)."""
    grey = np.asarray(image.convert("L"), dtype=np.float32)
    gx = np.zeros_like(grey)
    gy = np.zeros_like(grey)
    gx[:, 1:-1] = grey[:, 2:] - grey[:, :-2]
    gy[1:-1] = grey[2:] - grey[:-2]
    resized = Image.fromarray(np.hypot(gx, gy)).resize(size, Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32)


def correlations(maps: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Pearson correlation of each (h, w) map of ``maps`` (C, h, w) with ``reference`` (h, w); 0 for a
    flat map."""
    x = maps.reshape(maps.shape[0], -1).astype(np.float64)
    x = x - x.mean(axis=1, keepdims=True)
    y = reference.ravel().astype(np.float64)
    y = y - y.mean()
    norms = np.linalg.norm(x, axis=1) * np.linalg.norm(y)
    return np.divide(x @ y, norms, out=np.zeros(len(x)), where=norms > 0)


def edge_channel(result: Activations, layer: LayerSpec) -> tuple[int, float, float]:
    """The channel of ``layer`` whose map matches the picture's edge map best.

    Returns:
        ``(channel, its correlation, the median channel's correlation)``.
    """
    maps = result.activations[layer.name]
    edge_map = edges(result.input_image, (maps.shape[2], maps.shape[1]))
    r = correlations(maps, edge_map)
    best = int(np.argmax(r))
    return best, float(r[best]), float(np.median(r))


def brightness_match(result: Activations, layer: LayerSpec) -> tuple[int, float]:
    """The channel of ``layer`` that follows the picture's brightness best, and its correlation (either
    sign: a channel may copy the picture as its negative)."""
    maps = result.activations[layer.name]
    grey = result.input_image.convert("L").resize((maps.shape[2], maps.shape[1]), Image.Resampling.BILINEAR)
    r = np.abs(correlations(maps, np.asarray(grey, dtype=np.float32)))
    best = int(np.argmax(r))
    return best, float(r[best])


def spots(cam: np.ndarray, *, level: float = SPOT_LEVEL) -> int:
    """How many separate bright spots a Grad-CAM map has: groups of touching cells (8-neighbours) above
    ``level`` × its maximum; 0 for an empty map."""
    peak = float(cam.max())
    if peak <= 0:
        return 0
    _, count = ndimage.label(cam > level * peak, structure=np.ones((3, 3)))
    return int(count)

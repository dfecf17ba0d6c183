"""Where is it? A box from Grad-CAM, with no detector trained.

Zhou et al. (2016, "Learning Deep Features for Discriminative Localization", section 3) turn a class
activation map into a box: keep the pixels above 20 % of the map's maximum, take the largest connected
region, and draw the box around it. A classifier trained only on whole-picture labels thus gives a rough
box for the class it explains. Here the map is the Grad-CAM of an analysis, upsampled bilinearly onto the
crop the model saw (as :func:`backbone_viz.render.overlay` draws it); for EfficientNet-Lite0's last layer
it equals that paper's CAM up to a constant factor.

Boxes are in crop pixels and INCLUSIVE: ``(x0, y0, x1, y1)`` is the pixels ``x0..x1`` by ``y0..y1``, so a
box over the whole 224 x 224 crop is ``(0, 0, 223, 223)`` and PIL's ``ImageDraw.rectangle`` draws it as is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from backbone_viz.core.specs import LayerSpec
from backbone_viz.errors import BoxError
from backbone_viz.explain.analysis import AnalysisResult, Prediction, upsample

__all__ = ["CamBox", "box_from_cam", "box_iou", "boxes_by_stage", "mask_box", "mask_iou"]

#: Zhou et al. 2016 keep the pixels above 20 % of the map's maximum.
DEFAULT_THRESHOLD = 0.2

Box = tuple[int, int, int, int]


@dataclass(frozen=True, eq=False)
class CamBox:
    """A box around where Grad-CAM says the explained class is.

    Attributes:
        box: ``(x0, y0, x1, y1)`` in crop pixels, inclusive (see the module docstring).
        share: the kept region's pixels / the crop's pixels, in (0, 1].
        layer: the layer whose Grad-CAM was used.
        target: the class whose Grad-CAM it is, with its probability.
        threshold: the share of the map's maximum a pixel had to exceed to be kept.
        regions: how many separate regions were above the threshold (the box surrounds the largest).
        mask: (H, W) bool, read-only: the kept region on the crop (H x W, 224 x 224 for every bundled spec).
    """

    box: Box
    share: float
    layer: LayerSpec
    target: Prediction
    threshold: float
    regions: int
    mask: np.ndarray = field(repr=False)

    @property
    def width(self) -> int:
        """Width of the box in pixels."""
        return self.box[2] - self.box[0] + 1

    @property
    def height(self) -> int:
        """Height of the box in pixels."""
        return self.box[3] - self.box[1] + 1

    @property
    def box_share(self) -> float:
        """The box's pixels / the crop's pixels, in (0, 1]."""
        return self.width * self.height / self.mask.size


def box_from_cam(
    result: AnalysisResult,
    layer: str | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    connectivity: int = 8,
) -> CamBox:
    """The box around the largest region where one layer's Grad-CAM is above ``threshold`` x its maximum.

    Args:
        result: an analysis from :func:`backbone_viz.analyze`; its ``target`` is the class boxed (pass
            ``target=`` to ``analyze`` to box another class).
        layer: a layer's dotted name or label (``"bn2"``, ``"blocks.4.2"``); default the last layer of the
            last stage, whose Grad-CAM is the class activation map of Zhou et al.
        threshold: in (0, 1); a pixel is kept when its upsampled Grad-CAM is above ``threshold`` x the
            upsampled map's maximum (0.2 as Zhou et al.; higher gives smaller, tighter boxes).
        connectivity: 8 (pixels touching at a corner are one region) or 4 (only sides count).

    Returns:
        A :class:`CamBox` in crop pixels.

    Raises:
        BoxError: an unknown layer, a threshold outside (0, 1), or a Grad-CAM that is zero everywhere
            (nothing in the picture raises the class's score at that layer: there is nothing to box).
        ValueError: ``connectivity`` is neither 4 nor 8.
    """
    threshold = _checked_threshold(threshold)
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")
    spec = _find_layer(result, layer)
    height, width = result.input_image.height, result.input_image.width
    big = upsample(result.gradcam[spec.name], (height, width))
    peak = float(big.max())
    if not np.isfinite(peak) or peak <= 0.0:
        raise BoxError(
            f"The Grad-CAM of '{result.target.label}' at {spec.label} is zero everywhere: nothing in this "
            "picture raises that class's score there, so there is nothing to box.",
            "Choose another class (one of the top-5, say) or a later stage.",
        )
    labels, count = _regions(big > threshold * peak, connectivity)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    # The largest region; a tie goes to the one holding the higher Grad-CAM.
    peaks = np.zeros(count + 1, dtype=np.float32)
    np.maximum.at(peaks, labels.ravel(), big.ravel())
    best = 1 + int(np.lexsort((-peaks[1:], -sizes))[0])
    mask = labels == best
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    mask.flags.writeable = False
    return CamBox(
        box=(int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])),
        share=float(sizes[best - 1]) / mask.size,
        layer=spec,
        target=result.target,
        threshold=threshold,
        regions=count,
        mask=mask,
    )


def boxes_by_stage(
    result: AnalysisResult, threshold: float = DEFAULT_THRESHOLD, *, connectivity: int = 8
) -> Mapping[int, CamBox | None]:
    """One box per stage, from each stage's last layer: how the box changes from early to late stages.

    Args:
        result: an analysis from :func:`backbone_viz.analyze`.
        threshold: as for :func:`box_from_cam`.
        connectivity: as for :func:`box_from_cam`.

    Returns:
        ``{stage index: box}`` in stage order; the box is None where that stage's Grad-CAM is zero everywhere
        (where :func:`box_from_cam` raises :class:`BoxError`).

    Raises:
        BoxError: a threshold outside (0, 1).
    """
    threshold = _checked_threshold(threshold)
    last: dict[int, LayerSpec] = {}
    for spec in result.layers:  # forward order: the last one seen per stage is its last layer
        last[spec.stage] = spec
    boxes: dict[int, CamBox | None] = {}
    for stage, spec in last.items():
        try:
            boxes[stage] = box_from_cam(result, spec.name, threshold, connectivity=connectivity)
        except BoxError:
            # Only the "zero everywhere" case can get here: the layer and the threshold were checked.
            boxes[stage] = None
    return boxes


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two inclusive pixel boxes ``(x0, y0, x1, y1)``.

    Returns:
        A number in [0, 1]: 1 for the same box, 0 for boxes that share no pixel.

    Raises:
        ValueError: a box with x1 < x0 or y1 < y0.
    """
    for box in (a, b):
        if box[2] < box[0] or box[3] < box[1]:
            raise ValueError(f"a box is (x0, y0, x1, y1) with x0 <= x1 and y0 <= y1, got {box!r}")
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    inter = max(iw, 0) * max(ih, 0)
    area_a = (a[2] - a[0] + 1) * (a[3] - a[1] + 1)
    area_b = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return inter / (area_a + area_b - inter)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks of the same shape (1.0 when both are empty).

    Raises:
        ValueError: masks of different shapes.
    """
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"masks of different shapes: {a.shape} and {b.shape}")
    union = int(np.count_nonzero(a | b))
    return 1.0 if union == 0 else int(np.count_nonzero(a & b)) / union


def mask_box(mask: np.ndarray) -> Box:
    """The inclusive pixel box ``(x0, y0, x1, y1)`` around a boolean mask's True pixels.

    Raises:
        ValueError: an empty mask.
    """
    mask = np.asarray(mask, dtype=bool)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ValueError("an empty mask has no box")
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def _checked_threshold(threshold: float) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating, np.integer)):
        raise TypeError(f"threshold must be a number, not {type(threshold).__name__}")
    if not 0.0 < float(threshold) < 1.0:
        raise BoxError(
            f"A threshold of {threshold} is not between 0 and 1: the box keeps pixels above that share of "
            "the Grad-CAM's maximum.",
            "Choose a threshold between 0 and 1, such as 0.2 (Zhou et al.'s 20 %).",
        )
    return float(threshold)


def _find_layer(result: AnalysisResult, key: str | None) -> LayerSpec:
    if key is None:
        return result.layers[-1]  # forward order: the last stage's last layer
    for spec in result.layers:
        if key in (spec.name, spec.label, *spec.former_labels):
            return spec
    raise BoxError(
        f"There is no layer {key!r} in {result.backbone}.",
        "Choose one of: " + ", ".join(spec.label for spec in result.layers) + ".",
    )


def _regions(keep: np.ndarray, connectivity: int) -> tuple[np.ndarray, int]:
    """Labels the connected regions of a boolean map: ``(labels, count)``, 0 outside, 1..count inside."""
    # scipy is a dependency (the sanity check's Spearman rank); imported here so that importing the
    # package stays light.
    from scipy import ndimage

    structure = np.ones((3, 3), dtype=bool) if connectivity == 8 else None  # None: scipy's 4-connectivity
    labels, count = ndimage.label(keep, structure=structure)
    return labels, int(count)

"""The maps a detector's neck reads: one per stride, from the same backbone as the classifier.

A detector's feature pyramid network (FPN) reuses a classification backbone and reads the deepest map
at each stride, the levels that the spec lists in its ``feature_info`` (as timm's models do).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from backbone_viz.core.specs import LayerSpec
from backbone_viz.explain.analysis import AnalysisResult
from backbone_viz.zoo import get_spec

__all__ = ["PyramidLevel", "feature_pyramid"]


@dataclass(frozen=True, eq=False)
class PyramidLevel:
    """One input of a feature pyramid network: the backbone's last map at one stride.

    Attributes:
        name: FPN's name for it, ``"C{log2(stride)}"``: ``"C3"`` for stride 8, ``"C5"`` for stride 32.
        stride: input pixels per map pixel.
        layer: the backbone layer it comes from (the last listed layer at that stride).
        activation: (C, h, w) float32, that layer's output in the analysis.
    """

    name: str
    stride: int
    layer: LayerSpec
    activation: np.ndarray = field(repr=False)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, h, w) of the map."""
        c, h, w = self.activation.shape
        return c, h, w


def feature_pyramid(res: AnalysisResult, *, strides: Sequence[int] = (8, 16, 32)) -> list[PyramidLevel]:
    """The maps a detector's feature pyramid network (FPN) takes from this backbone.

    A detector reads one map per stride: the LAST layer at that stride, whose features are the deepest
    at that resolution (C3, C4, C5 in FPN naming for strides 8, 16, 32), as the spec's ``feature_info``
    lists them. A stride with no listed layer is skipped: VGG's listed layers end at stride 16 (its
    stride-32 map exists only after the last max pool, which is not a listed layer), so it gives C3 and
    C4 only.

    Args:
        res: an analysis from :func:`backbone_viz.analyze`.
        strides: powers of two, in the order the levels are returned.

    Returns:
        One :class:`PyramidLevel` per stride that the backbone has, in the order of ``strides``.

    Raises:
        ValueError: a stride that is not a power of two.
    """
    by_name = {layer.name: layer for layer in res.layers}
    at_stride = {info.reduction: by_name[info.module] for info in get_spec(res.backbone).feature_info}
    levels = []
    for stride in strides:
        if not isinstance(stride, (int, np.integer)) or stride < 1 or stride & (stride - 1):
            raise ValueError(f"strides must be powers of two, got {stride!r}")
        layer = at_stride.get(int(stride))
        if layer is None:
            continue
        levels.append(
            PyramidLevel(
                name=f"C{int(stride).bit_length() - 1}",
                stride=int(stride),
                layer=layer,
                activation=res.activations[layer.name],
            )
        )
    return levels

"""A class score split into one share per channel of the last stage.

A head that is global average pooling + one linear layer scores class k as a plain sum over the last
stage's channels, ``sum_c weight[k, c] * pooled[c] + bias[k]``, so each channel's share of the score
is exact and can be shown next to its map. The backbone's own head is only read, never changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from backbone_viz.core.backbones import Backbone
from backbone_viz.errors import HeadError
from backbone_viz.explain.analysis import AnalysisResult, Prediction
from backbone_viz.heads.head import check_fits

if TYPE_CHECKING:
    # Only for the annotation: fitting heads needs scikit-learn, splitting a score does not.
    from backbone_viz.heads.transfer import LinearHead

__all__ = ["Contributions", "head_contributions"]


@dataclass(frozen=True, eq=False)
class Contributions:
    """How one class score splits over the channels of the vector the head reads.

    ``values.sum() + bias == logit`` (up to float32 rounding): the head is linear in the pooled vector.

    Attributes:
        target: the class whose score is split (the analysis's target).
        values: (C,) float64, ``weights[c] * pooled[c]``: what channel c adds to the score.
        bias: the head's bias for the target class.
        logit: the target's score as the analysis computed it, ``res.logits[target.index]``.
        pooled: (C,) the spatial mean of each channel of the last stage, as the head read it.
        weights: (C,) the head's weight row for the target class.
    """

    target: Prediction
    values: np.ndarray = field(repr=False)
    bias: float
    logit: float
    pooled: np.ndarray = field(repr=False)
    weights: np.ndarray = field(repr=False)

    def top_up(self, k: int) -> np.ndarray:
        """Channels that push the score up, largest contribution first.

        Args:
            k: how many channels at most.

        Returns:
            (<= k,) int array of channel indices whose contribution is positive; fewer than ``k`` when
            fewer channels add to the score.
        """
        order = np.argsort(-self.values, kind="stable")
        return order[self.values[order] > 0][: max(k, 0)]

    def top_down(self, k: int) -> np.ndarray:
        """Channels that pull the score down, most negative contribution first.

        Args:
            k: how many channels at most.

        Returns:
            (<= k,) int array of channel indices whose contribution is negative.
        """
        order = np.argsort(self.values, kind="stable")
        return order[self.values[order] < 0][: max(k, 0)]


def head_contributions(
    bb: Backbone, res: AnalysisResult, *, head: LinearHead | None = None
) -> Contributions:
    """Splits the analysed class score into one contribution per channel of the last stage.

    For a head that is global average pooling + one linear layer (ResNet, GoogLeNet, EfficientNet), the
    score of class k is ``sum_c W[k, c] * pooled[c] + b[k]`` where ``pooled[c]`` is the mean of channel c
    of the last stage's map, so each channel's share is exact, not an approximation.

    Args:
        bb: the backbone that made ``res``; its head is only read.
        res: an analysis from :func:`backbone_viz.analyze`; its target class is split.
        head: the :class:`LinearHead` the analysis used, when ``res.head`` is not ``"imagenet"``.

    Returns:
        :class:`Contributions` with (C,) arrays, C the length of ``res.pooled``.

    Raises:
        HeadError: the backbone's score does not split (VGG), the analysis was made with another
            backbone or head than the ones given, or a custom head is missing.
    """
    spec = bb.spec
    if not spec.head_splits:
        raise HeadError(
            f"{spec.title}'s class score is not a sum over its last stage's channels: its head "
            "stacks linear layers with ReLUs between them, and the ReLUs mix the channels nonlinearly.",
            "Use Grad-CAM to see which places drive the score instead.",
        )
    if res.backbone != spec.name or res.weights != bb.weights:
        raise HeadError(
            f"This analysis was made with {res.backbone} ({res.weights} weights), not with "
            f"{spec.name} ({bb.weights} weights).",
            "Analyse the image again with this backbone.",
        )
    t = res.target.index
    if res.head == "imagenet":
        if head is not None:
            raise HeadError(
                f"This analysis used the backbone's own head, not {head.name!r}.",
                "Analyse the image again with head=... to split that head's scores.",
            )
        linear = bb.model.get_submodule(spec.head)
        # Read-only: detach() shares storage without recording anything on the shared model.
        row = linear.weight.detach()[t].to("cpu", torch.float64).numpy().copy()
        bias = float(linear.bias.detach()[t]) if linear.bias is not None else 0.0
    else:
        if head is None or head.name != res.head:
            raise HeadError(
                f"This analysis used the head {res.head!r}; its weights are needed to split the score.",
                "Pass that head: head_contributions(backbone, result, head=new_head).",
            )
        check_fits(head, bb)
        row = head.weight[t].to(torch.float64).numpy().copy()
        bias = float(head.bias[t])
    pooled = np.asarray(res.pooled, dtype=np.float64)
    if row.shape != pooled.shape:
        raise HeadError(
            f"The head reads {row.shape[0]} features but the analysis has {pooled.shape[0]}.",
            "Analyse the image again with this backbone and head.",
        )
    return Contributions(
        target=res.target,
        values=_readonly(row * pooled),
        bias=bias,
        logit=float(res.logits[t]),
        pooled=_readonly(pooled),
        weights=_readonly(row),
    )


def _readonly(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array

"""What a head is: the contract between a classifier and the backbone whose pooled vector it reads.

A head is made for ONE backbone with ONE set of weights. Another backbone (or other weights) of the
same width would run without error and give meaningless scores, so :func:`check_fits` refuses it by
name; :func:`backbone_viz.analyze` and :func:`backbone_viz.head_contributions` both call it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from backbone_viz.errors import HeadError

if TYPE_CHECKING:
    import torch

    from backbone_viz.core.backbones import Backbone

__all__ = ["Head", "check_fits"]


class Head(Protocol):
    """A classifier that reads a backbone's pooled vector (see :func:`backbone_viz.fit_head`).

    Attributes:
        name: display name, shown with its predictions.
        categories: the K class labels, index k being class k's score.
        backbone: spec name of the backbone it was made for (``"efficientnet_lite0"``).
        weights: that backbone's weights (``"pretrained"``, ``"untrained"`` or a checkpoint path).
    """

    name: str
    categories: tuple[str, ...]
    backbone: str
    weights: str

    def logits(self, pooled: torch.Tensor) -> torch.Tensor:
        """Maps pooled features (N, D) to class scores (N, K), differentiably."""
        ...

    def fits(self, backbone: Backbone) -> bool:
        """Whether this head reads ``backbone``'s features: same spec name and same weights."""
        ...


def check_fits(head: Head, backbone: Backbone) -> None:
    """Refuses a head made for another backbone or other weights.

    Args:
        head: the head about to read ``backbone``'s pooled vector.
        backbone: the loaded backbone.

    Raises:
        HeadError: ``head.fits(backbone)`` is false; the message names both backbones and weights.
    """
    if not head.fits(backbone):
        raise HeadError(
            f"The head '{head.name}' was trained on {head.backbone} ({head.weights} weights), "
            f"not on {backbone.spec.name} ({backbone.weights} weights).",
            "Train a new head on this backbone, or switch back to the backbone the head was made for.",
        )

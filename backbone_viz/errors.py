"""The one exception family a user of backbone-viz can cause.

Errors that come from what a user did (a broken image, a wrong checkpoint, no network) are
:class:`BackboneVizError` subclasses. Each carries a short sentence a student understands (``message``)
and a hint what to do next (``hint``); ``str(error)`` joins the two. Programming mistakes (a wrong type,
an unknown keyword) stay ``TypeError``/``ValueError``.
"""

from __future__ import annotations


class BackboneVizError(Exception):
    """Base of every error a user can cause.

    Args:
        message: what went wrong, in one plain sentence.
        hint: what to do about it, in one plain sentence (may be empty).
    """

    def __init__(self, message: str, hint: str = "") -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} {hint}".strip())


class ImageError(BackboneVizError):
    """An image could not be used: unreadable, too large, too small or not an image at all."""


class WeightsError(BackboneVizError):
    """Weights could not be found, downloaded, verified or loaded into the backbone."""


class HeadError(BackboneVizError):
    """A head cannot do what was asked (its score does not split, or its examples are unusable)."""


class BoxError(BackboneVizError):
    """A box cannot be drawn from a class activation map: nothing to box, an unknown layer, a bad threshold."""


class SegmentError(HeadError):
    """Painted strokes cannot train a segmenter: nothing painted, one label alone, strokes that do not match
    the crop or the label names, too many labels."""


class DetectError(HeadError):
    """Boxes cannot train a detector, or a detector cannot look: no examples, a picture with no box, a box of
    zero size or outside the crop, a detector trained on another backbone."""


class KnockoutError(BackboneVizError):
    """A knock-out cannot be done: a block that has nothing to put in its place, or unknown channels."""


class AttributionError(BackboneVizError):
    """An attribution method cannot be done right on this backbone (Guided Backprop through an
    activation that is not a ReLU)."""


class CamError(BackboneVizError, ValueError):
    """A class activation map cannot be made as asked: an unknown method or layer, none chosen, or a number
    of channels out of range. Also a ``ValueError``, which an unknown method name raised before."""


class PerturbationError(BackboneVizError):
    """Pictures cannot be changed as asked to measure an explanation (occlusion, deletion and insertion,
    ROAD): a saliency map that is not one number per place, a patch that does not fit the crop, a step
    or percentages outside their range."""

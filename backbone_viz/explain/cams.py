"""Class activation maps from one layer's activations and gradients: one class per method, registered.

Every gradient-based CAM needs only what :func:`backbone_viz.analyze` already has for every listed
layer after its one forward pass and one ``torch.autograd.grad``: the layer's activations A (N, C, h, w)
and the gradient of the class score with respect to them, dS/dA (N, C, h, w). A method is a subclass of
:class:`CamMethod` that turns those two into a map (N, h, w) and carries its name, title and one
sentence for learners (as captum's ``Attribution`` classes carry theirs); :func:`register_cam` adds it,
and ``analyze(..., cam="name")`` uses it at every layer. Adding a method is one class in this module
(pytorch-grad-cam's ``BaseCAM.get_cam_weights`` is the same seam).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from backbone_viz.core.registry import Registry

_CAMS: Registry[CamMethod] = Registry("CAM method")


class CamMethod:
    """A class activation map computed from a layer's activations and gradients.

    Class attributes:
        name: its identifier in code and links (``"gradcam"``).
        title: its display name (``"Grad-CAM"``).
        sentence: one sentence for a learner: what it does differently.
        paper: who published it, and when.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    sentence: ClassVar[str]
    paper: ClassVar[str]

    def cam(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        """The map of each item of the batch.

        Args:
            activations: A, the layer's output (N, C, h, w).
            gradients: dS/dA, the class score's gradient with respect to it (N, C, h, w).

        Returns:
            (N, h, w) raw values (not normalised: a rendering choice).
        """
        raise NotImplementedError


def register_cam(cls: type[CamMethod]) -> type[CamMethod]:
    """Adds a method (a class decorator).

    Raises:
        ValueError: a method of that name is registered already.
    """
    _CAMS.add(cls.name, cls())
    return cls


def get_cam(name: str) -> CamMethod:
    """A registered method by name.

    Raises:
        ValueError: an unknown name; the message lists the choices.
    """
    return _CAMS.get(name)


def list_cams() -> tuple[CamMethod, ...]:
    """Every registered method, in the order of registration."""
    return tuple(_CAMS)


@register_cam
class GradCAM(CamMethod):
    """Grad-CAM (Selvaraju et al., 2017): ReLU(sum_c mean_hw(dS/dA_c) * A_c)."""

    name = "gradcam"
    title = "Grad-CAM"
    sentence = (
        "Weighs each channel by its average gradient (how much the class score rises when the whole "
        "channel grows) and keeps where the weighted sum is positive."
    )
    paper = "Selvaraju et al., 2017"

    def cam(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        weights = gradients.mean(dim=(2, 3), keepdim=True)
        return F.relu((weights * activations).sum(dim=1))

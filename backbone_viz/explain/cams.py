"""Class activation maps from one layer's activations and gradients: one class per method, registered.

Every gradient-based CAM needs only what :func:`backbone_viz.analyze` already has for every listed
layer after its one forward pass and one ``torch.autograd.grad``: the layer's activations A (N, C, h, w)
and the gradient of the class score with respect to them, dS/dA (N, C, h, w). A method is a subclass of
:class:`CamMethod` that turns those two into a map (N, h, w) and carries its name, title and one
sentence for learners (as captum's ``Attribution`` classes carry theirs); :func:`register_cam` adds it,
and ``analyze(..., cam="name")`` uses it at every layer; :func:`backbone_viz.cam_family` runs every
method at every layer from that same one pass. Adding a method is one class in this module
(pytorch-grad-cam's ``BaseCAM.get_cam_weights`` is the same seam).

The methods here are those of the one pass: Grad-CAM, Grad-CAM++, XGrad-CAM, LayerCAM, HiResCAM and
EigenCAM (which reads the activations alone). Each follows pytorch-grad-cam 1.5.7's arithmetic (its
``get_cam_image`` of the class, then the ``np.maximum(cam, 0)`` its ``compute_cam_per_layer`` applies to
every method) and keeps the map at the layer's own resolution, unnormalised: where pytorch-grad-cam then
min-max normalises and resizes (``scale_cam_image``), that is a rendering choice left to the caller.
``tests/test_cam_family.py`` checks each against pytorch-grad-cam on every backbone. Score-CAM, which
needs one forward pass per channel, lives in :mod:`backbone_viz.explain.score_cam`.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import numpy as np
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
        uses_gradients: False for a method that reads the activations alone (EigenCAM): a pass that
            runs only such methods can skip ``torch.autograd.grad``.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    sentence: ClassVar[str]
    paper: ClassVar[str]
    uses_gradients: ClassVar[bool] = True

    def cam(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        """The map of each item of the batch.

        Args:
            activations: A, the layer's output (N, C, h, w).
            gradients: dS/dA, the class score's gradient with respect to it (N, C, h, w); ``None`` is
                accepted by a method whose ``uses_gradients`` is False.

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


#: Added to the denominators of Grad-CAM++ and XGrad-CAM as pytorch-grad-cam adds them, so that the maps
#: equal its maps (a channel whose activations sum to zero gets a weight near zero, not a division by zero).
GRADCAMPP_EPS = 1e-6
XGRADCAM_EPS = 1e-7


@register_cam
class GradCAMPlusPlus(CamMethod):
    """Grad-CAM++ (Chattopadhay et al., 2018), the closed form of pytorch-grad-cam (the paper's eq. 19).

    ``alpha = g^2 / (2 g^2 + sum_hw(A_c) g^3 + eps)`` (0 where g = 0), each channel's weight
    ``w_c = sum_hw(alpha * ReLU(g))``, map ``ReLU(sum_c w_c A_c)``, with g = dS/dA.
    """

    name = "gradcampp"
    title = "Grad-CAM++"
    sentence = (
        "Counts only the places where a channel raises the class score, each weighed by a factor that "
        "keeps a small region from being drowned by a large one, so several separate regions of the "
        "class can all show up."
    )
    paper = "Chattopadhay et al., 2018"

    def cam(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        g2 = gradients**2
        g3 = g2 * gradients
        sum_a = activations.sum(dim=(2, 3), keepdim=True)
        alpha = g2 / (2 * g2 + sum_a * g3 + GRADCAMPP_EPS)
        alpha = torch.where(gradients != 0, alpha, torch.zeros_like(alpha))
        weights = (F.relu(gradients) * alpha).sum(dim=(2, 3), keepdim=True)
        return F.relu((weights * activations).sum(dim=1))


@register_cam
class XGradCAM(CamMethod):
    """XGrad-CAM (Fu et al., 2020): ``w_c = sum_hw(g * A_c) / (sum_hw(A_c) + eps)``, map ``ReLU(sum_c w_c A_c)``."""

    name = "xgradcam"
    title = "XGrad-CAM"
    sentence = (
        "Averages each channel's gradient over the places where the channel is active, in proportion "
        "to how active it is there, instead of over the whole map."
    )
    paper = "Fu et al., 2020"

    def cam(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        sum_a = activations.sum(dim=(2, 3), keepdim=True)
        weights = (gradients * activations / (sum_a + XGRADCAM_EPS)).sum(dim=(2, 3), keepdim=True)
        return F.relu((weights * activations).sum(dim=1))


@register_cam
class LayerCAM(CamMethod):
    """LayerCAM (Jiang et al., 2021): ``ReLU(sum_c ReLU(dS/dA_c) * A_c)``, a weight at every place."""

    name = "layercam"
    title = "LayerCAM"
    sentence = (
        "Weighs every place of every channel by its own gradient, keeping only the places where it "
        "raises the class score, so the map keeps the layer's fine detail."
    )
    paper = "Jiang et al., 2021"

    def cam(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return F.relu((F.relu(gradients) * activations).sum(dim=1))


@register_cam
class HiResCAM(CamMethod):
    """HiResCAM (Draelos and Carin, 2020): ``ReLU(sum_c dS/dA_c * A_c)``, the element-wise product.

    Where the score is a linear function of the layer (global average pooling then one linear layer, as
    after ResNet's last layer), the map before its ReLU sums to the score minus the head's bias.
    """

    name = "hirescam"
    title = "HiResCAM"
    sentence = (
        "Multiplies every activation by its own gradient instead of the channel's average gradient, "
        "so each place shows how much it itself added to the class score."
    )
    paper = "Draelos and Carin, 2020"

    def cam(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return F.relu((gradients * activations).sum(dim=1))


@register_cam
class EigenCAM(CamMethod):
    """EigenCAM (Muhammad and Yeasin, 2020): the first principal component of the activations, no gradient.

    Each place of the layer is a point with C coordinates (its activations); the points are centred
    (the mean over places is taken off each channel, as pytorch-grad-cam's ``get_2d_projection`` does)
    and projected onto the direction in which they vary most (the first right singular vector of the
    (h*w, C) matrix); the map is ``ReLU`` of that projection.

    **The sign.** A principal direction v and its opposite -v are equally principal: the SVD returns one
    of the two, and which one follows from the arithmetic of LAPACK's ``gesdd``, not from the picture's
    meaning. Like pytorch-grad-cam (1.5.7, no sign correction), the map keeps the direction numpy's SVD
    returns, so after the ReLU it shows the places on the positive side of the mean along it: often
    the main object, sometimes its background instead. The SVD is numpy's, on the host, in float32 as
    pytorch-grad-cam computes it, so both pick the same direction; ``full_matrices=False`` returns the
    same first right singular vector without the (h*w, h*w) matrix pytorch-grad-cam also computes.
    The class score plays no part: the map is the same for every class.
    """

    name = "eigencam"
    title = "EigenCAM"
    sentence = (
        "Uses no gradient and no class at all: it shows where the layer's activations differ most from "
        "their average, along the one direction in which they vary most, so it is the same for every class."
    )
    paper = "Muhammad and Yeasin, 2020"
    uses_gradients = False

    def cam(self, activations: torch.Tensor, gradients: torch.Tensor | None = None) -> torch.Tensor:
        n, _, h, w = activations.shape
        batch = activations.detach().to("cpu", torch.float32).numpy()
        maps = np.empty((n, h, w), dtype=np.float32)
        for i, a in enumerate(batch):
            maps[i] = eigen_projection(a)
        return F.relu(torch.from_numpy(maps).to(activations.device))


def eigen_projection(activations: np.ndarray) -> np.ndarray:
    """EigenCAM's projection of one map's activations, before the ReLU: pytorch-grad-cam 1.5.7's
    ``get_2d_projection`` of one item, sign included (see :class:`EigenCAM`).

    Each place is a point with C coordinates; the points are centred (the mean over places is taken off
    each channel; NaNs count as 0) and projected onto the first right singular vector of the (h*w, C)
    matrix, the direction in which they vary most.

    Args:
        activations: (C, h, w), any float dtype (computed in float32, as pytorch-grad-cam does).

    Returns:
        (h, w) float32: each place's signed distance from the mean along that direction.
    """
    c, h, w = activations.shape
    points = np.asarray(activations, dtype=np.float32).reshape(c, h * w).T
    points = np.where(np.isnan(points), np.float32(0), points)  # as get_2d_projection
    points = points - points.mean(axis=0)
    # One BLAS thread: OpenBLAS's threads spin-wait on busy shared cores, which made the SVDs of
    # ResNet-50's 17 layers take 11 to 18 s instead of 0.7 s on 2 cores.
    with _blas_controller().limit(limits=1, user_api="blas"):
        vt = np.linalg.svd(points, full_matrices=False)[2]
        projection = points @ vt[0]
    return projection.reshape(h, w).astype(np.float32, copy=False)


@functools.cache
def _blas_controller() -> Any:
    """A ``threadpoolctl.ThreadpoolController`` of the process's BLAS libraries, made once (finding them
    takes milliseconds); threadpoolctl comes with scikit-learn, a requirement."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()

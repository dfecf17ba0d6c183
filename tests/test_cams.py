"""The CAM seam: a method is one registered class, and analyze uses it at every layer from the same pass."""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from PIL import Image

import backbone_viz as bv
from backbone_viz.explain import cams
from tests.conftest import TinyNet, sample, tiny_backbone

PIXELS = np.array([[[255, 0, 51], [0, 0, 255]], [[102, 0, 0], [204, 0, 102]]], dtype=np.uint8)


@pytest.fixture
def elementwise() -> Iterator[type[bv.CamMethod]]:
    """A second method, registered for one test: HiResCAM's element-wise product, ReLU(sum_c dS/dA_c * A_c)."""

    @bv.register_cam
    class Elementwise(bv.CamMethod):
        name = "elementwise"
        title = "Element-wise CAM"
        sentence = "Multiplies each activation by its own gradient instead of the channel's average."
        paper = "Draelos & Carin, 2020"

        def cam(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
            return torch.relu((gradients * activations).sum(dim=1))

    yield Elementwise
    cams._CAMS.remove("elementwise")


def test_gradcam_is_the_registered_default() -> None:
    assert [m.name for m in bv.list_cams()][0] == "gradcam"
    assert bv.get_cam("gradcam").title == "Grad-CAM"
    res = bv.analyze(tiny_backbone(TinyNet(), 2, ("a", "b")), Image.fromarray(PIXELS), target=0)
    assert res.cam == "gradcam"


def test_a_second_method_is_one_class_and_analyze_uses_it(elementwise: type[bv.CamMethod]) -> None:
    bb = tiny_backbone(TinyNet(), 2, ("a", "b"))
    res = bv.analyze(bb, Image.fromarray(PIXELS), target=0, cam="elementwise")
    assert res.cam == "elementwise" and bv.get_cam("elementwise").paper == "Draelos & Carin, 2020"
    rgb = PIXELS.astype(np.float32) / 255.0
    a = np.stack([rgb[..., 0], rgb[..., 2]])  # the ReLU'd 1x1 convolution: red and blue
    # Score_0 = fc[0] . mean_hw(A) + b: dS/dA_c = W[0, c] / 4 at every position.
    expected = np.maximum(0.0, (2.0 * a[0] - 1.0 * a[1]) / 4.0)
    np.testing.assert_allclose(res.gradcam["relu"], expected, atol=1e-6)
    # Where the gradient is uniform, Grad-CAM and the element-wise map coincide; on a real network not.
    lite0 = bv.load_backbone("efficientnet_lite0", device="cpu")
    grad = bv.layer_gradcam(lite0, sample("cat"))
    other = bv.layer_gradcam(lite0, sample("cat"), grad.target.index, cam="elementwise")
    assert other.cam == "elementwise" and grad.cam == "gradcam"
    assert not np.allclose(other.gradcam["blocks.2.1"], grad.gradcam["blocks.2.1"], rtol=0.05)


def test_an_unknown_method_is_refused_before_the_model_runs() -> None:
    with pytest.raises(ValueError, match=re.escape("Unknown CAM method 'gradcam++'; choose one of: gradcam")):
        bv.analyze(tiny_backbone(TinyNet(), 2, ("a", "b")), Image.fromarray(PIXELS), cam="gradcam++")


def test_a_method_cannot_be_registered_twice() -> None:
    with pytest.raises(ValueError, match="registered already"):
        bv.register_cam(type(bv.get_cam("gradcam")))

"""Score-CAM: the paper's recipe on a tiny model by hand, pytorch-grad-cam's ScoreCAM on real backbones, its cost first."""

from __future__ import annotations

import contextlib
import copy
import io
import re

import numpy as np
import pytest
import torch
from PIL import Image

import backbone_viz as bv
from backbone_viz.explain.score_cam import MASK_EPS
from tests.conftest import TinyNet, model_left_alone, sample, tiny_backbone

#: Red everywhere but the corner, no blue at all: the blue channel of TinyNet's layer is flat (all zero).
PIXELS = np.array([[[255, 0, 0], [51, 0, 0]], [[102, 0, 0], [0, 0, 0]]], dtype=np.uint8)


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread: None) -> None:
    """One torch thread, as the app runs each session (module-scoped, from tests.conftest)."""


def test_the_paper_s_recipe_by_hand_on_a_tiny_model() -> None:
    model = TinyNet()
    bb = tiny_backbone(model, 2, ("a", "b"))
    res = bv.score_cam(bb, Image.fromarray(PIXELS), target=1, layer="relu")
    x = torch.from_numpy(PIXELS.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    red = x[0, 0]  # the layer's channel 0 is the red plane; channel 1 (blue) is zero everywhere
    mask = (red - red.min()) / (red.max() - red.min() + MASK_EPS)  # 2 -> 2 pixels: upsampling is the identity
    with torch.no_grad():
        p_red = torch.softmax(model(x * mask), dim=1)[0, 1]
        p_flat = torch.softmax(model(torch.zeros_like(x)), dim=1)[0, 1]  # a flat map masks everything out
    # Channel 0 has the higher mean activation, so it comes first.
    np.testing.assert_array_equal(res.channels, [0, 1])
    np.testing.assert_allclose(res.scores, [p_red, p_flat], rtol=1e-6)
    np.testing.assert_allclose(res.map, np.maximum(0.0, float(p_red) * red.numpy()), rtol=1e-6)
    # The flat channel shares the blank picture's pass: the picture, the blank one, the red-masked one.
    assert res.forward_passes == 3 and res.variant == "paper" and res.target.index == 1
    assert not res.map.flags.writeable and not res.scores.flags.writeable and not res.channels.flags.writeable


def test_top_k_takes_the_channels_of_highest_mean_activation(lite0: bv.Backbone) -> None:
    picture = sample("cat")
    acts = bv.layer_activations(lite0, picture).activations["blocks.2.1"]
    top = np.argsort(-acts.mean(axis=(1, 2)), kind="stable")[:5]
    calls: list[tuple[int, int]] = []
    res = bv.score_cam(
        lite0, picture, layer="blocks.2.1", k=5, batch_size=2, progress=lambda d, t: calls.append((d, t))
    )
    np.testing.assert_array_equal(res.channels, top)
    assert res.map.shape == (28, 28) and res.layer.name == "blocks.2.1"
    assert calls == [(2, 5), (4, 5), (5, 5)] and res.forward_passes == 6
    # Only those channels make the map: ReLU(sum_k w_k A_k).
    expected = np.maximum(0.0, np.tensordot(res.scores, acts[top], axes=1))
    np.testing.assert_allclose(res.map, expected, rtol=1e-5, atol=1e-6 * float(expected.max()))


def test_a_progress_callback_that_raises_stops_the_run(lite0: bv.Backbone) -> None:
    class Stop(Exception):
        pass

    def stop(done: int, total: int) -> None:
        raise Stop

    with pytest.raises(Stop):
        bv.score_cam(lite0, sample("cat"), layer="blocks.2.1", k=8, batch_size=4, progress=stop)


@pytest.mark.parametrize(
    ("name", "layer"),
    [("efficientnet_lite0", "blocks.2.1"), ("resnet18", "layer2.1")],
    ids=["lite0", "resnet18"],
)
def test_the_pytorch_grad_cam_variant_equals_its_score_cam(name: str, layer: str) -> None:
    """All channels, the same layer and class: pytorch-grad-cam's map at the layer's resolution (its
    ``get_cam_image`` and ReLU, before ``scale_cam_image``), within 1e-4 of its maximum (measured: 4e-7)."""
    pgc = pytest.importorskip("pytorch_grad_cam", reason="pytorch-grad-cam is a test dependency")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    bb = bv.load_backbone(
        name, weights="pretrained" if name == "efficientnet_lite0" else "untrained", device="cpu"
    )
    picture = sample("cat")
    check = model_left_alone(bb.model)
    ours = bv.score_cam(bb, picture, layer=layer, variant="pytorch_grad_cam")
    paper = bv.score_cam(bb, picture, layer=layer)
    check()
    model = copy.deepcopy(bb.model)  # pytorch-grad-cam hooks the model it is given
    module = dict(model.named_modules())[layer]
    x = bb.preprocess(picture)
    with pgc.ScoreCAM(model, [module]) as cam:
        with torch.no_grad():
            cam.activations_and_grads(x)
        acts = cam.activations_and_grads.activations[0].numpy()
        targets = [ClassifierOutputTarget(ours.target.index)]
        with contextlib.redirect_stderr(io.StringIO()):  # its tqdm bar
            ref = np.maximum(cam.get_cam_image(x, module, targets, acts, None, False), 0)[0]
    assert len(ours.channels) == acts.shape[1] and ours.forward_passes <= acts.shape[1] + 2
    assert float(ref.max()) > 0
    assert float(np.abs(ours.map - ref).max()) <= 1e-4 * float(ref.max())
    # The paper's variant weighs by the class's probability: the same channels, other weights.
    assert paper.variant == "paper" and np.all((paper.scores >= 0) & (paper.scores <= 1))
    np.testing.assert_allclose(ours.scores.sum(), 1.0, rtol=1e-5)  # a softmax over the channels


def test_the_cost_is_stated_before_running(lite0: bv.Backbone) -> None:
    check = model_left_alone(lite0.model)
    cost = bv.score_cam_cost(lite0, "blocks.2.1", k=10, batch_size=4)
    check()
    assert (cost.layer, cost.channels, cost.forward_passes, cost.batches) == ("blocks.2.1", 10, 11, 3)
    assert 0 < cost.seconds_per_picture < 5 and cost.seconds == pytest.approx(11 * cost.seconds_per_picture)
    everything = bv.score_cam_cost(lite0)  # the last listed layer, all its channels
    assert (everything.layer, everything.channels, everything.forward_passes) == ("bn2", 1280, 1281)


def test_user_mistakes_say_what_to_choose(lite0: bv.Backbone) -> None:
    picture = sample("cat")
    with pytest.raises(
        bv.CamError, match=re.escape("Layer blocks.2.1 has 40 channels, so Score-CAM can weigh 1 to 40")
    ):
        bv.score_cam(lite0, picture, layer="blocks.2.1", k=41)
    with pytest.raises(bv.CamError, match="1 to 40"):
        bv.score_cam_cost(lite0, "blocks.2.1", k=0)
    with pytest.raises(bv.CamError, match=r"no layer 'layer4'\. Choose one of: stem, "):
        bv.score_cam(lite0, picture, layer="layer4")
    with pytest.raises(ValueError, match="batch_size"):
        bv.score_cam(lite0, picture, batch_size=0)
    with pytest.raises(ValueError, match="variant"):
        bv.score_cam(lite0, picture, variant="torchcam")  # type: ignore[arg-type]
    with pytest.raises(bv.BackboneVizError, match="no class called"):
        bv.score_cam(lite0, picture, "no such class", layer="blocks.2.1", k=1)

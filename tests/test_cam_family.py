"""The CAM family from one pass: each method equals pytorch-grad-cam's, on every backbone, and the model is left alone.

pytorch-grad-cam (a test-only dependency, requirements-dev.txt) runs on a deep copy of each backbone's model:
it registers hooks and calls ``.backward()``, which the shared model must never see. Its maps are taken at the
seam where they are still at the layer's resolution: ``BaseCAM.get_cam_image`` on the activations and
gradients its hooks captured, then the ``np.maximum(cam, 0)`` of ``compute_cam_per_layer``, before
``scale_cam_image`` normalises and resizes them.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from types import MappingProxyType

import numpy as np
import pytest
import torch

import backbone_viz as bv
from tests.conftest import model_left_alone, sample

pgc = pytest.importorskip(
    "pytorch_grad_cam", reason="pytorch-grad-cam is a test dependency (requirements-dev.txt)"
)
from pytorch_grad_cam.activations_and_gradients import ActivationsAndGradients  # noqa: E402
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

METHODS = ("gradcam", "gradcampp", "xgradcam", "layercam", "hirescam", "eigencam")
THEIRS = {
    "gradcam": pgc.GradCAM,
    "gradcampp": pgc.GradCAMPlusPlus,
    "xgradcam": pgc.XGradCAM,
    "layercam": pgc.LayerCAM,
    "hirescam": pgc.HiResCAM,
    "eigencam": pgc.EigenCAM,
}
#: Every backbone family; Lite0 with its real weights, the others untrained (no download offline).
BACKBONES = ("efficientnet_lite0", "resnet18", "resnet50", "vgg16", "googlenet")
#: pytorch-grad-cam's get_2d_projection asks numpy for the full (h*w, h*w) matrix U it never uses: 10 GB at
#: VGG's stride 1. Above this many places its SVD is asked for the reduced U instead (the same first right
#: singular vector, sign included: test_reduced_svd_gives_pytorch_grad_cam_the_same_eigencam).
FULL_SVD_PLACES = 56 * 56


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread: None) -> None:
    """One torch thread, as the app runs each session (module-scoped, from tests.conftest)."""


@pytest.fixture(scope="module")
def cat() -> object:
    return sample("cat")


def _last_of_each_stage(bb: bv.Backbone) -> list[str]:
    last: dict[int, str] = {}
    for layer in bb.spec.layers:
        last[layer.stage] = layer.name
    return list(last.values())


def _theirs(
    bb: bv.Backbone, picture: object, layers: list[str], target: int
) -> dict[str, dict[str, np.ndarray]]:
    """pytorch-grad-cam's map of each method at each layer, from ONE of its forward and backward passes on a
    deep copy of the model (its hooks capture every layer at once; each method's ``get_cam_image`` then reads
    the same captured arrays, as its ``compute_cam_per_layer`` does)."""
    model = copy.deepcopy(bb.model)
    for p in model.parameters():
        p.requires_grad_(True)  # the copy only: its backward needs a graph; the shared model's stay off
    modules = dict(model.named_modules())
    hooks = ActivationsAndGradients(model, [modules[n] for n in layers], None)
    try:
        out = hooks(bb.preprocess(picture))
        ClassifierOutputTarget(target)(out[0]).backward()
        acts = [a.numpy() for a in hooks.activations]
        grads = [g.numpy() for g in hooks.gradients]
    finally:
        hooks.release()
    x = bb.preprocess(picture)
    maps: dict[str, dict[str, np.ndarray]] = {m: {} for m in METHODS}
    real_svd = np.linalg.svd
    for method in METHODS:
        cam = THEIRS[method](model, [])  # no target layer: no hooks; get_cam_image reads the arrays given
        for name, a, g in zip(layers, acts, grads, strict=True):
            if method == "eigencam" and a.shape[2] * a.shape[3] > FULL_SVD_PLACES:
                np.linalg.svd = lambda m, full_matrices=True, **kw: real_svd(m, full_matrices=False, **kw)
            try:
                raw = cam.get_cam_image(x, modules[name], [ClassifierOutputTarget(target)], a, g, False)
            finally:
                np.linalg.svd = real_svd
            maps[method][name] = np.maximum(raw, 0)[0]
    return maps


@pytest.fixture(scope="module", params=BACKBONES)
def both(request: pytest.FixtureRequest, cat: object) -> Iterator[tuple[str, bv.CamFamily, dict]]:
    name = request.param
    bb = bv.load_backbone(
        name, weights="pretrained" if name == "efficientnet_lite0" else "untrained", device="cpu"
    )
    layers = _last_of_each_stage(bb)
    ours = bv.cam_family(bb, cat, layers=layers)
    yield name, ours, _theirs(bb, cat, layers, ours.target.index)


@pytest.mark.parametrize("method", METHODS)
def test_each_method_equals_pytorch_grad_cam_at_the_last_layer_of_every_stage(
    both: tuple[str, bv.CamFamily, dict], method: str
) -> None:
    name, ours, theirs = both
    assert ours.methods == METHODS
    kept = 0
    for layer in ours.layers:
        mine, ref = ours.maps[method][layer.name], theirs[method][layer.name]
        assert mine.shape == ref.shape == (224 // layer.stride, 224 // layer.stride)
        assert mine.dtype == np.float32 and mine.min() >= 0.0
        scale = max(float(ref.max()), float(mine.max()))
        if (
            scale == 0.0
        ):  # both zero everywhere: the ReLU wiped the map out (untrained GoogLeNet's last stage)
            continue
        kept += 1
        # Measured worst (cat picture, one thread): 9.4e-5 for Grad-CAM++ on Lite0, whose alpha divides by
        # 2 g^2 + sum(A) g^3, near zero where sum(A) < 0 (its blocks end without an activation), so float32
        # summation order (torch's against numpy's) shows; 1.2e-6 or less for every other method and backbone.
        diff = float(np.abs(mine - ref).max()) / scale
        assert diff <= 1e-4, f"{name} {method} {layer.name}: {diff:.2e} of the map's maximum"
    # Zero compared with zero proves nothing: most layers keep some of their map.
    assert kept >= len(ours.layers) - 1, (name, method)


def test_reduced_svd_gives_pytorch_grad_cam_the_same_eigencam(cat: object) -> None:
    """The full and the reduced SVD give get_2d_projection the same map, sign included (the patch above)."""
    from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection

    bb = bv.load_backbone("resnet18", weights="untrained", device="cpu")
    a = bv.layer_activations(bb, cat).activations["layer1.1"][None].copy()  # 56 x 56 places
    full = get_2d_projection(a)
    real_svd = np.linalg.svd
    np.linalg.svd = lambda m, full_matrices=True, **kw: real_svd(m, full_matrices=False, **kw)
    try:
        reduced = get_2d_projection(a)
    finally:
        np.linalg.svd = real_svd
    np.testing.assert_array_equal(full, reduced)


def test_six_methods_are_registered_for_learners() -> None:
    registered = [m.name for m in bv.list_cams()]
    assert registered[: len(METHODS)] == list(METHODS)
    for name in METHODS:
        method = bv.get_cam(name)
        assert method.title and method.paper and method.sentence.endswith(".")
        assert method.uses_gradients == (name != "eigencam")


@pytest.fixture(scope="module")
def lite0_family(lite0: bv.Backbone, cat: object) -> bv.CamFamily:
    return bv.cam_family(lite0, cat)


def test_one_pass_gives_analyze_s_grad_cam_and_a_frozen_result(
    lite0: bv.Backbone, lite0_family: bv.CamFamily, cat: object
) -> None:
    res = bv.analyze(lite0, cat)
    fam = lite0_family
    assert fam.target == res.target and fam.layers == lite0.spec.layers and fam.methods == METHODS
    assert fam.input_image.size == res.input_image.size
    assert isinstance(fam.maps, MappingProxyType) and isinstance(fam.maps["gradcam"], MappingProxyType)
    for layer in fam.layers:
        np.testing.assert_allclose(
            fam.maps["gradcam"][layer.name], res.gradcam[layer.name], rtol=1e-5, atol=1e-7
        )
        assert not fam.maps["hirescam"][layer.name].flags.writeable
    with pytest.raises(TypeError):
        fam.maps["gradcam"]["bn2"] = np.zeros((7, 7), np.float32)  # type: ignore[index]
    assert fam.pass_ms > 0 and set(fam.method_ms) == set(METHODS)
    assert fam.total_ms == pytest.approx(fam.pass_ms + sum(fam.method_ms.values()))
    np.testing.assert_array_equal(fam.map("layercam", "last_conv"), fam.maps["layercam"]["bn2"])


def test_the_shared_model_is_left_alone(lite0: bv.Backbone, cat: object) -> None:
    check = model_left_alone(lite0.model)
    bv.cam_family(lite0, cat, methods=["gradcampp", "eigencam"], layers=["bn2", "blocks.2.1"])
    bv.cam_family(lite0, cat, methods=["eigencam"])
    with pytest.raises(bv.CamError):
        bv.cam_family(lite0, cat, methods=["gradcam", "nope"])
    check()


def test_methods_and_layers_come_in_the_order_asked_and_forward_order(
    lite0: bv.Backbone, cat: object
) -> None:
    fam = bv.cam_family(
        lite0, cat, "tabby", methods=["hirescam", "gradcam", "hirescam"], layers=["bn2", "stem"]
    )
    assert fam.methods == ("hirescam", "gradcam")
    assert [lay.name for lay in fam.layers] == ["bn1", "bn2"]
    assert fam.target.label == "tabby"
    assert set(fam.maps["gradcam"]) == {"bn1", "bn2"}


def test_eigencam_needs_no_gradient_and_no_class(lite0: bv.Backbone, cat: object, lite0_family) -> None:
    other = bv.cam_family(lite0, cat, 3, methods=["eigencam"], layers=["bn2"])
    assert other.target.index == 3
    np.testing.assert_array_equal(other.maps["eigencam"]["bn2"], lite0_family.maps["eigencam"]["bn2"])


def test_user_mistakes_say_what_to_choose(lite0: bv.Backbone, cat: object) -> None:
    with pytest.raises(bv.CamError, match=re.escape("no CAM method called 'scorecam'")) as err:
        bv.cam_family(lite0, cat, methods=["scorecam"])
    assert "gradcam, gradcampp, xgradcam, layercam, hirescam, eigencam" in str(err.value)
    assert isinstance(err.value, ValueError)  # an unknown method raised ValueError before
    with pytest.raises(
        bv.CamError, match=r"EfficientNet-Lite0 has no layer 'layer4'\. Choose one of: stem, "
    ):
        bv.cam_family(lite0, cat, layers=["layer4"])
    with pytest.raises(bv.CamError, match="No CAM method"):
        bv.cam_family(lite0, cat, methods=[])
    with pytest.raises(bv.BackboneVizError, match="no class called 'tabbby'.*'tabby'"):
        bv.cam_family(lite0, cat, "tabbby")
    with pytest.raises(bv.CamError, match="no 'layercam' maps"):
        bv.cam_family(lite0, cat, methods=["gradcam"], layers=["bn2"]).map("layercam", "bn2")
    with pytest.raises(TypeError):
        bv.cam_family(lite0, cat, methods="gradcam")  # type: ignore[arg-type]


def test_it_runs_the_model_and_is_public() -> None:
    assert bv.cam_family.runs_model
    assert {"cam_family", "score_cam", "score_cam_cost"} <= set(bv.core.runs.model_runs(bv))
    assert torch.is_grad_enabled()

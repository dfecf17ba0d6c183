"""Analysis: real semantics, hand-computed maths, agreement with captum, and a shared model left intact."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from captum.attr import LayerGradCam
from torch import nn

import backbone_viz as bv
from backbone_viz.core.backbones import Backbone, _prepare
from backbone_viz.core.specs import BackboneSpec, Preprocessing, layers_from_rows
from tests.conftest import count_hooks, sample

CATS = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}


def test_bundled_backbone_sees_a_cat_and_an_espresso(lite0: Backbone) -> None:
    cat = bv.analyze(lite0, sample("cat"))
    assert cat.predictions[0].label in CATS
    assert sum(p.probability for p in cat.predictions if p.label in CATS) > 0.5
    coffee = bv.analyze(lite0, sample("coffee"))
    assert coffee.predictions[0].label == "espresso"


def test_result_shapes_and_types(lite0: Backbone) -> None:
    res = bv.analyze(lite0, sample("cat"))
    assert len(res.predictions) == 5
    probs = [p.probability for p in res.predictions]
    assert probs == sorted(probs, reverse=True)
    assert res.target == res.predictions[0]
    assert res.input_image.size == (224, 224) and res.input_image.mode == "RGB"
    assert [layer.name for layer in res.layers] == [layer.name for layer in lite0.spec.layers]
    for layer in res.layers:
        act, cam = res.activations[layer.name], res.gradcam[layer.name]
        assert act.dtype == np.float32 and act.shape == (
            layer.channels,
            224 // layer.stride,
            224 // layer.stride,
        )
        assert cam.shape == act.shape[1:] and (cam >= 0).all()
        assert not act.flags.writeable and not cam.flags.writeable
    assert res.pooled.shape == (1280,) and res.probabilities.shape == (1000,)
    assert res.probabilities.sum() == pytest.approx(1.0, abs=1e-4)
    up = bv.upsample(res.gradcam["bn2"], (224, 224))
    assert up.shape == (224, 224) and up.max() <= res.gradcam["bn2"].max() + 1e-5


def test_target_by_index_and_label(lite0: Backbone) -> None:
    img = sample("cat")
    by_index = bv.analyze(lite0, img, target=967)
    by_label = bv.analyze(lite0, img, target="Espresso")
    assert by_index.target.index == by_label.target.index == 967
    assert by_label.target.label == "espresso"
    np.testing.assert_allclose(by_index.gradcam["bn2"], by_label.gradcam["bn2"], rtol=1e-5, atol=1e-7)
    with pytest.raises(bv.BackboneVizError, match="espresso"):
        bv.analyze(lite0, img, target="expresso")
    with pytest.raises(bv.BackboneVizError, match="0 to 999"):
        bv.analyze(lite0, img, target=1000)


class _TinyNet(nn.Module):
    """conv 1x1 (3 -> 2 channels) -> ReLU -> global average pool -> linear (2 -> 2)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, kernel_size=1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2, 2)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]).view(2, 3, 1, 1))
            self.fc.weight.copy_(torch.tensor([[2.0, -1.0], [-1.0, 3.0]]))
            self.fc.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.relu(self.conv(x))), 1))


def test_gradcam_matches_hand_computation() -> None:
    model = _TinyNet()
    _prepare(model)
    spec = BackboneSpec(
        name="tiny",
        title="Tiny",
        summary="",
        params_millions=0.0,
        layers=layers_from_rows([("relu", "relu", 2, 1, 1)]),
        head="fc",
        pooled="flatten",
        head_splits=True,
        # Identity preprocessing on a 2x2 image: resize 2, crop 2, mean 0, std 1.
        preprocessing=Preprocessing(2, 2, "bilinear", (0.0,) * 3, (1.0,) * 3),
        weights_file=None,
        build=_TinyNet,
    )
    bb = Backbone.wrap(spec, model, "untrained", ("a", "b"), torch.device("cpu"))
    pixels = np.array([[[255, 0, 51], [0, 0, 255]], [[102, 0, 0], [204, 0, 102]]], dtype=np.uint8)
    from PIL import Image

    res = bv.analyze(bb, Image.fromarray(pixels), target=0)
    rgb = pixels.astype(np.float32) / 255.0
    a = np.stack([rgb[..., 0], rgb[..., 2]])  # channel 0 = red, channel 1 = blue (both >= 0)
    np.testing.assert_allclose(res.activations["relu"], a, atol=1e-6)
    # Score_0 = 2 * mean(A_0) - mean(A_1): dS/dA_c is constant, so its spatial mean is W[0, c] / 4.
    expected = np.maximum(0.0, (2.0 * a[0] - 1.0 * a[1]) / 4.0)
    np.testing.assert_allclose(res.gradcam["relu"], expected, atol=1e-6)
    logits = np.array([[2.0, -1.0], [-1.0, 3.0]]) @ a.mean(axis=(1, 2))
    np.testing.assert_allclose(res.logits, logits, atol=1e-6)


@pytest.mark.parametrize(
    ("name", "weights", "layers"),
    [
        ("efficientnet_lite0", "pretrained", ["bn1", "blocks.2.1", "blocks.5.3", "bn2"]),
        ("resnet50", "untrained", ["relu", "layer1.0", "layer3.5", "layer4.2"]),
        ("googlenet", "untrained", ["conv1", "inception4c", "inception5b"]),
        ("vgg16", "untrained", ["features.3", "features.15", "features.29"]),
    ],
)
def test_gradcam_agrees_with_captum(name: str, weights: str, layers: list[str]) -> None:
    torch.manual_seed(0)
    bb = bv.load_backbone(name, weights=weights, device="cpu")
    img = sample("cat")
    res = bv.analyze(bb, img)
    x = bb.preprocess(img)
    for layer in layers:
        expected = (
            LayerGradCam(bb.model, bb.model.get_submodule(layer))
            .attribute(x, target=res.target.index, relu_attributions=True)[0, 0]
            .detach()
            .numpy()
        )
        got = res.gradcam[layer]
        scale = float(np.abs(expected).max())
        assert scale > 0, f"{name}:{layer} Grad-CAM is all zero; the comparison would prove nothing"
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * scale, err_msg=f"{name}:{layer}")
    assert count_hooks(bb.model) == 0


def _model_state(model: nn.Module) -> tuple:
    return (
        model.training,
        tuple(m.training for m in model.modules()),
        tuple(p.requires_grad for p in model.parameters()),
        tuple(p.grad is None for p in model.parameters()),
    )


def test_analysis_leaves_the_shared_model_unchanged(lite0: Backbone) -> None:
    before_state = _model_state(lite0.model)
    before_params = {k: v.clone() for k, v in lite0.model.state_dict().items()}
    hooks = count_hooks(lite0.model)
    bv.analyze(lite0, sample("cat"), target="tabby")
    with pytest.raises(bv.BackboneVizError):
        bv.analyze(lite0, sample("cat"), target="not a class at all")
    with torch.no_grad():  # a caller inside no_grad still gets gradients
        res = bv.analyze(lite0, sample("coffee"))
    assert res.gradcam["bn2"].max() > 0
    assert count_hooks(lite0.model) == hooks == 0
    assert _model_state(lite0.model) == before_state
    for key, value in lite0.model.state_dict().items():
        assert torch.equal(value, before_params[key]), key
    assert all(
        not m.inplace for m in lite0.model.modules() if hasattr(m, "inplace") and isinstance(m.inplace, bool)
    )


def test_many_threads_on_one_model_match_serial(lite0: Backbone) -> None:
    jobs = [(name, target) for name in ("cat", "coffee", "rocket", "astronaut") for target in (None, 967)]
    images = {name: sample(name) for name, _ in jobs}
    # The serial runs happen in a worker thread too: torch's intra-op thread count is per thread, and the
    # main thread's may have been changed by an earlier test, which would change the order of sums.
    with ThreadPoolExecutor(max_workers=1) as one:
        serial = list(one.map(lambda job: bv.analyze(lite0, images[job[0]], target=job[1]), jobs))
    barrier = threading.Barrier(len(jobs))

    def run(job: tuple[str, int | None]) -> bv.AnalysisResult:
        barrier.wait()  # start together, so that the forward passes really overlap
        return bv.analyze(lite0, images[job[0]], target=job[1])

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        parallel = list(pool.map(run, jobs))
    assert len(jobs) >= 8
    for s, p in zip(serial, parallel, strict=True):
        # Same classes; probabilities equal up to float rounding: a thread of its own may sum in another
        # order (torch's intra-op thread count is per thread), while a race would change them grossly.
        assert s.target.index == p.target.index
        assert [q.index for q in s.predictions] == [q.index for q in p.predictions]
        np.testing.assert_allclose(s.probabilities, p.probabilities, rtol=1e-4, atol=1e-7)
        for layer in s.layers:
            np.testing.assert_allclose(s.gradcam[layer.name], p.gradcam[layer.name], rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(
                s.activations[layer.name], p.activations[layer.name], rtol=1e-5, atol=1e-6
            )
    assert count_hooks(lite0.model) == 0
    assert all(p.grad is None for p in lite0.model.parameters())


def test_untrained_backbone_is_a_sanity_check() -> None:
    torch.manual_seed(0)
    bb = bv.load_backbone("efficientnet_lite0", weights="untrained", device="cpu")
    res = bv.analyze(bb, sample("cat"))
    assert res.weights == "untrained"
    assert res.predictions[0].probability < 0.2  # random weights are not confident about anything


def test_parts_join_into_the_same_result_and_share_their_arrays(lite0: Backbone) -> None:
    img = sample("cat")
    whole = bv.analyze(lite0, img)
    activations, top1 = bv.analyze_parts(lite0, img)
    joined = bv.AnalysisResult.from_parts(activations, top1)
    assert joined.target == whole.target and joined.predictions == whole.predictions
    for name in whole.activations:
        np.testing.assert_array_equal(joined.activations[name], whole.activations[name])
        np.testing.assert_array_equal(joined.gradcam[name], whole.gradcam[name])
        assert joined.activations[name] is activations.activations[name]  # shared, not copied
    np.testing.assert_array_equal(joined.pooled, whole.pooled)
    assert not hasattr(top1, "activations")


def test_gradcam_of_another_class_equals_a_full_analysis_for_it(lite0: Backbone) -> None:
    img = sample("cat")
    espresso = bv.layer_gradcam(lite0, img, "espresso")
    full = bv.analyze(lite0, img, target="espresso")
    assert espresso.target == full.target
    assert espresso.target.label == "espresso"
    for name, cam in full.gradcam.items():
        np.testing.assert_allclose(espresso.gradcam[name], cam, rtol=1e-5, atol=1e-7)
    # Joined with the top-1 analysis's activations, it is the full analysis for that class.
    activations, _ = bv.analyze_parts(lite0, img)
    joined = bv.AnalysisResult.from_parts(activations, espresso)
    assert joined.target.label == "espresso" and joined.predictions == full.predictions


def test_parts_of_different_analyses_do_not_join(lite0: Backbone) -> None:
    img = sample("cat")
    activations, _ = bv.analyze_parts(lite0, img)
    untrained = bv.load_backbone("efficientnet_lite0", "untrained", device="cpu")
    other = bv.layer_gradcam(untrained, img)
    with pytest.raises(ValueError, match="different analyses"):
        bv.AnalysisResult.from_parts(activations, other)


@pytest.mark.parametrize("knockout", [None, [("blocks.3.1", [11, 3, 7])], ["blocks.5.1"]])
def test_activations_alone_equal_the_activations_of_a_full_pass(
    lite0: Backbone, knockout: list | None
) -> None:
    img = sample("cat")
    whole, _ = bv.analyze_parts(lite0, img, knockout=knockout)
    alone = bv.layer_activations(lite0, img, knockout=knockout)
    assert [p.index for p in alone.predictions] == [p.index for p in whole.predictions]
    assert [p.probability for p in alone.predictions] == pytest.approx(
        [p.probability for p in whole.predictions]
    )
    assert alone.knockout == whole.knockout and alone.layers == whole.layers
    for name, array in whole.activations.items():
        np.testing.assert_allclose(alone.activations[name], array, rtol=1e-5, atol=1e-6)
        assert not alone.activations[name].flags.writeable
    for field_name in ("probabilities", "logits", "pooled"):
        np.testing.assert_allclose(
            getattr(alone, field_name), getattr(whole, field_name), rtol=1e-5, atol=1e-6
        )
    assert alone.input_image.tobytes() == whole.input_image.tobytes()
    # No gradient was kept anywhere, and the parts still join with a Grad-CAM made later.
    assert all(p.grad is None for p in lite0.model.parameters())
    joined = bv.AnalysisResult.from_parts(alone, bv.layer_gradcam(lite0, img, knockout=knockout))
    assert joined.target.index == alone.predictions[0].index

"""Pixel attributions: the maths on hand-made models, Guided Backprop against an independent reference on
real backbones, and the shared model left exactly as it was (no hooks, same weights), even after a failure."""

from __future__ import annotations

import copy
import hashlib
import types
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from captum.attr import GuidedBackprop
from timm.layers import BatchNormAct2d
from torch import nn

import backbone_viz as bv
from backbone_viz.explain import attributions
from tests.conftest import TinyNet, count_hooks, sample, tiny_backbone

FAST = {"integrated_gradients": {"steps": 8}, "smoothgrad": {"samples": 4}}


pytestmark = pytest.mark.usefixtures("one_thread")


def checksum(model: nn.Module) -> str:
    """A digest of everything a method could change: parameters, buffers, requires_grad, .grad, mode."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict(keep_vars=True).items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())
        digest.update(f"{tensor.requires_grad}{getattr(tensor, 'grad', None) is None}".encode())
    digest.update(str([m.training for m in model.modules()]).encode())
    return digest.hexdigest()


@pytest.fixture
def no_hooks_allowed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Records every hook registered on any module while the test runs (captum's hooking methods would)."""
    registered: list[str] = []
    for name in (
        "register_forward_hook",
        "register_forward_pre_hook",
        "register_full_backward_hook",
        "register_full_backward_pre_hook",
        "register_backward_hook",
    ):
        original = getattr(nn.Module, name)

        def spy(self: nn.Module, *args: object, _original=original, _name=name, **kwargs: object):
            registered.append(f"{_name} on {type(self).__name__}")
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(nn.Module, name, spy)
    yield registered


# ------------------------------------------------------------------------------------------ the maths


def test_saliency_is_the_input_gradient(lite0: bv.Backbone) -> None:
    img = sample("cat")
    res = bv.attribute(lite0, img, "saliency")
    x = lite0.preprocess(img).requires_grad_(True)
    (grad,) = torch.autograd.grad(lite0.model(x)[0, res.target.index], [x])  # the module's own forward
    np.testing.assert_allclose(res.channels, grad[0].numpy(), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(res.map, grad[0].sum(0).numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(res.strength, grad[0].abs().sum(0).numpy(), rtol=1e-4, atol=1e-7)
    assert res.delta is None and res.options == {} and res.input_image.size == (224, 224)

    ixg = bv.attribute(lite0, img, "input_x_gradient", res.target.index)
    np.testing.assert_allclose(ixg.channels, (x * grad)[0].detach().numpy(), rtol=1e-4, atol=1e-7)


def test_integrated_gradients_add_up_to_the_score_difference(lite0: bv.Backbone) -> None:
    img = sample("cat")
    res = bv.attribute(lite0, img, "integrated_gradients", steps=8)
    assert res.options == {"steps": 8, "baseline": "black"}
    x = lite0.preprocess(img)
    with torch.no_grad():
        scores = lite0.model(torch.cat([x, attributions.baseline(lite0, "black")]))[:, res.target.index]
    difference = float(scores[0] - scores[1])
    total = float(res.map.sum(dtype=np.float64))
    # Completeness: the sum misses the score difference by exactly captum's delta.
    assert total - difference == pytest.approx(res.delta, abs=1e-3 * abs(difference))
    assert abs(total - difference) <= abs(res.delta) + 1e-3 * abs(difference)
    assert res.relative_delta == pytest.approx(abs(res.delta) / abs(total))
    # A "mean" baseline is the model's zero input: another score difference, completeness again.
    mean = bv.attribute(lite0, img, "integrated_gradients", res.target.index, steps=8, baseline="mean")
    with torch.no_grad():
        zero = float(lite0.model(torch.zeros_like(x))[0, res.target.index])
    assert float(mean.map.sum(dtype=np.float64)) - (float(scores[0]) - zero) == pytest.approx(
        mean.delta, abs=1e-3 * abs(difference)
    )


def test_integrated_gradients_of_a_linear_path_by_hand() -> None:
    # TinyNet on a positive picture from a black (zero) baseline: the ReLU never cuts along the path, so
    # the score is linear in the input and IG is exactly input x weight: fc[k, red] / (H * W) on the red
    # channel, fc[k, blue] / (H * W) on the blue one, nothing on the green one.
    bb = tiny_backbone(TinyNet(), 16, ("a", "b"))
    rng = np.random.default_rng(0)
    pixels = rng.uniform(0.2, 1.0, (16, 16, 3))
    img = bv.load_image(_png(pixels))
    res = bv.attribute(bb, img, "integrated_gradients", 1, steps=4)
    x = bb.preprocess(img)[0].numpy()
    expected = np.stack([x[0] * -1.0 / 256, np.zeros_like(x[1]), x[2] * 3.0 / 256])
    np.testing.assert_allclose(res.channels, expected, rtol=1e-5, atol=1e-7)
    assert abs(res.delta) < 1e-5


def test_smoothgrad_averages_gradients_with_its_own_noise(lite0: bv.Backbone) -> None:
    img = sample("cat")
    state = torch.random.get_rng_state()
    a = bv.attribute(lite0, img, "smoothgrad", samples=4)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global random state is not used
    b = bv.attribute(lite0, img, "smoothgrad", samples=4)
    np.testing.assert_array_equal(a.channels, b.channels)  # the same noise every time
    other = bv.attribute(lite0, img, "smoothgrad", samples=4, seed=1)
    assert not np.allclose(a.channels, other.channels)
    # With almost no noise, it is the plain gradient.
    quiet = bv.attribute(lite0, img, "smoothgrad", samples=2, noise=1e-7)
    plain = bv.attribute(lite0, img, "saliency")
    assert np.abs(quiet.channels - plain.channels).max() < 0.02 * np.abs(plain.channels).max()
    assert np.corrcoef(quiet.channels.ravel(), plain.channels.ravel())[0, 1] > 0.999
    assert dict(a.options) == {"samples": 4, "noise": attributions.SMOOTHGRAD_NOISE, "seed": 0}


def test_bad_method_option_or_target(lite0: bv.Backbone) -> None:
    with pytest.raises(ValueError, match="choose one of: saliency"):
        bv.attribute(lite0, sample("cat"), "lime")
    with pytest.raises(ValueError, match="takes no options"):
        bv.attribute(lite0, sample("cat"), "saliency", steps=3)
    with pytest.raises(ValueError, match="baseline"):
        bv.attribute(lite0, sample("cat"), "integrated_gradients", baseline="white")
    with pytest.raises(bv.BackboneVizError, match="no class number 5000"):
        bv.attribute(lite0, sample("cat"), "saliency", 5000)
    assert bv.attribute(lite0, sample("cat"), "saliency", "tabby").target.label == "tabby"


# ------------------------------------------------------------------------------------- guided backprop


class GuidedTiny(nn.Module):
    """conv 1x1 (3 -> 4) -> F.relu -> conv 1x1 (4 -> 4) -> timm BatchNormAct2d with ReLU6 -> pool -> fc."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(3)
        self.conv1 = nn.Conv2d(3, 4, 1, bias=False)
        self.conv2 = nn.Conv2d(4, 4, 1, bias=False)
        self.bn = BatchNormAct2d(4, act_layer=nn.ReLU6)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 2)
        with torch.no_grad():
            for p in (self.conv1.weight, self.conv2.weight, self.fc.weight, self.fc.bias):
                p.copy_(torch.randn(p.shape, generator=generator) * 3)
            self.bn.running_mean.copy_(torch.tensor([0.5, -1.0, 0.0, 2.0]))
            self.bn.running_var.copy_(torch.tensor([1.0, 4.0, 0.25, 1.0]))
            self.bn.weight.copy_(torch.tensor([1.5, 1.0, -1.0, 2.0]))
            self.bn.bias.copy_(torch.tensor([0.0, 1.0, 0.5, -0.5]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a1 = F.relu(self.conv1(x))
        return self.fc(torch.flatten(self.pool(self.bn(self.conv2(a1))), 1))


def test_guided_backprop_by_hand_on_a_tiny_model() -> None:
    model = GuidedTiny()
    bb = tiny_backbone(model, 16, ("a", "b"))
    img = bv.load_image(_png(np.random.default_rng(1).uniform(0, 1, (16, 16, 3))))
    res = bv.attribute(bb, img, "guided_backprop", 0)
    # By hand: every rectifier lets a gradient back only where it is positive and where it passed its
    # input on; the 1x1 convolutions and the batch norm are per-pixel linear maps.
    x = bb.preprocess(img)[0].reshape(3, -1)
    w1, w2 = model.conv1.weight[:, :, 0, 0].detach(), model.conv2.weight[:, :, 0, 0].detach()
    bn = model.bn
    scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()
    h1 = w1 @ x
    h2 = scale[:, None] * (w2 @ h1.clamp(min=0) - bn.running_mean[:, None]) + bn.bias.detach()[:, None]
    g = (model.fc.weight[0].detach() / 256)[:, None].expand(4, 256)
    g = g.clamp(min=0) * ((h2 > 0) & (h2 < 6))
    g = (w2.T @ (scale[:, None] * g)).clamp(min=0) * (h1 > 0)
    expected = (w1.T @ g).reshape(3, 16, 16)
    np.testing.assert_allclose(res.channels, expected.numpy(), rtol=1e-5, atol=1e-6)
    plain = bv.attribute(bb, img, "saliency", 0)
    assert not np.allclose(res.channels, plain.channels, atol=1e-3)  # negative gradients were stopped


@pytest.mark.parametrize("name", ["efficientnet_lite0", "resnet50", "googlenet", "vgg16"])
def test_guided_backprop_equals_captum_on_a_copy_with_every_activation_a_relu(
    name: str, lite0: bv.Backbone
) -> None:
    # One backbone of each kind of rectifier: timm's BatchNormAct2d with ReLU6 (Lite0), nn.ReLU modules
    # (ResNet-50; VGG-16 in its classifier too), functional F.relu (GoogLeNet). ResNet-101 and VGG-19 are
    # deeper versions of the same modules.
    bb = lite0 if name == "efficientnet_lite0" else bv.load_backbone(name, "untrained", device="cpu")
    img = sample("cat")
    before = checksum(bb.model)
    res = bv.attribute(bb, img, "guided_backprop")
    reference_model = _every_activation_a_relu_module(bb.model)
    x = bb.preprocess(img)
    reference = GuidedBackprop(reference_model).attribute(x, target=res.target.index)[0].detach().numpy()
    scale = float(np.abs(reference).max())
    assert scale > 0
    np.testing.assert_allclose(res.channels, reference, rtol=1e-3, atol=1e-4 * scale)
    plain = bv.attribute(bb, img, "saliency", res.target.index)
    assert np.abs(res.channels - plain.channels).max() > 0.1 * scale  # guided is not the plain gradient
    assert count_hooks(bb.model) == 0 and checksum(bb.model) == before
    assert attributions.guided_refusal(bb) is None


def test_guided_backprop_is_refused_where_an_activation_is_not_a_relu() -> None:
    model = TinyNet()
    model.relu = nn.SiLU()
    bb = tiny_backbone(model, 16, ("a", "b"))
    with pytest.raises(bv.AttributionError, match="SiLU of relu is not a ReLU") as caught:
        bv.attribute(bb, sample("cat"), "guided_backprop")
    assert caught.value.hint
    assert "SiLU" in attributions.guided_refusal(bb)
    bv.attribute(bb, sample("cat"), "saliency")  # the other methods still work


# ------------------------------------------------------------------------- the shared model untouched


@pytest.mark.parametrize("method", list(attributions.METHODS))
def test_shared_model_has_no_hooks_and_the_same_weights_after_every_method(
    method: str, lite0: bv.Backbone, no_hooks_allowed: list[str]
) -> None:
    before = checksum(lite0.model)
    res = bv.attribute(lite0, sample("cat"), method, **FAST.get(method, {}))
    assert res.method == method and np.isfinite(res.channels).all() and res.strength.max() > 0
    assert no_hooks_allowed == []  # none registered, not even for a moment
    assert count_hooks(lite0.model) == 0
    assert checksum(lite0.model) == before
    with pytest.raises(ValueError):
        res.channels[0, 0, 0] = 1.0  # read-only


def test_shared_model_is_unchanged_after_a_failure(
    lite0: bv.Backbone, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = checksum(lite0.model)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("out of memory halfway through the backward pass")

    monkeypatch.setattr(torch.autograd, "grad", broken)
    for method in attributions.METHODS:
        with pytest.raises(RuntimeError, match="halfway"):
            bv.attribute(lite0, sample("cat"), method, **FAST.get(method, {}))
    monkeypatch.undo()
    with pytest.raises(bv.BackboneVizError):
        bv.attribute(lite0, sample("cat"), "guided_backprop", 5000)
    assert count_hooks(lite0.model) == 0 and checksum(lite0.model) == before


def test_threads_give_the_serial_results(lite0: bv.Backbone) -> None:
    img = sample("cat")
    jobs = [(method, FAST.get(method, {})) for method in attributions.METHODS]
    serial = [bv.attribute(lite0, img, m, **o) for m, o in jobs]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        parallel = list(pool.map(lambda job: bv.attribute(lite0, img, job[0], **job[1]), jobs))
    for a, b in zip(serial, parallel, strict=True):
        assert (a.method, a.target, a.delta) == (b.method, b.target, b.delta)
        np.testing.assert_array_equal(a.channels, b.channels)


# ------------------------------------------------------------------------------------------- helpers


def _png(pixels: np.ndarray) -> bytes:
    """An RGB picture of values in [0, 1] as PNG bytes (what load_image reads)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray((pixels * 255).round().astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


class _AtMost6(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(max=6.0)


def _every_activation_a_relu_module(model: nn.Module) -> nn.Module:
    """A private copy whose every rectifier is an ``nn.ReLU`` module, the only kind captum's
    GuidedBackprop guides: ReLU6 becomes ReLU then min(., 6); GoogLeNet's F.relu becomes a module."""
    private = copy.deepcopy(model)
    for module in list(private.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.ReLU6):
                setattr(module, name, nn.Sequential(nn.ReLU(), _AtMost6()))
        if type(module).__name__ == "BasicConv2d":  # torchvision GoogLeNet: conv, bn, F.relu
            module.relu_module = nn.ReLU()
            module.forward = types.MethodType(lambda self, x: self.relu_module(self.bn(self.conv(x))), module)
    with torch.no_grad():
        assert torch.allclose(private(torch.zeros(1, 3, 64, 64)), model(torch.zeros(1, 3, 64, 64)), atol=1e-4)
    assert not any(isinstance(m, nn.Hardtanh) for m in private.modules())
    return private


def test_the_reference_copy_leaves_no_rectifier_unguided(lite0: bv.Backbone) -> None:
    # The reference above is only independent if captum really guides every rectifier of the copy:
    # count them through a forward pass on the copy.
    private = _every_activation_a_relu_module(lite0.model)
    calls = []
    relus = [m for m in private.modules() if type(m) is nn.ReLU]
    handles = [m.register_forward_hook(lambda *a: calls.append(1)) for m in relus]  # on the copy only
    with torch.no_grad():
        private(lite0.preprocess(sample("cat")))
    for h in handles:
        h.remove()
    assert len(calls) == 33  # the stem, 2 per inverted residual block but the first (1), the head conv


def test_a_new_pixel_method_is_one_registered_class(lite0: bv.Backbone) -> None:
    """Each method carries its title, sentence and properties; a new one (here: the gradient's sign) is
    one class, and attribute, the method list and its options follow."""
    assert list(attributions.METHODS)[:2] == ["saliency", "input_x_gradient"]
    assert attributions.get_method("integrated_gradients").has_convergence_delta
    assert [m for m in attributions.METHODS if attributions.get_method(m).slow] == [
        "integrated_gradients",
        "smoothgrad",
    ]

    @attributions.register_method
    class GradientSign(attributions.PixelMethod):
        name = "gradient_sign"
        title = "Sign of the gradient"
        sentence = "Only which way each pixel would push the score."

        def run(self, backbone, forward, x, target, chosen):  # type: ignore[no-untyped-def]
            (grad,) = torch.autograd.grad(forward(x)[0, target], [x])
            return torch.sign(grad), None

    try:
        assert attributions.METHODS["gradient_sign"] == "Sign of the gradient"
        res = bv.attribute(lite0, sample("cat"), "gradient_sign")
        plain = bv.attribute(lite0, sample("cat"), "saliency", res.target.index)
        np.testing.assert_array_equal(res.channels, np.sign(plain.channels))
        with pytest.raises(ValueError, match="gradient_sign takes no options, not steps"):
            bv.attribute(lite0, sample("cat"), "gradient_sign", steps=3)
    finally:
        attributions._METHODS.remove("gradient_sign")
    assert "gradient_sign" not in attributions.METHODS

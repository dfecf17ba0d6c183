"""Every engine entry point on every device, and a GPU that gives the CPU's answers.

The ``device`` fixture (tests/conftest.py) is the CPU always and CUDA as well when torch sees a GPU, so
on a GPU machine each test here runs twice; the agreement tests compare the GPU with the CPU and are
skipped where there is no GPU. The tests touch no tensor themselves (the engine returns CPU arrays), so
the only thing that can differ between devices is the engine. ``scripts/gpu-check.sh`` runs this module
on a GPU machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache

import numpy as np
import pytest
import torch

import backbone_viz as bv
from backbone_viz.core.device import DEVICE_ENV, TF32_ENV, resolve_device, use_full_float32
from backbone_viz.errors import BackboneVizError
from tests.conftest import sample

pytestmark = pytest.mark.usefixtures("one_thread")

NAMES = [spec.name for spec in bv.list_backbones()]
GPU = pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU on this machine")
#: The largest difference a GPU map may have from the CPU's, as a share of the CPU map's maximum.
AGREEMENT = 1e-4
#: Options that keep the slow attributions short here.
QUICK = {"integrated_gradients": {"steps": 8}, "smoothgrad": {"samples": 4}}
METHODS = ("saliency", "input_x_gradient", "integrated_gradients", "smoothgrad", "guided_backprop")


def weights_of(name: str) -> str:
    """Real weights where they ship (Lite0), seeded random ones for the others (no network in tests)."""
    return "pretrained" if bv.get_spec(name).bundled else "untrained"


@cache
def loaded(name: str, device: str) -> bv.Backbone:
    return bv.load_backbone(name, weights_of(name), device=device)


def close(got: np.ndarray, expected: np.ndarray, *, share: float = AGREEMENT) -> None:
    """``got`` equals ``expected`` within ``share`` of ``expected``'s largest absolute value."""
    assert got.shape == expected.shape
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(got, expected, rtol=0, atol=share * scale if scale > 0 else 1e-7)


# ----------------------------------------------------------------------------- choosing the device


@pytest.fixture
def no_device_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DEVICE_ENV, raising=False)


@pytest.mark.usefixtures("no_device_env")
def test_the_device_is_the_gpu_when_present_else_the_cpu_unless_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(None).type == expected
    assert resolve_device("auto").type == expected
    assert resolve_device("CPU") == torch.device("cpu")
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    assert bv.default_device() == torch.device("cpu")
    assert bv.load_backbone("efficientnet_lite0", "untrained").device == torch.device("cpu")
    assert bv.describe_device(torch.device("cpu")) == "the CPU"


@pytest.mark.usefixtures("no_device_env")
def test_a_device_that_is_not_there_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(BackboneVizError, match="not a device") as error:
        resolve_device("gpu")
    assert "auto, cpu, cuda" in error.value.hint
    monkeypatch.setenv(DEVICE_ENV, "tpu")
    with pytest.raises(BackboneVizError, match=DEVICE_ENV):
        bv.load_backbone("efficientnet_lite0", "untrained")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(BackboneVizError, match="GPU") as error:
        resolve_device(f"cuda:{count}")
    assert "cpu" in error.value.hint


@pytest.mark.usefixtures("no_device_env")
def test_a_missing_device_is_refused_before_any_download(monkeypatch: pytest.MonkeyPatch) -> None:
    """VGG-16's 528 MB are not fetched for a device that cannot run them (the mirror is never asked)."""
    asked: list[object] = []
    monkeypatch.setattr("backbone_viz.core.backbones.weights_mod.ensure", lambda *a, **k: asked.append(a))
    with pytest.raises(BackboneVizError, match="not a device"):
        bv.load_backbone("vgg16", device="gpu0")
    assert asked == []


@pytest.fixture
def precision_restored() -> Iterator[None]:
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


@pytest.mark.usefixtures("precision_restored")
def test_full_float32_unless_tf32_is_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TF32_ENV, raising=False)
    torch.backends.cudnn.allow_tf32 = True  # torch's own default
    use_full_float32()
    assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    monkeypatch.setenv(TF32_ENV, "1")
    use_full_float32()
    assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32


# ------------------------------------------------------------------- every entry point on every device


@pytest.mark.parametrize("name", NAMES)
def test_an_analysis_runs_on_the_device(name: str, device: str) -> None:
    bb = loaded(name, device)
    assert bb.device.type == device
    res = bv.analyze(bb, sample("cat"))
    assert [layer.name for layer in res.layers] == list(res.activations) == list(res.gradcam)
    for layer in res.layers:
        assert res.activations[layer.name].shape[0] == layer.channels
        assert res.gradcam[layer.name].shape == res.activations[layer.name].shape[1:]
        assert not res.activations[layer.name].flags.writeable
        assert np.isfinite(res.gradcam[layer.name]).all()
    assert res.probabilities.sum() == pytest.approx(1.0, abs=1e-4)
    alone = bv.layer_activations(bb, sample("cat"))
    cam = bv.layer_gradcam(bb, sample("cat"), res.target.index)
    for layer in res.layers:
        close(alone.activations[layer.name], res.activations[layer.name])
        close(cam.gradcam[layer.name], res.gradcam[layer.name])


def test_the_bundled_backbone_sees_a_cat_on_the_device(device: str) -> None:
    res = bv.analyze(loaded("efficientnet_lite0", device), sample("cat"))
    assert "cat" in res.predictions[0].label


@pytest.mark.parametrize("method", METHODS)
def test_every_attribution_and_its_sanity_check_run_on_the_device(method: str, device: str) -> None:
    bb = loaded("efficientnet_lite0" if method != "guided_backprop" else "resnet50", device)
    options = QUICK.get(method, {})
    a = bv.attribute(bb, sample("cat"), method, **options)
    assert a.channels.shape == (3, 224, 224) and np.isfinite(a.channels).all() and a.strength.max() > 0
    check = bv.sanity_check(bb, sample("cat"), method, **options)
    assert [s.label for s in check.steps][:2] == ["trained", "head"]
    assert len(check.steps) == len(bb.spec.stages) + 2
    assert all(np.isfinite(s.attribution.strength).all() for s in check.steps)


def test_the_probes_run_on_the_device(device: str) -> None:
    bb = loaded("resnet50", device)
    cat = sample("cat")
    block = bv.list_blocks(bb.spec)[3]
    inside = bv.inside_block(bb, cat, block)
    assert inside.kind == "residual" and all(np.isfinite(m).all() for m in inside.maps.values())
    knocked = bv.analyze(bb, cat, knockout=[block.name])
    assert knocked.knockout and np.isfinite(knocked.gradcam[bb.spec.layers[-1].name]).all()
    rows = bv.block_ablation(bb, cat)
    assert rows and all(0.0 <= row.target_probability <= 1.0 for row in rows)
    lite0 = loaded("efficientnet_lite0", device)
    vis = bv.visualize_channel(lite0, "blocks.1.1", 5, size=48, steps=4, seed=0)
    assert vis.image.size == (48, 48) and np.isfinite(vis.activation)
    patches = bv.top_patches(lite0, "blocks.1.1", 5, [cat, sample("rocket")], k=3)
    assert len(patches) == 3
    maps = bv.gallery_maps(lite0, ["blocks.1.1"])
    assert np.isfinite(maps["blocks.1.1"]).all()


def test_a_new_head_is_fitted_and_used_on_the_device(device: str) -> None:
    bb = loaded("efficientnet_lite0", device)
    examples = {"living": [sample("cat"), sample("flower")], "made": [sample("rocket"), sample("coffee")]}
    head = bv.fit_head(bb, examples, augment=False)
    res = bv.analyze(bb, sample("cat"), head=head)
    assert res.predictions[0].label == "living"
    contributions = bv.head_contributions(bb, res, head=head)
    assert contributions.values.sum() + contributions.bias == pytest.approx(contributions.logit, abs=1e-3)
    assert bv.feature_pyramid(bv.analyze(bb, sample("cat")))


# ------------------------------------------------------------------------- the GPU gives the CPU's answers


@GPU
@pytest.mark.parametrize("name", NAMES)
def test_every_layers_gradcam_on_the_gpu_is_the_cpus(name: str) -> None:
    """Every layer's Grad-CAM and activations of every backbone, to 1e-4 of the map's maximum."""
    image = sample("cat")
    cpu = bv.analyze(loaded(name, "cpu"), image)
    gpu = bv.analyze(loaded(name, "cuda"), image, cpu.target.index)
    for layer in cpu.layers:
        close(gpu.gradcam[layer.name], cpu.gradcam[layer.name])
        close(gpu.activations[layer.name], cpu.activations[layer.name])
    close(gpu.probabilities, cpu.probabilities)


@GPU
@pytest.mark.parametrize("method", METHODS)
def test_attributions_and_the_sanity_check_on_the_gpu_are_the_cpus(method: str) -> None:
    name = "efficientnet_lite0" if method != "guided_backprop" else "resnet50"
    options = QUICK.get(method, {})
    cpu = bv.sanity_check(loaded(name, "cpu"), sample("cat"), method, **options)
    gpu = bv.sanity_check(loaded(name, "cuda"), sample("cat"), method, **options)
    assert gpu.target.index == cpu.target.index
    for g, c in zip(gpu.steps, cpu.steps, strict=True):
        # Gradients through random weights are less stable than the maps of a forward pass.
        close(g.attribution.channels, c.attribution.channels, share=1e-3)
        assert g.correlation == pytest.approx(c.correlation, abs=0.02, nan_ok=True)


@GPU
def test_a_feature_visualization_on_the_gpu_means_what_the_cpus_means() -> None:
    """Gradient ascent amplifies rounding, so not the same pixels: the same drive of the channel."""
    cpu = bv.visualize_channel(loaded("efficientnet_lite0", "cpu"), "blocks.1.1", 5, size=64, steps=32)
    gpu = bv.visualize_channel(loaded("efficientnet_lite0", "cuda"), "blocks.1.1", 5, size=64, steps=32)
    assert gpu.activation == pytest.approx(cpu.activation, rel=0.10)

"""Knock-outs and the block ablation: edits of a copy of the graph, never of the shared model."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

import backbone_viz as bv
from tests.conftest import CATS, count_hooks, sample


def _checksum(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def resnet() -> bv.Backbone:
    return bv.load_backbone("resnet50", "untrained", device="cpu")


def test_no_knockout_is_exactly_the_plain_analysis(lite0: bv.Backbone) -> None:
    img = sample("cat")
    plain = bv.analyze(lite0, img)
    empty = bv.analyze(lite0, img, knockout=[])
    assert empty.knockout == () and plain.knockout == ()
    assert empty.predictions == plain.predictions and empty.target == plain.target
    for name in plain.activations:
        np.testing.assert_array_equal(empty.activations[name], plain.activations[name])
        np.testing.assert_array_equal(empty.gradcam[name], plain.gradcam[name])


def test_switching_off_channels_zeroes_exactly_them_and_nothing_upstream(lite0: bv.Backbone) -> None:
    img = sample("cat")
    plain = bv.analyze(lite0, img)
    off = [3, 7, 11]
    res = bv.analyze(lite0, img, knockout=[("blocks.3.1", [11, 3, 7, 3])])
    assert res.knockout == (("blocks.3.1", (3, 7, 11)),)
    names = [layer.name for layer in lite0.spec.layers]
    at = names.index("blocks.3.1")
    for name in names[:at]:  # upstream: untouched, to the bit
        np.testing.assert_array_equal(res.activations[name], plain.activations[name])
    act = res.activations["blocks.3.1"]
    assert not act[off].any()
    keep = [c for c in range(act.shape[0]) if c not in off]
    np.testing.assert_array_equal(act[keep], plain.activations["blocks.3.1"][keep])
    # Downstream sees the change.
    assert not np.array_equal(res.activations["blocks.3.2"], plain.activations["blocks.3.2"])
    assert not np.allclose(res.logits, plain.logits)


def test_removing_a_residual_block_passes_its_shortcut_alone(resnet: bv.Backbone) -> None:
    img = sample("cat")
    plain = bv.analyze(resnet, img)
    # layer1.1 has an identity shortcut: without it, its output is its input (layer1.0's output).
    res = bv.analyze(resnet, img, knockout=["layer1.1"])
    assert res.knockout == ("layer1.1",)
    np.testing.assert_array_equal(res.activations["layer1.1"], plain.activations["layer1.0"])
    np.testing.assert_array_equal(res.activations["layer1.0"], plain.activations["layer1.0"])
    # layer2.0 has a projection shortcut: its output becomes the projection of its input.
    x = resnet.preprocess(img)
    with torch.no_grad():
        projection = resnet.extract(x, ["layer2.0.downsample.1"])["layer2.0.downsample.1"][0]
    res = bv.analyze(resnet, img, knockout=["layer2.0"])
    np.testing.assert_allclose(res.activations["layer2.0"], projection.numpy(), atol=1e-6)


def test_a_plain_layer_that_keeps_its_shape_becomes_the_identity() -> None:
    vgg = bv.load_backbone("vgg16", "untrained", device="cpu")
    img = sample("cat")
    plain = bv.analyze(vgg, img)
    res = bv.analyze(vgg, img, knockout=["conv3_2"])
    np.testing.assert_array_equal(res.activations["features.13"], plain.activations["features.11"])


@pytest.mark.parametrize(
    ("name", "block", "reason"),
    [
        ("googlenet", "inception4c", "no shortcut"),
        ("vgg16", "conv1_2", "max pool halves the map"),
        ("vgg16", "conv2_1", "turns 64 channels into 128"),
        ("efficientnet_lite0", "blocks.2.0", "turns 24 channels into 40"),
    ],
)
def test_an_impossible_removal_is_refused_with_the_reason(name: str, block: str, reason: str) -> None:
    bb = bv.load_backbone(name, "untrained", device="cpu")
    checksum, hooks = _checksum(bb.model), count_hooks(bb.model)
    with pytest.raises(bv.KnockoutError, match=reason) as caught:
        bv.analyze(bb, sample("cat"), knockout=[block])
    assert caught.value.hint
    assert _checksum(bb.model) == checksum and count_hooks(bb.model) == hooks == 0


def test_bad_channels_and_names(lite0: bv.Backbone) -> None:
    with pytest.raises(bv.KnockoutError, match="no channel 40"):
        bv.analyze(lite0, sample("cat"), knockout=[("blocks.2.1", [40])])
    with pytest.raises(ValueError, match="no block"):
        bv.analyze(lite0, sample("cat"), knockout=["layer9.9"])
    with pytest.raises(TypeError):
        bv.analyze(lite0, sample("cat"), knockout=[42])


def test_knockouts_leave_the_shared_model_as_it_was(lite0: bv.Backbone) -> None:
    checksum, hooks = _checksum(lite0.model), count_hooks(lite0.model)
    bv.analyze(lite0, sample("coffee"), knockout=["blocks.4.1", ("bn2", range(0, 1280, 2))])
    bv.block_ablation(lite0, sample("coffee"))
    assert _checksum(lite0.model) == checksum and count_hooks(lite0.model) == hooks == 0
    assert not lite0.model.training
    assert all(p.grad is None and not p.requires_grad for p in lite0.model.parameters())


def test_threads_with_different_knockouts_match_serial(lite0: bv.Backbone) -> None:
    img = sample("cat")
    jobs = [[], ["blocks.2.1"], [("blocks.5.0", [0, 1])], ["blocks.4.2", "blocks.5.1"]] * 2
    serial = [bv.analyze(lite0, img, knockout=k) for k in jobs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(pool.map(lambda k: bv.analyze(lite0, img, knockout=k), jobs))
    for a, b in zip(serial, parallel, strict=True):
        assert a.knockout == b.knockout and a.predictions == b.predictions
        np.testing.assert_array_equal(a.gradcam["bn2"], b.gradcam["bn2"])


def test_block_ablation_on_the_cat(lite0: bv.Backbone) -> None:
    calls: list[tuple[int, int]] = []
    rows = bv.block_ablation(lite0, sample("cat"), progress=lambda done, total: calls.append((done, total)))
    names = [row.block.name for row in rows]
    assert names == [b.name for b in lite0.spec.blocks if b.has_shortcut]  # Lite0: 9 blocks with a shortcut
    assert calls[-1] == (9, 9) and len(calls) == 9
    before = bv.analyze(lite0, sample("cat")).predictions[0]
    for row in rows:
        res = bv.analyze(lite0, sample("cat"), knockout=[row.block.name])
        assert row.top1 == res.predictions[0]
        assert row.target_probability == pytest.approx(float(res.probabilities[before.index]), abs=1e-6)
    # Removing one block with a shortcut rarely changes what the picture is: most keep a cat on top.
    assert sum(row.top1.label in CATS for row in rows) >= 7

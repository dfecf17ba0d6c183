"""Inside a block: the picture's maps at every part, and the numbers the page quotes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

import backbone_viz as bv
from tests.conftest import count_hooks, sample


def test_a_residual_block_adds_its_branch_to_its_shortcut(lite0: bv.Backbone) -> None:
    inside = bv.inside_block(lite0, sample("cat"), "blocks.2.1")
    assert inside.kind == "inverted_residual"
    roles = [p.role for p in inside.parts]
    assert roles == ["input", "expand", "depthwise", "project", "shortcut", "sum", "output"]
    part = {p.role: inside.maps[p.name] for p in inside.parts}
    np.testing.assert_allclose(part["sum"], part["project"] + part["shortcut"], atol=1e-5)
    assert part["expand"].shape == (240, 28, 28) and part["project"].shape == (40, 28, 28)
    s = inside.summary
    e_short, e_branch = float(np.square(part["shortcut"]).sum()), float(np.square(part["project"]).sum())
    assert s["shortcut_share"] == pytest.approx(e_short / (e_short + e_branch), rel=1e-5)
    assert s["shortcut_share"] + s["residual_share"] == pytest.approx(1.0)
    assert s["expansion"] == 6
    # The depthwise step: one 5x5 filter per channel, 240 times cheaper than a plain 5x5 convolution.
    assert s["depthwise_macs"] == 28 * 28 * 240 * 25
    assert s["plain_macs"] == s["depthwise_macs"] * 240
    with pytest.raises(ValueError):
        inside.maps["blocks.2.1.add"][0, 0, 0] = 1.0


def test_resnet_bottleneck_and_googlenet_inception() -> None:
    resnet = bv.load_backbone("resnet50", "untrained", device="cpu")
    inside = bv.inside_block(resnet, sample("cat"), "layer3.1")
    part = {p.role: inside.maps[p.name] for p in inside.parts}
    np.testing.assert_allclose(part["sum"], part["residual"] + part["shortcut"], atol=1e-5)
    np.testing.assert_allclose(part["output"], np.maximum(part["sum"], 0.0), atol=1e-6)
    assert inside.parts[2].label.startswith("shortcut: the input itself")

    googlenet = bv.load_backbone("googlenet", "untrained", device="cpu")
    inside = bv.inside_block(googlenet, sample("cat"), "inception4c")
    branches = [inside.maps[p.name] for p in inside.parts if p.role == "branch"]
    np.testing.assert_array_equal(np.concatenate(branches), inside.maps["inception4c.cat"])
    summary = inside.summary["branches"]
    assert [b["channels"] for b in summary] == [128, 256, 64, 64]
    assert summary[1]["mean_activation"] == pytest.approx(float(branches[1].mean()), rel=1e-6)
    assert "3×3" in summary[2]["label"] and "5×5" in summary[2]["label"]  # says what it really computes


def test_googlenet_parts_are_not_overwritten_by_in_place_relus() -> None:
    googlenet = bv.load_backbone("googlenet", "untrained", device="cpu")
    for name in ("conv1", "conv3"):
        inside = bv.inside_block(googlenet, sample("cat"), name)
        x = googlenet.preprocess(sample("cat"))
        with torch.no_grad():
            bn = googlenet.extract(x, [f"{name}.bn"])[f"{name}.bn"][0].numpy()
        relu = inside.maps[f"{name}.relu"]
        np.testing.assert_allclose(relu, np.maximum(bn, 0.0), atol=1e-6)
        assert (bn < 0).any()


def test_plain_block_summary_and_lookup_by_label() -> None:
    vgg = bv.load_backbone("vgg16", "untrained", device="cpu")
    inside = bv.inside_block(vgg, sample("cat"), "conv3_2")
    assert inside.block.name == "features.13" and inside.kind == "plain"
    assert inside.summary == {"in_channels": 256, "out_channels": 256, "macs": 56 * 56 * 256 * 256 * 9}
    with pytest.raises(ValueError, match="no block"):
        bv.inside_block(vgg, sample("cat"), "conv9_9")


def test_inside_block_is_thread_safe_and_hook_free(lite0: bv.Backbone) -> None:
    img = sample("coffee")
    blocks = ["blocks.1.1", "blocks.4.2", "bn1", "bn2"] * 2
    serial = [bv.inside_block(lite0, img, b) for b in blocks]
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(pool.map(lambda b: bv.inside_block(lite0, img, b), blocks))
    for a, b in zip(serial, parallel, strict=True):
        for name in a.maps:
            np.testing.assert_array_equal(a.maps[name], b.maps[name])
    assert count_hooks(lite0.model) == 0

"""Counting blocks: one rule for every count of blocks and every "block i of N" the app shows (the blocks a
backbone repeats, not its stem's convolutions nor a last convolution after them), and labels that do not
put a backbone layer in the head."""

from __future__ import annotations

import pytest

import backbone_viz as bv
from backbone_viz import zoo
from backbone_viz.core.blocks import block_place, find_block, repeated_blocks
from backbone_viz.core.knockout import bypassable
from webui.views import block_view

#: Blocks each backbone repeats: ResNet's basic or bottleneck blocks, GoogLeNet's inception modules, Lite0's
#: MBConv blocks, and each of VGG's convolutions (VGG-16: 13 of the 16 layers its name counts).
COUNTS = {
    "efficientnet_lite0": 16,
    "vgg16": 13,
    "vgg19": 16,
    "resnet18": 8,
    "resnet50": 16,
    "resnet101": 33,
    "googlenet": 9,
}
#: Blocks before the repeated ones (the stem) and after them.
STEM = {"efficientnet_lite0": 1, "resnet18": 1, "resnet50": 1, "resnet101": 1, "googlenet": 3}
AFTER = {"efficientnet_lite0": 1}


def test_every_backbone_is_counted() -> None:
    assert set(COUNTS) == {spec.name for spec in bv.list_backbones()}


@pytest.mark.parametrize("name", COUNTS)
def test_the_count_leaves_out_the_stem_and_the_last_convolution(name: str) -> None:
    spec = bv.get_spec(name)
    repeated = spec.repeated_blocks
    assert len(repeated) == COUNTS[name]
    assert repeated == repeated_blocks(spec.blocks)
    assert len({b.kind for b in repeated}) == 1  # one kind, repeated
    stem, after = STEM.get(name, 0), AFTER.get(name, 0)
    assert len(spec.blocks) == stem + COUNTS[name] + after
    assert all(b.kind == "plain" for b in spec.blocks[:stem] + spec.blocks[len(spec.blocks) - after :])
    assert block_view.count_sentence(spec).startswith(f"{spec.title} is built from {COUNTS[name]} blocks")
    assert f"**{spec.title}**: {COUNTS[name]} blocks" in block_view.member_line(spec)


@pytest.mark.parametrize("name", COUNTS)
def test_block_i_of_n_counts_the_repeated_blocks(name: str) -> None:
    spec = bv.get_spec(name)
    n, stem = COUNTS[name], STEM.get(name, 0)
    places = [spec.block_place(b.name) for b in spec.blocks]
    assert [p.place for p in places] == ["stem"] * stem + ["repeated"] * n + ["after"] * AFTER.get(name, 0)
    assert all(p.repeated == n for p in places)
    first, last = spec.blocks[stem], spec.blocks[stem + n - 1]
    assert block_view.place_text(spec, first) == f"block 1 of {n}"
    assert block_view.place_text(spec, last) == f"block {n} of {n}"
    assert block_place(spec.blocks, last.label) == spec.block_place(last.name)
    if stem:
        assert block_view.place_text(spec, spec.blocks[0]).endswith(f", before the {n} blocks")


def test_lite0s_stem_and_last_convolution_are_named_as_such() -> None:
    spec = bv.get_spec("efficientnet_lite0")
    assert block_view.place_text(spec, spec.blocks[0]) == "the stem, before the 16 blocks"
    assert block_view.place_text(spec, spec.blocks[4]) == "block 4 of 16"  # blocks.2.0
    assert block_view.place_text(spec, spec.blocks[-1]) == "the last convolution, after the 16 blocks"
    assert block_view.count_sentence(spec) == (
        "EfficientNet-Lite0 is built from 16 blocks, with one convolution before them (the stem) and one "
        "convolution after them"
    )


@pytest.mark.parametrize("name", COUNTS)
def test_the_ablation_counts_removable_blocks_among_the_repeated_ones(name: str) -> None:
    """"n of the N blocks can be removed": N the repeated blocks, n only those among them; a stem
    convolution that can be removed (GoogLeNet's 1x1 conv2) is named apart."""
    spec = bv.get_spec(name)
    removable = bypassable(spec)
    inside = [b for b in removable if b in spec.repeated_blocks]
    sentence = block_view.removable_sentence(spec, removable)
    assert sentence.startswith(f"{len(inside)} of the {COUNTS[name]} blocks can be removed")
    outside = [b.label for b in removable if b not in spec.repeated_blocks]
    assert (f"convolutions before or after them ({', '.join(outside)})" in sentence) == bool(outside)
    if name == "googlenet":
        assert outside == ["conv2"] and not inside


@pytest.mark.parametrize("name", ["vgg16", "vgg19"])
def test_only_the_last_convolution_of_each_vgg_group_pools(name: str) -> None:
    """A max pool follows 5 of VGG's convolutions, read from torchvision's configuration, and only those
    blocks draw one; the family card says so rather than drawing a pooled block as the typical one."""
    spec = bv.get_spec(name)
    pooled = [b.label for b in spec.blocks if b.part("pool") is not None]
    groups = sorted({b.label.split("_")[0] for b in spec.blocks})
    last_of_group = [[b.label for b in spec.blocks if b.label.startswith(g + "_")][-1] for g in groups]
    assert pooled == last_of_group and len(pooled) == 5
    assert block_view.pool_note(spec) == "5 of them end in a max pool"
    card = next(f for f in zoo.families() if spec.name in f.members)
    assert spec.blocks[[b.name for b in spec.blocks].index(card.block)].part("pool") is None


def test_no_layer_label_puts_a_backbone_layer_in_the_head() -> None:
    """The head is the pooling and the classifier after the last stage: no backbone layer is called one."""
    for spec in bv.list_backbones():
        assert not [layer.label for layer in spec.layers if "head" in layer.label], spec.name
    lite0 = bv.get_spec("efficientnet_lite0")
    last = lite0.layers[-1]
    assert (last.name, last.label, last.stage) == ("bn2", "last_conv", lite0.stages[-1].index)
    # Old links and scripts that name it by its former label still find it; it is never shown.
    assert lite0.layer("head_conv") is last
    assert find_block(lite0, "head_conv").name == "bn2"
    with pytest.raises(ValueError, match="last_conv") as error:
        lite0.layer("no_such_layer")
    assert "head_conv" not in str(error.value)

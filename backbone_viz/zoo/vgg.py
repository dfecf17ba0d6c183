"""VGG-16 and VGG-19 (Simonyan & Zisserman, 2014): plain stacks of 3x3 convolutions.

torchvision's ``vgg16`` and ``vgg19`` (ImageNet weights ``IMAGENET1K_V1``). Every convolution is a layer,
shown after its ReLU and labelled ``conv{group}_{i}`` as in the paper; the last of each of the five groups
is followed by a 2x2 max pool. Each convolution (with its ReLU, and its max pool where one follows) is one
block, so VGG-16 has 13 blocks: the 16 of its name also counts the three fully connected layers after the
backbone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from backbone_viz.core.blocks import BlockSpec, plain_block
from backbone_viz.core.specs import BackboneSpec, LayerSpec, Preprocessing, layers_from_rows
from backbone_viz.files.weights import WeightsFile
from backbone_viz.zoo import Family, register_backbone, register_family, torchvision_builder

if TYPE_CHECKING:
    pass

#: torchvision's VGG configurations: output channels of each 3x3 convolution, ``"M"`` for a max pool.
VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
VGG19 = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M"] + [512] * 4 + ["M"]

#: What torchvision's ``IMAGENET1K_V1`` weights declare (``weights.transforms()``; tests/test_zoo.py).
PREPROCESSING = Preprocessing(256, 224, "bilinear", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def vgg_rows(config: Sequence[int | str]) -> list[tuple[str, str, int, int, int]]:
    """Rows for every conv+ReLU of a torchvision VGG ``features`` stack, labelled ``conv{block}_{i}``.

    The output of each ``ReLU`` (index conv + 1) is shown; receptive fields grow by 2 * stride per 3x3
    convolution and by 1 * stride per 2x2 max pool.
    """
    rows, index, block, i, stride, rf = [], 0, 1, 1, 1, 1
    for value in config:
        if value == "M":
            rf, stride, index, block, i = rf + stride, stride * 2, index + 1, block + 1, 1
            continue
        rf += 2 * stride
        rows.append((f"features.{index + 1}", f"conv{block}_{i}", int(value), stride, rf))
        index, i = index + 2, i + 1
    return rows


def vgg_blocks(layers: Sequence[LayerSpec], config: Sequence[int | str]) -> tuple[BlockSpec, ...]:
    """Blocks of a torchvision VGG: each 3x3 convolution with its ReLU, and the max pool that follows.

    Args:
        layers: the spec's layers (one per convolution, named by its ReLU: ``features.{i + 1}``).
        config: torchvision's VGG configuration (channel counts and ``"M"`` for max pools).
    """
    conv_at, pools, index = [], set(), 0
    for value in config:
        if value == "M":
            pools.add(index)
            index += 1
        else:
            conv_at.append(index)
            index += 2
    blocks = []
    for layer, conv in zip(layers, conv_at, strict=True):
        pool = f"features.{conv + 2}" if conv + 2 in pools else None
        input_node = "x" if conv == 0 else f"features.{conv - 1}"
        blocks.append(plain_block(layer, input_node, f"features.{conv}", f"features.{conv + 1}", pool, "ReLU"))
    return tuple(blocks)


def _vgg(name: str, title: str, summary: str, params: float, config: list, build, weights: WeightsFile) -> BackboneSpec:
    layers = layers_from_rows(vgg_rows(config))
    return BackboneSpec(
        name=name,
        title=title,
        summary=summary,
        params_millions=params,
        layers=layers,
        blocks=vgg_blocks(layers, config),
        head="classifier.6",
        pooled="classifier.5",
        head_splits=False,
        preprocessing=PREPROCESSING,
        weights_file=weights,
        build=build,
    )


register_backbone(
    _vgg(
        "vgg16",
        "VGG-16",
        "A plain stack of 3x3 convolutions (2014): simple to read, large and slow.",
        138.4,
        VGG16,
        torchvision_builder("vgg16"),
        WeightsFile("vgg16-397923af.pth", "https://download.pytorch.org/models/vgg16-397923af.pth", 553434218),
    )
)
register_backbone(
    _vgg(
        "vgg19",
        "VGG-19",
        "VGG-16 with three more convolutions (2014).",
        143.7,
        VGG19,
        torchvision_builder("vgg19"),
        WeightsFile("vgg19-dcbb9e9d.pth", "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth", 574673125),
    )
)
register_family(
    Family(
        "VGG",
        2014,
        ("vgg16", "vgg19"),
        # conv2_1: a typical block, with no max pool after it (only the last block of each group has one).
        "features.6",
        "Depth from the smallest filters: only 3×3 convolutions, stacked, and a max pool after each group of "
        "them. Two of them see as far as one 5×5 with fewer weights.",
        "Simonyan & Zisserman, 2014",
    )
)

"""ResNet-18, ResNet-50 and ResNet-101 (He et al., 2015): blocks that add a correction to their input.

torchvision's ``resnet18`` (basic blocks: two 3x3 convolutions; weights ``IMAGENET1K_V1``) and
``resnet50`` / ``resnet101`` (bottleneck blocks: 1x1, 3x3, 1x1 convolutions; torchvision v1.5, which
strides on the 3x3; weights ``IMAGENET1K_V2``, torchvision's default). The stem is shown after
conv1 + bn1 + ReLU; each block at its output, after the addition and its ReLU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from backbone_viz.core.blocks import BlockSpec, PartSpec, plain_block
from backbone_viz.core.specs import BackboneSpec, LayerSpec, Preprocessing, layers_from_rows
from backbone_viz.files.weights import WeightsFile
from backbone_viz.zoo import Family, register_backbone, register_family, torchvision_builder

if TYPE_CHECKING:

    pass

_MEAN, _STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BlockDesign:
    """What a ResNet's blocks are made of.

    Attributes:
        convs: the 3x3 convolutions in one block (2 for a basic block, 1 for a bottleneck).
        widening: output channels of a block per channel of its 3x3 convolutions (1, or 4 for a bottleneck).
        branch: the residual branch, for a learner.
        last_bn: the batch norm that ends the branch (its output is F(x)).
        output_relu: the block's last ReLU call (its output), as the traced graph names it.
    """

    convs: int
    widening: int
    branch: str
    last_bn: str
    output_relu: str


BASIC = BlockDesign(2, 1, "branch F(x): 3×3 → 3×3 convolutions", "bn2", "relu_1")
BOTTLENECK = BlockDesign(1, 4, "branch F(x): 1×1 → 3×3 → 1×1 convolutions", "bn3", "relu_2")


def resnet_rows(counts: Sequence[int], design: BlockDesign) -> list[tuple[str, str, int, int, int]]:
    """Rows for the stem and every block of a torchvision ResNet with ``counts`` blocks per stage.

    The stem's field is 7 px, the max pool adds 2 * 2. Each 3x3 convolution of a block adds 2 * the
    stride it works at: the first block of a stage strides on its first 3x3, which still sees the
    previous stride; a basic block's second 3x3 works at the new one.
    """
    rows, rf, stride = [("relu", "conv1", 64, 2, 7)], 11, 4
    for stage, count in enumerate(counts, start=1):
        channels = 64 * design.widening * 2 ** (stage - 1)
        for j in range(count):
            rf += 2 * stride
            if j == 0 and stage > 1:
                stride *= 2
            rf += 2 * stride * (design.convs - 1)
            rows.append((f"layer{stage}.{j}", f"layer{stage}.{j}", channels, stride, rf))
    return rows


def resnet_blocks(layers: Sequence[LayerSpec], design: BlockDesign) -> tuple[BlockSpec, ...]:
    """Blocks of a torchvision ResNet: the stem (conv, batch norm, ReLU, max pool), then its residual blocks.

    A block's shortcut is a 1x1 projection where its input's shape changes (the first block of a stage,
    except a basic block's first stage, which keeps 64 channels at stride 4), else the input itself.
    """
    stem, *rest = layers
    blocks = [
        plain_block(
            stem, "x", "conv1", "relu", "maxpool", "batch norm + ReLU", kernel=7,
            conv_label="7×7 convolution (stride 2)", pool_label="3×3 max pool (stride 2, halves the map)",
        )
    ]  # fmt: skip
    previous, previous_channels = "maxpool", stem.channels
    for layer in rest:
        stage, index = (int(p) for p in layer.name.removeprefix("layer").split("."))
        n = layer.name
        projection = index == 0 and (stage > 1 or layer.channels != previous_channels)
        stride = 2 if index == 0 and stage > 1 else 1
        shortcut = (
            PartSpec(f"{n}.downsample.1", f"shortcut: 1×1 convolution, stride {stride}, + batch norm "
                     "(the input's shape must change to be added)", "shortcut")
            if projection
            else PartSpec(previous, "shortcut: the input itself (identity)", "shortcut")
        )  # fmt: skip
        output = f"{n}.{design.output_relu}"
        parts = (
            PartSpec(previous, "input", "input"),
            PartSpec(f"{n}.{design.last_bn}", design.branch, "residual"),
            shortcut,
            PartSpec(f"{n}.add", "sum: F(x) + shortcut", "sum"),
            PartSpec(output, "output: ReLU of the sum", "output"),
        )
        blocks.append(BlockSpec(n, layer.label, "residual", layer.stage, parts))
        previous, previous_channels = output, layer.channels
    return tuple(blocks)


def _resnet(
    name: str, title: str, summary: str, params: float, counts: Sequence[int], design: BlockDesign,
    resize: int, weights: WeightsFile,
) -> BackboneSpec:  # fmt: skip
    layers = layers_from_rows(resnet_rows(counts, design))
    return BackboneSpec(
        name=name,
        title=title,
        summary=summary,
        params_millions=params,
        layers=layers,
        blocks=resnet_blocks(layers, design),
        head="fc",
        pooled="flatten",
        head_splits=True,
        # What torchvision's weights declare (weights.transforms(); tests/test_zoo.py checks it).
        preprocessing=Preprocessing(resize, 224, "bilinear", _MEAN, _STD),
        weights_file=weights,
        build=torchvision_builder(name),
    )


_URL = "https://download.pytorch.org/models/"
register_backbone(
    _resnet(
        "resnet18",
        "ResNet-18",
        "The smallest ResNet (2015): basic blocks of two 3x3 convolutions, the one most courses draw.",
        11.7,
        (2, 2, 2, 2),
        BASIC,
        256,
        WeightsFile("resnet18-f37072fd.pth", _URL + "resnet18-f37072fd.pth", 46830453),
    )
)
register_backbone(
    _resnet(
        "resnet50",
        "ResNet-50",
        "Residual blocks with shortcuts (2015): the most reused backbone of all.",
        25.6,
        (3, 4, 6, 3),
        BOTTLENECK,
        232,
        WeightsFile("resnet50-11ad3fa6.pth", _URL + "resnet50-11ad3fa6.pth", 102540247),
    )
)
register_backbone(
    _resnet(
        "resnet101",
        "ResNet-101",
        "A deeper ResNet: 23 blocks in its third stage instead of 6.",
        44.5,
        (3, 4, 23, 3),
        BOTTLENECK,
        232,
        WeightsFile("resnet101-cd907fc2.pth", _URL + "resnet101-cd907fc2.pth", 178813665),
    )
)
register_family(
    Family(
        "ResNet",
        2015,
        ("resnet18", "resnet50", "resnet101"),
        "layer2.1",
        "The shortcut: each block adds a correction F(x) to its input x, so that networks of 100 layers and "
        "more still learn.",
        "He et al., 2015",
    )
)

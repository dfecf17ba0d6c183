"""GoogLeNet, or Inception v1 (Szegedy et al., 2014): inception modules run several filter sizes side by side.

torchvision's ``googlenet`` without its auxiliary heads (they only serve training), with its weights
``IMAGENET1K_V1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from backbone_viz.core.blocks import BlockSpec, PartSpec
from backbone_viz.core.specs import BackboneSpec, LayerSpec, Preprocessing, layers_from_rows
from backbone_viz.files.weights import WeightsFile
from backbone_viz.zoo import Family, register_backbone, register_family, torchvision_builder

if TYPE_CHECKING:
    pass

# GoogLeNet (Inception v1): the stem convs (each BasicConv2d is conv+bn+ReLU) and every inception module
# (a concatenation of four branches that each end in a ReLU). Receptive fields from the widest branch.
GOOGLENET_ROWS = [
    ("conv1", "conv1", 64, 2, 7),
    ("conv2", "conv2", 64, 4, 11),
    ("conv3", "conv3", 192, 4, 19),
    ("inception3a", "inception3a", 256, 8, 43),
    ("inception3b", "inception3b", 480, 8, 59),
    ("inception4a", "inception4a", 512, 16, 107),
    ("inception4b", "inception4b", 512, 16, 139),
    ("inception4c", "inception4c", 512, 16, 171),
    ("inception4d", "inception4d", 528, 16, 203),
    ("inception4e", "inception4e", 832, 16, 235),
    ("inception5a", "inception5a", 832, 32, 315),
    ("inception5b", "inception5b", 1024, 32, 379),
]


# After which stem conv GoogLeNet max-pools, and the node each block reads.
_GOOGLENET_POOL_AFTER = {"conv1": "maxpool1", "conv3": "maxpool2", "inception3b": "maxpool3", "inception4e": "maxpool4"}


def googlenet_blocks(layers: Sequence[LayerSpec]) -> tuple[BlockSpec, ...]:
    """Blocks of torchvision's GoogLeNet: three stem convolutions, then nine inception modules.

    torchvision's third branch is documented as 5x5 but is a 3x3 convolution (a known difference from the
    paper, kept for its pretrained weights), so it is labelled 3x3 here.
    """
    blocks = []
    # transform_input=True: the model first re-normalises the picture, ending in a concatenation ("cat").
    previous = "cat"
    for layer in layers:
        n = layer.name
        pool = _GOOGLENET_POOL_AFTER.get(n)
        if n.startswith("conv"):
            kernel = {"conv1": "7×7 convolution (stride 2)", "conv2": "1×1 convolution", "conv3": "3×3 convolution"}[n]
            parts = [
                PartSpec(previous, "input", "input"),
                PartSpec(f"{n}.conv", kernel, "conv"),
                PartSpec(f"{n}.relu", "batch norm + ReLU", "relu"),
            ]
            if pool is not None and n != "conv2":
                parts.append(PartSpec(pool, "3×3 max pool (stride 2, halves the map)", "pool"))
            parts.append(PartSpec(parts[-1].name, "output", "output"))
            blocks.append(BlockSpec(n, layer.label, "plain", layer.stage, tuple(parts), kernel=int(kernel[0])))
            previous = parts[-1].name
            continue
        parts = (
            PartSpec(previous, "input", "input"),
            PartSpec(f"{n}.branch1.relu", "branch 1: 1×1 convolution", "branch"),
            PartSpec(f"{n}.branch2.1.relu", "branch 2: 1×1 → 3×3 convolutions", "branch"),
            PartSpec(
                f"{n}.branch3.1.relu",
                "branch 3: 1×1 → 3×3 convolutions (the paper's 5×5; torchvision's weights use 3×3)",
                "branch",
            ),
            PartSpec(f"{n}.branch4.1.relu", "branch 4: 3×3 max pool → 1×1 convolution", "branch"),
            PartSpec(f"{n}.cat", "output: the four branches side by side (concatenated channels)", "output"),
        )
        blocks.append(BlockSpec(n, layer.label, "inception", layer.stage, parts))
        # The max pool after a module is the next module's input; the module's own output stays its "cat".
        previous = pool or f"{n}.cat"
    return tuple(blocks)


_LAYERS = layers_from_rows(GOOGLENET_ROWS)
register_backbone(
    BackboneSpec(
        name="googlenet",
        title="GoogLeNet (Inception v1)",
        summary="Inception modules run several filter sizes side by side (2014).",
        params_millions=6.6,
        layers=_LAYERS,
        blocks=googlenet_blocks(_LAYERS),
        head="fc",
        pooled="dropout",
        head_splits=True,
        # What torchvision's IMAGENET1K_V1 weights declare (weights.transforms(); tests/test_zoo.py).
        preprocessing=Preprocessing(256, 224, "bilinear", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        weights_file=WeightsFile(
            "googlenet-1378be20.pth", "https://download.pytorch.org/models/googlenet-1378be20.pth", 52146733
        ),
        # Same architecture as the pretrained weights: no auxiliary heads (they only serve training), and
        # transform_input=True because the weights were trained on differently normalised input; the
        # model converts ImageNet-normalised input itself.
        build=torchvision_builder(
            "googlenet", weights=None, aux_logits=False, transform_input=True, init_weights=True
        ),
    )
)
register_family(
    Family(
        "GoogLeNet",
        2014,
        ("googlenet",),
        "inception3a",
        "The inception module: filters of several sizes side by side, their maps stacked, with 1×1 "
        "convolutions first to keep it cheap.",
        "Szegedy et al., 2014",
    )
)

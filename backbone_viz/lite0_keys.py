"""The bundled EfficientNet-Lite0 file's key names, mapped onto timm's ``tf_efficientnet_lite0``.

A per-backbone key converter, as timm's ``checkpoint_filter_fn``: the spec names it
(``BundledWeights.checkpoint_filter``), so no other code needs to know which backbone is bundled.
"""

from __future__ import annotations

import re

import torch

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

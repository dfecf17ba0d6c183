"""Inside one block: the learner's picture flowing through its parts, and the numbers worth noticing.

:func:`inside_block` runs ONE forward pass through a traced graph cut at the block's parts (see
:mod:`backbone_viz.core.graph`): no hooks, no gradients, nothing about the shared model changes, so any
number of threads may call it at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from PIL import Image

from backbone_viz.core.backbones import Backbone
from backbone_viz.core.block_kinds import get_kind
from backbone_viz.core.blocks import BlockKind, BlockSpec, Role, find_block
from backbone_viz.core.runs import runs_model
from backbone_viz.core.specs import BackboneSpec
from backbone_viz.explain.analysis import frozen_numpy
from backbone_viz.zoo import get_spec


@dataclass(frozen=True)
class Part:
    """One part of a block as this picture made it.

    Attributes:
        name: graph node.
        label: what it computes, for a learner.
        role: its role in the block (``"residual"``, ``"branch"``...).
        shape: (C, h, w) of its output for this picture.
    """

    name: str
    label: str
    role: Role
    shape: tuple[int, int, int]


@dataclass(frozen=True, eq=False)
class InsideBlock:
    """One block opened on one picture.

    Attributes:
        block: the block's description.
        kind: ``"plain"``, ``"residual"``, ``"inception"`` or ``"inverted_residual"``.
        parts: the parts in forward order, with their shapes.
        maps: ``{part name: (C, h, w) float32}``, read-only; parts that name the same node share it.
        summary: the block's telling numbers (see :func:`inside_block`), read-only.
        input_image: the crop the model saw.
    """

    block: BlockSpec
    kind: BlockKind
    parts: tuple[Part, ...]
    maps: Mapping[str, np.ndarray] = field(repr=False)
    summary: Mapping[str, Any]
    input_image: Image.Image = field(repr=False)


def list_blocks(spec: BackboneSpec | str) -> tuple[BlockSpec, ...]:
    """The blocks of a backbone in forward order, each with ``name``, ``kind``, ``stage``, ``label``."""
    return (get_spec(spec) if isinstance(spec, str) else spec).blocks


@runs_model
def inside_block(backbone: Backbone, image: Image.Image, block: str | BlockSpec) -> InsideBlock:
    """Opens one block on a picture: the output of each of its parts, and what to notice.

    The summary holds, by kind:

    * a block with a shortcut (residual, and inverted residual blocks that keep their shape):
      ``shortcut_share`` and ``residual_share``, the share of the energy (sum of squares) of the two
      terms of the sum that comes from the shortcut and from the branch, ``|s|² / (|s|² + |F(x)|²)``;
      ``relative_change``, ``|F(x)| / |s|``, how big the branch's correction is beside what it corrects;
    * inception: ``branches``, one dict per branch with its ``label``, ``channels`` and
      ``mean_activation``;
    * inverted residual: ``expansion``, ``depthwise_macs`` (multiply-adds of the depthwise step) and
      ``plain_macs`` (a plain k×k convolution of the same width would need ``channels`` times more);
    * plain: ``in_channels``, ``out_channels`` and ``macs`` of its convolution.

    Args:
        backbone: a loaded backbone; it is not modified.
        image: an RGB PIL image.
        block: a block name or label (``"layer2.0"``, ``"conv3_2"``), or a :class:`BlockSpec`.

    Raises:
        ValueError: no such block in this backbone.
    """
    spec = backbone.spec
    block = find_block(spec, block if isinstance(block, str) else block.name)
    crop = backbone.crop(image)
    names = list(dict.fromkeys(p.name for p in block.parts))
    with torch.no_grad():
        out = backbone.extract(backbone.to_tensor(crop), names)
    maps = {name: frozen_numpy(t[0]) for name, t in out.items()}
    parts = tuple(Part(p.name, p.label, p.role, tuple(maps[p.name].shape)) for p in block.parts)
    return InsideBlock(
        block=block,
        kind=block.kind,
        parts=parts,
        maps=MappingProxyType(maps),
        summary=MappingProxyType(_summary(backbone, block, maps)),
        input_image=crop,
    )


def _summary(backbone: Backbone, block: BlockSpec, maps: Mapping[str, np.ndarray]) -> dict[str, Any]:
    def of(role: Role) -> np.ndarray:
        return maps[block.part(role).name]

    summary: dict[str, Any] = {}
    if block.has_shortcut:
        branch = of("residual") if block.part("residual") is not None else of("project")
        shortcut = of("shortcut")
        e_branch, e_short = float(np.square(branch, dtype=np.float64).sum()), float(
            np.square(shortcut, dtype=np.float64).sum()
        )
        total = e_branch + e_short
        summary["shortcut_share"] = e_short / total if total > 0 else 0.0
        summary["residual_share"] = e_branch / total if total > 0 else 0.0
        summary["relative_change"] = float(np.sqrt(e_branch / e_short)) if e_short > 0 else float("inf")
    summary.update(get_kind(block.kind).summary(backbone, block, maps))
    return summary

"""How each backbone builds its blocks, described as data: a block's kind and its parts.

Every listed layer of a backbone is the output of one block, so blocks and layers correspond one to one
(same name, same stage). A block is one of four kinds, and each part of a block is a graph node (see
:attr:`backbone_viz.Backbone.node_names`) with a role from a fixed vocabulary:

* ``"plain"`` (VGG's convolutions, every stem): ``input``, ``conv``, ``relu``, ``pool`` (where a max pool
  follows), ``output``;
* ``"residual"`` (ResNet's basic and bottleneck blocks): ``input``, ``residual`` (the branch F(x) just before the
  addition), ``shortcut`` (the input itself, or a 1x1 projection where the shape changes), ``sum``,
  ``output`` (after the final ReLU);
* ``"inception"`` (GoogLeNet): ``input``, four ``branch`` parts, ``output`` (their concatenation);
* ``"inverted_residual"`` (EfficientNet-Lite0): ``input``, ``expand`` (absent when the expansion is 1),
  ``depthwise``, ``project``, then ``shortcut`` and ``sum`` where the block has a shortcut, ``output``.
  With a shortcut, ``project`` plays the part of F(x).

A part whose role is ``shortcut`` and that is the identity names the same node as ``input``.
Each family module of :mod:`backbone_viz.zoo` builds its backbones' blocks; ``tests/test_blocks.py``
checks every block of every backbone against the traced graph and real shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from backbone_viz.core.specs import BackboneSpec, LayerSpec

BlockKind = Literal["plain", "residual", "inception", "inverted_residual"]
Role = Literal[
    "input", "conv", "relu", "pool", "residual", "shortcut", "sum", "branch", "expand", "depthwise",
    "project", "output",
]


@dataclass(frozen=True)
class PartSpec:
    """One part of a block.

    Attributes:
        name: the graph node whose output the part is (``"layer2.0.bn3"``).
        label: what it computes, for a learner (``"branch F(x): 1×1 → 3×3 → 1×1 convolutions"``).
        role: its role in the block (see the module docstring).
    """

    name: str
    label: str
    role: Role


@dataclass(frozen=True)
class BlockSpec:
    """One block of a backbone, the unit a learner opens and can knock out.

    Attributes:
        name: the block's module name, the same as its layer's (``"layer2.0"``, ``"inception4c"``).
        label: its display label (the layer's label: ``"conv3_2"``, ``"blocks.2.1"``).
        kind: ``"plain"``, ``"residual"``, ``"inception"`` or ``"inverted_residual"``.
        stage: the stage of its output layer.
        parts: its parts in forward order; the first is ``input``, the last ``output``.
        kernel: side of its spatial filter (3 for a 3x3 convolution; the depthwise filter's side).
        expansion: inverted residual blocks: how many times wider the expanded map is than the input.
    """

    name: str
    label: str
    kind: BlockKind
    stage: int
    parts: tuple[PartSpec, ...]
    kernel: int = 3
    expansion: int = 1

    def __post_init__(self) -> None:
        from backbone_viz.core.block_kinds import get_kind

        get_kind(self.kind)  # a kind no one registered: ValueError naming the registered ones

    def part(self, role: Role) -> PartSpec | None:
        """The first part with this role, or None."""
        return next((p for p in self.parts if p.role == role), None)

    @property
    def has_shortcut(self) -> bool:
        """Whether the block adds its input (or its projection) to a branch's output."""
        return self.part("sum") is not None


def plain_block(
    layer: LayerSpec, input_node: str, conv: str, relu: str, pool: str | None, relu_label: str
) -> BlockSpec:
    """A ``"plain"`` block: a convolution, its activation (``relu_label`` says which, and what comes with
    it), and the max pool that follows where there is one (``pool``)."""
    parts = [
        PartSpec(input_node, "input", "input"),
        PartSpec(conv, "3×3 convolution" if relu_label == "ReLU" else "convolution", "conv"),
        PartSpec(relu, relu_label, "relu"),
    ]
    if pool is not None:
        parts.append(PartSpec(pool, "2×2 max pool (halves the map)", "pool"))
    parts.append(PartSpec(pool or relu, "output", "output"))
    return BlockSpec(layer.name, layer.label, "plain", layer.stage, tuple(parts))


def find_block(spec: BackboneSpec, key: str) -> BlockSpec:
    """A block by name or label.

    Raises:
        ValueError: no such block; the message lists the choices.
    """
    for block in spec.blocks:
        if key in (block.name, block.label):
            return block
    choices = ", ".join(b.label for b in spec.blocks)
    raise ValueError(f"{spec.title} has no block {key!r}; choose one of: {choices}")

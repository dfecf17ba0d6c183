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

**Counting blocks.** A backbone repeats one kind of block: its *repeated blocks* (see
:func:`repeated_blocks`) are the run from the first to the last block of its most common kind. The plain
convolutions before them are its *stem* (ResNet's 7x7 convolution, GoogLeNet's three convolutions, Lite0's
first 3x3) and those after them its *last convolution* (Lite0's 1x1 convolution to 1280 channels); neither
is counted. VGG is plain throughout, so each of its convolutions (with its ReLU, and the max pool that
follows five of them) is one of its repeated blocks: VGG-16 has 13, its name also counting the three fully
connected layers after the backbone. Every count of blocks and every "block i of N" uses this one rule.
Each family module of :mod:`backbone_viz.zoo` builds its backbones' blocks; ``tests/test_blocks.py``
checks every block of every backbone against the traced graph and real shapes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
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
    layer: LayerSpec,
    input_node: str,
    conv: str,
    relu: str,
    pool: str | None,
    relu_label: str,
    *,
    kernel: int = 3,
    conv_label: str | None = None,
    pool_label: str = "2×2 max pool (halves the map)",
) -> BlockSpec:
    """A ``"plain"`` block: a convolution (``kernel`` × ``kernel``; ``conv_label`` says more), its
    activation (``relu_label`` says which, and what comes with it), and the max pool that follows where
    there is one (``pool``, described by ``pool_label``)."""
    parts = [
        PartSpec(input_node, "input", "input"),
        PartSpec(conv, conv_label or f"{kernel}×{kernel} convolution", "conv"),
        PartSpec(relu, relu_label, "relu"),
    ]
    if pool is not None:
        parts.append(PartSpec(pool, pool_label, "pool"))
    parts.append(PartSpec(pool or relu, "output", "output"))
    return BlockSpec(layer.name, layer.label, "plain", layer.stage, tuple(parts), kernel=kernel)


Place = Literal["stem", "repeated", "after"]


@dataclass(frozen=True)
class BlockPlace:
    """Where a block sits in its backbone (see "Counting blocks" in the module docstring).

    Attributes:
        place: ``"stem"`` (before the repeated blocks), ``"repeated"`` or ``"after"`` (after them).
        index: its 1-based position among the blocks of its place.
        count: how many blocks share its place.
        repeated: how many repeated blocks the backbone has (its count of blocks).
    """

    place: Place
    index: int
    count: int
    repeated: int


def _body(blocks: Sequence[BlockSpec]) -> tuple[int, int]:
    """Indices ``(start, stop)`` of the repeated blocks in ``blocks``: from the first to the last block of
    the most common kind (on a tie, the kind met first)."""
    if not blocks:
        return 0, 0
    kind = Counter(b.kind for b in blocks).most_common(1)[0][0]
    at = [i for i, b in enumerate(blocks) if b.kind == kind]
    return at[0], at[-1] + 1


def repeated_blocks(blocks: Sequence[BlockSpec]) -> tuple[BlockSpec, ...]:
    """The blocks a backbone repeats, the ones its count of blocks counts: every block but the stem's
    convolutions before them and the last convolution after them (decided by kind, not by name)."""
    start, stop = _body(blocks)
    return tuple(blocks[start:stop])


def block_place(blocks: Sequence[BlockSpec], name: str) -> BlockPlace:
    """Where the block ``name`` (module name or label) sits among ``blocks``.

    Raises:
        ValueError: no block of that name.
    """
    index = next((i for i, b in enumerate(blocks) if name in (b.name, b.label)), None)
    if index is None:
        raise ValueError(f"no block {name!r}; choose one of: {', '.join(b.label for b in blocks)}")
    start, stop = _body(blocks)
    repeated = stop - start
    if index < start:
        return BlockPlace("stem", index + 1, start, repeated)
    if index >= stop:
        return BlockPlace("after", index - stop + 1, len(blocks) - stop, repeated)
    return BlockPlace("repeated", index - start + 1, repeated, repeated)


def find_block(spec: BackboneSpec, key: str) -> BlockSpec:
    """A block by name or label.

    Raises:
        ValueError: no such block; the message lists the choices.
    """
    for block in spec.blocks:
        if key in (block.name, block.label):
            return block
    for layer in spec.layers:  # a label a layer had before (old links and scripts)
        if key in layer.former_labels:
            return find_block(spec, layer.name)
    choices = ", ".join(b.label for b in spec.blocks)
    raise ValueError(f"{spec.title} has no block {key!r}; choose one of: {choices}")

"""How each backbone builds its blocks, described as data: a block's kind and its parts.

Every listed layer of a backbone is the output of one block, so blocks and layers correspond one to one
(same name, same stage). A block is one of four kinds, and each part of a block is a graph node (see
:attr:`backbone_viz.Backbone.node_names`) with a role from a fixed vocabulary:

* ``"plain"`` (VGG's convolutions, every stem): ``input``, ``conv``, ``relu``, ``pool`` (where a max pool
  follows), ``output``;
* ``"residual"`` (ResNet's bottlenecks): ``input``, ``residual`` (the branch F(x) just before the
  addition), ``shortcut`` (the input itself, or a 1x1 projection where the shape changes), ``sum``,
  ``output`` (after the final ReLU);
* ``"inception"`` (GoogLeNet): ``input``, four ``branch`` parts, ``output`` (their concatenation);
* ``"inverted_residual"`` (EfficientNet-Lite0): ``input``, ``expand`` (absent when the expansion is 1),
  ``depthwise``, ``project``, then ``shortcut`` and ``sum`` where the block has a shortcut, ``output``.
  With a shortcut, ``project`` plays the part of F(x).

A part whose role is ``shortcut`` and that is the identity names the same node as ``input``.
``tests/test_blocks.py`` checks every block of every backbone against the traced graph and real shapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .specs import BackboneSpec, LayerSpec

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

    def part(self, role: Role) -> PartSpec | None:
        """The first part with this role, or None."""
        return next((p for p in self.parts if p.role == role), None)

    @property
    def has_shortcut(self) -> bool:
        """Whether the block adds its input (or its projection) to a branch's output."""
        return self.part("sum") is not None


def _plain(layer: LayerSpec, input_node: str, conv: str, relu: str, pool: str | None, relu_label: str) -> BlockSpec:
    parts = [
        PartSpec(input_node, "input", "input"),
        PartSpec(conv, "3×3 convolution" if relu_label == "ReLU" else "convolution", "conv"),
        PartSpec(relu, relu_label, "relu"),
    ]
    if pool is not None:
        parts.append(PartSpec(pool, "2×2 max pool (halves the map)", "pool"))
    parts.append(PartSpec(pool or relu, "output", "output"))
    return BlockSpec(layer.name, layer.label, "plain", layer.stage, tuple(parts))


def vgg_blocks(layers: Sequence[LayerSpec], config: Sequence[int | str]) -> tuple[BlockSpec, ...]:
    """Blocks of a torchvision VGG: each 3x3 convolution with its ReLU, and the max pool that follows.

    Args:
        layers: the spec's layers (one per convolution, named by its ReLU: ``features.{i + 1}``).
        config: torchvision's VGG configuration (channel counts and ``"M"`` for max pools).
    """
    blocks, index, conv_at = [], 0, []
    for value in config:
        if value == "M":
            index += 1
            continue
        conv_at.append(index)
        index += 2
    pools = set()
    index = 0
    for value in config:
        if value == "M":
            pools.add(index)
            index += 1
        else:
            index += 2
    for layer, conv in zip(layers, conv_at, strict=True):
        pool = f"features.{conv + 2}" if conv + 2 in pools else None
        input_node = "x" if conv == 0 else f"features.{conv - 1}"
        blocks.append(_plain(layer, input_node, f"features.{conv}", f"features.{conv + 1}", pool, "ReLU"))
    return tuple(blocks)


def resnet_blocks(layers: Sequence[LayerSpec]) -> tuple[BlockSpec, ...]:
    """Blocks of a torchvision ResNet: the stem (conv, batch norm, ReLU, max pool), then its bottlenecks."""
    stem, *rest = layers
    blocks = [_plain(stem, "x", "conv1", "relu", "maxpool", "batch norm + ReLU")]
    previous = "maxpool"
    for layer in rest:
        stage, index = (int(p) for p in layer.name.removeprefix("layer").split("."))
        n = layer.name
        projection = index == 0  # the first block of each stage changes the channels (and the stride)
        stride = 1 if stage == 1 or not projection else 2
        shortcut = (
            PartSpec(f"{n}.downsample.1", f"shortcut: 1×1 convolution, stride {stride}, + batch norm "
                     "(the input's shape must change to be added)", "shortcut")
            if projection
            else PartSpec(previous, "shortcut: the input itself (identity)", "shortcut")
        )
        parts = (
            PartSpec(previous, "input", "input"),
            PartSpec(f"{n}.bn3", "branch F(x): 1×1 → 3×3 → 1×1 convolutions", "residual"),
            shortcut,
            PartSpec(f"{n}.add", "sum: F(x) + shortcut", "sum"),
            PartSpec(f"{n}.relu_2", "output: ReLU of the sum", "output"),
        )
        blocks.append(BlockSpec(n, layer.label, "residual", layer.stage, parts))
        previous = f"{n}.relu_2"
    return tuple(blocks)


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
            kernel = {"conv1": "7×7 convolution, stride 2", "conv2": "1×1 convolution", "conv3": "3×3 convolution"}[n]
            parts = [
                PartSpec(previous, "input", "input"),
                PartSpec(f"{n}.conv", kernel, "conv"),
                PartSpec(f"{n}.relu", "batch norm + ReLU", "relu"),
            ]
            if pool is not None and n != "conv2":
                parts.append(PartSpec(pool, "3×3 max pool, stride 2 (halves the map)", "pool"))
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


# EfficientNet-Lite0: per stage, the depthwise kernel and the expansion of its blocks.
_LITE0_KERNELS = (3, 3, 5, 3, 5, 5, 3)
_LITE0_EXPANSION = (1, 6, 6, 6, 6, 6, 6)


def lite0_blocks(layers: Sequence[LayerSpec]) -> tuple[BlockSpec, ...]:
    """Blocks of timm's tf_efficientnet_lite0: the stem, sixteen MBConv blocks and the head convolution.

    A block has a shortcut where it keeps its input's shape (stride 1, same channels); its output is then
    the sum, with no activation after it (the "linear bottleneck").
    """
    stem, *rest, head = layers
    blocks = [_plain(stem, "x", "conv_stem", "bn1", None, "batch norm + ReLU6")]
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
    blocks.append(_plain(head, previous, "conv_head", "bn2", None, "batch norm + ReLU6 (1×1 convolution)"))
    return tuple(blocks)


def _stride_of(layers: Sequence[LayerSpec], node: str) -> int:
    """Stride of the layer whose output is ``node`` (``bn1`` or a block's sum or projection)."""
    for layer in layers:
        if node == layer.name or node.startswith(layer.name + "."):
            return layer.stride
    raise ValueError(f"no layer outputs {node!r}")


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

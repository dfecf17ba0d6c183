"""torchvision's detectors and segmenters built on our backbones, described as data.

Each :class:`DenseSpec` says what a learner needs to connect a real detector to the classifier it grew
from: torchvision's builder, the weights file (name, address, size, SHA-256 prefix), its labels, the
backbone spec it is built on, which of that backbone's layers feed its neck, which parts training froze,
how its checkpoint's keys map onto the classifier's modules, and which ImageNet weights its backbone
started from. Facts were read from torchvision 0.29's sources (``models/detection``,
``models/segmentation``); ``tests/test_dense.py`` checks them against the installed torchvision.

Nothing here imports torch: the command line lists the models (``weights list``) without loading it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from backbone_viz.core.registry import Registry
from backbone_viz.files.weights import WeightsFile

if TYPE_CHECKING:
    from torch import nn

__all__ = ["DENSE_KINDS", "DenseKind", "DenseSpec", "get_dense_spec", "list_dense", "register_dense"]

DenseKind = Literal["detector", "instance segmenter", "semantic segmenter"]
DENSE_KINDS: tuple[DenseKind, ...] = ("detector", "instance segmenter", "semantic segmenter")

_URL = "https://download.pytorch.org/models/"


def _file(filename: str, mib: float) -> WeightsFile:
    """A torchvision weights file; ``mib`` is torchvision's ``meta["_file_size"]`` (MiB, 3 decimals), so the
    size in bytes is right to about a kilobyte: it is shown, never checked (the SHA-256 prefix is)."""
    return WeightsFile(filename, _URL + filename, round(mib * 2**20))


#: The ImageNet weights each family of dense models started from (torchvision's ``weights_backbone``
#: default), by the name ``weights fetch`` knows them under.
START_WEIGHTS: dict[str, tuple[str, str, WeightsFile]] = {
    # name: (classifier spec, torchvision enum, file)
    "resnet50.IMAGENET1K_V1": ("resnet50", "ResNet50_Weights.IMAGENET1K_V1", _file("resnet50-0676ba61.pth", 97.781)),
    "resnet101.IMAGENET1K_V1": (
        "resnet101", "ResNet101_Weights.IMAGENET1K_V1", _file("resnet101-63fe2227.pth", 170.511),
    ),
    "vgg16.IMAGENET1K_FEATURES": (
        "vgg16", "VGG16_Weights.IMAGENET1K_FEATURES", _file("vgg16_features-amdegroot-88682ab5.pth", 527.802),
    ),
}  # fmt: skip


@dataclass(frozen=True)
class DenseSpec:
    """Everything known about a dense model before it is built.

    Attributes:
        name: torchvision's builder name, used in code and on the command line (``"fasterrcnn_resnet50_fpn"``).
        title: display name (``"Faster R-CNN"``).
        kind: ``"detector"`` (boxes), ``"instance segmenter"`` (boxes and a mask per object) or
            ``"semantic segmenter"`` (a class for every pixel).
        summary: one sentence for learners.
        paper: who published it, and when.
        builder: the builder in ``torchvision.models`` (``"detection.fasterrcnn_resnet50_fpn"``).
        build_kwargs: keyword arguments of the untrained build besides ``weights=None,
            weights_backbone=None``.
        weights_enum: torchvision's weights entry (``"detection.FasterRCNN_ResNet50_FPN_Weights.COCO_V1"``),
            whose ``meta["categories"]`` are the labels.
        weights_file: the trained weights file.
        label_set: ``"COCO"`` (91 entries: background, 80 classes, 10 unused ``N/A``) or ``"VOC"`` (21:
            background and 20 classes).
        backbone: the classifier spec it is built on (``"resnet50"``).
        trunk: ``(classifier module, dense model module)`` pairs in forward order: where each module of the
            classifier's backbone lives inside this model. The checkpoint key mapping and the stage maps are
            both read from it.
        neck: what reads the backbone's maps, in a sentence.
        neck_inputs: the classifier layers whose outputs the neck (or head) reads, shallow to deep.
        frozen: classifier modules whose weights training kept at their ImageNet values
            (``trainable_backbone_layers``), matched as a module name or a prefix followed by ``"."``.
        frozen_batch_norm: whether training froze every batch norm (statistics, scale and shift) in the
            backbone (torchvision's ``FrozenBatchNorm2d``).
        dilated: classifier stages that run dilated (stride 1 instead of 2), so their maps keep a finer
            stride than the classifier's.
        classifier_kwargs: keyword arguments that build the classifier with this model's strides
            (``replace_stride_with_dilation``), for comparing maps position by position.
        ceil_mode_pools: classifier max pools that round up here (SSD's pool3), for the same reason.
        start_weights: the key in :data:`START_WEIGHTS` of the ImageNet weights its backbone started from.
        bn_eps: the batch-norm epsilon torchvision sets when it loads these weights (``overwrite_eps``), or
            ``None`` to keep the default.
        input_size: the shorter side, in pixels, of the picture the model sees (SSD: the fixed square side).
        neck_maps: ``(output name, title, stride)`` of each map the neck hands the heads (the outputs of
            the model's ``backbone`` module), fine to coarse; empty for a semantic segmenter.
        neck_grid: the output on whose grid the neck's maps are taken together, for one map of all of them.
    """

    name: str
    title: str
    kind: DenseKind
    summary: str
    paper: str
    builder: str
    build_kwargs: tuple[tuple[str, Any], ...]
    weights_enum: str
    weights_file: WeightsFile
    label_set: Literal["COCO", "VOC"]
    backbone: str
    trunk: tuple[tuple[str, str], ...]
    neck: str
    neck_inputs: tuple[str, ...]
    frozen: tuple[str, ...]
    frozen_batch_norm: bool
    dilated: tuple[str, ...]
    classifier_kwargs: tuple[tuple[str, Any], ...]
    ceil_mode_pools: tuple[str, ...]
    start_weights: str
    bn_eps: float | None
    input_size: int
    neck_maps: tuple[tuple[str, str, int], ...] = ()
    neck_grid: str = ""

    def __post_init__(self) -> None:
        if self.kind not in DENSE_KINDS:
            raise ValueError(f"{self.name}: kind must be one of {DENSE_KINDS}, got {self.kind!r}")
        if self.start_weights not in START_WEIGHTS:
            raise ValueError(f"{self.name}: unknown start weights {self.start_weights!r}")
        names = {c for c, _ in self.trunk}
        missing = [n for n in self.neck_inputs if n not in names]
        if missing:
            raise ValueError(f"{self.name}: neck inputs {missing} are not in its trunk")
        if (self.kind == "semantic segmenter") != (not self.neck_maps):
            raise ValueError(f"{self.name}: a detector lists its neck's maps, a semantic segmenter none")
        if self.neck_maps and self.neck_grid not in {n for n, _, _ in self.neck_maps}:
            raise ValueError(f"{self.name}: neck grid {self.neck_grid!r} is not one of its neck's maps")

    @property
    def start_file(self) -> WeightsFile:
        """The ImageNet weights file its backbone started from."""
        return START_WEIGHTS[self.start_weights][2]

    @property
    def start_enum(self) -> str:
        """torchvision's name of those weights (``"ResNet50_Weights.IMAGENET1K_V1"``)."""
        return START_WEIGHTS[self.start_weights][1]

    @property
    def categories(self) -> tuple[str, ...]:
        """The class names of its head, from torchvision's weights metadata (offline; imports torchvision)."""
        return tuple(self.weights().meta["categories"])

    def weights(self) -> Any:
        """torchvision's weights enum entry (imports torchvision)."""
        import torchvision.models

        value: Any = torchvision.models
        for part in self.weights_enum.split("."):
            value = getattr(value, part)
        return value

    def build(self) -> nn.Module:
        """The untrained model, exactly as torchvision builds it with ``weights=None, weights_backbone=None``."""
        import torchvision.models

        module: Any = torchvision.models
        for part in self.builder.split("."):
            module = getattr(module, part)
        return module(weights=None, weights_backbone=None, **dict(self.build_kwargs))

    @property
    def full_title(self) -> str:
        """Its title with the backbone's (``"Faster R-CNN on ResNet-50"``)."""
        from backbone_viz.zoo import get_spec

        return f"{self.title} on {get_spec(self.backbone).title}"

    def is_frozen(self, classifier_module: str) -> bool:
        """Whether training kept this classifier module's weights (see :attr:`frozen`)."""
        return any(classifier_module == f or classifier_module.startswith(f + ".") for f in self.frozen)


_DENSE: Registry[DenseSpec] = Registry("dense model")


def register_dense(spec: DenseSpec) -> DenseSpec:
    """Adds a dense model (in the order learners see them).

    Raises:
        ValueError: a dense model of that name is registered already.
    """
    return _DENSE.add(spec.name, spec)


def list_dense(*, backbone: str | None = None) -> tuple[DenseSpec, ...]:
    """Every dense model, or those built on ``backbone`` (a classifier spec name)."""
    return tuple(s for s in _DENSE if backbone is None or s.backbone == backbone)


def get_dense_spec(name: str) -> DenseSpec:
    """Finds a dense model by name.

    Raises:
        ValueError: unknown name; the message lists the choices.
    """
    return _DENSE.get(name)


def unregister_dense(name: str) -> None:
    """Takes a dense model out again (a test's own entry, once the test is done)."""
    _DENSE.remove(name)


# ------------------------------------------------------------------------------------------- trunks


def resnet_trunk(counts: Sequence[int], prefix: str) -> tuple[tuple[str, str], ...]:
    """A torchvision ResNet's modules, stem then every block, inside a model under ``prefix``."""
    stem = [(n, prefix + n) for n in ("conv1", "bn1", "relu", "maxpool")]
    blocks = [
        (f"layer{s}.{j}", f"{prefix}layer{s}.{j}") for s, c in enumerate(counts, start=1) for j in range(c)
    ]
    return tuple(stem + blocks)


def ssd_vgg16_trunk() -> tuple[tuple[str, str], ...]:
    """VGG-16's ``features.0``-``29`` inside SSD300: conv1_1 to conv4_3 (``features.0``-``22``) keep their
    place in ``backbone.features``; pool4 and conv5_1 to conv5_3 (``features.23``-``29``) open
    ``backbone.extra.0``, which goes on with SSD's own pool5, fc6 and fc7."""
    return tuple((f"features.{i}", f"backbone.features.{i}") for i in range(23)) + tuple(
        (f"features.{23 + k}", f"backbone.extra.0.{k}") for k in range(7)
    )


# ------------------------------------------------------------------------------------------- the models

_R50 = (3, 4, 6, 3)
_R101 = (3, 4, 23, 3)
_R50_NECK_ALL = ("layer1.2", "layer2.3", "layer3.5", "layer4.2")
_R50_NECK_C3 = _R50_NECK_ALL[1:]
# trainable_backbone_layers=3 (torchvision's default whenever a detector is trained): only parameters under
# layer2-4 train, so the whole stem and layer1 keep theirs (relu and maxpool have none; listed so that whole
# stages read as kept).
_RCNN_FROZEN = ("conv1", "bn1", "relu", "maxpool", "layer1")
# What a detector's transform resizes the shorter side to. torchvision's default is 800 (COCO's
# evaluation size); 512 is 2.4x faster for Faster R-CNN on a 2-core CPU (907 vs 2194 ms, notes/dense-heads.md)
# and still finds everyday objects the size of a classroom photo's subject.
_DETECTOR_SIZE = 512
_DETECTOR_KWARGS = (("min_size", _DETECTOR_SIZE), ("max_size", _DETECTOR_SIZE * 5 // 3))


def _pyramid(names: Sequence[str], first_level: int) -> tuple[tuple[str, str, int], ...]:
    """An FPN's maps, as torchvision's FPN names them: level k (Pk) has stride 2**k."""
    levels = range(first_level, first_level + len(names))
    return tuple((n, f"FPN map P{k} (stride {2**k})", 2**k) for n, k in zip(names, levels, strict=True))


#: R-CNN's FPN: P2 to P5 from layer1 to layer4, and "pool" (P5 max-pooled, ``LastLevelMaxPool``).
_RCNN_PYRAMID = _pyramid(("0", "1", "2", "3", "pool"), 2)
#: RetinaNet's and FCOS's: P3 to P5 from layer2 to layer4, and two coarser levels (``LastLevelP6P7``).
_P3P7_PYRAMID = _pyramid(("0", "1", "2", "p6", "p7"), 3)
#: SSD300's six maps (``SSDFeatureExtractorVGG``) on its 300 x 300 input: side in cells, what makes it.
_SSD_MAPS = ((38, "conv4_3, rescaled"), (19, "fc7"), (10, "extra block 1"), (5, "extra block 2"),
             (3, "extra block 3"), (1, "extra block 4"))  # fmt: skip


def _fpn_detector(
    name: str, title: str, kind: DenseKind, summary: str, paper: str, enum: str, file: WeightsFile,
    neck_inputs: tuple[str, ...], neck: str, bn_eps: float | None, pyramid: tuple[tuple[str, str, int], ...],
) -> DenseSpec:  # fmt: skip
    return DenseSpec(
        name=name,
        title=title,
        kind=kind,
        summary=summary,
        paper=paper,
        builder=f"detection.{name}",
        build_kwargs=_DETECTOR_KWARGS,
        weights_enum=f"detection.{enum}",
        weights_file=file,
        label_set="COCO",
        backbone="resnet50",
        trunk=resnet_trunk(_R50, "backbone.body."),
        neck=neck,
        neck_inputs=neck_inputs,
        frozen=_RCNN_FROZEN,
        frozen_batch_norm=True,
        dilated=(),
        classifier_kwargs=(),
        ceil_mode_pools=(),
        start_weights="resnet50.IMAGENET1K_V1",
        bn_eps=bn_eps,
        input_size=_DETECTOR_SIZE,
        neck_maps=pyramid,
        # Stride 32 (P5): pytorch-grad-cam's tutorial uses the coarsest level (stride 64); P5 keeps twice
        # the detail for little more work.
        neck_grid=next(n for n, _, stride in pyramid if stride == 32),
    )


def _segmenter(
    name: str, title: str, summary: str, paper: str, enum: str, file: WeightsFile, depth: int
) -> DenseSpec:
    counts = _R50 if depth == 50 else _R101
    head = "an ASPP head (atrous convolutions at rates 12, 24 and 36, and the whole picture's average)"
    return DenseSpec(
        name=name,
        title=title,
        kind="semantic segmenter",
        summary=summary,
        paper=paper,
        builder=f"segmentation.{name}",
        # The trained file holds the auxiliary head (on layer3) it was trained with; built with it so the
        # file loads strictly, then dropped (it only helps training).
        build_kwargs=(("aux_loss", True),),
        weights_enum=f"segmentation.{enum}",
        weights_file=file,
        label_set="VOC",
        backbone=f"resnet{depth}",
        trunk=resnet_trunk(counts, "backbone."),
        neck=(
            f"{head if name.startswith('deeplab') else 'a plain head of two convolutions'} reads the last "
            "stage's map at stride 8"
        ),  # fmt: skip
        neck_inputs=(f"layer4.{counts[3] - 1}",),
        frozen=(),
        frozen_batch_norm=False,
        dilated=("layer3", "layer4"),
        classifier_kwargs=(("replace_stride_with_dilation", (False, True, True)),),
        ceil_mode_pools=(),
        start_weights=f"resnet{depth}.IMAGENET1K_V1",
        bn_eps=None,
        input_size=520,  # the weights' own transforms(): SemanticSegmentation(resize_size=520)
    )


register_dense(
    DenseSpec(
        name="ssd300_vgg16",
        title="SSD300",
        kind="detector",
        summary="One pass of boxes from six maps of different strides, the first of them VGG-16's conv4_3.",
        paper="Liu et al., 2016",
        builder="detection.ssd300_vgg16",
        build_kwargs=(),
        weights_enum="detection.SSD300_VGG16_Weights.COCO_V1",
        weights_file=_file("ssd300_vgg16_coco-b556d3b4.pth", 135.988),
        label_set="COCO",
        backbone="vgg16",
        trunk=ssd_vgg16_trunk(),
        neck="the box head reads conv4_3 (rescaled), then fc7 (after conv5_1-conv5_3, a new dilated fc6 "
        "and a 1x1 fc7) and four extra blocks of its own, down to a 1x1 map",
        neck_inputs=("features.22",),
        # trainable_backbone_layers=4 of VGG's 5 stages: torchvision freezes features[:4], everything
        # before the first max pool (conv1_1, conv1_2 and their ReLUs).
        frozen=("features.0", "features.1", "features.2", "features.3"),
        frozen_batch_norm=False,  # VGG has no batch norm
        dilated=(),
        classifier_kwargs=(),
        ceil_mode_pools=("features.16",),  # pool3 rounds up, for the paper's 38x38 conv4_3 map
        start_weights="vgg16.IMAGENET1K_FEATURES",
        bn_eps=None,
        input_size=300,
        neck_maps=tuple(
            (str(i), f"SSD map {i + 1} · {what}, {n}×{n} (stride {round(300 / n)})", round(300 / n))
            for i, (n, what) in enumerate(_SSD_MAPS)
        ),
        # fc7's 19 x 19 grid: the next, 10 x 10, is too coarse to place anything on a picture, and 38 x 38
        # would make every map but one 4 to 1,444 times larger.
        neck_grid="1",
    )
)
register_dense(
    _fpn_detector(
        "fasterrcnn_resnet50_fpn", "Faster R-CNN", "detector",
        "Two stages: a region proposal network suggests boxes, a second head classifies and refines each one.",
        "Ren et al., 2015", "FasterRCNN_ResNet50_FPN_Weights.COCO_V1",
        _file("fasterrcnn_resnet50_fpn_coco-258fb6c6.pth", 159.743), _R50_NECK_ALL,
        "a feature pyramid network (FPN) reads layer1 to layer4 (C2 to C5)", 0.0, _RCNN_PYRAMID,
    )
)  # fmt: skip
register_dense(
    _fpn_detector(
        "retinanet_resnet50_fpn", "RetinaNet", "detector",
        "One stage: boxes straight from every position of the pyramid, with a loss that ignores the easy "
        "background.", "Lin et al., 2017", "RetinaNet_ResNet50_FPN_Weights.COCO_V1",
        _file("retinanet_resnet50_fpn_coco-eeacb38b.pth", 130.267), _R50_NECK_C3,
        "a feature pyramid network (FPN) reads layer2 to layer4 (C3 to C5) and adds two coarser levels",
        0.0, _P3P7_PYRAMID,
    )
)  # fmt: skip
register_dense(
    _fpn_detector(
        "fcos_resnet50_fpn", "FCOS", "detector",
        "One stage and no anchor boxes: each position inside an object predicts its distance to the four "
        "sides.", "Tian et al., 2019", "FCOS_ResNet50_FPN_Weights.COCO_V1",
        _file("fcos_resnet50_fpn_coco-99b0c9b7.pth", 123.608), _R50_NECK_C3,
        "a feature pyramid network (FPN) reads layer2 to layer4 (C3 to C5) and adds two coarser levels",
        None, _P3P7_PYRAMID,
    )
)  # fmt: skip
register_dense(
    _fpn_detector(
        "maskrcnn_resnet50_fpn", "Mask R-CNN", "instance segmenter",
        "Faster R-CNN with a third output: the mask of each object it boxes.", "He et al., 2017",
        "MaskRCNN_ResNet50_FPN_Weights.COCO_V1", _file("maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth", 169.84),
        _R50_NECK_ALL, "a feature pyramid network (FPN) reads layer1 to layer4 (C2 to C5)", 0.0,
        _RCNN_PYRAMID,
    )
)  # fmt: skip
register_dense(
    _segmenter(
        "deeplabv3_resnet50", "DeepLabV3",
        "A class for every pixel, from a backbone whose last two stages keep stride 8 by dilating their "
        "convolutions.", "Chen et al., 2017", "DeepLabV3_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1",
        _file("deeplabv3_resnet50_coco-cd0a2569.pth", 160.515), 50,
    )
)  # fmt: skip
register_dense(
    _segmenter(
        "fcn_resnet50", "FCN",
        "The first fully convolutional segmenter: a classifier's last map, turned into a class per pixel.",
        "Long et al., 2015", "FCN_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1",
        _file("fcn_resnet50_coco-1167a1af.pth", 135.009), 50,
    )
)  # fmt: skip
register_dense(
    _segmenter(
        "deeplabv3_resnet101", "DeepLabV3",
        "A class for every pixel, from a backbone whose last two stages keep stride 8 by dilating their "
        "convolutions.", "Chen et al., 2017", "DeepLabV3_ResNet101_Weights.COCO_WITH_VOC_LABELS_V1",
        _file("deeplabv3_resnet101_coco-586e9e4e.pth", 233.217), 101,
    )
)  # fmt: skip
register_dense(
    _segmenter(
        "fcn_resnet101", "FCN",
        "The first fully convolutional segmenter: a classifier's last map, turned into a class per pixel.",
        "Long et al., 2015", "FCN_ResNet101_Weights.COCO_WITH_VOC_LABELS_V1",
        _file("fcn_resnet101_coco-7ecb50ca.pth", 207.711), 101,
    )
)  # fmt: skip

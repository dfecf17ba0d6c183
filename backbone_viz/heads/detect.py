"""A detector from a few boxes: a one-class CenterNet head on one stage of the frozen backbone.

A learner draws boxes around one kind of thing (a cat, a flower) on a few pictures; a tiny head learns,
from those boxes only, where such things are and how big. It follows CenterNet (Zhou, Wang and
Krähenbühl 2019, "Objects as Points"): every cell of one stage's map predicts

  * a **centre heat map**: how likely an object's centre falls in that cell, trained towards a Gaussian
    bump around each box's centre with the penalty-reduced focal loss (the paper's equation 1);
  * the box's **width and height** (as log sizes in cells) and the **offset** of the true centre from
    the cell's centre, trained with an L1 loss at the cells near each centre, weighted by the Gaussian
    (as TTFNet does: with a handful of boxes, the single centre cell of CenterNet gives too few samples).

The head is tiny: a 1x1 convolution (C -> 16) on the stage's standardised map, a ReLU and a 3x3
convolution (16 -> 5), trained with Adam on the examples and their mirror images, so what a learner sees is what the backbone's features alone already
know: a few boxes go a long way on features learned for classification.

**Coordinates.** Boxes are in the coordinates of the backbone's crop, as elsewhere in the engine: pixel
``(y, x)`` of ``backbone.crop(picture)`` (224 x 224 for EfficientNet-Lite0), the image that
:func:`backbone_viz.analyze` returns as ``input_image``. A box is INCLUSIVE, ``(x0, y0, x1, y1)`` is the
pixels ``x0..x1`` by ``y0..y1`` (as :mod:`backbone_viz.heads.cam_box`), so a box over the whole crop is
``(0, 0, 223, 223)``. Found boxes come back in the same coordinates.

**Which stage.** By default the stage whose stride is 16 (:data:`DEFAULT_STRIDE`), chosen from the spec
by its stride: at 224 px that is a 14 x 14 map, on which a thing filling a quarter to a half of the
picture (60-150 px) spans 4 to 9 cells, so its centre is one clear peak and its size several cells that
a tiny head can read. Stride 32 (7 x 7) leaves 2 to 4 cells per object and centres 16 px off at best;
stride 8 (28 x 28) sees textures, not whole things. :attr:`Detector.why` says it for the boxes given.

Nothing here changes the backbone: one ``torch.no_grad()`` forward pass per example picture (the
picture and its mirror image in one batch) through its traced graph, no hooks, no train/eval switch.
The head's parameters are new tensors on the CPU, initialised from a seeded generator: the same
examples give the same detector, and many threads may fit detectors on one shared backbone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from numbers import Real

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from backbone_viz.core.backbones import Backbone
from backbone_viz.core.runs import runs_model
from backbone_viz.core.specs import StageSpec
from backbone_viz.errors import DetectError

__all__ = ["DEFAULT_STRIDE", "Detections", "Detector", "detect", "fit_detector"]

#: The stride of the stage read by default (see the module docstring): 14 x 14 cells at 224 px.
DEFAULT_STRIDE = 16
#: Adam's learning rate: the head converges in a few hundred steps on standardised features.
LEARNING_RATE = 0.02
#: L2 penalty on the head's weights, added to the loss: keeps a head fitted on 4 boxes from leaning
#: on a few channels that happen to separate them.
WEIGHT_DECAY = 0.1
#: CenterNet's focal loss: ``alpha`` sharpens on hard cells, ``beta`` forgives the cells near a centre.
FOCAL_ALPHA, FOCAL_BETA = 2.0, 4.0
#: Weight of the size and offset losses against the heat map's (CenterNet uses 0.1 for raw pixels and 1
#: for offsets; the log sizes in cells here are of the offsets' order).
BOX_WEIGHT = 1.0
#: CenterNet's initial heat bias: every cell starts at a probability of 0.1, so the focal loss does not
#: start from a flood of confident mistakes (Lin et al. 2017, section 3.3).
PRIOR = 0.1
#: Channels between the head's two layers. A 1x1 convolution straight to the outputs sees one cell, so
#: every cell inside a furry region looks alike and the peak lands anywhere in it (mean box IoU 0.53 on
#: 16 held-out cat composites, 4 backgrounds); a 3x3 second layer sees whether the neighbours are the
#: thing too, which is what a centre is (0.66; weight decay 0.1, chosen among 0.001-1 on the same set).
HIDDEN = 16
#: At most this many progress calls during the training steps (a progress bar redraws on each).
PROGRESS_CALLS = 30

Box = tuple[int, int, int, int]
Progress = Callable[[int, int], object]


@dataclass(frozen=True, eq=False)
class Detector:
    """A fitted one-class CenterNet head on one stage's raw map: a 1x1 convolution (C -> :data:`HIDDEN`),
    a ReLU and a 3x3 convolution (HIDDEN -> 5).

    Output channels: 0 the centre heat map (a logit; its sigmoid is the heat), 1-2 the offset of the box
    centre from the cell centre in cells (x, y), 3-4 the box's log width and log height in cells. The
    standardisation of the map is folded into the first layer, so :func:`detect` reads raw maps.

    Attributes:
        stage: the stage read (``StageSpec.index``: 1 = the first stage).
        layer: that stage's last layer, whose map is read (``"blocks.4.2"``).
        stride: crop pixels per map cell (16 for the default stage).
        why: one sentence on why this stage suits these boxes (stride against the objects' size).
        weight: (HIDDEN, C) float32, read-only: the first layer, a 1x1 convolution on the raw map.
        bias: (HIDDEN,) float32, read-only.
        weight2: (5, HIDDEN, 3, 3) float32, read-only: the second layer, a 3x3 convolution after a ReLU.
        bias2: (5,) float32, read-only.
        backbone: spec name of the backbone whose features it reads (``"efficientnet_lite0"``).
        backbone_weights: those features' weights (``"pretrained"``, ``"untrained"`` or a checkpoint path).
        pictures: example pictures it was fitted on (mirror images not counted).
        boxes: boxes it was fitted on (mirror images not counted).
        losses: (steps,) float32, read-only: the training loss at each step (heat + box).
        features_ms: milliseconds of the backbone's forward passes over the examples.
        fit_ms: milliseconds of training the head.
    """

    stage: int
    layer: str
    stride: int
    why: str
    weight: np.ndarray = field(repr=False)
    bias: np.ndarray = field(repr=False)
    weight2: np.ndarray = field(repr=False)
    bias2: np.ndarray = field(repr=False)
    backbone: str
    backbone_weights: str
    pictures: int
    boxes: int
    losses: np.ndarray = field(repr=False)
    features_ms: float
    fit_ms: float

    def fits(self, backbone: Backbone) -> bool:
        """Whether this detector reads ``backbone``'s features: the spec and weights it was fitted on."""
        return (self.backbone, self.backbone_weights) == (backbone.spec.name, backbone.weights)


@dataclass(frozen=True, eq=False)
class Detections:
    """The things a :class:`Detector` found on one picture.

    Attributes:
        boxes: the found boxes ``(x0, y0, x1, y1)``, inclusive crop pixels, best first.
        scores: their heat at the peak, in (threshold, 1], in the same order.
        heatmap: (h, w) float32, read-only: the centre heat (a probability) of every cell of the stage's
            map (14 x 14 for Lite0's stride-16 stage at 224 px).
        stage: the stage read (``StageSpec.index``).
        layer: that stage's last layer.
        detector: the detector that looked.
        input_image: the (H, W) RGB crop the backbone saw, in whose coordinates the boxes are.
        forward_ms: milliseconds of the backbone's forward pass.
        detect_ms: milliseconds of the head, the peak finding and the boxes.
    """

    boxes: tuple[Box, ...]
    scores: tuple[float, ...]
    heatmap: np.ndarray = field(repr=False)
    stage: int
    layer: str
    detector: Detector = field(repr=False)
    input_image: Image.Image = field(repr=False)
    forward_ms: float
    detect_ms: float


@runs_model
def fit_detector(
    backbone: Backbone,
    examples: Sequence[tuple[Image.Image, Sequence[Sequence[float]]]],
    *,
    stage: int | None = None,
    steps: int = 300,
    seed: int = 0,
    progress: Progress | None = None,
) -> Detector:
    """Trains a one-class detector on a few pictures with boxes drawn around one kind of thing.

    Each picture and its mirror image go through the frozen backbone once, together, without gradient;
    then the tiny head on the stage's map is trained for ``steps`` Adam steps on all of them at once
    (focal loss on the centre heat map, L1 on sizes and offsets). Deterministic: the head starts from a
    generator seeded with ``seed`` and trains on the CPU, whatever the backbone's device.

    Args:
        backbone: from :func:`backbone_viz.load_backbone`; it is not modified.
        examples: ``(picture, boxes)`` pairs: an RGB PIL image and every thing of the kind on it, each box
            ``(x0, y0, x1, y1)`` in inclusive pixels of the backbone's crop of that picture
            (``backbone.crop(picture)``, 224 x 224 for Lite0: 0 <= x0 < x1 <= 223).
        stage: the stage to read (``StageSpec.index``); default the stage whose stride is
            :data:`DEFAULT_STRIDE` (or the nearest stride).
        steps: Adam steps, at least 1.
        seed: seeds the head's initial weights.
        progress: called as ``progress(done, total)`` after each picture's forward pass and every few
            training steps (``total`` = pictures + ``steps``), ending with ``done == total``.

    Returns:
        A frozen :class:`Detector`; use it with :func:`detect`.

    Raises:
        DetectError: no examples, a picture with no box, a box of zero size or reaching outside the crop,
            an unknown stage.
        TypeError: a picture that is not a PIL image, boxes that are not lists of 4 numbers.
        ValueError: ``steps`` below 1.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, not {steps!r}")
    size = backbone.preprocessing.crop
    checked = _check_examples(examples, size)
    chosen = _choose_stage(backbone, stage)
    total = len(checked) + steps

    start = time.perf_counter()
    maps, targets = [], []
    for done, (picture, boxes) in enumerate(checked, start=1):
        _, pair = _stage_map(backbone, picture, chosen, mirrored=True)
        mirrored = [(size - 1 - x1, y0, size - 1 - x0, y1) for x0, y0, x1, y1 in boxes]
        for fmap, drawn in zip(pair, (boxes, mirrored), strict=True):
            maps.append(fmap)
            targets.append(_targets(drawn, fmap.shape[-2:], size))
        if progress is not None:
            progress(done, total)
    features = time.perf_counter()
    weight, bias, weight2, bias2, losses = _train(torch.stack(maps), targets, steps, seed, len(checked), total, progress)
    fitted = time.perf_counter()
    stride = size // maps[0].shape[-1]
    return Detector(
        stage=chosen.index,
        layer=chosen.last.name,
        stride=stride,
        why=_why(chosen, stride, size, [b for _, boxes in checked for b in boxes]),
        weight=_frozen(weight),
        bias=_frozen(bias),
        weight2=_frozen(weight2),
        bias2=_frozen(bias2),
        backbone=backbone.spec.name,
        backbone_weights=backbone.weights,
        pictures=len(checked),
        boxes=sum(len(boxes) for _, boxes in checked),
        losses=_frozen(losses),
        features_ms=1000 * (features - start),
        fit_ms=1000 * (fitted - features),
    )


@runs_model
def detect(
    backbone: Backbone, detector: Detector, picture: Image.Image, *, threshold: float = 0.3, max_boxes: int = 5
) -> Detections:
    """Finds the detector's kind of thing on a picture: peaks of the centre heat map, each with its box.

    A peak is a cell whose heat is the largest of its 3 x 3 neighbourhood (CenterNet's max-pool in place
    of non-maximum suppression) and above ``threshold``; its box is centred at the cell's centre plus the
    predicted offset, with the predicted width and height, clipped to the crop.

    Args:
        backbone: the backbone the detector was fitted on (same spec and weights); it is not modified.
        detector: from :func:`fit_detector`.
        picture: an RGB PIL image; the backbone's own crop of it is searched.
        threshold: in [0, 1): the least heat a peak needs to count.
        max_boxes: at most this many boxes, the hottest peaks first.

    Returns:
        Frozen :class:`Detections`, possibly with no box.

    Raises:
        DetectError: the detector was fitted on another backbone or other weights; a threshold outside
            [0, 1).
        TypeError: ``picture`` is not a PIL image.
        ValueError: ``max_boxes`` below 1.
    """
    if not detector.fits(backbone):
        raise DetectError(
            f"This detector was trained on {detector.backbone} ({detector.backbone_weights}) features, "
            f"not on {backbone.spec.name} ({backbone.weights}).",
            f"Train a new detector on this backbone, or switch back to {detector.backbone}.",
        )
    if isinstance(threshold, bool) or not isinstance(threshold, Real) or not 0.0 <= float(threshold) < 1.0:
        raise DetectError(
            f"The threshold {threshold!r} is not a heat between 0 and 1.",
            "Choose a threshold from 0 (every peak) to just below 1 (only the surest); 0.3 is a good start.",
        )
    if isinstance(max_boxes, bool) or not isinstance(max_boxes, int) or max_boxes < 1:
        raise ValueError(f"max_boxes must be a positive int, not {max_boxes!r}")
    stages = {s.index: s for s in backbone.spec.stages}
    size = backbone.preprocessing.crop
    start = time.perf_counter()
    crop, (fmap,) = _stage_map(backbone, picture, stages[detector.stage], mirrored=False)
    forward = time.perf_counter()
    out = _head(*(torch.tensor(a) for a in (detector.weight, detector.bias, detector.weight2, detector.bias2)), fmap[None])[0]
    heat = torch.sigmoid(out[0])
    boxes, scores = _decode(heat, out[1:], size, float(threshold), max_boxes)
    done = time.perf_counter()
    return Detections(
        boxes=boxes,
        scores=scores,
        heatmap=_frozen(heat.numpy().astype(np.float32)),
        stage=detector.stage,
        layer=detector.layer,
        detector=detector,
        input_image=crop,
        forward_ms=1000 * (forward - start),
        detect_ms=1000 * (done - forward),
    )


# ----------------------------------------------------------------------------------------------- checking


def _check_examples(
    examples: Sequence[tuple[Image.Image, Sequence[Sequence[float]]]], size: int
) -> list[tuple[Image.Image, list[tuple[float, float, float, float]]]]:
    """The examples as (picture, boxes of 4 floats); raises DetectError for what a learner can get wrong."""
    if examples is None or isinstance(examples, (str, bytes, Image.Image)):
        raise TypeError(f"examples must be a list of (picture, boxes) pairs, not {type(examples).__name__}")
    examples = list(examples)
    if not examples:
        raise DetectError(
            "There are no examples to learn from.",
            "Draw a box around the thing on at least one picture (three or four pictures work better).",
        )
    checked = []
    for n, example in enumerate(examples, start=1):
        if not isinstance(example, (tuple, list)) or len(example) != 2:
            raise TypeError(f"example {n} must be a (picture, boxes) pair, not {type(example).__name__}")
        picture, boxes = example
        if not isinstance(picture, Image.Image):
            raise TypeError(f"the picture of example {n} must be a PIL image, not {type(picture).__name__}")
        if boxes is None or isinstance(boxes, (str, bytes)):
            raise TypeError(f"the boxes of example {n} must be a list of (x0, y0, x1, y1), not {boxes!r}")
        boxes = list(boxes)
        if len(boxes) == 4 and all(isinstance(v, Real) for v in boxes):
            raise TypeError(f"the boxes of example {n} must be a list of boxes: [{tuple(boxes)!r}], not one box")
        if not boxes:
            raise DetectError(
                f"Picture {n} has no box.",
                "Draw a box around every thing of the kind on it, or leave the picture out.",
            )
        checked.append((picture, [check_box(box, n, size) for box in boxes]))
    return checked


def check_box(box: Sequence[float], n: int, size: int) -> tuple[float, float, float, float]:
    """``box`` as 4 floats ``(x0, y0, x1, y1)``, checked to lie in a ``size`` square crop with a width and a
    height; ``n`` numbers the picture it is on in messages.

    Raises:
        DetectError: a box of zero size, or one reaching outside the crop (the learner's mistakes).
        TypeError: not 4 finite numbers.
    """
    values = list(box) if isinstance(box, (tuple, list, np.ndarray)) else None
    if values is None or len(values) != 4 or not all(isinstance(v, Real) and not isinstance(v, bool) for v in values):
        raise TypeError(f"a box of example {n} must be 4 numbers (x0, y0, x1, y1), not {box!r}")
    x0, y0, x1, y1 = (float(v) for v in values)
    shown = f"({', '.join(f'{v:g}' for v in (x0, y0, x1, y1))})"
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        raise TypeError(f"a box of example {n} has a coordinate that is not a finite number: {shown}")
    if x1 <= x0 or y1 <= y0:
        raise DetectError(
            f"The box {shown} on picture {n} has no {'width' if x1 <= x0 else 'height'}: a box needs "
            "x1 > x0 and y1 > y0.",
            "Drag from the thing's top-left corner to its bottom-right corner; boxes are (left, top, right, bottom).",
        )
    if min(x0, y0) < 0 or max(x1, y1) > size - 1:
        raise DetectError(
            f"The box {shown} on picture {n} reaches outside the {size} x {size} crop the backbone sees.",
            f"Give boxes in the pixels of the backbone's crop of the picture (backbone.crop), 0 to {size - 1}.",
        )
    return x0, y0, x1, y1


def _choose_stage(backbone: Backbone, stage: int | None) -> StageSpec:
    """The stage of index ``stage``, or by default :func:`_nearest`'s."""
    stages = backbone.spec.stages
    if stage is None:
        return _nearest(stages)
    if isinstance(stage, bool) or not isinstance(stage, int):
        raise TypeError(f"stage must be a stage index (int), not {type(stage).__name__}")
    for s in stages:
        if s.index == stage:
            return s
    raise DetectError(
        f"{backbone.spec.title} has no stage {stage}.",
        f"Choose a stage from {stages[0].index} to {stages[-1].index}, or leave it to the default (stride {DEFAULT_STRIDE}).",
    )


def _nearest(stages: Sequence[StageSpec]) -> StageSpec:
    """The stage whose stride is nearest :data:`DEFAULT_STRIDE` (in octaves; the finer on a tie), the last
    such stage where several share that stride."""
    distance = {s.index: abs(math.log2(s.stride / DEFAULT_STRIDE)) for s in stages}
    best = min(distance.values())
    stride = min(s.stride for s in stages if distance[s.index] == best)
    return [s for s in stages if s.stride == stride][-1]


def _why(stage: StageSpec, stride: int, size: int, boxes: Sequence[tuple[float, float, float, float]]) -> str:
    """One sentence: the stage's stride against the boxes' sizes, in cells of its map."""
    sides = [min(x1 - x0 + 1, y1 - y0 + 1) for x0, y0, x1, y1 in boxes]
    small, large = min(sides) / stride, max(sides) / stride
    cells = size // stride
    span = f"{small:.0f} cells" if round(small) == round(large) else f"{small:.0f} to {large:.0f} cells"
    if small < 2:
        verdict = "the smallest boxes fit in one or two cells, too few to place and size them well: try a finer stage"
    elif large > 0.8 * cells:
        verdict = "the largest boxes cover most of the map, so their centres are hard to pin down: try a coarser stage"
    else:
        verdict = "each thing spans several cells, so its centre is one clear peak and its size can be read"
    return (
        f"Stage {stage.index} ({stage.last.name}) has stride {stride}: a {cells} x {cells} map, on which the "
        f"boxes' shorter sides span {span}; {verdict}."
    )


# ---------------------------------------------------------------------------------------- features, targets


def _stage_map(
    backbone: Backbone, picture: Image.Image, stage: StageSpec, *, mirrored: bool
) -> tuple[Image.Image, list[torch.Tensor]]:
    """The crop and the stage's last map, (C, h, w) float32 on the CPU; with ``mirrored``, the map of the
    mirror image too, from the same forward pass (a batch of 2)."""
    if not isinstance(picture, Image.Image):
        raise TypeError(f"picture must be a PIL image, not {type(picture).__name__}")
    crop = backbone.crop(picture)
    x = backbone.to_tensor(crop)
    if mirrored:
        x = torch.cat([x, x.flip(-1)])
    with torch.no_grad():
        out = backbone.extract(x, [stage.last.name])[stage.last.name]
    # The head is small: trained and applied on the CPU in float32, it is the same on every device.
    return crop, list(out.to("cpu", torch.float32).unbind(0))


def _targets(
    boxes: Sequence[tuple[float, float, float, float]], shape: torch.Size, size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CenterNet's targets on an (h, w) map for boxes in crop pixels.

    Returns:
        heat (h, w): a Gaussian bump per box, 1 at its centre cell (the maximum where bumps overlap);
        boxes (4, h, w): at each cell, the offset (x, y) of the nearest-weighted box's centre from the cell's
            centre and its log width and height, in cells;
        weight (h, w): the Gaussian of the box that owns the cell, where the box losses count.
    """
    h, w = int(shape[0]), int(shape[1])
    sx, sy = size / w, size / h
    heat = torch.zeros(h, w)
    regress = torch.zeros(4, h, w)
    weight = torch.zeros(h, w)
    ys = torch.arange(h, dtype=torch.float32)[:, None]
    xs = torch.arange(w, dtype=torch.float32)[None, :]
    # Larger boxes first, so that a small box's bump wins the cells it shares with a large one.
    for x0, y0, x1, y1 in sorted(boxes, key=lambda b: -(b[2] - b[0] + 1) * (b[3] - b[1] + 1)):
        bw, bh = (x1 - x0 + 1) / sx, (y1 - y0 + 1) / sy  # in cells
        # Pixel x's centre is at map position (x + 0.5) / sx - 0.5, cell j's centre at position j.
        cx, cy = ((x0 + x1) / 2 + 0.5) / sx - 0.5, ((y0 + y1) / 2 + 0.5) / sy - 0.5
        ix, iy = min(max(round(cx), 0), w - 1), min(max(round(cy), 0), h - 1)
        sigma = max(_radius(bw, bh), 0.0) * 2 / 6 + 0.5 / 3  # CenterNet: sigma = diameter / 6
        bump = torch.exp(-((xs - ix) ** 2 + (ys - iy) ** 2) / (2 * sigma * sigma))
        heat = torch.maximum(heat, bump)
        own = bump >= weight
        weight = torch.where(own, bump, weight)
        values = (cx - xs.expand(h, w), cy - ys.expand(h, w), torch.full((h, w), math.log(bw)), torch.full((h, w), math.log(bh)))
        for k, value in enumerate(values):
            regress[k] = torch.where(own, value, regress[k])
    return heat, regress, weight


def _radius(width: float, height: float, overlap: float = 0.7) -> float:
    """CenterNet's Gaussian radius: how far a corner may move while the box keeps IoU >= ``overlap``
    (``gaussian_radius`` of the reference code, the smallest of its three cases)."""
    b1 = height + width
    c1 = width * height * (1 - overlap) / (1 + overlap)
    r1 = (b1 + math.sqrt(b1 * b1 - 4 * c1)) / 2
    b2 = 2 * (height + width)
    c2 = (1 - overlap) * width * height
    r2 = (b2 + math.sqrt(b2 * b2 - 16 * c2)) / 2
    a3 = 4 * overlap
    b3 = -2 * overlap * (height + width)
    c3 = (overlap - 1) * width * height
    r3 = (b3 + math.sqrt(b3 * b3 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


# ------------------------------------------------------------------------------------------- the head itself


def _head(
    weight: torch.Tensor, bias: torch.Tensor, weight2: torch.Tensor, bias2: torch.Tensor, maps: torch.Tensor
) -> torch.Tensor:
    """(N, 5, h, w) from (N, C, h, w) maps: a 1x1 convolution (HIDDEN, C) + (HIDDEN,), ReLU, then a 3x3
    convolution (5, HIDDEN, 3, 3) + (5,) with zero padding, so the map keeps its size."""
    hidden = torch.relu(torch.einsum("kc,nchw->nkhw", weight, maps) + bias[None, :, None, None])
    return F.conv2d(hidden, weight2, bias2, padding=1)


def _train(
    maps: torch.Tensor,
    targets: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    steps: int,
    seed: int,
    done: int,
    total: int,
    progress: Progress | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Trains the head on (N, C, h, w) maps; returns its first layer's weight (HIDDEN, C) and bias folded
    onto raw maps, its second layer's weight (5, HIDDEN, 3, 3) and bias, and the loss at each step."""
    c = maps.shape[1]
    # Standardise each channel over every cell of every example, so one learning rate suits all channels.
    mean = maps.mean(dim=(0, 2, 3))
    scale = maps.std(dim=(0, 2, 3), unbiased=False) + 1e-5
    z = (maps - mean[None, :, None, None]) / scale[None, :, None, None]
    heat = torch.stack([t[0] for t in targets])
    regress = torch.stack([t[1] for t in targets])
    where = torch.stack([t[2] for t in targets])
    centres = (heat == 1).sum().clamp(min=1)
    # A fresh head from its own generator: nothing is shared with the backbone, another session or the
    # global random state.
    generator = torch.Generator().manual_seed(seed)
    weight = (torch.randn(HIDDEN, c, generator=generator) / math.sqrt(c)).requires_grad_()
    bias = torch.zeros(HIDDEN).requires_grad_()
    weight2 = (torch.randn(5, HIDDEN, 3, 3, generator=generator) * 0.01).requires_grad_()
    start = torch.zeros(5)
    start[0] = -math.log((1 - PRIOR) / PRIOR)
    bias2 = start.requires_grad_()
    optimiser = torch.optim.Adam([weight, bias, weight2, bias2], lr=LEARNING_RATE)
    losses = np.empty(steps, dtype=np.float32)
    every = max(1, math.ceil(steps / PROGRESS_CALLS))
    # enable_grad: a caller inside torch.no_grad() (a notebook cell, a server's worker) still gets a fit.
    with torch.enable_grad():
        for step in range(steps):
            optimiser.zero_grad()
            out = _head(weight, bias, weight2, bias2, z)
            loss = _focal(out[:, 0], heat) / centres
            box = (out[:, 1:] - regress).abs().sum(dim=1)
            loss = loss + BOX_WEIGHT * (box * where).sum() / where.sum() + WEIGHT_DECAY * ((weight * weight).sum() + (weight2 * weight2).sum())
            loss.backward()
            optimiser.step()
            losses[step] = float(loss.detach())
            if progress is not None and ((step + 1) % every == 0 or step + 1 == steps):
                progress(done + step + 1, total)
    w = weight.detach() / scale[None, :]
    b = bias.detach() - w @ mean
    return (
        w.numpy().astype(np.float32),
        b.numpy().astype(np.float32),
        weight2.detach().numpy().astype(np.float32),
        bias2.detach().numpy().astype(np.float32),
        losses,
    )


def _focal(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, summed: the paper's equation 1 before dividing by N."""
    logp = F.logsigmoid(logits)
    log1mp = F.logsigmoid(-logits)
    p = torch.sigmoid(logits)
    positive = target == 1
    pos = (1 - p) ** FOCAL_ALPHA * logp
    neg = (1 - target) ** FOCAL_BETA * p**FOCAL_ALPHA * log1mp
    return -torch.where(positive, pos, neg).sum()


def _decode(
    heat: torch.Tensor, regress: torch.Tensor, size: int, threshold: float, max_boxes: int
) -> tuple[tuple[Box, ...], tuple[float, ...]]:
    """The hottest local maxima of an (h, w) heat map and their boxes in inclusive crop pixels."""
    h, w = heat.shape
    sx, sy = size / w, size / h
    pooled = F.max_pool2d(heat[None, None], 3, stride=1, padding=1)[0, 0]
    peaks = (heat == pooled) & (heat > threshold)
    ys, xs = torch.nonzero(peaks, as_tuple=True)
    values = heat[ys, xs]
    # Hottest first; a tie goes to the earlier cell in reading order (nonzero's order), for determinism.
    order = sorted(range(len(values)), key=lambda i: (-float(values[i]), i))[:max_boxes]
    boxes, scores = [], []
    for i in order:
        y, x = int(ys[i]), int(xs[i])
        dx, dy, lw, lh = (float(v) for v in regress[:, y, x])
        cx, cy = (x + dx + 0.5) * sx - 0.5, (y + dy + 0.5) * sy - 0.5  # back to crop pixels
        bw, bh = math.exp(lw) * sx, math.exp(lh) * sy
        x0 = min(max(round(cx - (bw - 1) / 2), 0), size - 1)
        x1 = min(max(round(cx + (bw - 1) / 2), x0), size - 1)
        y0 = min(max(round(cy - (bh - 1) / 2), 0), size - 1)
        y1 = min(max(round(cy + (bh - 1) / 2), y0), size - 1)
        boxes.append((x0, y0, x1, y1))
        scores.append(float(values[i]))
    return tuple(boxes), tuple(scores)


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array

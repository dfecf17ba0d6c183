"""Where a detector or segmenter looked on a picture: one map over the whole picture, and one inside each box.

A classifier's Grad-CAM follows one class score back to a layer. A detector's boxes leave the model
through steps that have no gradient to follow: box decoding, a score threshold, non-maximum suppression,
the best k kept. So for detectors (SSD, Faster R-CNN, RetinaNet, FCOS) and Mask R-CNN this module uses
EigenCAM, as pytorch-grad-cam's Faster R-CNN tutorial does: it needs no gradient and no class, only the
maps the heads read, and it works the same on every detector. It is one map of where the features
differ most from their average (its sign set so that the place farthest from the average is on the
map, as pytorch-grad-cam's sign correction does); rescaled inside each box (the tutorial's
``renormalize_cam_in_bounding_boxes``), it shows which part of the box stands out.

A semantic segmenter (DeepLabV3, FCN) has no such step: each pixel's class scores come straight from the
features, so the gradient of one class's pixels is there to follow, and Grad-CAM gives a map per class
(pytorch-grad-cam's ``SemanticSegmentationTarget``: the sum of the class's scores over the pixels the model
gave that class).

:func:`look_sources` lists the maps a map can be made from (the neck's outputs, together or one by one,
and each backbone stage); :func:`where_it_looked` makes the maps. Nothing is changed on the shared model
(no hooks, no ``requires_grad`` on its parameters, no train mode), so sessions may call it at once.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from PIL import Image

from backbone_viz.core.runs import runs_model
from backbone_viz.dense.inside import _dense_modules, _run, _spec_of
from backbone_viz.dense.models import DenseModel, DenseResult, _normalise, _work_picture
from backbone_viz.dense.specs import DenseSpec
from backbone_viz.errors import CamError
from backbone_viz.explain.cams import eigen_projection
from backbone_viz.zoo import get_spec

__all__ = [
    "MAP_SIDE",
    "LookSource",
    "LookedMaps",
    "LookedRegion",
    "look_sources",
    "renormalise_in_boxes",
    "where_it_looked",
]

#: The longer side, in pixels, of the maps :func:`where_it_looked` returns (smaller pictures keep their size).
MAP_SIDE = 512

NECK = "neck"

#: A segmenter's Grad-CAM is made on the picture at this fraction of the model's own input size. The
#: backward pass through its head at full size (520 px) added about 1.4 GB to a process (the input
#: gradients of its dilated 3 x 3 convolutions over 2,048 channels) and took 3 to 5 s per class on one
#: thread; a replica has 4 GB for 30 learners. The map is a heat map at stride 8 either way.
GRADCAM_SCALE = 0.5

#: The deepest stages a segmenter's Grad-CAM can be made at. Grad-CAM at a stage runs everything after it
#: with gradients. DeepLabV3 on ResNet-101, cat photo, 4 classes, one thread, measured at the model's full
#: input size (GRADCAM_SCALE now shrinks what the backward pass adds): the process peaked at 1.9 GB
#: from layer4 (the head's input), 2.4 GB from layer3, 4.6 GB from layer2 and 5.0 GB from conv1 (a class
#: server replica has 4 GiB), and each class cost one backward pass: about 3 s from layer4, 6 s from layer3,
#: 11 s from layer2.
SEGMENTER_STAGES = 2


@dataclass(frozen=True)
class LookSource:
    """One set of maps a map of where the model looked can be made from.

    Attributes:
        key: ``"neck"`` (all the neck's maps together), ``"neck:<name>"`` (one output of the neck:
            ``"neck:0"``, ``"neck:pool"``, ``"neck:p6"``; SSD ``"neck:0"`` to ``"neck:5"``), or the
            classifier layer that ends a backbone stage (``"layer4.2"``, from
            :func:`~backbone_viz.dense.inside.stage_layers`).
        title: what it is, for a learner (``"FPN map P3 (stride 8)"``).
        stride: input pixels per map pixel on the model's input (``None`` for the neck's maps together).
    """

    key: str
    title: str
    stride: int | None


@dataclass(frozen=True)
class LookedRegion:
    """One object a detector kept, or one class a segmenter gave pixels to.

    Attributes:
        label: the class name.
        score: the box's score (detectors), or the share of the picture's pixels given to the class
            (semantic segmenters).
        box: (4,) float32 ``x0, y0, x1, y1`` in the picture's pixels (a segmenter's: around the class's
            pixels).
        heat: segmenters only: (h, w) float32 in [0, 1], the class's Grad-CAM at the size of
            :attr:`LookedMaps.whole`; ``None`` for detectors (EigenCAM has no class).
    """

    label: str
    score: float
    box: np.ndarray
    heat: np.ndarray | None


@dataclass(frozen=True, eq=False)
class LookedMaps:
    """Where a dense model looked on one picture.

    Attributes:
        model: the dense model's name.
        method: ``"EigenCAM"`` (detectors, Mask R-CNN) or ``"Grad-CAM"`` (semantic segmenters).
        source: the maps it was made from.
        whole: (h, w) float32 in [0, 1], the map over the whole picture, at the picture's size shrunk so
            that its longer side is at most :data:`MAP_SIDE` (aspect kept, never enlarged). Detectors:
            EigenCAM; segmenters: the Grad-CAM of the largest class other than the background, zeros when
            every pixel is background.
        in_boxes: (h, w) float32 in [0, 1]. Detectors: :attr:`whole` rescaled to [0, 1] inside each box of
            :attr:`regions` and zero outside them (:func:`renormalise_in_boxes`); segmenters: :attr:`whole`.
        regions: the boxes kept (score at least the threshold, best first, at most ``max_regions``), or
            the segmenter's classes (largest first, the background left out, at most ``max_regions``).
        why: two sentences for a learner: which method, and why it fits this kind of model.
        seconds: wall time.
    """

    model: str
    method: Literal["EigenCAM", "Grad-CAM"]
    source: LookSource
    whole: np.ndarray
    in_boxes: np.ndarray
    regions: tuple[LookedRegion, ...]
    why: str
    seconds: float


# ------------------------------------------------------------------------------------------- the sources

def _stage_sources(spec: DenseSpec) -> list[LookSource]:
    backbone = get_spec(spec.backbone)
    reduction = {info.module: info.reduction for info in backbone.feature_info}
    out = []
    for stage in backbone.stages:
        layer = stage.last.name
        dilated = any(layer == d or layer.startswith(d + ".") for d in spec.dilated)
        stride = 8 if dilated else reduction[layer]
        out.append(LookSource(layer, f"stage {stage.index} · {stage.last.label} (stride {stride})", stride))
    return out


def look_sources(dense: DenseModel | DenseSpec | str) -> tuple[LookSource, ...]:
    """The maps a map of where the model looked can be made from, the default first.

    Detectors and Mask R-CNN: ``"neck"`` (every map the heads read, together), then each of the neck's
    outputs, fine to coarse, then each stage of the backbone. Semantic segmenters: the backbone's last
    stage (the map their head reads), then the stage before it (:data:`SEGMENTER_STAGES`).
    """
    spec = _spec_of(dense)
    stages = _stage_sources(spec)
    if spec.kind == "semantic segmenter":
        return tuple(reversed(stages[-SEGMENTER_STAGES:]))
    together = LookSource(NECK, f"the {len(spec.neck_maps)} maps the heads read, together", None)
    necks = [LookSource(f"{NECK}:{n}", title, s) for n, title, s in spec.neck_maps]
    return (together, *necks, *stages)


# ------------------------------------------------------------------------------------------- the maps


def renormalise_in_boxes(cam: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """A map rescaled to [0, 1] inside each box and zero outside, as pytorch-grad-cam's Faster R-CNN tutorial
    means to (``renormalize_cam_in_bounding_boxes``): where boxes overlap the larger value is kept, and the
    whole is rescaled to [0, 1] again. (The tutorial hands ``scale_cam_image``, which takes a batch of maps,
    a single map, so it rescales each row of a box on its own and draws stripes; here each box is rescaled
    as a whole, as its docstring says.)

    Args:
        cam: (h, w) the map.
        boxes: (n, 4) ``x0, y0, x1, y1`` in the map's pixels; a box covers every pixel it touches (clipped
            to the map).

    Returns:
        (h, w) float32 in [0, 1]; all zero without boxes.
    """
    cam = np.asarray(cam, dtype=np.float32)
    h, w = cam.shape
    out = np.zeros((h, w), np.float32)
    for x0, y0, x1, y1 in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        c0, c1 = int(np.clip(math.floor(x0), 0, w)), int(np.clip(math.ceil(x1), 0, w))
        r0, r1 = int(np.clip(math.floor(y0), 0, h)), int(np.clip(math.ceil(y1), 0, h))
        if c1 > c0 and r1 > r0:
            out[r0:r1, c0:c1] = np.maximum(out[r0:r1, c0:c1], _unit(cam[r0:r1, c0:c1]))
    return _unit(out)


def _unit(a: np.ndarray) -> np.ndarray:
    """``a`` shifted and scaled to [0, 1] as pytorch-grad-cam's ``scale_cam_image`` does (a flat map is 0)."""
    a = a - a.min()
    return (a / (np.float32(1e-7) + a.max())).astype(np.float32, copy=False)


def _map_size(image_size: tuple[int, int]) -> tuple[int, int]:
    """``(w, h)`` of the maps for a picture of ``image_size`` ``(W, H)``: longer side at most :data:`MAP_SIDE`."""
    width, height = image_size
    scale = min(1.0, MAP_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _picture_cells(full: tuple[int, int], padded: tuple[int, int], shown: tuple[int, int]) -> tuple[int, int]:
    """How many rows and columns, from the top left, of a (h, w) grid over the ``padded`` (Hb, Wb) input
    touch the picture's ``shown`` (H, W) part of it (a detector pads at the bottom and right)."""
    rows, cols = (min(n, math.ceil(s * n / p - 1e-6)) for n, p, s in zip(full, padded, shown, strict=True))
    return rows, cols


def _to_picture(
    cam: torch.Tensor, cell: tuple[float, float], shown: tuple[int, int], size: tuple[int, int]
) -> np.ndarray:
    """A map on the model's input, cut to the picture and resized to the maps' size.

    Args:
        cam: (h, w), the top left cells of a grid over the model's input, covering the picture.
        cell: (height, width) of a cell in input pixels.
        shown: (H, W), the picture's part of the input, in input pixels.
        size: (w, h), the maps' size.

    Returns:
        (h, w) float32, unnormalised.
    """
    h, w = cam.shape
    covered = (max(shown[0], round(h * cell[0])), max(shown[1], round(w * cell[1])))
    x = F.interpolate(cam[None, None].float(), size=covered, mode="bilinear", align_corners=False)
    x = x[..., : shown[0], : shown[1]]
    x = F.interpolate(x, size=(size[1], size[0]), mode="bilinear", align_corners=False, antialias=True)
    return x[0, 0].cpu().numpy().astype(np.float32, copy=False)


def _together(maps: dict[str, torch.Tensor], grid: str) -> torch.Tensor:
    """Every map of the neck, absolute values, brought to ``grid``'s size and stacked on channels, as
    pytorch-grad-cam's ``fasterrcnn_reshape_transform`` does. (1, sum C, h, w)."""
    size = tuple(maps[grid].shape[-2:])
    parts = []
    for value in maps.values():
        # Antialiased when shrinking: plain bilinear from stride 4 to 32 would read 4 of every 64 places.
        shrink = value.shape[-2] > size[0]
        parts.append(
            F.interpolate(value.abs(), size=size, mode="bilinear", align_corners=False, antialias=shrink)
        )
    return torch.cat(parts, dim=1)


def _eigencam(activations: np.ndarray) -> np.ndarray:
    """EigenCAM of one map's (C, h, w) activations: (h, w) float32, ReLU of the projection on the first
    principal direction, its sign chosen so that the place farthest from the mean is on the positive side.

    The SVD's sign is arbitrary (see :class:`~backbone_viz.explain.cams.EigenCAM`). Where that class keeps
    it as pytorch-grad-cam's ``get_2d_projection`` returns it, a detector's map is then rescaled inside each
    box, and a flipped sign would show the background around an object instead of the object: so the sign
    is corrected as in pytorch-grad-cam's ``get_2d_projection_with_sign_correction`` (Seg-Eigen-CAM, Chung
    and Ying, 2025: flip when the most negative value is larger than the most positive). Without it, on an
    untrained Faster R-CNN's stride-4 map a white square on grey got none of the map.
    """
    projection = eigen_projection(activations)
    if abs(float(projection.min())) > abs(float(projection.max())):
        projection = -projection
    return np.maximum(projection, 0)


_WHY_EIGENCAM = (
    "EigenCAM needs no gradient and no class: it is one map of where the features differ most from their "
    "average, and inside each box it is rescaled to show which part of the box stands out most. "
    "It fits a detector because the boxes leave the model through steps with no gradient to follow "
    "(decoding the boxes, a score threshold, dropping overlapping boxes, keeping the best), and EigenCAM "
    "needs none of them, so it works the same way on every detector."
)
_WHY_GRADCAM = (
    "Grad-CAM weighs each channel of the features by how much it raises the class's scores over the pixels "
    "given to that class, so each class gets its own map. "
    "It fits a segmenter because each pixel's class scores come straight from the features, with no "
    "selection step in between, so the gradient of one class's pixels is there to follow."
)


@runs_model
def where_it_looked(
    dense: DenseModel,
    image: Image.Image,
    result: DenseResult,
    *,
    source: str | None = None,
    threshold: float = 0.5,
    max_regions: int = 8,
) -> LookedMaps:
    """Where a detector or segmenter looked on a picture.

    Args:
        dense: from :func:`~backbone_viz.dense.models.load_dense`.
        image: the picture ``result`` was found on.
        result: :func:`~backbone_viz.dense.models.detect_objects` of ``dense`` on ``image``; boxes under
            its own threshold are not in it.
        source: a key of :func:`look_sources` (default its first: the neck's maps together, or a
            segmenter's last stage).
        threshold: the score, in [0, 1], a box needs to be among :attr:`LookedMaps.regions` (detectors).
        max_regions: at most this many boxes, or a segmenter's classes (one gradient each).

    Returns:
        A :class:`LookedMaps`; its maps are at the picture's size shrunk to :data:`MAP_SIDE`.

    Raises:
        CamError: an unknown source (the message lists the choices), a threshold outside [0, 1], or a
            result of another model or picture.
    """
    if not 0.0 <= threshold <= 1.0:
        raise CamError(f"The score threshold must be between 0 and 1, not {threshold!r}.")
    if max_regions < 0:
        raise CamError(f"max_regions must be 0 or more, not {max_regions!r}.")
    sources = look_sources(dense)
    by_key = {s.key: s for s in sources}
    key = sources[0].key if source is None else source
    if key not in by_key:
        raise CamError(
            f"{dense.spec.full_title} has no maps called {key!r}.", f"Choose one of: {', '.join(by_key)}."
        )
    image = image.convert("RGB")
    if result.model != dense.name or result.image_size != image.size:
        raise CamError(
            f"That result is {result.model}'s on a {result.image_size[0]}x{result.image_size[1]} picture, "
            f"not {dense.name}'s on this {image.size[0]}x{image.size[1]} one.",
            "Run detect_objects on the same model and picture first.",
        )
    start = time.perf_counter()
    if dense.spec.kind == "semantic segmenter":
        whole, in_boxes, regions = _segmenter_maps(dense, image, result, key, max_regions)
        method, why = "Grad-CAM", _WHY_GRADCAM
    else:
        whole, in_boxes, regions = _detector_maps(dense, image, result, key, threshold, max_regions)
        method, why = "EigenCAM", _WHY_EIGENCAM
    return LookedMaps(
        model=dense.name,
        method=method,
        source=by_key[key],
        whole=whole,
        in_boxes=in_boxes,
        regions=regions,
        why=why,
        seconds=time.perf_counter() - start,
    )


def _detector_maps(
    dense: DenseModel, image: Image.Image, result: DenseResult, key: str, threshold: float, max_regions: int
) -> tuple[np.ndarray, np.ndarray, tuple[LookedRegion, ...]]:
    work, _ = _work_picture(dense, image)
    x = TF.to_tensor(work).to(dense.device)
    with torch.inference_mode():
        batch = dense.model.transform([x])[0]
        inputs, shown = batch.tensors, tuple(int(v) for v in batch.image_sizes[0])
        if key.startswith(NECK):
            maps = dense.model.backbone(inputs)
            acts = (
                _together(maps, dense.spec.neck_grid) if key == NECK else maps[key.split(":", 1)[1]]
            )
        else:
            acts = _run(_dense_modules(dense), inputs, [key])[key]
        padded = tuple(inputs.shape[-2:])
        full = tuple(acts.shape[-2:])
        rows, cols = _picture_cells(full, padded, shown)
        # Cells that lie wholly in the padding are not the picture: left out of the principal direction,
        # where the edge between picture and padding would otherwise count as a feature.
        kept = acts[0, :, :rows, :cols].float().cpu().numpy()
    cam = torch.from_numpy(_eigencam(kept))
    cell = (padded[0] / full[0], padded[1] / full[1])
    size = _map_size(image.size)
    whole = _unit(_to_picture(cam, cell, shown, size))
    order = np.argsort(-result.scores, kind="stable")
    chosen = [int(i) for i in order if result.scores[i] >= threshold][:max_regions]
    regions = tuple(
        LookedRegion(
            result.labels[i], float(result.scores[i]), result.boxes[i].astype(np.float32).copy(), None
        )
        for i in chosen
    )
    sx, sy = size[0] / image.width, size[1] / image.height
    boxes = np.array([r.box for r in regions], np.float32).reshape(-1, 4) * np.array(
        [sx, sy, sx, sy], np.float32
    )
    return whole, renormalise_in_boxes(whole, boxes), regions


def _segmenter_maps(
    dense: DenseModel, image: Image.Image, result: DenseResult, key: str, max_regions: int
) -> tuple[np.ndarray, np.ndarray, tuple[LookedRegion, ...]]:
    size = _map_size(image.size)
    classes = [(i, name, share) for i, name, share in result.legend if i != 0][:max_regions]
    if not classes:
        zeros = np.zeros((size[1], size[0]), np.float32)
        return zeros, zeros, ()
    modules = _dense_modules(dense)
    at = [name for name, _ in modules].index(key)
    work, _ = _work_picture(dense, image)
    work = work.resize(
        (max(1, round(work.width * GRADCAM_SCALE)), max(1, round(work.height * GRADCAM_SCALE))),
        Image.Resampling.BILINEAR,
    )
    # Out of any inference mode a caller may hold (its tensors cannot take part in autograd). The model's
    # parameters do not require grad: only the layer's output does, so the gradient is the layer's alone
    # and nothing of the shared model changes.
    with torch.inference_mode(False), torch.no_grad():
        inputs = _normalise(dense, TF.to_tensor(work).to(dense.device))
        feats = _run(modules[: at + 1], inputs, [key])[key]
    feats = feats.detach().requires_grad_(True)
    heats = []
    with torch.inference_mode(False), torch.enable_grad():
        y = feats
        for _, module in modules[at + 1 :]:
            y = module(y)
        logits = dense.model.classifier(y)
        # As torchvision's segmentation models do: the head's map upsampled to the input.
        logits = F.interpolate(logits, size=inputs.shape[-2:], mode="bilinear", align_corners=False)[0]
        # The pixels the model gave each class on the picture it was shown (the result), at this size.
        small = Image.fromarray(result.class_map).resize((logits.shape[2], logits.shape[1]), Image.Resampling.NEAREST)
        winners = torch.from_numpy(np.asarray(small).astype(np.int64)).to(logits.device)
        for n, (index, _, _) in enumerate(classes):
            score = (logits[index] * (winners == index)).sum()
            (grads,) = torch.autograd.grad(score, feats, retain_graph=n < len(classes) - 1)
            weights = grads.mean(dim=(2, 3), keepdim=True)
            cam = F.relu((weights * feats.detach()).sum(dim=1))[0]
            heats.append(cam)
    full = tuple(feats.shape[-2:])
    shown = tuple(inputs.shape[-2:])
    cell = (shown[0] / full[0], shown[1] / full[1])
    regions = []
    for (index, name, share), cam in zip(classes, heats, strict=True):
        heat = _unit(np.maximum(_to_picture(cam.detach(), cell, shown, size), 0))
        regions.append(LookedRegion(name, float(share), _class_box(result.class_map, index), heat))
    return regions[0].heat, regions[0].heat, tuple(regions)


def _class_box(class_map: np.ndarray, index: int) -> np.ndarray:
    """(4,) float32 ``x0, y0, x1, y1`` around the pixels of class ``index`` (zeros when it has none)."""
    rows = np.flatnonzero((class_map == index).any(axis=1))
    cols = np.flatnonzero((class_map == index).any(axis=0))
    if not len(rows):
        return np.zeros(4, np.float32)
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], np.float32)

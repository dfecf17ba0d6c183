"""Paint to segment: a per-pixel linear head fitted on a few painted strokes, on the frozen backbone's maps.

A learner paints a few strokes on the crop the backbone saw (``result.input_image``: 224 x 224 for
EfficientNet-Lite0), one label per stroke (``"cat"``, ``"background"``); a multinomial logistic regression
learns, from those pixels only, which mix of the backbone's features means which label, and then labels
every pixel. What the learner sees: how far a handful of strokes goes on features learned for
classification, and which stages (low edges and colours, mid textures, high objects) make it work.

**Coordinates.** Strokes are a label map in the coordinates of the backbone's crop, (crop, crop) with
``crop = backbone.preprocessing.crop``: pixel ``(y, x)`` of ``backbone.crop(picture)``, the image that
:func:`backbone_viz.analyze` returns as ``input_image``. The mask and probabilities come back in the same
coordinates, so a page draws strokes and mask on one image.

**Features.** The last layer of each chosen stage (``spec.stages[i].last``), as a detector reads them. The
features of a pixel are each stage's map sampled bilinearly at that pixel (the map upsampled to the
crop, without building it), standardised per channel and scaled by ``1/sqrt(channels)``, so that every
stage weighs the same whatever its width: without it EfficientNet-Lite0's last stage (1280 channels)
drowns the other four (88 channels together). On 8 composites (``../shared/notes/dense-heads.md``) equal
weights reached a mean IoU of 0.86, plain concatenation 0.71.

**Prediction** is the same linear map applied to every pixel, computed as one 1x1 convolution per stage
at the stage's own resolution, upsampled bilinearly to the crop and summed. Upsampling is linear and
its weights sum to one, so this equals the logistic regression on the full (crop, crop, sum of
channels) hypercolumn (to float rounding), without holding it (295 MB for Lite0 at 224).

Nothing here changes the backbone: one ``torch.no_grad()`` forward pass through its traced graph, no
hooks, no train/eval switch; safe to run from many threads on one shared backbone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from backbone_viz.core.backbones import Backbone
from backbone_viz.core.runs import runs_model
from backbone_viz.core.specs import LEVELS, StageSpec
from backbone_viz.errors import SegmentError

__all__ = [
    "MAX_LABELS",
    "UNLABELLED",
    "SegmentHead",
    "Segmentation",
    "apply_segmenter",
    "fit_segmenter",
]

#: Most labels a segmenter may have: more than a learner can tell apart in colours on one picture.
MAX_LABELS = 4
#: The stroke value of a pixel nobody painted.
UNLABELLED = -1
#: Strength of the L2 penalty per labelled pixel, as scikit-learn's ``C = 1``: loss = mean cross-entropy +
#: ``L2 / (2 * n_pixels) * ||W||^2`` on standardised features. Keeps the fit unique (the painted pixels
#: are usually separable, where an unpenalised fit runs off to infinite weights) and smooth.
L2 = 1.0
#: L-BFGS iterations at most; the fit converges in far fewer on a few hundred pixels.
MAX_ITERATIONS = 200


@dataclass(frozen=True, eq=False)
class SegmentHead:
    """A fitted per-pixel linear head: logits(y, x) = sum over stages of weight_s . map_s(y, x) + bias.

    The standardisation and the ``1/sqrt(channels)`` scaling are folded into the weights, so the head
    reads the raw maps of any picture: :func:`apply_segmenter` uses it on another one.

    Attributes:
        labels: the K label names, in stroke-index order.
        layers: the layer read for each chosen stage (its last layer), S names.
        stages: the S chosen stage indices (``StageSpec.index``: 1 = the first stage).
        weights: S arrays, weight ``s`` of shape (K, C_s) float32, for the raw map of ``layers[s]``.
        bias: (K,) float32.
        backbone: spec name of the backbone whose features it reads (``"efficientnet_lite0"``).
        backbone_weights: those features' weights (``"pretrained"``, ``"untrained"`` or a checkpoint path).
        pixels: (K,) labelled pixels per label it was fitted on.
    """

    labels: tuple[str, ...]
    layers: tuple[str, ...]
    stages: tuple[int, ...]
    weights: tuple[np.ndarray, ...] = field(repr=False)
    bias: np.ndarray = field(repr=False)
    backbone: str
    backbone_weights: str
    pixels: tuple[int, ...]

    def fits(self, backbone: Backbone) -> bool:
        """Whether this head reads ``backbone``'s features: the spec and weights it was fitted on."""
        return (self.backbone, self.backbone_weights) == (backbone.spec.name, backbone.weights)


@dataclass(frozen=True, eq=False)
class Segmentation:
    """Every pixel of the backbone's crop labelled by a :class:`SegmentHead`.

    Attributes:
        labels: the K label names; ``mask`` holds their indices.
        mask: (H, W) int64, the most probable label of each pixel, H = W = the backbone's crop size.
        probabilities: (K, H, W) float32, each label's probability; they sum to 1 over K at every pixel.
        head: the head that labelled it, to apply to another picture with :func:`apply_segmenter`.
        input_image: the (H, W) RGB crop the backbone saw, in whose coordinates strokes and mask are.
        forward_ms: milliseconds of the backbone's forward pass.
        fit_ms: milliseconds of fitting the head (0 when an existing head was applied).
        predict_ms: milliseconds of labelling every pixel.

    All arrays are read-only CPU numpy arrays.
    """

    labels: tuple[str, ...]
    mask: np.ndarray = field(repr=False)
    probabilities: np.ndarray = field(repr=False)
    head: SegmentHead = field(repr=False)
    input_image: Image.Image = field(repr=False)
    forward_ms: float
    fit_ms: float
    predict_ms: float

    @property
    def stages(self) -> tuple[int, ...]:
        """The stage indices whose features were used (``StageSpec.index``)."""
        return self.head.stages

    @property
    def layers(self) -> tuple[str, ...]:
        """The layers whose maps were used, one per stage."""
        return self.head.layers


@runs_model
def fit_segmenter(
    backbone: Backbone,
    image: Image.Image,
    strokes: np.ndarray,
    labels: Sequence[str],
    *,
    levels: Sequence[int | str] | None = None,
) -> Segmentation:
    """Fits a per-pixel head on painted strokes and labels every pixel of the picture with it.

    One forward pass without gradient gives the last map of each chosen stage; the features of the
    painted pixels (each map sampled bilinearly there) train a multinomial logistic regression (L-BFGS,
    L2 penalty, deterministic: a convex problem with one optimum); the head then labels every pixel.

    Args:
        backbone: from :func:`backbone_viz.load_backbone`; it is not modified.
        image: an RGB PIL image; the backbone's own crop of it is what gets segmented.
        strokes: (H, W) integer label map in the coordinates of that crop (H = W =
            ``backbone.preprocessing.crop``, 224 for Lite0): ``-1`` (:data:`UNLABELLED`) where nothing is
            painted, ``k`` where label ``labels[k]`` is painted.
        labels: the K names, 2 to :data:`MAX_LABELS`; every one must have at least one painted pixel.
        levels: which stages' features to use: ``None`` for all of them, or a list of stage indices
            (``StageSpec.index``, 1 = the first stage) and level names (``"low"``, ``"mid"``, ``"high"``:
            every stage of that level).

    Returns:
        A frozen :class:`Segmentation` with (H, W) mask and (K, H, W) probabilities; ``.head`` applies
        to other pictures.

    Raises:
        SegmentError: strokes of the wrong size, nothing painted, a label painted alone or not at all,
            stroke values that name no label, fewer than 2 or more than ``MAX_LABELS`` labels, empty or
            repeated names, unknown levels.
        TypeError: ``image`` is not a PIL image, or strokes are not integers.
    """
    names = _check_labels(labels)
    chosen = _choose_stages(backbone, levels)
    size = backbone.preprocessing.crop
    painted = _check_strokes(strokes, names, size)

    start = time.perf_counter()
    crop, maps = _stage_maps(backbone, image, chosen)
    forward = time.perf_counter()
    ys, xs = np.nonzero(painted >= 0)
    targets = torch.from_numpy(painted[ys, xs].astype(np.int64))
    head = _fit(backbone, chosen, maps, names, ys, xs, targets, size)
    fitted = time.perf_counter()
    mask, probabilities = _predict(head, maps, size)
    done = time.perf_counter()
    return Segmentation(
        labels=names,
        mask=mask,
        probabilities=probabilities,
        head=head,
        input_image=crop,
        forward_ms=1000 * (forward - start),
        fit_ms=1000 * (fitted - forward),
        predict_ms=1000 * (done - fitted),
    )


@runs_model
def apply_segmenter(backbone: Backbone, head: SegmentHead, image: Image.Image) -> Segmentation:
    """Labels every pixel of another picture with a head fitted by :func:`fit_segmenter`.

    Args:
        backbone: the backbone the head was fitted on (same spec and weights); it is not modified.
        head: ``fit_segmenter(...).head``.
        image: an RGB PIL image; the backbone's own crop of it is segmented.

    Returns:
        A frozen :class:`Segmentation` of the new crop, (H, W) mask and (K, H, W) probabilities; its
        ``fit_ms`` is 0.

    Raises:
        SegmentError: the head was fitted on another backbone or other weights.
        TypeError: ``image`` is not a PIL image.
    """
    if not head.fits(backbone):
        raise SegmentError(
            f"This segmenter was painted on {head.backbone} ({head.backbone_weights}) features, "
            f"not on {backbone.spec.name} ({backbone.weights}).",
            f"Paint new strokes on this backbone, or switch back to {head.backbone}.",
        )
    stages = {s.index: s for s in backbone.spec.stages}
    start = time.perf_counter()
    crop, maps = _stage_maps(backbone, image, [stages[i] for i in head.stages])
    forward = time.perf_counter()
    mask, probabilities = _predict(head, maps, backbone.preprocessing.crop)
    done = time.perf_counter()
    return Segmentation(
        labels=head.labels,
        mask=mask,
        probabilities=probabilities,
        head=head,
        input_image=crop,
        forward_ms=1000 * (forward - start),
        fit_ms=0.0,
        predict_ms=1000 * (done - forward),
    )


def _check_labels(labels: Sequence[str]) -> tuple[str, ...]:
    """The label names stripped of spaces; raises SegmentError unless 2 to MAX_LABELS distinct names."""
    if isinstance(labels, str):
        raise TypeError("labels must be a list of names, not one string")
    names: list[str] = []
    for raw in labels:
        if not isinstance(raw, str):
            raise TypeError(f"labels must be str, not {type(raw).__name__}")
        name = raw.strip()
        if not name:
            raise SegmentError("One label has no name.", "Give every label a short name, such as 'cat' or 'sky'.")
        if name.lower() in (seen.lower() for seen in names):
            raise SegmentError(f"Two labels are called {name!r}.", "Give each label its own name.")
        names.append(name)
    if len(names) < 2:
        raise SegmentError(
            f"A segmenter needs at least 2 labels to choose between; there {'is' if names else 'are'} "
            f"{len(names) or 'none'}.",
            "Add a label for everything else, such as 'background', and paint a stroke of it.",
        )
    if len(names) > MAX_LABELS:
        raise SegmentError(
            f"There are {len(names)} labels; at most {MAX_LABELS} can be painted here.",
            "Merge similar labels, or paint the rest as 'background'.",
        )
    return tuple(names)


def _choose_stages(backbone: Backbone, levels: Sequence[int | str] | None) -> list[StageSpec]:
    """The stages named by ``levels`` (indices and level names), in forward order, each once."""
    stages = backbone.spec.stages
    if levels is None:
        return list(stages)
    if isinstance(levels, (str, int)):
        levels = [levels]
    wanted: set[int] = set()
    for level in levels:
        if isinstance(level, str):
            found = [s.index for s in stages if s.level == level]
            if not found:
                raise SegmentError(
                    f"{backbone.spec.title} has no {level!r} stage.",
                    f"Choose among the levels {', '.join(lv for lv in LEVELS if any(s.level == lv for s in stages))}.",
                )
            wanted.update(found)
        elif isinstance(level, int) and not isinstance(level, bool):
            if level not in {s.index for s in stages}:
                raise SegmentError(
                    f"{backbone.spec.title} has no stage {level}.",
                    f"Choose stages {stages[0].index} to {stages[-1].index}.",
                )
            wanted.add(level)
        else:
            raise TypeError(f"levels must be stage indices or level names, not {type(level).__name__}")
    if not wanted:
        raise SegmentError("No stage was chosen.", "Choose at least one stage whose features the segmenter reads.")
    return [s for s in stages if s.index in wanted]


def _check_strokes(strokes: np.ndarray, names: tuple[str, ...], size: int) -> np.ndarray:
    """The strokes as an (size, size) int64 array, checked against the labels."""
    painted = np.asarray(strokes)
    if painted.dtype == bool or not np.issubdtype(painted.dtype, np.integer):
        raise TypeError(f"strokes must be an integer label map, not {painted.dtype}")
    if painted.shape != (size, size):
        raise SegmentError(
            f"The strokes are {'x'.join(map(str, painted.shape)) or 'a single number'}, but the backbone "
            f"sees a {size}x{size} crop.",
            f"Paint on the {size}x{size} picture the backbone saw (the analysis's input image).",
        )
    painted = painted.astype(np.int64)
    bad = np.unique(painted[(painted < UNLABELLED) | (painted >= len(names))])
    if bad.size:
        raise SegmentError(
            f"The strokes use label number {int(bad[0])}, but there {'is' if len(names) == 1 else 'are'} "
            f"only {len(names)} label names ({', '.join(names)}).",
            f"Number the labels 0 to {len(names) - 1} in the order of their names, and -1 where nothing is painted.",
        )
    counts = np.bincount(painted[painted >= 0], minlength=len(names))
    if not counts.any():
        raise SegmentError("Nothing is painted yet.", "Paint a stroke of each label on the picture.")
    missing = [name for name, n in zip(names, counts, strict=True) if n == 0]
    if len(missing) == len(names) - 1:
        only = names[int(np.argmax(counts))]
        raise SegmentError(
            f"Only {only!r} is painted: with one label there is nothing to tell apart.",
            f"Paint a stroke of {' and '.join(repr(m) for m in missing)} too.",
        )
    if missing:
        raise SegmentError(
            f"No stroke of {' or '.join(repr(m) for m in missing)} is painted.",
            "Paint at least one stroke of every label, or remove the labels you do not need.",
        )
    return painted


def _stage_maps(backbone: Backbone, image: Image.Image, stages: Sequence[StageSpec]) -> tuple[Image.Image, list[torch.Tensor]]:
    """The crop and the last map of each stage, (C_s, h_s, w_s) float32 on the CPU, from one forward pass."""
    if not isinstance(image, Image.Image):
        raise TypeError(f"image must be a PIL image, not {type(image).__name__}")
    crop = backbone.crop(image)
    names = [s.last.name for s in stages]
    with torch.no_grad():
        out = backbone.extract(backbone.to_tensor(crop), names)
    # The fit and prediction are small: on the CPU in float32 they give the same head on every device.
    return crop, [out[n][0].to("cpu", torch.float32) for n in names]


def _sample(fmap: torch.Tensor, ys: np.ndarray, xs: np.ndarray, size: int) -> torch.Tensor:
    """(N, C): a (C, h, w) map sampled bilinearly at N crop pixels, exactly where ``F.interpolate``'s
    bilinear upsampling to (size, size) (``align_corners=False``) puts them.

    ``grid_sample`` with ``align_corners=False`` maps normalised ``(2x + 1) / size - 1`` to map position
    ``(x + 0.5) * w / size - 0.5``, interpolate's own; border padding clamps at the edge as it does.
    """
    grid = torch.from_numpy(np.stack([(2 * xs + 1) / size - 1, (2 * ys + 1) / size - 1], axis=-1)).float()
    sampled = F.grid_sample(fmap[None], grid[None, None], mode="bilinear", padding_mode="border", align_corners=False)
    return sampled[0, :, 0].T


def _fit(
    backbone: Backbone,
    stages: Sequence[StageSpec],
    maps: Sequence[torch.Tensor],
    names: tuple[str, ...],
    ys: np.ndarray,
    xs: np.ndarray,
    targets: torch.Tensor,
    size: int,
) -> SegmentHead:
    """Fits the logistic regression on the painted pixels; returns it folded onto the raw maps."""
    columns, means, scales = [], [], []
    for fmap in maps:
        c = fmap.shape[0]
        flat = fmap.reshape(c, -1)
        # Statistics over the whole map (at its own resolution), not the few painted pixels: a stroke
        # of one colour would give a channel a near-zero spread and blow its weight up.
        mean = flat.mean(dim=1)
        spread = flat.std(dim=1, unbiased=False)
        # A floor relative to the map's own spread: a dead channel is not blown up, and a map whose every
        # value is tiny (an untrained GoogLeNet's last stage, ~1e-12) is scaled up, not zeroed.
        scale = (spread + 1e-5 * spread.max().clamp_min(1e-30)) * math.sqrt(c)
        columns.append((_sample(fmap, ys, xs, size) - mean) / scale)
        means.append(mean)
        scales.append(scale)
    x = torch.cat(columns, dim=1).double()
    y = targets
    k = len(names)
    weight = torch.zeros(k, x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(k, dtype=torch.float64, requires_grad=True)
    penalty = L2 / (2 * len(y))
    # A fresh optimiser over fresh tensors: nothing is shared with the backbone or another session.
    optimiser = torch.optim.LBFGS(
        [weight, bias], max_iter=MAX_ITERATIONS, tolerance_grad=1e-7, tolerance_change=1e-10,
        history_size=20, line_search_fn="strong_wolfe",
    )

    def loss() -> torch.Tensor:
        optimiser.zero_grad()
        value = F.cross_entropy(x @ weight.T + bias, y) + penalty * (weight * weight).sum()
        value.backward()
        return value

    # enable_grad: a caller inside torch.no_grad() (a notebook cell, a server's worker) still gets a fit.
    with torch.enable_grad():
        optimiser.step(loss)
    w = weight.detach()
    # Fold z = (f - mean) / scale into the weights: W z + b = (W / scale) f + (b - (W / scale) . mean).
    folded, shift = [], torch.zeros(k, dtype=torch.float64)
    start = 0
    for mean, scale in zip(means, scales, strict=True):
        ws = w[:, start : start + len(mean)] / scale.double()
        shift += ws @ mean.double()
        folded.append(_frozen(ws.float().numpy()))
        start += len(mean)
    return SegmentHead(
        labels=names,
        layers=tuple(s.last.name for s in stages),
        stages=tuple(s.index for s in stages),
        weights=tuple(folded),
        bias=_frozen((bias.detach() - shift).float().numpy()),
        backbone=backbone.spec.name,
        backbone_weights=backbone.weights,
        pixels=tuple(int(n) for n in torch.bincount(y, minlength=k)),
    )


def _predict(head: SegmentHead, maps: Sequence[torch.Tensor], size: int) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) int64 mask and (K, H, W) float32 probabilities: a 1x1 convolution per stage at its own
    resolution, each upsampled bilinearly to the crop and summed, then softmax over the labels."""
    logits = torch.tensor(head.bias)[:, None, None].expand(-1, size, size).clone()
    for weight, fmap in zip(head.weights, maps, strict=True):
        c, h, w = fmap.shape
        small = (torch.tensor(weight) @ fmap.reshape(c, -1)).reshape(1, -1, h, w)
        logits += F.interpolate(small, size=(size, size), mode="bilinear", align_corners=False)[0]
    probabilities = torch.softmax(logits, dim=0)
    return _frozen(probabilities.argmax(dim=0).numpy().astype(np.int64)), _frozen(probabilities.numpy())


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array

"""Occlusion (Zeiler and Fergus 2014): cover part of the picture, see how far the class falls.

"Visualizing and Understanding Convolutional Networks" (Zeiler and Fergus, ECCV 2014, section 4.2) slid a
grey square over the picture and plotted, for each place of the square, the probability of the correct
class: where covering the picture makes the probability fall, the network was looking. No gradient, no
layer: only the model's answers to changed pictures, so it works the same for every backbone and head.

**The patch.** A ``patch`` x ``patch`` square of the mean colour of the backbone's own preprocessing
(mid-grey (128, 128, 128) for EfficientNet-Lite0, whose weights were trained with a mean of 0.5;
ImageNet's mean colour (124, 116, 104) for the torchvision backbones), which is exactly ZERO once the
picture is normalised: the patch adds no signal of its own to the first layer. Its top-left corner moves
by ``stride`` pixels over the crop (``backbone.crop``, 224 x 224 for every bundled backbone); where the
crop's side minus the patch is not a multiple of the stride, one last row (column) of places touches the
bottom (right) edge, so every pixel is covered at least once.

**The score.** :attr:`Occlusion.map` is the fall of the target's softmax PROBABILITY (unoccluded minus
occluded), as Zeiler and Fergus plotted it: it reads on one scale from 0 to 1 for every picture, backbone
and head ("covering this part takes the class from 0.8 to 0.2"), and it is the score the deletion and
insertion curves of :mod:`backbone_viz.explain.faithfulness` measure, so the two pages speak of one
number. A probability saturates, though: a class at 0.999 may not move while its logit falls by 3, so
:attr:`Occlusion.logit_map` keeps the fall of the logit from the same passes, at no cost.

**The cost.** One forward pass per place of the patch and one for the untouched crop: ``rows x cols + 1``
passes (13 x 13 + 1 = 170 at the default 32 px patch and 16 px stride on a 224 px crop), batched through
the model (``batch_size`` pictures at a time). :func:`occlusion_cost` says how many and about how long
BEFORE anything runs, from this backbone's speed as measured in this process (:func:`seconds_per_picture`).

The shared model is only run: ``torch.no_grad()`` forward passes through its traced graph
(:meth:`backbone_viz.Backbone.extract`), no hooks, no ``.grad``, no change of mode.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image

from backbone_viz.core.backbones import Backbone
from backbone_viz.core.graph import LOGITS, POOLED
from backbone_viz.core.runs import runs_model
from backbone_viz.errors import PerturbationError
from backbone_viz.explain.analysis import Prediction, ranked_classes, resolve_target
from backbone_viz.heads.head import Head, check_fits

__all__ = [
    "DEFAULT_PATCH",
    "DEFAULT_STRIDE",
    "Cost",
    "Occlusion",
    "occlusion",
    "occlusion_cost",
    "seconds_per_picture",
]

#: ``progress(done, total)``: pictures through the model so far, of ``total``; may raise to cancel.
Progress = Callable[[int, int], object]

#: Side of the grey square, in crop pixels: about an object part at 224 px (an eye, an ear, a paw), the
#: scale of Zeiler and Fergus's figure 7.
DEFAULT_PATCH = 32
#: Step between two places of the square: half the patch, so neighbouring places overlap and a part is
#: never missed between two of them; 13 x 13 = 169 passes on a 224 px crop.
DEFAULT_STRIDE = 16
#: Pictures per forward pass. On a 2-core CPU at one torch thread, Lite0 took 24 ms a picture alone, 21 ms
#: in batches of 2, 30 ms in 4 and 45 ms in 8 (larger batches' activations leave the caches); a GPU
#: wants large batches.
CPU_BATCH, GPU_BATCH = 2, 64

#: Seconds per picture measured on each backbone in this process (batched forward passes, no gradient):
#: :func:`seconds_per_picture` measures once, and every perturbation run updates it.
_SPEED: weakref.WeakKeyDictionary[Backbone, float] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Cost:
    """What a perturbation method will cost, said before it runs.

    Attributes:
        passes: pictures that go through the model (each a forward pass, batched).
        seconds: about how long, from this backbone's measured speed in this process
            (:func:`seconds_per_picture`): a guide for the learner, not a promise (other work on the machine
            changes it).
    """

    passes: int
    seconds: float

    def __str__(self) -> str:
        return f"{self.passes} forward passes, about {self.seconds:.1f} s"


@dataclass(frozen=True, eq=False)
class Occlusion:
    """How far the target class falls when each part of the crop is covered.

    Attributes:
        target: the class whose probability is watched, with its probability on the unoccluded crop.
        map: (rows, cols) float32, read-only: the probability's fall at each place of the patch
            (unoccluded minus occluded; negative where covering RAISED it). Row r, column c is the patch
            whose top-left corner is at (``tops[r]``, ``lefts[c]``).
        logit_map: (rows, cols) float32, read-only: the same fall, in the target's logit.
        pixel_map: (H, W) float32, read-only, the crop's size: each pixel's mean probability fall over
            the places of the patch that cover it (captum's ``Occlusion`` attribution); the map to rank
            against others in :func:`backbone_viz.explain.faithfulness.rank_maps`.
        tops: (rows,) the top edge of each row's patch, in crop pixels.
        lefts: (cols,) the left edge of each column's patch.
        patch: the square's side in crop pixels.
        stride: the step between two places, in crop pixels.
        fill: the patch's RGB colour in 8 bits: the preprocessing's mean colour, zero after normalisation.
        base_score: the target's probability on the unoccluded crop.
        base_logit: its logit there.
        input_image: the crop the model saw, RGB PIL image (H x W).
        passes: forward passes made (rows x cols, plus one for the unoccluded crop).
        ms: milliseconds the whole run took.
    """

    target: Prediction
    map: np.ndarray = field(repr=False)
    logit_map: np.ndarray = field(repr=False)
    pixel_map: np.ndarray = field(repr=False)
    tops: tuple[int, ...]
    lefts: tuple[int, ...]
    patch: int
    stride: int
    fill: tuple[int, int, int]
    base_score: float
    base_logit: float
    input_image: Image.Image = field(repr=False)
    passes: int
    ms: float

    def picture(self, row: int, col: int) -> Image.Image:
        """The crop as the model saw it with the patch at place (``row``, ``col``) of :attr:`map`.

        Raises:
            IndexError: a place outside the map.
        """
        top, left = self.tops[row], self.lefts[col]
        pixels = np.array(self.input_image.convert("RGB"))
        pixels[top : top + self.patch, left : left + self.patch] = self.fill
        return Image.fromarray(pixels)


def places(size: int, patch: int, stride: int) -> tuple[int, ...]:
    """The patch's start positions along one side: every ``stride`` pixels, the last at ``size - patch``.

    Example: ``places(224, 32, 16)`` is ``(0, 16, ..., 192)`` (13 places); ``places(224, 32, 20)`` ends
    ``..., 180, 192``, the last one added so that the border is covered too.
    """
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return tuple(starts)


@runs_model
def occlusion_cost(
    backbone: Backbone,
    *,
    patch: int = DEFAULT_PATCH,
    stride: int = DEFAULT_STRIDE,
    batch_size: int | None = None,
) -> Cost:
    """How many forward passes :func:`occlusion` will make, and about how long they take, before it runs.

    The first call on a backbone measures its speed with one batch of blank pictures (a fraction of a
    second); later calls only count.

    Raises:
        PerturbationError: a patch or stride that does not fit the crop (as :func:`occlusion`).
    """
    size = backbone.preprocessing.crop
    _check_patch(size, patch, stride)
    passes = len(places(size, patch, stride)) ** 2 + 1
    return Cost(passes, passes * seconds_per_picture(backbone, batch_size=batch_size))


@runs_model
def occlusion(
    backbone: Backbone,
    image: Image.Image,
    target: int | str | None = None,
    *,
    patch: int = DEFAULT_PATCH,
    stride: int = DEFAULT_STRIDE,
    batch_size: int | None = None,
    head: Head | None = None,
    progress: Progress | None = None,
) -> Occlusion:
    """Slides a mean-grey square over the crop and maps how far the target's probability falls.

    Args:
        backbone: a loaded backbone; it is only run.
        image: an RGB PIL image; the backbone's crop of it is occluded.
        target: the class watched: None (the top-1 on the unoccluded crop), a class index or a label.
        patch: the square's side in crop pixels (1 to the crop's side).
        stride: the step between two places in crop pixels (at least 1; see :func:`places`).
        batch_size: pictures per forward pass (default: 2 on a CPU, 64 on a GPU).
        head: a head from :func:`backbone_viz.fit_head` to read instead of the model's own.
        progress: called as ``progress(done, total)`` after each batch, counting pictures through the
            model; an exception it raises stops the work (the model is left as it was).

    Returns:
        A frozen :class:`Occlusion`.

    Raises:
        PerturbationError: a patch larger than the crop or below 1 pixel, a stride below 1 pixel.
        BackboneVizError: an unknown target class.
        HeadError: a head made for another backbone.
    """
    start = time.perf_counter()
    size = backbone.preprocessing.crop
    _check_patch(size, patch, stride)
    base = Base.of(backbone, image, target, head)
    tops = lefts = places(size, patch, stride)
    spots = [(t, left) for t in tops for left in lefts]

    def make(first: int, stop: int) -> torch.Tensor:
        batch = base.rgb.repeat(stop - first, 1, 1, 1)
        for k, (top, left) in enumerate(spots[first:stop]):
            batch[k, :, top : top + patch, left : left + patch] = base.mean
        return batch

    tally = Tally(len(spots) + 1, progress)
    tally.add(1)
    probs, logits = score_batches(
        backbone, head, base.index, make, len(spots), batch_size=batch_size, tally=tally
    )
    shape = (len(tops), len(lefts))
    drop = (base.probability - probs).reshape(shape).astype(np.float32)
    pixel_sum = np.zeros((size, size), np.float64)
    covered = np.zeros((size, size), np.int32)
    for (top, left), value in zip(spots, drop.ravel(), strict=True):
        pixel_sum[top : top + patch, left : left + patch] += value
        covered[top : top + patch, left : left + patch] += 1
    return Occlusion(
        target=base.target,
        map=_frozen(drop),
        logit_map=_frozen((base.logit - logits).reshape(shape).astype(np.float32)),
        pixel_map=_frozen((pixel_sum / covered).astype(np.float32)),
        tops=tops,
        lefts=lefts,
        patch=patch,
        stride=stride,
        fill=tuple(int(round(255 * m)) for m in backbone.preprocessing.mean),  # type: ignore[arg-type]
        base_score=base.probability,
        base_logit=base.logit,
        input_image=base.crop,
        passes=len(spots) + 1,
        ms=1000 * (time.perf_counter() - start),
    )


@runs_model
def seconds_per_picture(backbone: Backbone, *, batch_size: int | None = None) -> float:
    """About how long one picture takes through ``backbone`` in a batched forward pass without gradient.

    The value measured last in this process: by this function the first time (a warm-up picture, then
    one timed batch of blank crops), then by every perturbation run (:func:`occlusion`, the faithfulness
    curves), which times its own batches.
    """
    if backbone in _SPEED:
        return _SPEED[backbone]
    size = backbone.preprocessing.crop
    batch = batch_size or default_batch(backbone)
    blank = torch.zeros(batch, 3, size, size)
    with torch.no_grad():
        _logits(backbone, None, blank[:1].to(backbone.device))  # the first pass pays one-off costs
        start = time.perf_counter()
        _logits(backbone, None, blank.to(backbone.device)).cpu()
    _SPEED[backbone] = (time.perf_counter() - start) / batch
    return _SPEED[backbone]


def default_batch(backbone: Backbone) -> int:
    """Pictures per forward pass when ``batch_size`` is None: :data:`CPU_BATCH` or :data:`GPU_BATCH`."""
    return GPU_BATCH if backbone.device.type == "cuda" else CPU_BATCH


class Tally:
    """Counts pictures through the model for a ``progress(done, total)`` callback over several batches."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total, self.done, self.progress = total, 0, progress

    def add(self, count: int) -> None:
        self.done += count
        if self.progress is not None:
            self.progress(self.done, self.total)


@dataclass(frozen=True, eq=False)
class Base:
    """The unperturbed crop, its scores and the resolved target: what every perturbation starts from.

    Attributes:
        crop: the backbone's crop, RGB PIL image (H x W).
        rgb: (3, H, W) float32 CPU tensor in [0, 1]: the crop before normalisation.
        index: the target class's index.
        target: the target with its probability on the crop.
        probability: that probability.
        logit: its logit.
        mean: (3, 1, 1) the preprocessing mean, the colour that normalises to zero.
    """

    crop: Image.Image
    rgb: torch.Tensor
    index: int
    target: Prediction
    probability: float
    logit: float
    mean: torch.Tensor

    @classmethod
    def of(cls, backbone: Backbone, image: Image.Image, target: int | str | None, head: Head | None) -> Base:
        """One forward pass on the crop, and the target resolved (``BackboneVizError`` if unknown)."""
        if head is not None:
            check_fits(head, backbone)
        crop = backbone.crop(image)
        rgb = TF.to_tensor(crop)
        with torch.no_grad():
            logits = _logits(backbone, head, _normalise(backbone, rgb[None]).to(backbone.device))
        probabilities, ranked = ranked_classes(logits)
        categories = head.categories if head is not None else backbone.categories
        index = resolve_target(target, categories, ranked)
        p = float(probabilities[index])
        mean = torch.tensor(backbone.preprocessing.mean, dtype=torch.float32).view(3, 1, 1)
        return cls(
            crop, rgb, index, Prediction(index, categories[index], p), p, float(logits[0, index]), mean
        )


def score_batches(
    backbone: Backbone,
    head: Head | None,
    index: int,
    make: Callable[[int, int], torch.Tensor],
    count: int,
    *,
    batch_size: int | None,
    tally: Tally,
) -> tuple[np.ndarray, np.ndarray]:
    """The target's probability and logit for ``count`` pictures made batch by batch.

    Args:
        make: ``make(first, stop)`` returns pictures ``first`` to ``stop - 1`` as a (stop - first, 3, H, W)
            float CPU tensor in [0, 1] (before normalisation); one batch is held at a time.
        count: how many pictures in all.
        tally: counts the pictures scored for the progress callback.

    Returns:
        ``(probabilities, logits)``, each (count,) float64.
    """
    batch = batch_size or default_batch(backbone)
    if batch < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch}")
    probs, logits = np.empty(count), np.empty(count)
    model_seconds = 0.0
    with torch.no_grad():
        for first in range(0, count, batch):
            stop = min(first + batch, count)
            x = _normalise(backbone, make(first, stop)).to(backbone.device)
            start = time.perf_counter()
            out = _logits(backbone, head, x).float()
            chosen = torch.stack([torch.softmax(out, dim=1)[:, index], out[:, index]]).cpu().numpy()
            model_seconds += time.perf_counter() - start
            probs[first:stop], logits[first:stop] = chosen
            tally.add(stop - first)
    if count:
        _SPEED[backbone] = model_seconds / count
    return probs, logits


def _logits(backbone: Backbone, head: Head | None, x: torch.Tensor) -> torch.Tensor:
    """Class scores (N, K) of a normalised batch (N, 3, H, W), through the traced graph (no hooks)."""
    if head is None:
        return backbone.extract(x, [LOGITS])[LOGITS]
    return head.logits(backbone.extract(x, [POOLED])[POOLED])


def _normalise(backbone: Backbone, rgb: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) pictures in [0, 1] normalised as the backbone's preprocessing does."""
    p = backbone.preprocessing
    return TF.normalize(rgb, mean=list(p.mean), std=list(p.std))


def _check_patch(size: int, patch: int, stride: int) -> None:
    if not 1 <= patch <= size:
        raise PerturbationError(
            f"A {patch} px patch does not fit this {size} x {size} px picture.",
            f"Pick a patch from 1 to {size} px.",
        )
    if stride < 1:
        raise PerturbationError(f"The patch cannot move by {stride} px.", "Pick a stride of 1 px or more.")


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array

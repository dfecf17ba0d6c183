"""Is a saliency map faithful? Change the pixels it ranks first and watch the class's probability.

A map says which pixels matter for a class. If it is right, taking those pixels away first should make the
class's probability fall fast, and giving them back first should make it rise fast. Every function here
takes ANY saliency map, an (h, w) array at any resolution (Grad-CAM's 7 x 7 at the last stage, a pixel
attribution's 224 x 224, :attr:`backbone_viz.explain.occlusion.Occlusion.pixel_map`...), resized
bilinearly onto the backbone's crop (``backbone.crop``, 224 x 224 for every bundled backbone) as
:func:`backbone_viz.upsample` does. The crop's pixels are then ranked by the map, most important first;
pixels of equal value keep reading order (top-left first), so the ranking is the same on every run.
:attr:`PixelCurve.ties` says how much of the crop that rule decided (Grad-CAM is exactly zero wherever its
ReLU cut it off).

**Deletion and insertion** (the RISE protocol, Petsiuk, Das and Saenko 2018, "RISE: Randomized Input
Sampling for Explanation of Black-box Models", section 4.1, and their ``evaluation.py``):

* deletion: from the crop, ``step`` pixels at a time, most important first, the pixels are set to BLACK,
  RGB (0, 0, 0), until none is left; the picture the learner watches is the picture the model sees. (The
  paper says pixels are "removed"; its code's substrate is ``torch.zeros_like`` of the NORMALISED
  picture, which is the preprocessing's mean colour, a grey, not black: ``substrate="mean"`` gives that,
  the grey of :mod:`backbone_viz.explain.occlusion`. Black is the default because a learner reads a
  black pixel as gone, where a grey one looks like part of the picture. The two give different areas:
  compare maps under one substrate only.)
* insertion: from a blurred copy of the crop (RISE's Gaussian kernel: 11 x 11, sigma 5, made as their
  ``gkern`` and applied to the normalised picture with zero padding, so the border fades to the mean
  colour), the original pixels come back, most important first, ``step`` at a time.
* the score after each step is the target's softmax probability (RISE's model ends in a softmax); the
  curve's x axis is the fraction of pixels changed, 0 to 1, and its area (:attr:`PixelCurve.auc`) is the
  trapezoid rule over it: RISE's ``auc`` exactly when ``step`` divides the crop's pixels. A LOW deletion
  area and a HIGH insertion area mean a faithful map.

RISE moved 224 pixels per step on a 224 x 224 picture, 224 steps per curve (449 pictures for the two).
:data:`DEFAULT_STEP` moves 3.5 times as many, 784 pixels (1/64 of a 224 px crop: 64 steps per curve, 129
pictures for the two curves), so that a deletion and an insertion curve take under 5 s for
EfficientNet-Lite0 on a 2-core CPU shared with other work (``bench/faithfulness.py``: about 3.3 s at one
torch thread, where RISE's 224 px took about 11 s). The curve keeps 65 points, and its area differs from
RISE's finer one by the trapezoid rule's error on a 3.5 times coarser grid.

**ROAD** (Rong, Leemann, Borisov, Kasneci and Kasneci 2022, "A Consistent and Efficient Evaluation Strategy
for Attribution Methods", ICML): deletion alone can mislead, because a picture with black holes is unlike
any photo the network was trained on, so the score may fall because of the holes themselves rather than
because the pixels mattered, and the holes' shape can tell the network where the map pointed. ROAD
removes a percentage of the pixels, most relevant first (MoRF) or least relevant first (LeRF), and fills
each removed pixel with the weighted mean of its 8 neighbours (1/6 for the 4 direct ones, 1/12 for the
diagonals, solved together as one sparse linear system), plus Gaussian noise of standard deviation 0.01
on the [0, 1] picture, before normalisation: their ``NoisyLinearImputer`` and its default noise, applied
to the unnormalised picture as their ``ImputedDataset`` does. At p % both orders remove int(H * W * p / 100)
pixels (pytorch-grad-cam's convention for LeRF); equal map values keep reading order as above, where
ROAD's code adds a random jitter of 1e-4. MoRF's probability should fall fast and LeRF's stay high; :attr:`Road.combined` is (mean LeRF - mean MoRF) / 2, as pytorch-grad-cam's
``ROADCombined``: higher is better.

**Baselines that explain nothing**: :func:`random_map` (seeded noise on a 7 x 7 grid, the last stage's
resolution, resized like any map) and :func:`sobel_map` (the edges of the grey picture). A map that does not beat them on a picture has not shown, on that picture, that it
knows more than chance or than the picture's edges. :func:`rank_maps` ranks any maps with both.

All perturbed pictures go through the model in batches (``torch.no_grad()``, the traced graph, no hooks, no
``.grad``, no change of mode): the shared model is only run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from backbone_viz.core.backbones import Backbone
from backbone_viz.core.runs import runs_model
from backbone_viz.errors import PerturbationError
from backbone_viz.explain.analysis import Prediction, upsample
from backbone_viz.explain.occlusion import (
    Base,
    Cost,
    Progress,
    Tally,
    score_batches,
    seconds_per_picture,
)
from backbone_viz.heads.head import Head

__all__ = [
    "BLUR_KERNEL",
    "BLUR_SIGMA",
    "DEFAULT_STEP",
    "RANDOM",
    "ROAD_NOISE",
    "ROAD_PERCENTAGES",
    "SOBEL",
    "DeletionInsertion",
    "PixelCurve",
    "RankedMap",
    "Ranking",
    "Road",
    "curves_cost",
    "deletion_insertion",
    "noisy_linear_imputation",
    "pixel_order",
    "random_map",
    "rank_maps",
    "road",
    "sobel_map",
]

#: Pixels changed per step of the deletion and insertion curves (RISE: 224; see the module docstring).
DEFAULT_STEP = 784
#: RISE's blur for the insertion curve's start: an 11 x 11 kernel of a Gaussian of sigma 5 pixels.
BLUR_KERNEL, BLUR_SIGMA = 11, 5.0
#: ROAD's percentages of pixels removed, as pytorch-grad-cam's ``ROADCombined`` averages them.
ROAD_PERCENTAGES = (10, 20, 30, 40, 50, 60, 70, 80, 90)
#: The standard deviation of the noise added to imputed pixels, on the [0, 1] picture (ROAD's default).
ROAD_NOISE = 0.01
#: ROAD's neighbour weights, ``((dy, dx), weight)``: 1/6 for the 4 direct neighbours, 1/12 for the diagonals.
ROAD_WEIGHTS = (
    ((-1, -1), 1 / 12),
    ((-1, 0), 1 / 6),
    ((-1, 1), 1 / 12),
    ((0, -1), 1 / 6),
    ((0, 1), 1 / 6),
    ((1, -1), 1 / 12),
    ((1, 0), 1 / 6),
    ((1, 1), 1 / 12),
)
#: Names of the two baselines in a :class:`Ranking`.
RANDOM, SOBEL = "random", "sobel"
#: The random baseline's resolution: a map of this many cells a side, resized onto the crop like any map,
#: so that it points at random PLACES, as coarse as the last stage's CAMs it is compared with (7 x 7 at
#: 224 px). Pure per-pixel noise would delete a sprinkle over the whole picture at every step instead.
RANDOM_CELLS = 7

Substrate = Literal["black", "mean"]
Kind = Literal["deletion", "insertion"]


@dataclass(frozen=True, eq=False)
class PixelCurve:
    """A deletion or an insertion curve: the target's probability as pixels change, most important first.

    Attributes:
        kind: ``"deletion"`` (pixels go to the substrate) or ``"insertion"`` (they come back onto it).
        target: the class watched, with its probability on the crop.
        pixels: (steps + 1,) int64, read-only: pixels changed before each score (0, step, 2 step... all).
        fractions: (steps + 1,) float32, read-only: the same as a fraction of the crop's pixels, 0 to 1.
        scores: (steps + 1,) float32, read-only: the target's probability at each step.
        auc: the area under ``scores`` over ``fractions`` (trapezoid rule), 0 to 1.
        step: pixels changed per step (the last step may change fewer).
        substrate: ``"black"`` or ``"mean"`` (deletion), ``"blur"`` (insertion).
        ties: the fraction of the crop's pixels whose map value equals another pixel's, ranked among
            themselves in reading order rather than by the map (0 for a map without equal values, 1 for a
            constant map).
        order: (H * W,) int64, read-only: the crop's pixels, row-major flat indices, most important first.
        input_image: the crop the model saw, RGB PIL image (H x W).
        substrate_image: deletion: what the pixels become (black or the mean colour); insertion: the
            blurred crop the curve starts from; RGB PIL image (H x W).
    """

    kind: Kind
    target: Prediction
    pixels: np.ndarray = field(repr=False)
    fractions: np.ndarray = field(repr=False)
    scores: np.ndarray = field(repr=False)
    auc: float
    step: int
    substrate: str
    ties: float
    order: np.ndarray = field(repr=False)
    input_image: Image.Image = field(repr=False)
    substrate_image: Image.Image = field(repr=False)

    def picture(self, index: int) -> Image.Image:
        """The picture scored at step ``index`` (0 to ``len(scores) - 1``): what the learner watches.

        It is the picture the model saw, rounded to 8 bits (the blur is computed in floats).

        Raises:
            IndexError: a step outside the curve.
        """
        count = int(self.pixels[index])
        crop = np.asarray(self.input_image.convert("RGB"))
        substrate = np.asarray(self.substrate_image.convert("RGB"))
        changed = np.zeros(crop.shape[0] * crop.shape[1], bool)
        changed[self.order[:count]] = True
        changed = changed.reshape(crop.shape[:2])[..., None]
        mixed = (
            np.where(changed, substrate, crop)
            if self.kind == "deletion"
            else np.where(changed, crop, substrate)
        )
        return Image.fromarray(mixed)


@dataclass(frozen=True, eq=False)
class DeletionInsertion:
    """The deletion and the insertion curve of one map on one picture.

    Attributes:
        deletion: the deletion curve (lower area: more faithful).
        insertion: the insertion curve (higher area: more faithful).
        target: the class watched.
        passes: forward passes made (both curves, plus one for the crop when run alone by
            :func:`deletion_insertion`; a :class:`Ranking`'s curves share one pass on the crop).
        ms: milliseconds the run took.
    """

    deletion: PixelCurve
    insertion: PixelCurve
    target: Prediction
    passes: int
    ms: float


@dataclass(frozen=True, eq=False)
class Road:
    """ROAD: the target's probability with a percentage of the pixels removed and imputed.

    Attributes:
        target: the class watched, with its probability on the crop.
        percentages: (P,) float32, read-only: the percentages of pixels removed.
        morf: (P,) float32, read-only: the probability with the most relevant pixels removed (lower is
            more faithful).
        lerf: (P,) float32, read-only: the probability with the least relevant pixels removed (higher is
            more faithful).
        morf_mean: the mean of ``morf``.
        lerf_mean: the mean of ``lerf``.
        combined: (lerf_mean - morf_mean) / 2, higher is better (pytorch-grad-cam's ``ROADCombined``).
        base_score: the probability on the untouched crop.
        noise: the imputation noise's standard deviation on the [0, 1] picture.
        seed: the seed of that noise.
        ties: as :attr:`PixelCurve.ties`.
        input_image: the crop, RGB PIL image (H x W).
        morf_pictures: (P,) the imputed pictures of ``morf``, RGB PIL images (H x W), as the model saw them
            up to 8-bit rounding.
        lerf_pictures: (P,) those of ``lerf``.
        passes: forward passes made (2 P, plus one for the crop).
        ms: milliseconds the whole run took (imputation included).
    """

    target: Prediction
    percentages: np.ndarray = field(repr=False)
    morf: np.ndarray = field(repr=False)
    lerf: np.ndarray = field(repr=False)
    morf_mean: float
    lerf_mean: float
    combined: float
    base_score: float
    noise: float
    seed: int
    ties: float
    input_image: Image.Image = field(repr=False)
    morf_pictures: tuple[Image.Image, ...] = field(repr=False)
    lerf_pictures: tuple[Image.Image, ...] = field(repr=False)
    passes: int
    ms: float


@dataclass(frozen=True)
class RankedMap:
    """One map's place in a :class:`Ranking`.

    Attributes:
        name: the name it was given (:data:`RANDOM` and :data:`SOBEL` for the baselines).
        deletion_auc: area under its deletion curve (lower is better).
        insertion_auc: area under its insertion curve (higher is better).
        deletion_rank: 1 for the lowest deletion area (equal areas share a rank).
        insertion_rank: 1 for the highest insertion area.
        rank: its place overall, 1 first: by the mean of the two ranks, then by ``insertion_auc -
            deletion_auc``, then by name.
        baseline: True for the random and the Sobel map.
        ties: as :attr:`PixelCurve.ties`.
    """

    name: str
    deletion_auc: float
    insertion_auc: float
    deletion_rank: int
    insertion_rank: int
    rank: int
    baseline: bool
    ties: float


@dataclass(frozen=True, eq=False)
class Ranking:
    """Maps ranked by their deletion and insertion areas on one picture, with the two baselines.

    Attributes:
        rows: one :class:`RankedMap` per map, best first.
        curves: ``{name: DeletionInsertion}``, every map's two curves.
        beats_random: the names whose deletion area is lower AND insertion area higher than the random
            map's, in ``rows`` order (empty without the random baseline).
        target: the class watched.
        step: pixels changed per step.
        substrate: the deletion's substrate (``"black"`` or ``"mean"``).
        passes: forward passes made.
        ms: milliseconds the whole run took.
    """

    rows: tuple[RankedMap, ...]
    curves: Mapping[str, DeletionInsertion] = field(repr=False)
    beats_random: tuple[str, ...]
    target: Prediction
    step: int
    substrate: str
    passes: int
    ms: float

    def row(self, name: str) -> RankedMap:
        """The row of the map called ``name`` (``KeyError`` if none)."""
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(name)


def pixel_order(saliency: np.ndarray) -> np.ndarray:
    """The pixels of a map, most important first: (h * w,) int64 row-major flat indices.

    Equal values keep reading order (a stable sort of the negated values), so the order is the same on
    every run and every machine.
    """
    flat = np.asarray(saliency, dtype=np.float32).ravel()
    return np.argsort(-flat, kind="stable")


def tied_fraction(saliency: np.ndarray, order: np.ndarray) -> float:
    """The fraction of pixels whose value equals another pixel's (see :attr:`PixelCurve.ties`)."""
    ranked = np.asarray(saliency).ravel()[order]
    same = ranked[1:] == ranked[:-1]
    tied = np.zeros(ranked.size, bool)
    tied[1:] |= same
    tied[:-1] |= same
    return float(tied.mean())


def random_map(shape: tuple[int, int] = (RANDOM_CELLS, RANDOM_CELLS), *, seed: int = 0) -> np.ndarray:
    """A map that explains nothing: uniform noise in [0, 1) from ``numpy``'s generator seeded by ``seed``.

    Args:
        shape: (h, w); the default :data:`RANDOM_CELLS` a side is the last stage's resolution.
        seed: the same seed gives the same map.

    Returns:
        (h, w) float32, read-only.
    """
    out = np.random.default_rng(seed).random(shape, dtype=np.float32)
    out.flags.writeable = False
    return out


def sobel_map(picture: Image.Image) -> np.ndarray:
    """A map that explains nothing about the class: the edges of the picture.

    The gradient magnitude (Sobel, borders reflected) of the grey picture, grey = 0.299 R + 0.587 G +
    0.114 B on [0, 1] (ITU-R 601, PIL's ``"L"`` without rounding).

    Args:
        picture: an RGB PIL image, usually the crop (``result.input_image``).

    Returns:
        (H, W) float32, read-only, the picture's size.
    """
    from scipy import ndimage

    rgb = np.asarray(picture.convert("RGB"), dtype=np.float64) / 255
    grey = rgb @ np.array([0.299, 0.587, 0.114])
    out = np.hypot(ndimage.sobel(grey, axis=0), ndimage.sobel(grey, axis=1)).astype(np.float32)
    out.flags.writeable = False
    return out


@runs_model
def curves_cost(
    backbone: Backbone, *, step: int = DEFAULT_STEP, maps: int = 1, batch_size: int | None = None
) -> Cost:
    """How many forward passes the deletion and insertion curves of ``maps`` maps take, and about how long.

    The first call on a backbone measures its speed with one batch (see
    :func:`backbone_viz.explain.occlusion.seconds_per_picture`); later calls only count. For
    :func:`rank_maps`, count the two baselines in ``maps``.

    Raises:
        PerturbationError: a step outside 1 to the crop's pixel count.
    """
    pixels = backbone.preprocessing.crop**2
    _check_step(step, pixels)
    passes = 1 + maps * 2 * math.ceil(pixels / step)
    return Cost(passes, passes * seconds_per_picture(backbone, batch_size=batch_size))


@runs_model
def deletion_insertion(
    backbone: Backbone,
    image: Image.Image,
    saliency: np.ndarray,
    target: int | str | None = None,
    *,
    step: int = DEFAULT_STEP,
    substrate: Substrate = "black",
    batch_size: int | None = None,
    head: Head | None = None,
    progress: Progress | None = None,
) -> DeletionInsertion:
    """The deletion and the insertion curve of one saliency map (the RISE protocol; module docstring).

    Args:
        backbone: a loaded backbone; it is only run.
        image: an RGB PIL image; the backbone's crop of it is changed.
        saliency: an (h, w) map of any resolution, larger values more important (resized bilinearly onto
            the crop).
        target: the class watched: None (the top-1 on the crop), a class index or a label. Give the
            class the map explains.
        step: pixels changed per step (1 to the crop's pixel count; :data:`DEFAULT_STEP`).
        substrate: what deleted pixels become: ``"black"`` (RGB 0, 0, 0) or ``"mean"`` (the
            preprocessing's mean colour, zero after normalisation, as RISE's code).
        batch_size: pictures per forward pass (default: 2 on a CPU, 64 on a GPU).
        head: a head from :func:`backbone_viz.fit_head` to read instead of the model's own.
        progress: called as ``progress(done, total)`` after each batch, counting pictures through the
            model; an exception it raises stops the work.

    Returns:
        A frozen :class:`DeletionInsertion`.

    Raises:
        PerturbationError: a map that is not (h, w) or has non-finite values, a step out of range.
        BackboneVizError: an unknown target class.
        HeadError: a head made for another backbone.
    """
    start = time.perf_counter()
    pixels = backbone.preprocessing.crop**2
    _check_step(step, pixels)
    _check_substrate(substrate)
    base = Base.of(backbone, image, target, head)
    on_crop = saliency_on_crop(saliency, tuple(base.rgb.shape[1:]))
    tally = Tally(1 + 2 * math.ceil(pixels / step), progress)
    tally.add(1)
    pair = _pair(backbone, head, base, on_crop, step, substrate, batch_size, tally, _blurred(base))
    return DeletionInsertion(*pair, base.target, tally.done, 1000 * (time.perf_counter() - start))


@runs_model
def rank_maps(
    backbone: Backbone,
    image: Image.Image,
    maps: Mapping[str, np.ndarray],
    target: int | str | None = None,
    *,
    baselines: bool = True,
    seed: int = 0,
    step: int = DEFAULT_STEP,
    substrate: Substrate = "black",
    batch_size: int | None = None,
    head: Head | None = None,
    progress: Progress | None = None,
) -> Ranking:
    """Ranks saliency maps of one picture by their deletion and insertion areas, with two baselines.

    Args:
        backbone: a loaded backbone; it is only run.
        image: an RGB PIL image.
        maps: ``{name: (h, w) map}``, each of any resolution (Grad-CAM's, occlusion's ``pixel_map``...).
        target: the class the maps explain: None (the top-1), a class index or a label.
        baselines: add :func:`random_map` (seeded by ``seed``) as :data:`RANDOM` and :func:`sobel_map` of
            the crop as :data:`SOBEL`.
        seed: the random baseline's seed.
        step, substrate, batch_size, head, progress: as in :func:`deletion_insertion`; ``progress``
            counts the pictures of every map.

    Returns:
        A frozen :class:`Ranking`.

    Raises:
        PerturbationError: a map that is not (h, w) or has non-finite values, a step out of range.
        BackboneVizError: an unknown target class.
        ValueError: no maps at all, or a map named like a baseline.
    """
    start = time.perf_counter()
    pixels = backbone.preprocessing.crop**2
    _check_step(step, pixels)
    _check_substrate(substrate)
    clash = {RANDOM, SOBEL} & set(maps) if baselines else set()
    if clash:
        raise ValueError(f"{sorted(clash)} name the baselines; give the maps other names")
    if not maps and not baselines:
        raise ValueError("no maps to rank")
    base = Base.of(backbone, image, target, head)
    shape = tuple(base.rgb.shape[1:])
    named = {name: saliency_on_crop(m, shape) for name, m in maps.items()}  # every map checked first
    if baselines:
        named[RANDOM] = saliency_on_crop(random_map(seed=seed), shape)
        named[SOBEL] = sobel_map(base.crop)
    tally = Tally(1 + len(named) * 2 * math.ceil(pixels / step), progress)
    tally.add(1)
    blurred = _blurred(base)
    curves = {}
    for name, on_crop in named.items():
        began, done = time.perf_counter(), tally.done
        pair = _pair(backbone, head, base, on_crop, step, substrate, batch_size, tally, blurred)
        ms = 1000 * (time.perf_counter() - began)
        curves[name] = DeletionInsertion(*pair, base.target, tally.done - done, ms)
    deletion = {n: c.deletion.auc for n, c in curves.items()}
    insertion = {n: c.insertion.auc for n, c in curves.items()}
    del_rank = _competition_ranks(deletion, lower_first=True)
    ins_rank = _competition_ranks(insertion, lower_first=False)
    ordered = sorted(
        curves, key=lambda n: ((del_rank[n] + ins_rank[n]) / 2, -(insertion[n] - deletion[n]), n)
    )
    rows = tuple(
        RankedMap(
            name=n,
            deletion_auc=deletion[n],
            insertion_auc=insertion[n],
            deletion_rank=del_rank[n],
            insertion_rank=ins_rank[n],
            rank=place,
            baseline=baselines and n in (RANDOM, SOBEL),
            ties=curves[n].deletion.ties,
        )
        for place, n in enumerate(ordered, start=1)
    )
    beats = ()
    if baselines:
        beats = tuple(
            r.name
            for r in rows
            if r.name != RANDOM and r.deletion_auc < deletion[RANDOM] and r.insertion_auc > insertion[RANDOM]
        )
    return Ranking(
        rows=rows,
        curves=MappingProxyType(curves),
        beats_random=beats,
        target=base.target,
        step=step,
        substrate=substrate,
        passes=tally.done,
        ms=1000 * (time.perf_counter() - start),
    )


@runs_model
def road(
    backbone: Backbone,
    image: Image.Image,
    saliency: np.ndarray,
    target: int | str | None = None,
    *,
    percentages: Sequence[float] = ROAD_PERCENTAGES,
    noise: float = ROAD_NOISE,
    seed: int = 0,
    batch_size: int | None = None,
    head: Head | None = None,
    progress: Progress | None = None,
) -> Road:
    """ROAD's MoRF and LeRF probabilities of one saliency map (Rong et al. 2022; module docstring).

    At each percentage p, the int(H * W * p / 100) most relevant (MoRF) or least relevant (LeRF) pixels of
    the crop are removed and filled by :func:`noisy_linear_imputation`; each picture is then scored.

    Args:
        backbone: a loaded backbone; it is only run.
        image: an RGB PIL image.
        saliency: an (h, w) map of any resolution (resized bilinearly onto the crop).
        target: the class watched: None (the top-1 on the crop), a class index or a label.
        percentages: percentages of pixels removed, each above 0 and below 100.
        noise: the imputation noise's standard deviation on the [0, 1] picture (0 for none).
        seed: seeds the noise; the same seed gives the same pictures.
        batch_size: pictures per forward pass (default: 2 on a CPU, 64 on a GPU).
        head: a head from :func:`backbone_viz.fit_head` to read instead of the model's own.
        progress: called as ``progress(done, total)`` after each batch, counting pictures imputed and
            scored (2 per percentage, plus the crop).

    Returns:
        A frozen :class:`Road`.

    Raises:
        PerturbationError: a map that is not (h, w) or has non-finite values; no percentages, or one
            outside (0, 100); a negative noise.
        BackboneVizError: an unknown target class.
    """
    start = time.perf_counter()
    levels = [float(p) for p in percentages]
    if not levels or not all(0 < p < 100 for p in levels):
        raise PerturbationError(
            f"ROAD removes a percentage of the pixels above 0 and below 100, not {levels}.",
            "Pick percentages such as 10, 20, ..., 90.",
        )
    if not noise >= 0:
        raise PerturbationError(
            f"A noise of {noise} is not a standard deviation.", "Pick 0 or more, e.g. 0.01."
        )
    base = Base.of(backbone, image, target, head)
    shape = tuple(base.rgb.shape[1:])
    on_crop = saliency_on_crop(saliency, shape)
    order = pixel_order(on_crop)
    total = order.size
    rng = np.random.default_rng(seed)
    picture = base.rgb.numpy().astype(np.float64)
    plans = []
    for mode in ("morf", "lerf"):
        for p in levels:
            count = int(total * p / 100)
            removed = np.zeros(total, bool)
            removed[order[:count] if mode == "morf" else order[total - count :]] = True
            plans.append(removed.reshape(shape))
    tally = Tally(1 + len(plans), progress)
    tally.add(1)
    pictures: list[torch.Tensor] = []

    def make(first: int, stop: int) -> torch.Tensor:
        made = [
            torch.from_numpy(noisy_linear_imputation(picture, plans[k], noise=noise, seed=rng))
            for k in range(first, stop)
        ]
        pictures.extend(made)
        return torch.stack(made)

    probs, _ = score_batches(backbone, head, base.index, make, len(plans), batch_size=batch_size, tally=tally)
    probs = probs.astype(np.float32)
    n = len(levels)
    morf, lerf = _frozen(probs[:n].copy()), _frozen(probs[n:].copy())
    images = tuple(_to_image(p) for p in pictures)
    return Road(
        target=base.target,
        percentages=_frozen(np.array(levels, np.float32)),
        morf=morf,
        lerf=lerf,
        morf_mean=float(morf.mean()),
        lerf_mean=float(lerf.mean()),
        combined=float((lerf.mean() - morf.mean()) / 2),
        base_score=base.probability,
        noise=float(noise),
        seed=seed,
        ties=tied_fraction(on_crop, order),
        input_image=base.crop,
        morf_pictures=images[:n],
        lerf_pictures=images[n:],
        passes=tally.done,
        ms=1000 * (time.perf_counter() - start),
    )


def noisy_linear_imputation(
    picture: np.ndarray,
    removed: np.ndarray,
    *,
    noise: float = ROAD_NOISE,
    seed: int | np.random.Generator = 0,
) -> np.ndarray:
    """ROAD's noisy linear imputation: each removed pixel becomes the weighted mean of its 8 neighbours.

    All removed pixels are solved together (one sparse linear system, ``scipy.sparse.linalg.spsolve``,
    the 3 channels as 3 right-hand sides): for each removed pixel i, ``sum_j w_j (x_j - x_i) = 0`` over its
    neighbours j inside the picture, with :data:`ROAD_WEIGHTS` (1/6 direct, 1/12 diagonal); known
    neighbours are constants. A neighbour outside the picture is left out and the others' weights
    renormalised, as in ROAD's ``NoisyLinearImputer``. Gaussian noise of standard deviation ``noise`` is
    then added to the removed pixels only. With ``noise=0`` a constant picture comes back exactly, and
    so does a linear one (a plane in each channel) wherever no removed pixel touches the border.

    Args:
        picture: (C, H, W) float values, e.g. the crop in [0, 1].
        removed: (H, W) bool, True where a pixel is removed; not every pixel.
        noise: the noise's standard deviation (0 for none).
        seed: an int seed or a ``numpy`` generator to draw the noise from.

    Returns:
        (C, H, W) float32, the known pixels unchanged.

    Raises:
        ValueError: shapes that do not match, or every pixel removed.
    """
    from scipy import sparse
    from scipy.sparse.linalg import spsolve

    picture = np.asarray(picture, dtype=np.float64)
    removed = np.asarray(removed, dtype=bool)
    if picture.ndim != 3 or removed.shape != picture.shape[1:]:
        raise ValueError(
            f"picture (C, H, W) and removed (H, W) do not match: {picture.shape}, {removed.shape}"
        )
    if removed.all():
        raise ValueError("every pixel is removed: nothing to impute from")
    out = picture.reshape(picture.shape[0], -1).copy()
    unknown = np.flatnonzero(removed)
    if unknown.size == 0:
        return out.reshape(picture.shape).astype(np.float32)
    height, width = removed.shape
    flat_removed = removed.ravel()
    variable = np.full(height * width, -1)
    variable[unknown] = np.arange(unknown.size)
    rows, cols = unknown // width, unknown % width
    diagonal = np.zeros(unknown.size)
    rhs = np.zeros((unknown.size, picture.shape[0]))
    entries_i, entries_j, entries_w = [], [], []
    for (dy, dx), weight in ROAD_WEIGHTS:
        r, c = rows + dy, cols + dx
        inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
        i = np.flatnonzero(inside)
        j = r[inside] * width + c[inside]
        diagonal[i] += weight
        gone = flat_removed[j]
        entries_i.append(i[gone])
        entries_j.append(variable[j[gone]])
        entries_w.append(np.full(int(gone.sum()), -weight))
        np.add.at(rhs, i[~gone], weight * out[:, j[~gone]].T)
    system = sparse.csc_matrix(
        (np.concatenate(entries_w), (np.concatenate(entries_i), np.concatenate(entries_j))),
        shape=(unknown.size, unknown.size),
    ) + sparse.diags(diagonal, format="csc")
    solved = spsolve(system, rhs).reshape(unknown.size, -1)
    if noise:
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        solved = solved + noise * rng.standard_normal(solved.shape)
    out[:, unknown] = solved.T
    return out.reshape(picture.shape).astype(np.float32)


def saliency_on_crop(saliency: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A saliency map checked and resized bilinearly onto the crop: (H, W) float32.

    Raises:
        PerturbationError: not a 2-D array (the message gives its shape), empty, or non-finite values.
    """
    if isinstance(saliency, torch.Tensor):
        saliency = saliency.detach().cpu().numpy()
    array = np.asarray(saliency)
    if array.ndim != 2 or array.size == 0:
        raise PerturbationError(
            f"A saliency map must be one number per place, an (h, w) array; this one has shape {array.shape}.",
            "Pass one map, e.g. result.gradcam[layer]; sum a (3, H, W) attribution over its colours first.",
        )
    if not np.issubdtype(array.dtype, np.number) or not np.isfinite(array).all():
        raise PerturbationError(
            "This saliency map has values that are not finite numbers (NaN or infinity).",
            "Make the map again; its pixels cannot be ranked.",
        )
    if array.shape == shape:
        return array.astype(np.float32)
    return upsample(array, shape)


def _pair(
    backbone: Backbone,
    head: Head | None,
    base: Base,
    on_crop: np.ndarray,
    step: int,
    substrate: Substrate,
    batch_size: int | None,
    tally: Tally,
    blurred: torch.Tensor,
) -> tuple[PixelCurve, PixelCurve]:
    """The deletion and insertion curves of one map already on the crop."""
    order = pixel_order(on_crop)
    order.flags.writeable = False
    ties = tied_fraction(on_crop, order)
    black = torch.zeros_like(base.rgb) if substrate == "black" else base.mean.expand_as(base.rgb).clone()
    deletion = _curve(
        "deletion", backbone, head, base, order, step, black, substrate, ties, batch_size, tally
    )
    insertion = _curve(
        "insertion", backbone, head, base, order, step, blurred, "blur", ties, batch_size, tally
    )
    return deletion, insertion


def _curve(
    kind: Kind,
    backbone: Backbone,
    head: Head | None,
    base: Base,
    order: np.ndarray,
    step: int,
    substrate: torch.Tensor,
    substrate_name: str,
    ties: float,
    batch_size: int | None,
    tally: Tally,
) -> PixelCurve:
    """One curve: the crop's pixels moved ``step`` at a time from its start to its finish picture.

    The score of the untouched crop (deletion's first point, insertion's last) is the base pass's, not
    computed again.
    """
    total = order.size
    counts = np.minimum(np.arange(math.ceil(total / step) + 1) * step, total)
    rank = torch.empty(total, dtype=torch.long)
    rank[torch.from_numpy(order.copy())] = torch.arange(total)
    rank = rank.view(base.rgb.shape[1:])
    start, finish = (base.rgb, substrate) if kind == "deletion" else (substrate, base.rgb)
    scored = counts[1:] if kind == "deletion" else counts[:-1]

    def make(first: int, stop: int) -> torch.Tensor:
        changed = rank[None] < torch.from_numpy(scored[first:stop])[:, None, None]
        return torch.where(changed[:, None], finish, start)

    probs, _ = score_batches(
        backbone, head, base.index, make, scored.size, batch_size=batch_size, tally=tally
    )
    scores = np.concatenate(
        [[base.probability], probs] if kind == "deletion" else [probs, [base.probability]]
    )
    fractions = counts / total
    auc = float(np.sum((scores[1:] + scores[:-1]) / 2 * np.diff(fractions)))
    return PixelCurve(
        kind=kind,
        target=base.target,
        pixels=_frozen(counts.astype(np.int64)),
        fractions=_frozen(fractions.astype(np.float32)),
        scores=_frozen(scores.astype(np.float32)),
        auc=auc,
        step=step,
        substrate=substrate_name,
        ties=ties,
        order=order,
        input_image=base.crop,
        substrate_image=_to_image(substrate),
    )


def blur_kernel() -> torch.Tensor:
    """RISE's ``gkern(11, 5)``: a delta at the centre of an 11 x 11 grid smoothed by scipy's Gaussian
    filter (sigma 5, borders reflected), (11, 11) float32 summing to 1."""
    from scipy.ndimage import gaussian_filter

    delta = np.zeros((BLUR_KERNEL, BLUR_KERNEL))
    delta[BLUR_KERNEL // 2, BLUR_KERNEL // 2] = 1
    return torch.from_numpy(gaussian_filter(delta, BLUR_SIGMA).astype(np.float32))


def _blurred(base: Base) -> torch.Tensor:
    """The insertion curve's start: RISE's blur of the NORMALISED crop with zero padding, as (3, H, W) in
    [0, 1]. Blurring ``x - mean`` with zero padding and adding ``mean`` back is the same picture (the
    kernel sums to 1 and the normalisation is affine per channel)."""
    kernel = blur_kernel().expand(3, 1, BLUR_KERNEL, BLUR_KERNEL)
    centred = (base.rgb - base.mean)[None]
    return F.conv2d(centred, kernel, padding=BLUR_KERNEL // 2, groups=3)[0] + base.mean


def _competition_ranks(values: Mapping[str, float], *, lower_first: bool) -> dict[str, int]:
    """1 for the best value; equal values share the better rank ("1224" ranking)."""
    sign = 1 if lower_first else -1
    return {n: 1 + sum(sign * w < sign * v for w in values.values()) for n, v in values.items()}


def _check_step(step: int, pixels: int) -> None:
    if not 1 <= step <= pixels:
        raise PerturbationError(
            f"A step of {step} pixels does not fit a picture of {pixels} pixels.",
            f"Pick from 1 to {pixels} pixels per step.",
        )


def _check_substrate(substrate: str) -> None:
    if substrate not in ("black", "mean"):
        raise ValueError(f"substrate must be 'black' or 'mean', not {substrate!r}")


def _to_image(rgb: torch.Tensor) -> Image.Image:
    """A (3, H, W) picture in [0, 1] as an 8-bit RGB PIL image (values outside [0, 1] clipped)."""
    array = (rgb.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(np.ascontiguousarray(array))


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array

"""Transfer learning: a new linear head fitted on the frozen backbone's pooled vectors.

The pooled vectors of a few labelled photos (and of mirrored, cropped and colour-jittered copies) train
a new linear head in seconds on a CPU; :func:`backbone_viz.analyze` accepts it as ``head=``. Nothing
here changes the backbone: features come from ``torch.no_grad()`` passes through its traced graph.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from backbone_viz.core.backbones import Backbone
from backbone_viz.core.runs import runs_model
from backbone_viz.errors import HeadError

__all__ = [
    "BATCH",
    "MAX_CLASSES",
    "MAX_IMAGES_PER_CLASS",
    "RANDOM_CROPS",
    "LinearHead",
    "LooPrediction",
    "fit_head",
]

#: Most classes a new head may have: more would need more photos than a student uploads in a lesson.
MAX_CLASSES = 10
#: Most photos per class: with augmentation each photo costs 5 forward passes on a shared CPU.
MAX_IMAGES_PER_CLASS = 20
#: Views made from each photo when augmenting: the photo, its mirror image and 3 random crops.
RANDOM_CROPS = 3
#: Images per forward pass while extracting features: bounds the peak memory of the intermediate maps.
#: Only the pooled vector is kept, so a batch no longer holds every listed layer's activation (which
#: took about 30 MB per image for ResNet-50).
BATCH = 16


@dataclass(frozen=True)
class LooPrediction:
    """What a head fitted without one photo (and without its augmented copies) said about that photo.

    Attributes:
        label: the photo's true class.
        index: the photo's position within its class, as given to :func:`fit_head`.
        predicted: the class the held-out head chose.
        probability: that head's probability for ``predicted``.
    """

    label: str
    index: int
    predicted: str
    probability: float

    @property
    def correct(self) -> bool:
        """Whether the held-out head got the photo's class right."""
        return self.predicted == self.label


@dataclass(frozen=True, eq=False)
class LinearHead:
    """A linear classifier on a backbone's pooled vector; pass it to ``analyze(..., head=...)``.

    Attributes:
        name: display name, ``"new head: cat / coffee / person"``.
        categories: the K class labels, in the order they were given.
        weight: (K, D) float32 CPU tensor, no grad.
        bias: (K,) float32 CPU tensor, no grad.
        backbone: spec name of the backbone whose features it reads (``"efficientnet_lite0"``).
        weights: that backbone's weights (``"pretrained"``, ``"untrained"`` or a checkpoint path).
        n_images: (K,) number of photos per class it was fitted on (before augmentation).
        loo_accuracy: share of photos the head classified correctly when fitted without them.
        loo_predictions: one :class:`LooPrediction` per photo, class by class in the order given.
        fit_seconds: wall time of the whole fit: augmentation, feature extraction, leave-one-out fits
            and the final fit.
    """

    name: str
    categories: tuple[str, ...]
    weight: torch.Tensor = field(repr=False)
    bias: torch.Tensor = field(repr=False)
    backbone: str
    weights: str
    n_images: tuple[int, ...]
    loo_accuracy: float
    loo_predictions: tuple[LooPrediction, ...] = field(repr=False)
    fit_seconds: float

    def logits(self, pooled: torch.Tensor) -> torch.Tensor:
        """Class scores of pooled vectors, differentiable with respect to ``pooled``.

        Args:
            pooled: (N, D) the backbone's pooled vectors, on any device.

        Returns:
            (N, K) ``pooled @ weight.T + bias``, on the device and in the dtype of ``pooled``.

        Raises:
            HeadError: ``pooled`` does not have the D features of the backbone the head was fitted on.
        """
        if pooled.ndim != 2 or pooled.shape[1] != self.weight.shape[1]:
            raise HeadError(
                f"The head {self.name!r} reads {self.weight.shape[1]} features from {self.backbone}, "
                f"but got a vector of shape {tuple(pooled.shape)}.",
                f"Fit a new head on this backbone, or switch back to {self.backbone}.",
            )
        weight = self.weight.to(device=pooled.device, dtype=pooled.dtype)
        bias = self.bias.to(device=pooled.device, dtype=pooled.dtype)
        return pooled @ weight.T + bias

    def fits(self, backbone: Backbone) -> bool:
        """Whether this head reads ``backbone``'s features: the spec and weights it was fitted on.

        The feature width alone would not do: another backbone, or the same one with other weights,
        can have as many features and would give meaningless scores without any error.
        """
        return (self.backbone, self.weights) == (backbone.spec.name, backbone.weights)


@runs_model
def fit_head(
    bb: Backbone,
    examples: Mapping[str, Sequence[Image.Image]],
    *,
    augment: bool = True,
    seed: int = 0,
) -> LinearHead:
    """Fits a new linear head on the frozen backbone's pooled vectors of a few labelled photos.

    Each photo goes through the backbone's own crop; with ``augment`` it also gives its mirror image and
    ``RANDOM_CROPS`` random crops (scale 0.6-1.0 of the photo, random mirror, small brightness, contrast
    and saturation changes), so 3 photos per class give 15 vectors. All views go through the backbone in
    a few batched ``no_grad`` forward passes; only the head is learned.

    The head is scikit-learn's multinomial logistic regression (L-BFGS) on standardised features: a
    well-tested convex solver with a unique optimum, no learning rate or epoch count to tune, and it
    converges in milliseconds on ~50 vectors. The standardisation is folded into the weights, so that
    :meth:`LinearHead.logits` is one affine map of the raw pooled vector (and per-channel contributions
    stay exact).

    Leave-one-out accuracy is measured honestly: for each photo, a head is fitted without that photo
    AND without its augmented copies (which would otherwise leak the answer) and asked about the photo.

    Args:
        bb: a loaded backbone; it is not modified.
        examples: ``{label: photos}`` with 2 to ``MAX_CLASSES`` labels and 2 to ``MAX_IMAGES_PER_CLASS``
            RGB photos each; labels are stripped of surrounding spaces.
        augment: add mirrored, cropped and colour-jittered copies of each photo.
        seed: seeds the random crops and colour changes; the same inputs and seed give the same head.

    Returns:
        A frozen :class:`LinearHead` with K = number of labels and D = length of the pooled vector.

    Raises:
        HeadError: fewer than 2 or more than ``MAX_CLASSES`` classes, an empty or repeated label, or a
            class with fewer than 2 or more than ``MAX_IMAGES_PER_CLASS`` photos.
        TypeError: a photo that is not a PIL image.
    """
    start = time.perf_counter()
    labels, photos = _check_examples(examples)
    crop = bb.preprocessing.crop
    views: list[Image.Image] = []
    groups: list[int] = []  # which photo each view comes from
    originals: list[int] = []  # the view index of each photo itself
    positions: list[tuple[int, int]] = []  # (class, index within class) of each photo
    targets: list[int] = []
    for k, class_photos in enumerate(photos):
        for i, photo in enumerate(class_photos):
            # One generator per photo: adding a photo does not change the others' augmentations.
            rng = np.random.default_rng([seed, k, i])
            photo_views = _views(bb, photo, crop, rng) if augment else [bb.crop(photo)]
            originals.append(len(views))
            positions.append((k, i))
            views += photo_views
            groups += [len(originals) - 1] * len(photo_views)
            targets += [k] * len(photo_views)
    x = _pooled_features(bb, views)
    y = np.asarray(targets)
    group = np.asarray(groups)

    loo = []
    for g, view in enumerate(originals):
        keep = group != g
        w, b = _fit_affine(x[keep], y[keep], len(labels), seed=seed)
        probs = _softmax(x[view] @ w.T + b)
        p = int(np.argmax(probs))
        k, i = positions[g]
        loo.append(LooPrediction(labels[k], i, labels[p], float(probs[p])))
    w, b = _fit_affine(x, y, len(labels), seed=seed)
    accuracy = sum(p.correct for p in loo) / len(loo)
    return LinearHead(
        name="new head: " + " / ".join(labels),
        categories=tuple(labels),
        weight=torch.from_numpy(w.astype(np.float32)),
        bias=torch.from_numpy(b.astype(np.float32)),
        backbone=bb.spec.name,
        weights=bb.weights,
        n_images=tuple(len(p) for p in photos),
        loo_accuracy=float(accuracy),
        loo_predictions=tuple(loo),
        fit_seconds=time.perf_counter() - start,
    )


def _check_examples(examples: Mapping[str, Sequence[Image.Image]]) -> tuple[list[str], list[list[Image.Image]]]:
    """Validates the labelled photos; returns stripped labels and the photos per label, in order."""
    if not isinstance(examples, Mapping):
        raise TypeError(f"examples must be a mapping of label -> photos, not {type(examples).__name__}")
    labels: list[str] = []
    photos: list[list[Image.Image]] = []
    for raw, class_photos in examples.items():
        if not isinstance(raw, str):
            raise TypeError(f"labels must be str, not {type(raw).__name__}")
        label = raw.strip()
        if not label:
            raise HeadError("One class has no name.", "Give every class a short name, such as 'cat'.")
        # analyze() finds a target label case-insensitively, so 'Cat' and 'cat' would be one class.
        if label.lower() in (seen.lower() for seen in labels):
            raise HeadError(
                f"Two classes are called {label!r}.", "Give each class its own name, or merge their photos."
            )
        class_photos = list(class_photos)
        for photo in class_photos:
            if not isinstance(photo, Image.Image):
                raise TypeError(f"photos must be PIL images, not {type(photo).__name__}")
        if len(class_photos) < 2:
            raise HeadError(
                f"The class {label!r} has {len(class_photos) or 'no'} photo{'s' if not class_photos else ''};"
                " it needs at least 2.",
                "Add photos: each one is left out in turn to test the head, so it must learn from the others.",
            )
        if len(class_photos) > MAX_IMAGES_PER_CLASS:
            raise HeadError(
                f"The class {label!r} has {len(class_photos)} photos; at most {MAX_IMAGES_PER_CLASS} are used.",
                "Keep the most typical ones: a linear head learns from a handful.",
            )
        labels.append(label)
        photos.append(class_photos)
    if len(labels) < 2:
        raise HeadError(
            f"A head needs at least 2 classes to choose between; there {'is' if labels else 'are'} "
            f"{len(labels) or 'none'}.",
            "Add another class with a few photos.",
        )
    if len(labels) > MAX_CLASSES:
        raise HeadError(
            f"There are {len(labels)} classes; at most {MAX_CLASSES} can be fitted here.",
            "Remove some classes, or merge similar ones.",
        )
    return labels, photos


def _views(bb: Backbone, photo: Image.Image, size: int, rng: np.random.Generator) -> list[Image.Image]:
    """The photo as the backbone crops it, its mirror image, and ``RANDOM_CROPS`` jittered random crops.

    All views are ``size x size`` RGB images. The randomness comes only from ``rng`` (never torch's or
    numpy's global generators, which other sessions share).
    """
    photo = photo.convert("RGB")
    centre = bb.crop(photo)
    views = [centre, TF.hflip(centre)]
    interpolation = TF.InterpolationMode(bb.preprocessing.interpolation)
    for _ in range(RANDOM_CROPS):
        top, left, h, w = _random_box(photo.height, photo.width, rng)
        view = TF.resized_crop(photo, top, left, h, w, [size, size], interpolation=interpolation, antialias=True)
        if rng.random() < 0.5:
            view = TF.hflip(view)
        brightness, contrast, saturation = rng.uniform(0.85, 1.15, size=3)
        view = TF.adjust_brightness(view, float(brightness))
        view = TF.adjust_contrast(view, float(contrast))
        views.append(TF.adjust_saturation(view, float(saturation)))
    return views


def _random_box(
    height: int, width: int, rng: np.random.Generator, *, scale: tuple[float, float] = (0.6, 1.0)
) -> tuple[int, int, int, int]:
    """A random crop box ``(top, left, h, w)`` covering ``scale`` of the photo's area, aspect 3:4 to 4:3.

    The same sampling as torchvision's ``RandomResizedCrop.get_params``, drawn from ``rng``.
    """
    area = height * width
    log_ratio = (math.log(3 / 4), math.log(4 / 3))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        ratio = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target * ratio))
        h = round(math.sqrt(target / ratio))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    # A very long or tall photo: fall back to the largest centred square.
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side, side


def _pooled_features(bb: Backbone, views: Sequence[Image.Image]) -> np.ndarray:
    """(N, D) float64 pooled vectors of the views, ``BATCH`` images per forward pass, without grad."""
    pooled = bb.spec.pooled
    chunks = []
    with torch.no_grad():
        for start in range(0, len(views), BATCH):
            batch = torch.cat([bb.to_tensor(v) for v in views[start : start + BATCH]])
            # Asking for the pooled vector alone: the pass stops there and keeps no layer's maps.
            chunks.append(bb.extract(batch, [pooled])[pooled].to("cpu", torch.float64))
    return torch.cat(chunks).numpy()


def _fit_affine(x: np.ndarray, y: np.ndarray, k: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Fits standardisation + multinomial logistic regression; returns it as one affine map.

    Args:
        x: (N, D) pooled vectors.
        y: (N,) class indices in ``range(k)``; every class must be present.
        k: number of classes K.

    Returns:
        ``(weight (K, D), bias (K,))`` float64 with ``logits = x @ weight.T + bias``.
    """
    scaler = StandardScaler().fit(x)
    model = LogisticRegression(C=1.0, max_iter=1000, random_state=seed).fit(scaler.transform(x), y)
    coef, intercept = model.coef_, model.intercept_
    if coef.shape[0] == 1:
        # Two classes: scikit-learn keeps one score s for class 1. Scores (-s/2, s/2) give the same
        # softmax probabilities, sigmoid(s), with one weight row per class as LinearHead needs.
        coef = np.concatenate([-coef / 2, coef / 2])
        intercept = np.concatenate([-intercept / 2, intercept / 2])
    # Fold z = (x - mean) / scale into the weights: W z + c = (W / scale) x + (c - W (mean / scale)).
    weight = coef / scaler.scale_
    bias = intercept - weight @ scaler.mean_
    return weight, bias


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()

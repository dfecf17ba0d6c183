"""Loading a dense model through the backbones' weights path, and running it on a picture.

``load_dense`` builds torchvision's model untrained and, for ``"pretrained"``, loads its file from the
torch cache, the mirror or torchvision's address (:mod:`backbone_viz.files.weights`: SHA-256 checked,
progress reported, one download shared by every session). The model is put in eval mode and frozen once,
here, before anyone else sees it; afterwards nothing changes it, so several sessions can run it at the
same time (no hooks, no state kept between calls). ``detect_objects`` returns a frozen
:class:`DenseResult` of CPU numpy arrays.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch import nn

from backbone_viz.core.checkpoints import check_fit, read_checkpoint
from backbone_viz.core.device import resolve_device, use_full_float32
from backbone_viz.core.runs import runs_model
from backbone_viz.dense.specs import DenseKind, DenseSpec, get_dense_spec
from backbone_viz.errors import WeightsError
from backbone_viz.files import weights as weights_mod
from backbone_viz.files.sizes import describe_size
from backbone_viz.files.weights import ProgressCallback

__all__ = [
    "PALETTE",
    "DenseModel",
    "DenseResult",
    "detect_objects",
    "draw_result",
    "load_dense",
    "missing_weights_message",
    "model_input",
]

#: Seed of the random initialisation behind ``weights="untrained"`` (as the backbones').
UNTRAINED_SEED = 0

#: At most this many objects are kept from one picture (torchvision's own ``detections_per_img``).
MAX_OBJECTS = 100


@dataclass(frozen=True, eq=False)
class DenseModel:
    """A loaded detector or segmenter. Shared by all sessions: treat every attribute as read-only.

    Attributes:
        spec: its description.
        model: the eval-mode torchvision model; parameters do not require grad.
        weights: ``"pretrained"``, ``"untrained"`` or the checkpoint path it was loaded from.
        categories: the class names of its head (COCO's 91 or VOC's 21 entries).
        device: where it runs.
    """

    spec: DenseSpec
    model: nn.Module = field(repr=False)
    weights: str
    categories: tuple[str, ...]
    device: torch.device

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def trained(self) -> bool:
        """Whether it holds trained weights: an untrained model's boxes and classes mean nothing."""
        return self.weights != "untrained"


@dataclass(frozen=True, eq=False)
class DenseResult:
    """What a dense model found on one picture. Arrays are CPU numpy; coordinates are the picture's pixels.

    Attributes:
        model: the dense model's name.
        kind: its kind (``"detector"``, ``"instance segmenter"``, ``"semantic segmenter"``).
        trained: False for an untrained model, whose output is noise: never show it as a finding.
        boxes: (n, 4) float32 ``x0, y0, x1, y1`` of each object scoring at least ``threshold``, best first;
            (0, 4) for a semantic segmenter.
        scores: (n,) float32 in [0, 1].
        labels: the n class names.
        label_ids: (n,) int64 indices into ``categories``.
        masks: (n, h, w) bool, each object's mask (the mask head's probability >= 0.5), for an instance
            segmenter, else ``None``. (h, w) is the picture shrunk to the detector's input size
            (:attr:`mask_size`; the picture's own size when it is that small already): a 40-megapixel photo
            would need gigabytes of masks at full size. Scale by ``image_size / mask_size`` to draw.
        class_map: (H, W) uint8, the class index of every pixel, for a semantic segmenter; else ``None``.
        legend: ``(class index, name, fraction of the picture)`` of every class in ``class_map``, largest
            first (background included); ``()`` for detectors.
        categories: every class name of the head.
        threshold: the score a box needed to be kept.
        image_size: ``(W, H)`` of the picture.
        input_size: ``(h, w)`` of the tensor the model saw after its own resize.
        ms: wall time of the forward pass and its decoding.
    """

    model: str
    kind: DenseKind
    trained: bool
    boxes: np.ndarray
    scores: np.ndarray
    labels: tuple[str, ...]
    label_ids: np.ndarray
    masks: np.ndarray | None
    class_map: np.ndarray | None
    legend: tuple[tuple[int, str, float], ...]
    categories: tuple[str, ...]
    threshold: float
    image_size: tuple[int, int]
    input_size: tuple[int, int]
    ms: float

    @property
    def mask_size(self) -> tuple[int, int] | None:
        """``(w, h)`` of :attr:`masks`, or ``None`` without masks."""
        return None if self.masks is None else (int(self.masks.shape[2]), int(self.masks.shape[1]))

    def __len__(self) -> int:
        """The number of objects found (0 for a semantic segmenter)."""
        return len(self.labels)


def missing_weights_message(spec: DenseSpec) -> str:
    """One sentence for a learner: which file a dense model needs, how big, and the command that gets it."""
    wf = spec.weights_file
    return (
        f"{spec.full_title} needs its trained weights, {wf.filename} ({describe_size(wf.size_bytes)}); "
        f"get them with 'python -m backbone_viz weights fetch {spec.name}'."
    )


def load_dense(
    name: str,
    weights: str | os.PathLike[str] = "pretrained",
    *,
    device: str | torch.device | None = None,
    progress: ProgressCallback | None = None,
) -> DenseModel:
    """Builds a detector or segmenter and loads its weights.

    Args:
        name: a dense model (:func:`backbone_viz.list_dense`): ``"fasterrcnn_resnet50_fpn"``...
        weights: ``"pretrained"`` (torch cache, mirror or download: see :mod:`backbone_viz.files.weights`),
            ``"untrained"`` (torchvision's random initialisation with ``weights=None,
            weights_backbone=None``, the same every time; its output means nothing), or a path to a state
            dict of the same architecture.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``; default as for the backbones.
        progress: called as ``progress(done_bytes, total_bytes)`` while the weights download.

    Returns:
        The loaded :class:`DenseModel`.

    Raises:
        ValueError: unknown name.
        WeightsError: weights missing and not downloadable (the message names the file and its size), or a
            checkpoint that does not fit.
    """
    spec = get_dense_spec(name)
    target = resolve_device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(UNTRAINED_SEED)
        model = spec.build()
    if isinstance(weights, os.PathLike) or weights not in ("pretrained", "untrained"):
        path = Path(weights)
        _fit(spec, model, read_checkpoint(path), path)
        weights = str(path)
    elif weights == "pretrained":
        try:
            path = weights_mod.ensure(spec.weights_file, progress=progress)
        except WeightsError as error:
            raise WeightsError(f"{missing_weights_message(spec)} {error.message}", error.hint) from error
        _fit(spec, model, read_checkpoint(path), path)
    _prepare(spec, model, trained=weights != "untrained")
    if target.type == "cuda":
        use_full_float32()
    model.to(target)
    return DenseModel(spec, model, str(weights), spec.categories, target)


def _fit(spec: DenseSpec, model: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """Loads ``state`` strictly, naming what does not fit.

    The untrained build has plain batch norms where torchvision's trained build has ``FrozenBatchNorm2d``;
    in eval mode both compute ``(x - mean) / sqrt(var + eps) * weight + bias``, but only the plain one keeps
    ``num_batches_tracked``, a training counter that trained files therefore lack. Only that key may be
    missing.
    """
    check_fit(
        model.state_dict(),
        state,
        path=path,
        title=spec.full_title,
        hint=f"Use {spec.weights_file.filename} or a state_dict() saved from torchvision's {spec.name}.",
        may_miss=lambda key: key.endswith("num_batches_tracked"),
    )
    model.load_state_dict(state, strict=False)


def _prepare(spec: DenseSpec, model: nn.Module, *, trained: bool) -> None:
    """Makes a freshly built model safe to share: eval mode, no in-place activations, no param grads.

    Also what torchvision's trained build does beyond the weights: COCO_V1 R-CNN and RetinaNet files are
    meant for batch norms with eps 0 (``overwrite_eps``). The auxiliary segmentation head is dropped: it
    only helped training, and would double a segmenter's work.
    """
    if trained and spec.bn_eps is not None:
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eps = spec.bn_eps
    if getattr(model, "aux_classifier", None) is not None:
        model.aux_classifier = None
    model.eval()
    for module in model.modules():
        if hasattr(module, "inplace") and isinstance(module.inplace, bool):
            module.inplace = False
    for param in model.parameters():
        param.requires_grad_(False)


# ------------------------------------------------------------------------------------------- running


def model_input(dense: DenseModel, image: Image.Image) -> torch.Tensor:
    """The (1, 3, h, w) tensor the model's backbone reads for ``image``, after the model's own resize and
    normalisation (a detector's ``transform``, which pads to a multiple of 32; a segmenter's weights
    ``transforms()``: shorter side to :attr:`DenseSpec.input_size`, ImageNet mean and std)."""
    work, _ = _work_picture(dense, image)
    x = TF.to_tensor(work).to(dense.device)
    with torch.inference_mode():
        if _is_detection(dense):
            return dense.model.transform([x])[0].tensors
        return _normalise(dense, x)


def _is_detection(dense: DenseModel) -> bool:
    return dense.spec.kind != "semantic segmenter"


def _work_picture(dense: DenseModel, image: Image.Image) -> tuple[Image.Image, float]:
    """The picture at the size the model will work at, and that size over the picture's.

    A segmenter's weights resize the shorter side to its input size, up or down. A detector's transform
    resizes by itself, but on a large photo (the app accepts 40 megapixels) its float copy and Mask R-CNN's
    pasted masks would take gigabytes, so the picture is shrunk first to what the transform would make of it.
    """
    image = image.convert("RGB")
    width, height = image.size
    side = dense.spec.input_size
    if _is_detection(dense):
        longest = getattr(dense.model.transform, "max_size", side)
        scale = min(1.0, side / min(width, height), longest / max(width, height))
    else:
        scale = side / min(width, height)
    if scale == 1.0:
        return image, 1.0
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(size, Image.Resampling.BILINEAR), scale


def _normalise(dense: DenseModel, x: torch.Tensor) -> torch.Tensor:
    t = dense.spec.weights().transforms()
    return TF.normalize(x, mean=list(t.mean), std=list(t.std)).unsqueeze(0)


@runs_model
def detect_objects(dense: DenseModel, image: Image.Image, *, threshold: float = 0.5) -> DenseResult:
    """Runs a detector or segmenter on one picture.

    Args:
        dense: from :func:`load_dense`.
        image: any RGB PIL picture; it is resized as the model expects.
        threshold: the score, in [0, 1], an object needs to be kept (detectors and Mask R-CNN).

    Returns:
        A :class:`DenseResult`, boxes and the class map in the picture's pixels. Check ``trained`` before
        showing anything as a finding.

    Raises:
        ValueError: a threshold outside [0, 1].
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")
    image = image.convert("RGB")
    width, height = image.size
    start = time.perf_counter()
    work, scale = _work_picture(dense, image)
    x = TF.to_tensor(work).to(dense.device)
    categories = dense.categories
    masks = class_map = None
    legend: tuple[tuple[int, str, float], ...] = ()
    with torch.inference_mode():
        if _is_detection(dense):
            input_size = tuple(dense.model.transform([x])[0].image_sizes[0])
            out = dense.model([x])[0]
            keep = (out["scores"] >= threshold).nonzero().flatten()[:MAX_OBJECTS]
            boxes = (out["boxes"][keep].float() / scale).cpu().numpy()
            scores = out["scores"][keep].float().cpu().numpy()
            ids = out["labels"][keep].cpu().numpy().astype(np.int64)
            if "masks" in out:
                masks = (out["masks"][keep, 0] >= 0.5).cpu().numpy()
        else:
            batch = _normalise(dense, x)
            input_size = tuple(batch.shape[-2:])
            logits = dense.model(batch)["out"][0]  # (K, h, w): the model upsamples to its input itself
            small = logits.argmax(0).to(torch.uint8).cpu().numpy()
            # Nearest from the model's size to the picture's: labels cannot be interpolated.
            class_map = np.asarray(Image.fromarray(small).resize((width, height), Image.Resampling.NEAREST))
            counts = np.bincount(class_map.ravel(), minlength=len(categories))
            order = np.argsort(-counts, kind="stable")
            legend = tuple(
                (int(i), categories[i], float(counts[i] / class_map.size)) for i in order if counts[i] > 0
            )
            boxes = np.zeros((0, 4), np.float32)
            scores = np.zeros(0, np.float32)
            ids = np.zeros(0, np.int64)
    ms = (time.perf_counter() - start) * 1000
    return DenseResult(
        model=dense.name,
        kind=dense.spec.kind,
        trained=dense.trained,
        boxes=boxes,
        scores=scores,
        labels=tuple(categories[i] for i in ids),
        label_ids=ids,
        masks=masks,
        class_map=class_map,
        legend=legend,
        categories=categories,
        threshold=float(threshold),
        image_size=(width, height),
        input_size=(int(input_size[0]), int(input_size[1])),
        ms=ms,
    )


def draw_result(
    image: Image.Image, result: DenseResult, *, palette: Sequence[tuple[int, int, int]] | None = None
) -> Image.Image:
    """The picture with the result drawn on it: boxes with their class and score, masks and class maps
    tinted. For the command line and notebooks; the app draws its own.

    Args:
        image: the picture ``result`` was computed on.
        result: from :func:`detect_objects`.
        palette: RGB colours, one per class index (cycled); default :data:`PALETTE`.

    Returns:
        A new RGB image of the picture's size.
    """
    from PIL import ImageDraw

    colours = list(palette or PALETTE)
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    if result.class_map is not None:
        tint = np.array([colours[i % len(colours)] for i in range(len(result.categories))], np.float32)
        shown = result.class_map > 0  # background stays as it is
        base[shown] = 0.5 * base[shown] + 0.5 * tint[result.class_map[shown]]
    if result.masks is not None:
        for small, index in zip(result.masks, result.label_ids, strict=True):
            mask = np.asarray(Image.fromarray(small).resize(result.image_size, Image.Resampling.NEAREST))
            base[mask] = 0.5 * base[mask] + 0.5 * np.array(colours[int(index) % len(colours)], np.float32)
    out = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(out)
    for box, label, score, index in zip(
        result.boxes, result.labels, result.scores, result.label_ids, strict=True
    ):
        colour = colours[int(index) % len(colours)]
        draw.rectangle([float(v) for v in box], outline=colour, width=3)
        draw.text((float(box[0]) + 4, float(box[1]) + 2), f"{label} {score:.0%}", fill=colour)
    return out


#: Colours of the classes drawn, by class index (cycled): 20 that are told apart easily (Trubetskoy's list),
#: so that VOC's 20 classes never share one.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
    (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
    (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128), (128, 128, 128),
)  # fmt: skip

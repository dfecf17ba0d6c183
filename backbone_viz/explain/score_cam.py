"""Score-CAM (Wang et al. 2020): weigh each channel by what the model says when it sees only that channel's part.

The gradient CAMs (:mod:`backbone_viz.explain.cams`) weigh a layer's channels by the class score's
gradient. Score-CAM asks the model instead. At one layer, for each chosen channel k of its activations
A (C, h, w):

  1. the channel's map A_k is upsampled (bilinear) to the crop and min-max normalised to a mask M_k in
     [0, 1] (a channel whose map is constant gives the all-zero mask);
  2. the picture is multiplied by the mask, X * M_k: the model sees only where the channel fires;
  3. that picture runs through the model; the target class's softmax probability on it is the
     channel's weight w_k (the paper's "increase of confidence", as its authors' code computes it);
  4. the map is ``ReLU(sum_k w_k A_k)``, at the layer's own resolution (h, w), not normalised.

**Which channels.** All C of them by default (``k=None``, as the paper and pytorch-grad-cam do), or the
``k`` whose mean activation over the map is highest (they carry most of the weighted sum; a learner
lowers k to trade faithfulness to the full method for time). Each channel costs one forward pass of a
whole picture, so Score-CAM at ResNet-50's last layer (2048 channels) costs 2048 passes where a
gradient CAM costs one: :func:`score_cam_cost` says how long before anything runs. The masked
pictures run in batches of ``batch_size``; channels whose masks are all zero share one pass.

**Two variants.** ``variant="paper"`` (the default) follows the paper and its authors' code: the weight
is the class's softmax probability, the masks are upsampled as :func:`backbone_viz.upsample` does
(``align_corners=False``). pytorch-grad-cam's ``ScoreCAM`` (1.5.7) differs in both: its weights are the
softmax, over the channels, of the target's *logit* on each masked picture (so the channel with the
highest logit takes nearly all the weight), and it upsamples with ``nn.UpsamplingBilinear2d``
(``align_corners=True``); ``variant="pytorch_grad_cam"`` does the same, and ``tests/test_score_cam.py``
checks that it equals pytorch-grad-cam's map. The two variants' maps differ in where they put the
weight, not only in scale: on EfficientNet-Lite0's ``blocks.2.1`` and the cat picture, min-max normalised,
by up to a quarter of the range.

Nothing here changes the backbone: forward passes under ``torch.inference_mode`` through its traced
graph, no hooks, no train/eval switch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from backbone_viz.core.backbones import Backbone
from backbone_viz.core.graph import LOGITS, POOLED
from backbone_viz.core.runs import runs_model
from backbone_viz.core.specs import LayerSpec, find_layer
from backbone_viz.errors import CamError
from backbone_viz.explain.analysis import Prediction, frozen_numpy, ranked_classes, resolve_target
from backbone_viz.heads.head import Head, check_fits

__all__ = ["ScoreCam", "ScoreCamCost", "score_cam", "score_cam_cost"]

#: Masked pictures per forward pass. On a CPU a larger batch is SLOWER per picture once its activations
#: outgrow the caches: with one thread, 4 pictures took 26 ms each through EfficientNet-Lite0 and 155 ms
#: through ResNet-50, 16 pictures 46 and 242 ms each (pytorch-grad-cam's ScoreCAM uses 16).
DEFAULT_BATCH_SIZE = 4
#: The most pictures in the one timed batch of :func:`score_cam_cost`.
PROBE_PICTURES = 16
#: Added to a mask's range before dividing, as pytorch-grad-cam does.
MASK_EPS = 1e-8

Variant = Literal["paper", "pytorch_grad_cam"]
VARIANTS: tuple[Variant, ...] = ("paper", "pytorch_grad_cam")
#: ``progress(done, total)``: masked pictures through the model so far, of all; may raise to cancel.
ScoreCamProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class ScoreCamCost:
    """What a :func:`score_cam` will cost, stated before it runs.

    Attributes:
        layer: the layer's name.
        channels: how many channels will be weighed (k).
        forward_passes: pictures through the model: the picture itself, then one per channel (channels
            with an all-zero mask share one, so the run may need fewer).
        batches: forward calls of up to ``batch_size`` pictures for the masked ones.
        seconds_per_picture: measured on one batch of ``batch_size`` pictures just now.
        seconds: the estimate, ``forward_passes * seconds_per_picture``.
    """

    layer: str
    channels: int
    forward_passes: int
    batches: int
    seconds_per_picture: float
    seconds: float


@dataclass(frozen=True, eq=False)
class ScoreCam:
    """Score-CAM of one class at one layer of one picture: read-only CPU arrays.

    Attributes:
        backbone: spec name of the backbone.
        weights: its weights (``"pretrained"``, ``"untrained"`` or a checkpoint path).
        head: ``"imagenet"`` or the custom head's name.
        target: the class explained, with its probability on the whole picture.
        layer: the layer.
        map: (h, w) float32, ``ReLU(sum_k w_k A_k)`` at the layer's resolution, raw values.
        channels: (k,) int64, the channels weighed, by decreasing mean activation.
        scores: (k,) float32, each channel's weight w_k: the target's probability on the picture masked
            by that channel (``variant="paper"``), or the softmax over the channels of the target's
            logit on it (``"pytorch_grad_cam"``).
        variant: ``"paper"`` or ``"pytorch_grad_cam"`` (see the module docstring).
        input_image: the crop the model saw, RGB PIL image.
        forward_passes: pictures that went through the model, the unmasked one included.
        seconds: how long it took.
    """

    backbone: str
    weights: str
    head: str
    target: Prediction
    layer: LayerSpec
    map: np.ndarray = field(repr=False)
    channels: np.ndarray = field(repr=False)
    scores: np.ndarray = field(repr=False)
    variant: str
    input_image: Image.Image = field(repr=False)
    forward_passes: int
    seconds: float


@runs_model
def score_cam_cost(
    backbone: Backbone,
    layer: str | None = None,
    *,
    k: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    head: Head | None = None,
) -> ScoreCamCost:
    """How many forward passes :func:`score_cam` will run, and about how long it will take.

    Times ONE batch of ``batch_size`` blank pictures (at most :data:`PROBE_PICTURES`, and no more than
    the channels weighed), after one untimed picture that builds the extractor, and scales it to the
    passes needed: the estimate holds as long as the machine is as busy as it was then. The default batch
    takes about a fifth of a second for ResNet-50 on one CPU core.

    Args:
        backbone: the shared backbone (not modified).
        layer: as in :func:`score_cam`.
        k: as in :func:`score_cam`.
        batch_size: as in :func:`score_cam`.
        head: as in :func:`score_cam`.

    Raises:
        CamError: an unknown layer or a k out of range.
    """
    spec = _layer(backbone, layer)
    channels = _k(spec, k)
    _check_batch_size(batch_size)
    crop = backbone.preprocessing.crop
    probe = torch.zeros(min(batch_size, channels, PROBE_PICTURES), 3, crop, crop, device=backbone.device)
    _logits(backbone, probe[:1], head)  # builds the extractor, which the timed batch should not pay for
    start = time.perf_counter()
    _logits(backbone, probe, head)
    per_picture = (time.perf_counter() - start) / len(probe)
    passes = 1 + channels
    return ScoreCamCost(
        layer=spec.name,
        channels=channels,
        forward_passes=passes,
        batches=math.ceil(channels / batch_size),
        seconds_per_picture=per_picture,
        seconds=passes * per_picture,
    )


@runs_model
def score_cam(
    backbone: Backbone,
    image: Image.Image,
    target: int | str | None = None,
    *,
    layer: str | None = None,
    k: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    variant: Variant = "paper",
    head: Head | None = None,
    progress: ScoreCamProgress | None = None,
) -> ScoreCam:
    """Score-CAM at one layer: one forward pass per channel (see the module docstring).

    Args:
        backbone: from :func:`backbone_viz.load_backbone`; it is not modified.
        image: an RGB PIL image.
        target: the class explained: None (the top-1), a class index or a label.
        layer: a layer name or label of the spec; default the last listed layer.
        k: how many channels, those of highest mean activation; None: all of them.
        batch_size: masked pictures per forward pass.
        variant: ``"paper"`` or ``"pytorch_grad_cam"`` (its weights and upsampling; see the module
            docstring).
        head: a head from :func:`backbone_viz.fit_head` to use instead of the model's own.
        progress: called as ``progress(done, total)`` after each batch, ``total`` being the channels
            weighed; an exception it raises stops the run.

    Returns:
        A frozen :class:`ScoreCam`.

    Raises:
        CamError: an unknown layer or a k out of range (before the model runs).
        BackboneVizError: a class the head does not have.
    """
    spec = _layer(backbone, layer)
    channels_k = _k(spec, k)
    _check_batch_size(batch_size)
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")
    align_corners = variant == "pytorch_grad_cam"
    if head is not None:
        check_fits(head, backbone)
    categories = head.categories if head is not None else backbone.categories
    start = time.perf_counter()
    crop = backbone.crop(image)
    x = backbone.to_tensor(crop)
    with torch.inference_mode():
        outputs = backbone.extract(x, [spec.name, LOGITS if head is None else POOLED])
        logits = outputs[LOGITS] if head is None else head.logits(outputs[POOLED])
        probs, ranked = ranked_classes(logits)
        index = resolve_target(target, categories, ranked)
        acts = outputs[spec.name][0].float()  # (C, h, w)
        # The k channels of highest mean activation; a stable sort keeps ties in channel order.
        order = torch.argsort(acts.mean(dim=(1, 2)).cpu(), descending=True, stable=True)[:channels_k]
        chosen = acts[order.to(acts.device)]  # (k, h, w)
        flat = chosen.amax(dim=(1, 2)) == chosen.amin(dim=(1, 2))
        live = torch.nonzero(~flat.cpu()).flatten().tolist()
        probability = torch.empty(channels_k, device=acts.device)
        logit = torch.empty(channels_k, device=acts.device)
        passes = 1
        if bool(flat.any()):
            # A constant map gives the all-zero mask: every such channel sees the same blank input.
            p, z = _target_scores(backbone, torch.zeros_like(x), head, index)
            probability[flat], logit[flat] = p, z
            passes += 1
        done = int(flat.sum())
        if progress is not None and done:
            progress(done, channels_k)
        for i in range(0, len(live), batch_size):
            rows = live[i : i + batch_size]
            masks = _masks(chosen[rows], x.shape[-2:], align_corners=align_corners)  # (b, H, W)
            p, z = _target_scores(backbone, x * masks[:, None], head, index)
            probability[rows], logit[rows] = p, z
            passes += len(rows)
            done += len(rows)
            if progress is not None:
                progress(done, channels_k)
        scores = probability if variant == "paper" else torch.softmax(logit, dim=0)
        cam = F.relu((scores[:, None, None] * chosen).sum(dim=0))
    return ScoreCam(
        backbone=backbone.spec.name,
        weights=backbone.weights,
        head="imagenet" if head is None else head.name,
        target=Prediction(index, categories[index], float(probs[index])),
        layer=spec,
        map=frozen_numpy(cam),
        channels=_frozen(order.numpy().astype(np.int64)),
        scores=frozen_numpy(scores),
        variant=variant,
        input_image=crop,
        forward_passes=passes,
        seconds=time.perf_counter() - start,
    )


def _masks(maps: torch.Tensor, size: torch.Size, *, align_corners: bool) -> torch.Tensor:
    """(b, h, w) channel maps -> (b, H, W) masks: bilinearly upsampled, min-max normalised to [0, 1]."""
    up = F.interpolate(maps[:, None], size=tuple(size), mode="bilinear", align_corners=align_corners)[:, 0]
    low = up.amin(dim=(1, 2), keepdim=True)
    high = up.amax(dim=(1, 2), keepdim=True)
    return (up - low) / (high - low + MASK_EPS)


def _target_scores(
    backbone: Backbone, pictures: torch.Tensor, head: Head | None, index: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The target's softmax probability (b,) and logit (b,) on a batch of pictures (b, 3, H, W)."""
    logits = _logits(backbone, pictures, head).float()
    return torch.softmax(logits, dim=1)[:, index], logits[:, index]


def _logits(backbone: Backbone, pictures: torch.Tensor, head: Head | None) -> torch.Tensor:
    """The head's logits (b, K) of a batch of pictures, with no gradient."""
    with torch.inference_mode():
        if head is None:
            return backbone.extract(pictures, [LOGITS])[LOGITS]
        return head.logits(backbone.extract(pictures, [POOLED])[POOLED])


def _layer(backbone: Backbone, layer: str | None) -> LayerSpec:
    if layer is None:
        return backbone.spec.layers[-1]
    try:
        return find_layer(backbone.spec.layers, layer, owner=backbone.spec.title)
    except ValueError:
        choices = ", ".join(lay.label for lay in backbone.spec.layers)
        raise CamError(
            f"{backbone.spec.title} has no layer {layer!r}.", f"Choose one of: {choices}."
        ) from None


def _k(layer: LayerSpec, k: int | None) -> int:
    if k is None:
        return layer.channels
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be None or an int, not {type(k).__name__}")
    if not 1 <= k <= layer.channels:
        raise CamError(
            f"Layer {layer.label} has {layer.channels} channels, so Score-CAM can weigh 1 to "
            f"{layer.channels} of them, not {k}.",
            "Pick a number in that range, or None for all of them.",
        )
    return int(k)


def _check_batch_size(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, not {batch_size!r}")


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array

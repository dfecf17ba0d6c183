"""Top patches: the pieces of real pictures where a channel fires most (Zeiler and Fergus, 2014).

A feature visualization shows what a channel would like to see; its top patches show what it DOES
respond to among pictures a learner knows. Each patch is the part of the model's crop that one map
position can see (its receptive field), around one of the channel's strongest positions. One no-grad
forward pass per batch of pictures, through an extractor that stops at the layer; nothing about the
shared model changes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from backbone_viz.core.backbones import Backbone
from backbone_viz.core.runs import runs_model
from backbone_viz.core.specs import LayerSpec
from backbone_viz.errors import BackboneVizError

#: Smallest side of a patch in crop pixels: a stem's 3 px field would be too small to see.
MIN_PATCH = 24
#: Pictures per forward pass.
BATCH = 8


@dataclass(frozen=True)
class Patch:
    """One strong position of a channel in one picture.

    Attributes:
        image: the patch, cut from the model's crop of the picture (``box``), RGB.
        source: index of the picture in the list given to :func:`top_patches`.
        box: ``(left, top, right, bottom)`` in the model's crop coordinates (pixels).
        position: ``(row, column)`` of the map position in the layer's output.
        value: the channel's value at that position.
    """

    image: Image.Image = field(repr=False)
    source: int
    box: tuple[int, int, int, int]
    position: tuple[int, int]
    value: float


@runs_model
def top_patches(
    backbone: Backbone,
    layer: str | LayerSpec,
    channel: int,
    images: Sequence[Image.Image],
    *,
    k: int = 9,
    maps: Sequence[np.ndarray] | None = None,
    cropped: bool = False,
) -> tuple[Patch, ...]:
    """The ``k`` places among ``images`` where a channel fires most, strongest first.

    Positions are taken greedily from the strongest; a position closer than half a patch's side (in map
    positions, at least one) to one already taken in the same picture is skipped, so patches do not
    repeat one spot. Positions at the channel's lowest value over all pictures (a ReLU's zero) are never
    taken: the channel does not fire there.

    Args:
        backbone: a loaded backbone; it is only run.
        layer: a layer of ``backbone.spec`` (dotted name, label or spec).
        channel: a channel of that layer.
        images: RGB pictures; each is cropped as the model sees it (:meth:`Backbone.crop`), unless
            ``cropped``.
        k: how many patches at most.
        maps: the channel's (h, w) map on each image when they are already at hand (an analysis's
            activations, a cached gallery), one per image in the same order; the model is then not
            run at all.
        cropped: ``images`` are already the model's crops (an analysis's ``input_image``, or
            :meth:`Backbone.crop` kept from before): they are used as they are.

    Returns:
        Up to ``k`` :class:`Patch` (fewer when the pictures hold fewer separate positions).

    Raises:
        BackboneVizError: a channel the layer does not have.
        ValueError: an unknown layer, or ``k`` below 1.
    """
    spec = layer if isinstance(layer, LayerSpec) else backbone.spec.layer(layer)
    if not 0 <= channel < spec.channels:
        raise BackboneVizError(
            f"{spec.label} has channels 0 to {spec.channels - 1}; there is no channel {channel}.",
            "Pick a channel number in that range.",
        )
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    crops = list(images) if cropped else [backbone.crop(image) for image in images]
    if maps is None:
        maps = _channel_maps(backbone, spec.name, channel, crops)
    return patches_from_maps(spec, crops, maps, k=k)


def patches_from_maps(
    layer: LayerSpec, crops: Sequence[Image.Image], maps: Sequence[np.ndarray], *, k: int = 9
) -> tuple[Patch, ...]:
    """:func:`top_patches` read off maps at hand, without a model: the ``k`` strongest places.

    Args:
        layer: the layer the maps come from.
        crops: the model's crops of the pictures (an analysis's ``input_image``).
        maps: one channel's (h, w) map on each crop, in the same order.
        k: how many patches at most.

    Raises:
        ValueError: ``k`` below 1, or not one map per crop.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    if len(maps) != len(crops):
        raise ValueError(f"give one map per image: {len(maps)} maps for {len(crops)} images")
    spec = layer
    side = patch_side(spec, crops[0].size) if crops else 1
    radius = max(1, math.ceil(side / spec.stride / 2))
    values = np.concatenate([m.ravel() for m in maps])
    owners = np.concatenate([np.full(m.size, i) for i, m in enumerate(maps)])
    offsets = np.concatenate([np.arange(m.size) for m in maps])
    floor = float(values.min()) if values.size else 0.0
    taken: list[tuple[int, int, int]] = []
    patches: list[Patch] = []
    for n in np.argsort(-values, kind="stable"):
        if len(patches) == k:
            break
        i = int(owners[n])
        r, c = divmod(int(offsets[n]), maps[i].shape[1])
        value = float(values[n])
        if value <= floor:
            break  # the channel's floor (a ReLU's zero) is nowhere it fires
        if any(j == i and abs(r - rr) < radius and abs(c - cc) < radius for j, rr, cc in taken):
            continue
        taken.append((i, r, c))
        box = _box(crops[i].size, maps[i].shape, (r, c), spec)
        patches.append(Patch(crops[i].crop(box), i, box, (r, c), value))
    return tuple(patches)


def _channel_maps(
    backbone: Backbone, layer: str, channel: int, crops: Sequence[Image.Image]
) -> list[np.ndarray]:
    """The channel's (h, w) map for each crop."""
    maps: list[np.ndarray] = []
    with torch.no_grad():
        for start in range(0, len(crops), BATCH):
            x = torch.cat([backbone.to_tensor(c) for c in crops[start : start + BATCH]])
            out = backbone.extract(x, [layer])[layer][:, channel]
            maps += list(out.float().cpu().numpy())
    return maps


def patch_side(layer: LayerSpec, crop_size: tuple[int, int]) -> int:
    """A patch's side in crop pixels: the layer's receptive field, enlarged to at least :data:`MIN_PATCH`
    (a stem's 3 px would be too small to see) and cut to at most the crop (a deep layer's field is
    larger than the picture).

    Args:
        layer: the layer whose map positions the patches are centred on.
        crop_size: ``(width, height)`` of the model's crop.
    """
    return min(max(layer.receptive_field, MIN_PATCH), *crop_size)


def _box(
    crop_size: tuple[int, int], map_shape: tuple[int, int], position: tuple[int, int], layer: LayerSpec
) -> tuple[int, int, int, int]:
    """The square a map position sees, centred on it, kept inside the crop."""
    width, height = crop_size
    r, c = position
    # A map position's centre in crop pixels: positions split the crop evenly.
    cy, cx = (r + 0.5) * height / map_shape[0], (c + 0.5) * width / map_shape[1]
    side = patch_side(layer, crop_size)
    left = int(round(min(max(cx - side / 2, 0), width - side)))
    top = int(round(min(max(cy - side / 2, 0), height - side)))
    return left, top, left + side, top + side

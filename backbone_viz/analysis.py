"""One analysis of one image: predictions, every layer's activations and Grad-CAM, from one pass.

:func:`analyze` runs ONE forward pass through the backbone's traced extractor and ONE
``torch.autograd.grad`` call from the target class score to every listed layer's output. It never
registers hooks, never calls ``.backward()`` (no parameter ``.grad`` is written) and never changes the
model's mode, so any number of threads may analyse on one shared backbone at once.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .backbones import Backbone
from .errors import BackboneVizError, HeadError
from .graph import LOGITS, POOLED
from .specs import LayerSpec

if TYPE_CHECKING:
    from collections.abc import Sequence

TOP_K = 5


class Head(Protocol):
    """A classifier that reads a backbone's pooled vector (see :func:`backbone_viz.fit_head`)."""

    name: str
    categories: tuple[str, ...]

    def logits(self, pooled: torch.Tensor) -> torch.Tensor:
        """Maps pooled features (N, D) to class scores (N, K), differentiably."""
        ...


@dataclass(frozen=True)
class Prediction:
    """One class with its probability under the head that made the analysis."""

    index: int
    label: str
    probability: float


@dataclass(frozen=True, eq=False)
class AnalysisResult:
    """Everything the pages draw for one image, as read-only CPU numpy arrays.

    Attributes:
        backbone: spec name of the backbone (``"resnet50"``).
        weights: ``"pretrained"``, ``"untrained"`` or a checkpoint path.
        head: ``"imagenet"`` for the model's own head, else the custom head's name.
        predictions: the top-5 classes, most probable first.
        target: the class whose score Grad-CAM explains.
        layers: every listed layer, in forward order.
        activations: ``{layer name: (C, h, w) float32}``, the raw output of that layer.
        gradcam: ``{layer name: (h, w) float32}``, ReLU(sum_c mean_hw(dScore/dA_c) * A_c), raw values.
        input_image: the crop the model saw, RGB PIL image (crop x crop).
        probabilities: (K,) softmax of the head's logits.
        logits: (K,) class scores of the head.
        pooled: (D,) the vector the head reads (global average pool of the last stage, flattened).
        categories: the K class names of the head.
    """

    backbone: str
    weights: str
    head: str
    predictions: tuple[Prediction, ...]
    target: Prediction
    layers: tuple[LayerSpec, ...]
    activations: Mapping[str, np.ndarray] = field(repr=False)
    gradcam: Mapping[str, np.ndarray] = field(repr=False)
    input_image: Image.Image = field(repr=False)
    probabilities: np.ndarray = field(repr=False)
    logits: np.ndarray = field(repr=False)
    pooled: np.ndarray = field(repr=False)
    categories: tuple[str, ...] = field(repr=False)

    def layer(self, key: str) -> LayerSpec:
        """A layer of this result by dotted name or label (``ValueError`` lists the choices)."""
        for layer in self.layers:
            if key in (layer.name, layer.label):
                return layer
        raise ValueError(f"No layer {key!r}; choose one of: {', '.join(lay.label for lay in self.layers)}")


def resolve_target(target: int | str | None, categories: Sequence[str], ranked: Sequence[int]) -> int:
    """The class index Grad-CAM should explain.

    Args:
        target: None for the top-1 prediction, a class index, or a class label (case-insensitive).
        categories: the head's class names.
        ranked: class indices sorted by decreasing score.

    Raises:
        BackboneVizError: an index out of range or a label the head does not know (close matches are
            suggested).
    """
    if target is None:
        return int(ranked[0])
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        if 0 <= int(target) < len(categories):
            return int(target)
        raise BackboneVizError(
            f"There is no class number {target}: this head has classes 0 to {len(categories) - 1}.",
            "Pick a class number in that range, or give its name.",
        )
    if not isinstance(target, str):
        raise TypeError(f"target must be None, an int or a str, not {type(target).__name__}")
    wanted = target.strip().lower()
    lowered = [c.lower() for c in categories]
    if wanted in lowered:
        return lowered.index(wanted)
    close = difflib.get_close_matches(wanted, lowered, n=3, cutoff=0.6)
    suggestion = ", ".join(repr(categories[lowered.index(c)]) for c in close)
    raise BackboneVizError(
        f"This head has no class called {target!r}.",
        f"Did you mean {suggestion}?" if suggestion else "Check the spelling, or pick a class from the list.",
    )


def analyze(
    backbone: Backbone,
    image: Image.Image,
    target: int | str | None = None,
    *,
    head: Head | None = None,
) -> AnalysisResult:
    """Runs one image through a backbone: top-5, activations and Grad-CAM at every listed layer.

    Args:
        backbone: from :func:`backbone_viz.load_backbone`; it is not modified.
        image: an RGB PIL image (see :func:`backbone_viz.load_image`).
        target: the class Grad-CAM explains: None (the top-1), a class index or a label.
        head: a head from :func:`backbone_viz.fit_head` to use instead of the model's own; predictions
            and Grad-CAM then refer to its classes.

    Returns:
        A frozen :class:`AnalysisResult`.
    """
    if head is not None:
        _check_head_fits(head, backbone)
    crop = backbone.crop(image)
    x = backbone.to_tensor(crop).requires_grad_(True)
    layers = backbone.spec.layers
    categories = head.categories if head is not None else backbone.categories
    # Parameters do not require grad, so the graph is built only for the input's path; asking for the
    # gradient of the layer outputs stops at the first listed layer and never touches parameters.
    with torch.enable_grad():
        outputs = backbone.extractor(x)
        logits = outputs[LOGITS] if head is None else head.logits(outputs[POOLED])
        probabilities = torch.softmax(logits.detach()[0].float(), dim=0)
        ranked = torch.argsort(probabilities, descending=True).tolist()
        index = resolve_target(target, categories, ranked)
        acts = [outputs[layer.name] for layer in layers]
        grads = torch.autograd.grad(logits[0, index], acts)
    with torch.no_grad():
        cams = [
            F.relu((g.mean(dim=(2, 3), keepdim=True) * a).sum(dim=1))[0] for g, a in zip(grads, acts, strict=True)
        ]
    probs = _frozen(probabilities)
    predictions = tuple(
        Prediction(int(i), categories[i], float(probs[i])) for i in ranked[:TOP_K]
    )
    return AnalysisResult(
        backbone=backbone.spec.name,
        weights=backbone.weights,
        head="imagenet" if head is None else head.name,
        predictions=predictions,
        target=Prediction(index, categories[index], float(probs[index])),
        layers=layers,
        activations=MappingProxyType({lay.name: _frozen(a[0]) for lay, a in zip(layers, acts, strict=True)}),
        gradcam=MappingProxyType({lay.name: _frozen(c) for lay, c in zip(layers, cams, strict=True)}),
        input_image=crop,
        probabilities=probs,
        logits=_frozen(logits[0]),
        pooled=_frozen(outputs[POOLED][0]),
        categories=categories,
    )


def _check_head_fits(head: Head, backbone: Backbone) -> None:
    """A head reads one backbone's features: another backbone (or other weights) of the same width
    would run without error and give meaningless scores, so refuse it by name."""
    made_for = (getattr(head, "backbone", backbone.spec.name), getattr(head, "weights", backbone.weights))
    if made_for != (backbone.spec.name, backbone.weights):
        raise HeadError(
            f"The head '{head.name}' was trained on {made_for[0]} ({made_for[1]} weights), "
            f"not on {backbone.spec.name} ({backbone.weights} weights).",
            "Train a new head on this backbone, or switch back to the backbone the head was made for.",
        )


def _frozen(t: torch.Tensor) -> np.ndarray:
    """A read-only float32 CPU numpy copy-free view of a tensor."""
    array = t.detach().to("cpu", torch.float32).numpy()
    array.flags.writeable = False
    return array


def upsample(map2d: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinearly resizes a map onto the input crop.

    Args:
        map2d: (h, w) array, e.g. ``result.gradcam[name]`` or one channel of an activation.
        size: (height, width) to resize to, e.g. ``result.input_image.size[::-1]``.

    Returns:
        (height, width) float32 array; values are interpolated, not normalised.
    """
    # A copy: results are read-only and torch does not accept read-only arrays.
    t = torch.from_numpy(np.array(map2d, dtype=np.float32, copy=True))[None, None]
    out = F.interpolate(t, size=size, mode="bilinear", align_corners=False)
    return out[0, 0].numpy()

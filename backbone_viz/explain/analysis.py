"""One analysis of one image: predictions, every layer's activations and Grad-CAM, from one pass.

:func:`analyze` runs ONE forward pass through the backbone's traced extractor and ONE
``torch.autograd.grad`` call from the target class score to every listed layer's output. It never
registers hooks, never calls ``.backward()`` (no parameter ``.grad`` is written) and never changes the
model's mode, so any number of threads may analyse on one shared backbone at once.

The activations of a picture do not depend on the class Grad-CAM explains, so they are kept apart, as
captum keeps ``LayerActivation`` and ``LayerGradCam`` apart: :func:`analyze_parts` gives both parts of
one pass, :func:`layer_activations` the activations alone (one forward pass without a gradient, under
half the cost, for a page that shows no Grad-CAM), :func:`layer_gradcam` the Grad-CAM maps of a class
without keeping activations, and :meth:`AnalysisResult.from_parts` joins them without copying (a cache
then stores activations once).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from backbone_viz.core.backbones import Backbone
from backbone_viz.core.graph import LOGITS, POOLED
from backbone_viz.core.knockout import Knockout, KnockoutItem, resolve_knockout
from backbone_viz.core.runs import runs_model
from backbone_viz.core.specs import LayerSpec, find_layer
from backbone_viz.errors import BackboneVizError
from backbone_viz.explain.cams import get_cam
from backbone_viz.heads.head import Head, check_fits
from backbone_viz.zoo import get_spec

if TYPE_CHECKING:
    from collections.abc import Sequence

    from backbone_viz.core.graph import Edit

TOP_K = 5


@dataclass(frozen=True)
class Prediction:
    """One class with its probability under the head that made the analysis."""

    index: int
    label: str
    probability: float


@dataclass(frozen=True, eq=False)
class Activations:
    """What one picture does to a backbone, whatever class Grad-CAM explains: read-only CPU arrays.

    Attributes:
        backbone: spec name of the backbone (``"resnet50"``).
        weights: ``"pretrained"``, ``"untrained"`` or a checkpoint path.
        head: ``"imagenet"`` for the model's own head, else the custom head's name.
        predictions: the top-5 classes, most probable first.
        layers: every listed layer, in forward order.
        activations: ``{layer name: (C, h, w) float32}``, the raw output of that layer.
        input_image: the crop the model saw, RGB PIL image (crop x crop).
        probabilities: (K,) softmax of the head's logits.
        logits: (K,) class scores of the head.
        pooled: (D,) the vector the head's last linear layer reads (timm calls it ``pre_logits``): the
            global average of each channel of the last stage for ResNet, GoogLeNet and EfficientNet-Lite0
            (one number per channel); for VGG, the output of its second fully connected layer (fc7, 4096
            numbers), which is not a per-channel average.
        categories: the K class names of the head.
        knockout: what was knocked out (block names, ``(layer name, channels)``); empty for none.
    """

    backbone: str
    weights: str
    head: str
    predictions: tuple[Prediction, ...]
    layers: tuple[LayerSpec, ...]
    activations: Mapping[str, np.ndarray] = field(repr=False)
    input_image: Image.Image = field(repr=False)
    probabilities: np.ndarray = field(repr=False)
    logits: np.ndarray = field(repr=False)
    pooled: np.ndarray = field(repr=False)
    categories: tuple[str, ...] = field(repr=False)
    knockout: tuple[Knockout, ...] = ()

    def layer(self, key: str) -> LayerSpec:
        """A layer of this result by dotted name or label (``ValueError`` lists the choices)."""
        return find_layer(self.layers, key, owner=get_spec(self.backbone).title)


@dataclass(frozen=True, eq=False)
class GradCam:
    """Grad-CAM of one class at every listed layer of one picture (no activations: they are not kept).

    Attributes:
        backbone: spec name of the backbone.
        weights: its weights.
        head: ``"imagenet"`` or the custom head's name.
        target: the class whose score is explained, with its probability.
        gradcam: ``{layer name: (h, w) float32}``, the class activation map of ``cam`` (Grad-CAM's:
            ReLU(sum_c mean_hw(dScore/dA_c) * A_c)), raw values.
        knockout: what was knocked out; empty for none.
        cam: the method of :mod:`backbone_viz.explain.cams` that made the maps (``"gradcam"``).
    """

    backbone: str
    weights: str
    head: str
    target: Prediction
    gradcam: Mapping[str, np.ndarray] = field(repr=False)
    knockout: tuple[Knockout, ...] = ()
    cam: str = "gradcam"


@dataclass(frozen=True, eq=False, kw_only=True)
class AnalysisResult(Activations):
    """Everything the pages draw for one image: its :class:`Activations` plus the Grad-CAM of one class.

    Attributes (besides those of :class:`Activations`):
        target: the class whose score Grad-CAM explains.
        gradcam: ``{layer name: (h, w) float32}``, the class activation map of ``cam`` (Grad-CAM's:
            ReLU(sum_c mean_hw(dScore/dA_c) * A_c)), raw values.
        cam: the method of :mod:`backbone_viz.explain.cams` that made the maps (``"gradcam"``).
    """

    target: Prediction
    gradcam: Mapping[str, np.ndarray] = field(repr=False)
    cam: str = "gradcam"

    @classmethod
    def from_parts(cls, activations: Activations, gradcam: GradCam) -> AnalysisResult:
        """Joins a picture's activations and one class's Grad-CAM; the arrays are shared, not copied.

        Raises:
            ValueError: the parts come from different backbones, weights or heads.
        """
        a, g = activations, gradcam
        if (a.backbone, a.weights, a.head, a.knockout) != (g.backbone, g.weights, g.head, g.knockout):
            raise ValueError(
                f"Parts of different analyses: activations of {a.backbone} ({a.weights}, {a.head}, "
                f"knock-out {a.knockout}), Grad-CAM of {g.backbone} ({g.weights}, {g.head}, knock-out {g.knockout})"
            )
        return cls(
            **{f.name: getattr(a, f.name) for f in fields(Activations)},
            target=g.target,
            gradcam=g.gradcam,
            cam=g.cam,
        )


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


@runs_model
def analyze(
    backbone: Backbone,
    image: Image.Image,
    target: int | str | None = None,
    *,
    head: Head | None = None,
    knockout: Sequence[KnockoutItem] | None = None,
    cam: str = "gradcam",
) -> AnalysisResult:
    """Runs one image through a backbone: top-5, activations and Grad-CAM at every listed layer.

    Args:
        backbone: from :func:`backbone_viz.load_backbone`; it is not modified.
        image: an RGB PIL image (see :func:`backbone_viz.load_image`).
        target: the class Grad-CAM explains: None (the top-1), a class index or a label.
        head: a head from :func:`backbone_viz.fit_head` to use instead of the model's own; predictions
            and Grad-CAM then refer to its classes.
        knockout: what to knock out first (see :mod:`backbone_viz.core.knockout`): block names (the block
            is removed: its output becomes its shortcut alone, or the identity for a plain layer that
            keeps its input's shape) and ``(layer name, [channels])`` pairs (those channels are zero
            for everything downstream). Every map, prediction and Grad-CAM is then the knocked-out
            network's. ``None`` or ``[]``: the plain analysis.
        cam: the class activation map method of :mod:`backbone_viz.explain.cams` (``"gradcam"``); the maps
            in ``.gradcam`` are its maps.

    Returns:
        A frozen :class:`AnalysisResult`; ``.knockout`` says what was knocked out, ``.cam`` the method.

    Raises:
        KnockoutError: a block that cannot be removed (the message says why), unknown channels.
    """
    return AnalysisResult.from_parts(
        *analyze_parts(backbone, image, target, head=head, knockout=knockout, cam=cam)
    )


@runs_model
def analyze_parts(
    backbone: Backbone,
    image: Image.Image,
    target: int | str | None = None,
    *,
    head: Head | None = None,
    knockout: Sequence[KnockoutItem] | None = None,
    cam: str = "gradcam",
) -> tuple[Activations, GradCam]:
    """:func:`analyze`'s one pass, returned as its two parts, for a cache that keeps them apart.

    Returns:
        ``(activations, gradcam)``; ``AnalysisResult.from_parts(*parts)`` is ``analyze``'s result.
    """
    activations, gradcam = _one_pass(backbone, image, target, head, knockout, cam, keep_activations=True)
    assert activations is not None  # keep_activations=True always returns them
    return activations, gradcam


@runs_model
def layer_activations(
    backbone: Backbone,
    image: Image.Image,
    *,
    head: Head | None = None,
    knockout: Sequence[KnockoutItem] | None = None,
) -> Activations:
    """What the picture does to every listed layer, with the top-5: ONE forward pass, no gradient.

    Equal to ``analyze_parts(...)[0]`` (the same arrays up to float rounding) at well under half the
    cost: no autograd graph is recorded and nothing runs backwards (``bench/analysis.py`` prints both).
    For a view that shows no Grad-CAM; :func:`layer_gradcam` adds one later if it is asked for.
    Arguments as in :func:`analyze`.
    """
    if head is not None:
        check_fits(head, backbone)
    done, edits = resolve_knockout(backbone.spec, knockout or ())
    crop = backbone.crop(image)
    with torch.no_grad():
        outputs = backbone.extract(
            backbone.to_tensor(crop), _wanted(backbone, head, pooled=True), edits=edits
        )
        logits = outputs[LOGITS] if head is None else head.logits(outputs[POOLED])
    probabilities, ranked = ranked_classes(logits)
    return _activations(backbone, head, crop, outputs, logits, probabilities, ranked, done)


@runs_model
def layer_gradcam(
    backbone: Backbone,
    image: Image.Image,
    target: int | str | None = None,
    *,
    head: Head | None = None,
    knockout: Sequence[KnockoutItem] | None = None,
    cam: str = "gradcam",
) -> GradCam:
    """Grad-CAM of one class at every listed layer, keeping no activations.

    Runs the forward pass again (the gradient needs it) but returns only the (h, w) maps, so explaining
    another class of an analysed picture costs a few kB of memory, not a second copy of its activations.
    Arguments as in :func:`analyze`.
    """
    return _one_pass(backbone, image, target, head, knockout, cam, keep_activations=False)[1]


def _one_pass(
    backbone: Backbone,
    image: Image.Image,
    target: int | str | None,
    head: Head | None,
    knockout: Sequence[KnockoutItem] | None,
    cam: str,
    *,
    keep_activations: bool,
) -> tuple[Activations | None, GradCam]:
    """ONE forward pass and ONE ``torch.autograd.grad`` call; the activations only when asked for."""
    method = get_cam(cam)  # an unknown method is refused before the model runs
    if head is not None:
        check_fits(head, backbone)
    done, edits = resolve_knockout(backbone.spec, knockout or ())
    crop = backbone.crop(image)
    layers = backbone.spec.layers
    categories = head.categories if head is not None else backbone.categories
    outputs, logits, probs, ranked, index, grads = forward_and_gradients(
        backbone,
        crop,
        _wanted(backbone, head, pooled=keep_activations),
        [lay.name for lay in layers],
        target,
        head=head,
        edits=edits,
    )
    acts = [outputs[layer.name] for layer in layers]
    with torch.no_grad():
        cams = [method.cam(a, g)[0] for g, a in zip(grads, acts, strict=True)]
    gradcam = GradCam(
        backbone=backbone.spec.name,
        weights=backbone.weights,
        head="imagenet" if head is None else head.name,
        target=Prediction(index, categories[index], float(probs[index])),
        gradcam=MappingProxyType({lay.name: c for lay, c in zip(layers, to_host(cams), strict=True)}),
        knockout=done,
        cam=method.name,
    )
    if not keep_activations:
        return None, gradcam
    return _activations(backbone, head, crop, outputs, logits, probs, ranked, done), gradcam


def forward_and_gradients(
    backbone: Backbone,
    crop: Image.Image,
    nodes: Sequence[str],
    layers: Sequence[str],
    target: int | str | None,
    *,
    head: Head | None = None,
    edits: Sequence[Edit] = (),
    gradients: bool = True,
) -> tuple[
    dict[str, torch.Tensor], torch.Tensor, np.ndarray, list[int], int, tuple[torch.Tensor, ...] | None
]:
    """The one pass behind :func:`analyze` and :func:`backbone_viz.cam_family`: ONE forward pass and ONE
    ``torch.autograd.grad`` from the target's score to the outputs of ``layers``.

    Args:
        backbone: the shared backbone (not modified).
        crop: the crop the model sees (:meth:`Backbone.crop`).
        nodes: what :meth:`Backbone.extract` returns; must hold ``layers``, and ``LOGITS`` (own head) or
            ``POOLED`` (a custom ``head``).
        layers: the layer names whose gradients are wanted.
        target: as in :func:`resolve_target`.
        head: a custom head, or None for the model's own.
        edits: knock-outs (:func:`backbone_viz.core.knockout.resolve_knockout`).
        gradients: False: no gradient (the forward pass runs under ``torch.no_grad``), ``grads`` is None.

    Returns:
        ``(outputs, logits, probabilities, ranked, index, grads)``: ``{node: tensor}``, the logits
        (1, K), their softmax (K,) on the host, class indices by decreasing score, the target's index,
        and dS/dA for each of ``layers`` (each of its layer's shape (1, C, h, w)).
    """
    categories = head.categories if head is not None else backbone.categories
    x = backbone.to_tensor(crop).requires_grad_(gradients)
    # Parameters do not require grad, so the graph is built only for the input's path; asking for the
    # gradient of the layer outputs stops at the first listed layer and never touches parameters.
    with torch.set_grad_enabled(gradients):
        outputs = backbone.extract(x, nodes, edits=edits)
        logits = outputs[LOGITS] if head is None else head.logits(outputs[POOLED])
        probs, ranked = ranked_classes(logits)
        index = resolve_target(target, categories, ranked)
        grads = torch.autograd.grad(logits[0, index], [outputs[n] for n in layers]) if gradients else None
    return outputs, logits, probs, ranked, index, grads


def _wanted(backbone: Backbone, head: Head | None, *, pooled: bool) -> list[str]:
    """The nodes a pass asks for: every listed layer, the logits (own head) and the pooled vector."""
    wanted = [layer.name for layer in backbone.spec.layers]
    if head is None:
        wanted.append(LOGITS)
    if head is not None or pooled:
        wanted.append(POOLED)
    return wanted


def _activations(
    backbone: Backbone,
    head: Head | None,
    crop: Image.Image,
    outputs: Mapping[str, torch.Tensor],
    logits: torch.Tensor,
    probs: np.ndarray,
    ranked: Sequence[int],
    done: tuple[Knockout, ...],
) -> Activations:
    """The :class:`Activations` of one pass: ``outputs`` of :func:`_wanted`, ``logits`` (1, K), ``probs`` (K,)
    and the class indices ``ranked`` by decreasing probability."""
    layers = backbone.spec.layers
    categories = head.categories if head is not None else backbone.categories
    *maps, logit_values, pooled = to_host(
        [*(outputs[lay.name][0] for lay in layers), logits[0], outputs[POOLED][0]]
    )
    return Activations(
        backbone=backbone.spec.name,
        weights=backbone.weights,
        head="imagenet" if head is None else head.name,
        predictions=tuple(Prediction(int(i), categories[i], float(probs[i])) for i in ranked[:TOP_K]),
        layers=layers,
        activations=MappingProxyType({lay.name: m for lay, m in zip(layers, maps, strict=True)}),
        input_image=crop,
        probabilities=probs,
        logits=logit_values,
        pooled=pooled,
        categories=categories,
        knockout=done,
    )


def ranked_classes(logits: torch.Tensor) -> tuple[np.ndarray, list[int]]:
    """The softmax of ``logits`` (1, K) as a read-only CPU array (K,), and the class indices by
    decreasing probability. Ranked on the host: one small copy, where a ranking on a GPU would wait for
    it twice."""
    probabilities = frozen_numpy(torch.softmax(logits.detach()[0].float(), dim=0))
    return probabilities, np.argsort(-probabilities, kind="stable").tolist()


def to_host(tensors: Sequence[torch.Tensor]) -> list[np.ndarray]:
    """Read-only float32 CPU numpy arrays of ``tensors``, each of its tensor's shape.

    On the CPU each is :func:`frozen_numpy` (no copy). On a GPU they travel in ONE copy: copying each
    map on its own waits for the GPU once per layer (up to 60 times for an analysis), which cost more
    than the model itself on a fast GPU. The arrays are then views of one host buffer.
    """
    if not tensors or all(t.device.type == "cpu" for t in tensors):
        return [frozen_numpy(t) for t in tensors]
    flat = torch.cat([t.detach().reshape(-1).to(torch.float32) for t in tensors]).to("cpu").numpy()
    flat.flags.writeable = False
    arrays, start = [], 0
    for t in tensors:
        arrays.append(flat[start : start + t.numel()].reshape(tuple(t.shape)))
        start += t.numel()
    return arrays


def frozen_numpy(t: torch.Tensor) -> np.ndarray:
    """A read-only float32 CPU numpy view of a tensor (no copy when it is already float32 on the CPU)."""
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

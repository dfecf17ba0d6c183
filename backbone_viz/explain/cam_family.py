"""The CAM family from one pass: every gradient-based CAM method at every layer, side by side.

Grad-CAM, Grad-CAM++, XGrad-CAM, LayerCAM and HiResCAM differ only in how they turn a layer's
activations A (1, C, h, w) and the class score's gradient dS/dA into a map; EigenCAM reads A alone. So
:func:`cam_family` runs ONE forward pass and ONE ``torch.autograd.grad`` (the pass of
:func:`backbone_viz.analyze`, :func:`backbone_viz.explain.analysis.forward_and_gradients`) and then each
method of :mod:`backbone_viz.explain.cams` on every chosen layer, where pytorch-grad-cam runs one
forward and one backward pass per method and per layer (``bench/cams.py`` prints both).

**What the maps are.** ``maps[method][layer]`` is the method's raw map at the layer's own resolution
(h, w): after the ReLU every method ends with, before any normalisation or resizing (pytorch-grad-cam's
``scale_cam_image``), so magnitudes can be compared across layers and normalising stays a rendering
choice (:func:`backbone_viz.upsample` puts a map onto the crop). The maps of the gradient methods are
those of one class, :attr:`CamFamily.target`; EigenCAM's are the same for every class.

Nothing here changes the backbone: no hooks, no ``.backward()`` (no parameter ``.grad``), no train/eval
switch, so any number of threads may share it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import torch
from PIL import Image

from backbone_viz.core.backbones import Backbone
from backbone_viz.core.graph import LOGITS, POOLED
from backbone_viz.core.runs import runs_model
from backbone_viz.core.specs import LayerSpec, find_layer
from backbone_viz.errors import CamError
from backbone_viz.explain.analysis import Prediction, forward_and_gradients, to_host
from backbone_viz.explain.cams import CamMethod, get_cam, list_cams
from backbone_viz.heads.head import Head, check_fits
from backbone_viz.zoo import get_spec

__all__ = ["CamFamily", "cam_family"]


@dataclass(frozen=True, eq=False)
class CamFamily:
    """Several CAM methods at several layers of one picture, for one class: read-only CPU arrays.

    Attributes:
        backbone: spec name of the backbone (``"resnet50"``).
        weights: ``"pretrained"``, ``"untrained"`` or a checkpoint path.
        head: ``"imagenet"`` for the model's own head, else the custom head's name.
        target: the class whose score the gradient methods explain, with its probability.
        methods: the method names, in the order asked for (``("gradcam", "hirescam")``).
        layers: the layers, in forward order.
        maps: ``{method: {layer name: (h, w) float32}}``, raw maps at each layer's resolution (h = crop /
            stride), after the method's ReLU, not normalised.
        input_image: the crop the model saw, RGB PIL image (crop x crop).
        pass_ms: the one forward pass and the one ``torch.autograd.grad`` call (none when no method uses
            gradients), in milliseconds.
        method_ms: ``{method: milliseconds}`` each method took over all the layers, from that same pass.
    """

    backbone: str
    weights: str
    head: str
    target: Prediction
    methods: tuple[str, ...]
    layers: tuple[LayerSpec, ...]
    maps: Mapping[str, Mapping[str, np.ndarray]] = field(repr=False)
    input_image: Image.Image = field(repr=False)
    pass_ms: float = 0.0
    method_ms: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def total_ms(self) -> float:
        """The whole computation in milliseconds: the pass, then every method at every layer."""
        return self.pass_ms + sum(self.method_ms.values())

    def map(self, method: str, layer: str) -> np.ndarray:
        """One map (h, w), by method name and layer name or label.

        Raises:
            CamError: a method or layer this result does not hold (the message lists those it holds).
        """
        if method not in self.maps:
            raise CamError(
                f"This result has no {method!r} maps.", f"Choose one of: {', '.join(self.methods)}."
            )
        return self.maps[method][_layers(self.layers, [layer], get_spec(self.backbone).title)[0].name]


@runs_model
def cam_family(
    backbone: Backbone,
    image: Image.Image,
    target: int | str | None = None,
    *,
    methods: Sequence[str] | None = None,
    layers: Sequence[str] | None = None,
    head: Head | None = None,
) -> CamFamily:
    """Every chosen CAM method at every chosen layer, from ONE forward pass and ONE gradient.

    Args:
        backbone: from :func:`backbone_viz.load_backbone`; it is not modified.
        image: an RGB PIL image (see :func:`backbone_viz.load_image`).
        target: the class explained: None (the top-1), a class index or a label.
        methods: names from :func:`backbone_viz.list_cams`; default all of them, in registration order.
        layers: layer names or labels of the backbone's spec; default every listed layer.
        head: a head from :func:`backbone_viz.fit_head` to use instead of the model's own.

    Returns:
        A frozen :class:`CamFamily`; ``maps[method][layer]`` is (h, w) float32.

    Raises:
        CamError: an unknown method or layer (checked before the model runs; the message lists the
            choices), or no method or no layer at all.
        BackboneVizError: a class the head does not have.
    """
    chosen = _methods(methods)
    specs = (
        backbone.spec.layers if layers is None else _layers(backbone.spec.layers, layers, backbone.spec.title)
    )
    if head is not None:
        check_fits(head, backbone)
    names = [lay.name for lay in specs]
    categories = head.categories if head is not None else backbone.categories
    crop = backbone.crop(image)
    gradients = any(m.uses_gradients for m in chosen)

    start = time.perf_counter()
    outputs, _, probs, _, index, grads = forward_and_gradients(
        backbone,
        crop,
        [*names, LOGITS if head is None else POOLED],
        names if gradients else [],
        target,
        head=head,
        gradients=gradients,
    )
    pass_ms = (time.perf_counter() - start) * 1000.0
    acts = [outputs[n] for n in names]
    grads = grads if grads is not None else [None] * len(names)

    computed: dict[str, list[torch.Tensor]] = {}
    method_ms: dict[str, float] = {}
    with torch.no_grad():
        for method in chosen:
            t0 = time.perf_counter()
            computed[method.name] = [method.cam(a, g)[0] for a, g in zip(acts, grads, strict=True)]
            method_ms[method.name] = (time.perf_counter() - t0) * 1000.0
    flat = to_host([m for method in chosen for m in computed[method.name]])
    maps = {
        method.name: MappingProxyType(
            dict(zip(names, flat[i * len(names) : (i + 1) * len(names)], strict=True))
        )
        for i, method in enumerate(chosen)
    }
    return CamFamily(
        backbone=backbone.spec.name,
        weights=backbone.weights,
        head="imagenet" if head is None else head.name,
        target=Prediction(index, categories[index], float(probs[index])),
        methods=tuple(m.name for m in chosen),
        layers=tuple(specs),
        maps=MappingProxyType(maps),
        input_image=crop,
        pass_ms=pass_ms,
        method_ms=MappingProxyType(method_ms),
    )


def _methods(methods: Sequence[str] | None) -> list[CamMethod]:
    """The registered methods asked for, in that order, each once."""
    if methods is None:
        return list(list_cams())
    if isinstance(methods, str):
        raise TypeError("methods must be a sequence of method names, e.g. ['gradcam'], not a string")
    if not methods:
        raise CamError("No CAM method was chosen.", "Pick at least one method.")
    chosen: list[CamMethod] = []
    for name in methods:
        try:
            method = get_cam(name)
        except ValueError:
            choices = ", ".join(m.name for m in list_cams())
            raise CamError(f"There is no CAM method called {name!r}.", f"Choose one of: {choices}.") from None
        if method not in chosen:
            chosen.append(method)
    return chosen


def _layers(all_layers: Sequence[LayerSpec], keys: Sequence[str], owner: str) -> list[LayerSpec]:
    """The layers asked for by name or label, in forward order, each once."""
    if isinstance(keys, str):
        raise TypeError("layers must be a sequence of layer names, e.g. ['layer4.2'], not a string")
    if not keys:
        raise CamError("No layer was chosen.", "Pick at least one layer.")
    found: set[str] = set()
    for key in keys:
        try:
            found.add(find_layer(all_layers, key, owner=owner).name)
        except ValueError:
            choices = ", ".join(lay.label for lay in all_layers)
            raise CamError(f"{owner} has no layer {key!r}.", f"Choose one of: {choices}.") from None
    return [lay for lay in all_layers if lay.name in found]

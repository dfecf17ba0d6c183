"""The classifier's backbone inside a detector or segmenter: its maps, its weights, what training changed.

A dense model's backbone is the classifier's modules under other names (:attr:`DenseSpec.trunk`). From
that one table this module reads the dense model's own map at each stage of the classifier's spec
(:func:`dense_stage_maps`), maps its weights back onto the classifier's names (:func:`backbone_state`), says
which stages training kept (:func:`frozen_stages`), and compares the two backbones stage by stage with
linear CKA over several pictures against an untrained baseline (:func:`compare_backbones`).

Everything runs the modules one after the other, as ``nn.Sequential`` would: no hooks, no copies, and no
change to the shared model, so any number of sessions can call it at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch import nn

from backbone_viz.core.checkpoints import check_fit, read_checkpoint
from backbone_viz.core.runs import runs_model
from backbone_viz.core.specs import BackboneSpec, StageSpec
from backbone_viz.dense.cka import linear_cka
from backbone_viz.dense.models import UNTRAINED_SEED, DenseModel, model_input
from backbone_viz.dense.specs import DenseSpec
from backbone_viz.errors import WeightsError
from backbone_viz.files import weights as weights_mod
from backbone_viz.files.sizes import describe_size
from backbone_viz.files.weights import ProgressCallback
from backbone_viz.zoo import get_spec

__all__ = [
    "BackboneComparison",
    "ClassifierTrunk",
    "StageComparison",
    "backbone_input",
    "backbone_state",
    "classifier_trunk",
    "compare_backbones",
    "default_classifier",
    "dense_stage_maps",
    "frozen_stages",
    "map_to_classifier",
    "stage_layers",
]

ClassifierWeights = Literal["start", "classifier", "untrained"]


def stage_layers(spec: DenseSpec) -> tuple[str, ...]:
    """The classifier layer that ends each stage of its spec (``feature_info``), shallow to deep: the
    names :func:`dense_stage_maps` returns, the same as the classifier's ``analyze`` activations."""
    return tuple(info.module for info in get_spec(spec.backbone).feature_info)


def _run(
    modules: Sequence[tuple[str, nn.Module]], x: torch.Tensor, wanted: Sequence[str]
) -> dict[str, torch.Tensor]:
    """Runs ``modules`` in order on ``x``, keeping the outputs named in ``wanted``; stops after the last."""
    left, out = set(wanted), {}
    for name, module in modules:
        if not left:
            break
        x = module(x)
        if name in left:
            out[name] = x
            left.discard(name)
    return out


def _dense_modules(dense: DenseModel) -> list[tuple[str, nn.Module]]:
    return [(c, dense.model.get_submodule(d)) for c, d in dense.spec.trunk]


@runs_model
def dense_stage_maps(dense: DenseModel, image: Image.Image) -> dict[str, np.ndarray]:
    """The dense model's own backbone maps at each stage of the classifier's spec, on its own input.

    Args:
        dense: from :func:`~backbone_viz.dense.models.load_dense`.
        image: any RGB picture; resized and normalised as the dense model does (see
            :func:`~backbone_viz.dense.models.model_input`).

    Returns:
        ``{classifier layer name: (C, h, w) float32}`` in stage order (:func:`stage_layers`). The stride
        ``input height / h`` is the classifier's, except in dilated stages (DeepLabV3, FCN: 8 for layer3
        and layer4).
    """
    x = model_input(dense, image)
    names = stage_layers(dense.spec)
    with torch.inference_mode():
        maps = _run(_dense_modules(dense), x, names)
    return {n: maps[n][0].float().cpu().numpy() for n in names}


def map_to_classifier(spec: DenseSpec, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A dense model's state dict (or checkpoint), cut down to its backbone under the classifier's names.

    ``backbone.body.layer1.0.conv1.weight`` becomes ``layer1.0.conv1.weight`` (R-CNN, RetinaNet, FCOS),
    ``backbone.layer1...`` the same (DeepLabV3, FCN); SSD's ``backbone.features.21.weight`` stays
    ``features.21.weight`` and ``backbone.extra.0.1.weight`` (conv5_1) becomes ``features.24.weight``.
    Everything else (neck, heads) is left out.
    """
    out = {}
    for classifier_name, dense_name in spec.trunk:
        prefix = dense_name + "."
        for key, value in state.items():
            if key.startswith(prefix):
                out[f"{classifier_name}.{key[len(prefix) :]}"] = value
    return out


def backbone_state(dense: DenseModel) -> dict[str, torch.Tensor]:
    """The dense model's backbone weights under the classifier's module names (copies, on the CPU).

    They load into torchvision's classifier (``resnet50()``, ``resnet101()``, ``vgg16()``) with only its
    head missing (``fc``, ``classifier``); batch norms' ``num_batches_tracked`` is missing where training
    froze them (a counter, unused in eval).
    """
    state = {k: v.detach().cpu().clone() for k, v in dense.model.state_dict().items()}
    return map_to_classifier(dense.spec, state)


def _stage_modules(spec: DenseSpec) -> dict[int, tuple[str, ...]]:
    """The classifier modules of the trunk that belong to each stage: those after the previous stage's
    last layer, up to its own."""
    names = [c for c, _ in spec.trunk]
    out, start = {}, 0
    for stage in get_spec(spec.backbone).stages:
        end = names.index(stage.last.name) + 1
        out[stage.index] = tuple(names[start:end])
        start = end
    return out


def frozen_stages(dense: DenseModel | DenseSpec | str) -> tuple[StageSpec, ...]:
    """The classifier's stages whose weights the dense model's training kept at their ImageNet values.

    R-CNN, RetinaNet, FCOS (``trainable_backbone_layers=3``): stage 1 (conv1) and stage 2 (layer1); SSD
    (4 of 5): stage 1 (conv1_1, conv1_2); DeepLabV3 and FCN: none. This is the recipe torchvision's
    trained weights were made with, true of the trained file; an untrained model has nothing to keep.
    Batch norms: see :attr:`DenseSpec.frozen_batch_norm`.
    """
    spec = _spec_of(dense)
    backbone = get_spec(spec.backbone)
    stages = _stage_modules(spec)
    return tuple(s for s in backbone.stages if all(spec.is_frozen(m) for m in stages[s.index]))


# ------------------------------------------------------------------------------------------- comparison


@dataclass(frozen=True, eq=False)
class ClassifierTrunk:
    """A classifier's backbone built with a dense model's strides, for comparing maps position by position.

    Attributes:
        dense: the dense model it was built for.
        backbone: the classifier spec (``"resnet50"``).
        weights: ``"untrained"`` or the weights file it holds.
        started_from: whether those are the weights the dense model's backbone started from.
        note: one sentence saying which weights these are.
        model: the eval-mode torchvision classifier (dilated or with a rounding-up pool where the dense
            model is: the weights are the classifier's, the strides the dense model's), its parts outside
            the trunk (pooling, head) replaced by ``nn.Identity``.
    """

    dense: str
    backbone: str
    weights: str
    started_from: bool
    note: str
    model: nn.Module = field(repr=False)


def classifier_trunk(
    dense: DenseModel | DenseSpec | str,
    weights: ClassifierWeights = "start",
    *,
    progress: ProgressCallback | None = None,
) -> ClassifierTrunk:
    """The classifier a dense model's backbone is compared with.

    Args:
        dense: the dense model, its spec or its name.
        weights: ``"start"``: the ImageNet weights its backbone started from (ResNet V1,
            ``resnet50-0676ba61.pth``; SSD: ``vgg16_features-amdegroot-88682ab5.pth``); ``"classifier"``:
            the classifier's own pretrained weights in this app (ResNet V2, which no detector started from;
            VGG-16's classification file, which expects inputs in [0, 1] where SSD feeds 0-255, so that
            comparison is rougher still);
            ``"untrained"``: the app's untrained classifier (seed 0), the baseline.
        progress: as in :func:`~backbone_viz.files.weights.ensure` (the file may download).

    Raises:
        WeightsError: the file is not here and cannot be fetched (the message names it and its size).
    """
    spec = _spec_of(dense)
    backbone = get_spec(spec.backbone)
    import torchvision

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(UNTRAINED_SEED)
        model = getattr(torchvision.models, spec.backbone)(**dict(spec.classifier_kwargs))
    for name in spec.ceil_mode_pools:
        model.get_submodule(name).ceil_mode = True
    if weights == "untrained":
        label, note, started = (
            "untrained",
            f"{backbone.title}, untrained (random weights): the baseline",
            False,
        )
    else:
        if weights == "start":
            wf, started = spec.start_file, True
            note = (
                f"{backbone.title} with {spec.start_enum}, the weights {spec.title}'s backbone started from"
            )
        elif weights == "classifier":
            wf, started = _classifier_file(backbone), False
            note = (f"{backbone.title} with this app's pretrained weights ({wf.filename}), not the "
                    f"{spec.start_enum} weights {spec.title} started from")  # fmt: skip
        else:
            raise ValueError(f"weights must be 'start', 'classifier' or 'untrained', got {weights!r}")
        try:
            path = weights_mod.ensure(wf, progress=progress)
        except WeightsError as error:
            raise WeightsError(
                f"Comparing with {backbone.title} needs {wf.filename} ({describe_size(wf.size_bytes)}). "
                f"{error.message}",
                f"Get it with 'python -m backbone_viz weights fetch {_fetch_name(spec, weights)}'.",
            ) from error
        _load_trunk(spec, model, read_checkpoint(path), path)
        label = wf.filename
    # Only the trunk is compared: dropping the rest frees VGG's 120 million classifier weights (480 MB).
    tops = {c.split(".", 1)[0] for c, _ in spec.trunk}
    for name, _ in list(model.named_children()):
        if name not in tops:
            setattr(model, name, nn.Identity())
    model.eval()
    for module in model.modules():
        if hasattr(module, "inplace") and isinstance(module.inplace, bool):
            module.inplace = False
    for param in model.parameters():
        param.requires_grad_(False)
    return ClassifierTrunk(spec.name, spec.backbone, label, started, note, model)


def _classifier_file(backbone: BackboneSpec) -> weights_mod.WeightsFile:
    if backbone.weights_file is None:
        raise ValueError(f"{backbone.title} has no downloadable weights file")
    return backbone.weights_file


def _fetch_name(spec: DenseSpec, weights: str) -> str:
    return spec.start_weights if weights == "start" else spec.backbone


def _load_trunk(spec: DenseSpec, model: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """Loads a classifier checkpoint; every trunk weight must be there with its shape (the head may be
    anything: SSD's start file has no usable classifier)."""
    expected = model.state_dict()
    trunk = {f"{c}." for c, _ in spec.trunk}
    needed = [
        k for k in expected if any(k.startswith(t) for t in trunk) and not k.endswith("num_batches_tracked")
    ]
    check_fit(
        {k: expected[k] for k in needed},
        {k: state[k] for k in needed if k in state},  # the head's keys are not read, so never reported
        path=path,
        title=get_spec(spec.backbone).title,
        hint=f"Use {spec.start_file.filename}.",
    )
    model.load_state_dict({k: state[k] for k in needed}, strict=False)


@dataclass(frozen=True)
class StageComparison:
    """One stage of a dense model's backbone beside the classifier's.

    Attributes:
        stage: the classifier spec's stage index.
        layer: the classifier layer that ends it (``"layer2.3"``).
        label: its display label.
        stride: input pixels per map pixel in the dense model (the classifier's, except in dilated stages).
        cka: linear CKA of the dense model's map and the classifier's, map positions of every picture as
            samples.
        baseline_cka: the same against the untrained classifier.
        frozen: whether training kept this stage (:func:`frozen_stages`).
        max_weight_change: largest absolute difference between the stage's weights in the two models
            (0.0 where training kept them and the classifier holds the weights it started from).
        positions: the number of map positions compared.
    """

    stage: int
    layer: str
    label: str
    stride: int
    cka: float
    baseline_cka: float
    frozen: bool
    max_weight_change: float
    positions: int


@dataclass(frozen=True)
class BackboneComparison:
    """A dense model's backbone compared with a classifier's, stage by stage, over several pictures.

    Attributes:
        model: the dense model's name.
        backbone: the classifier spec.
        classifier_weights: the classifier's weights file (or ``"untrained"``).
        started_from: whether the classifier holds the weights the dense model started from; when False,
            a difference includes the classifiers' own difference (say so).
        note: one sentence saying which classifier weights were used.
        pictures: how many pictures were pooled.
        stages: one :class:`StageComparison` per stage, shallow to deep.
    """

    model: str
    backbone: str
    classifier_weights: str
    started_from: bool
    note: str
    pictures: int
    stages: tuple[StageComparison, ...]


def _spec_of(dense: DenseModel | DenseSpec | str) -> DenseSpec:
    if isinstance(dense, str):
        from backbone_viz.dense.specs import get_dense_spec

        return get_dense_spec(dense)
    return dense.spec if isinstance(dense, DenseModel) else dense


def default_classifier(
    dense: DenseModel | DenseSpec | str, *, progress: ProgressCallback | None = None
) -> ClassifierTrunk:
    """The fairest classifier that is here: the weights the dense model started from when they are in the
    cache, else the app's own classifier weights when those are, else a fetch of the start weights."""
    spec = _spec_of(dense)
    if weights_mod.cached_path(spec.start_file) is None:
        backbone = get_spec(spec.backbone)
        if backbone.weights_file is not None and weights_mod.cached_path(backbone.weights_file) is not None:
            return classifier_trunk(spec, "classifier")
    return classifier_trunk(spec, "start", progress=progress)


@runs_model
def compare_backbones(
    dense: DenseModel,
    images: Sequence[Image.Image],
    *,
    classifier: ClassifierTrunk | None = None,
    baseline: ClassifierTrunk | None = None,
    size: int | None = None,
    max_positions: int = 8192,
    seed: int = 0,
) -> BackboneComparison:
    """Linear CKA between the dense model's backbone and a classifier's, stage by stage.

    Both backbones read the same input tensor (the dense model's own resize and normalisation) and have
    the same strides (the classifier is built dilated where the dense model is), so their maps line up
    position by position; each position of each picture is one sample. One picture alone inflates the
    deepest stage's CKA (few positions): pool several and read the untrained baseline beside it.

    Args:
        dense: the dense model.
        images: the pictures to pool (at least 1; the sample gallery's 7 is a good number).
        classifier: default :func:`default_classifier` (the weights it started from, when here).
        baseline: default the untrained classifier.
        size: the shorter side to compare at (:func:`backbone_input`); default the dense model's own input
            (:func:`~backbone_viz.dense.models.model_input`). Smaller is cheaper: the backbones are fully
            convolutional.
        max_positions: positions kept per stage over all pictures (an even random subset, the same for
            every model), which bounds time and memory at the early, large stages.
        seed: of that subset.

    Returns:
        A :class:`BackboneComparison`.

    Raises:
        ValueError: no pictures, or trunks made for another dense model.
        WeightsError: no classifier weights here and none to fetch.
    """
    if not images:
        raise ValueError("compare_backbones needs at least one picture")
    classifier = classifier or default_classifier(dense)
    baseline = baseline or classifier_trunk(dense, "untrained")
    for trunk in (classifier, baseline):
        if trunk.dense != dense.name:
            raise ValueError(f"that classifier was built for {trunk.dense}, not {dense.name}")
    spec = dense.spec
    names = stage_layers(spec)
    mods = {
        "dense": _dense_modules(dense),
        "classifier": [(c, classifier.model.get_submodule(c)) for c, _ in spec.trunk],
        "baseline": [(c, baseline.model.get_submodule(c)) for c, _ in spec.trunk],
    }
    per_picture = max(1, max_positions // len(images))
    generator = np.random.default_rng(seed)
    feats: dict[str, dict[str, list[np.ndarray]]] = {k: {n: [] for n in names} for k in mods}
    strides: dict[str, int] = {}
    for image in images:
        x = model_input(dense, image) if size is None else backbone_input(dense, image, size)
        with torch.inference_mode():
            outs = {k: _run(m, x.to(_device_of(m)), names) for k, m in mods.items()}
        for n in names:
            c, h, w = outs["dense"][n].shape[1:]
            strides[n] = round(x.shape[-2] / h)
            take = np.sort(generator.permutation(h * w)[:per_picture])
            for k in mods:
                flat = outs[k][n][0].reshape(c, h * w).float().cpu().numpy()
                feats[k][n].append(flat[:, take].T)
    classifier_state = classifier.model.state_dict()
    dense_state = backbone_state(dense)
    frozen = {s.index for s in frozen_stages(spec)}
    stage_mods = _stage_modules(spec)
    backbone = get_spec(spec.backbone)
    stages = []
    for stage in backbone.stages:
        n = stage.last.name
        x_ = np.concatenate(feats["dense"][n])
        keys = [k for k in dense_state if any(k.startswith(m + ".") for m in stage_mods[stage.index])]
        keys = [k for k in keys if k in classifier_state and not k.endswith("num_batches_tracked")]
        change = max(
            (float((dense_state[k].float() - classifier_state[k].float().cpu()).abs().max()) for k in keys),
            default=0.0,
        )
        stages.append(
            StageComparison(
                stage=stage.index,
                layer=n,
                label=stage.last.label,
                stride=strides[n],
                cka=linear_cka(x_, np.concatenate(feats["classifier"][n])),
                baseline_cka=linear_cka(x_, np.concatenate(feats["baseline"][n])),
                frozen=stage.index in frozen,
                max_weight_change=change,
                positions=len(x_),
            )
        )
    return BackboneComparison(
        model=dense.name,
        backbone=spec.backbone,
        classifier_weights=classifier.weights,
        started_from=classifier.started_from,
        note=classifier.note,
        pictures=len(images),
        stages=tuple(stages),
    )


def _device_of(modules: Sequence[tuple[str, nn.Module]]) -> torch.device:
    for _, module in modules:
        for param in module.parameters():
            return param.device
    return torch.device("cpu")


def backbone_input(dense: DenseModel, image: Image.Image, size: int) -> torch.Tensor:
    """The dense model's normalisation at another size: shorter side ``size``, no padding. (1, 3, h, w).

    For comparisons at a smaller size than the model runs at (cheaper; the backbones are fully
    convolutional).
    """
    image = image.convert("RGB")
    if dense.spec.kind == "semantic segmenter":
        t = dense.spec.weights().transforms()
        mean, std = list(t.mean), list(t.std)
    else:
        mean, std = list(dense.model.transform.image_mean), list(dense.model.transform.image_std)
    x = TF.resize(TF.to_tensor(image), [size], antialias=True)
    return TF.normalize(x, mean=mean, std=std).unsqueeze(0).to(dense.device)

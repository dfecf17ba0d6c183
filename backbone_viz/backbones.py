"""Building a backbone with its weights, ready to be shared by every session.

``load_backbone`` returns a :class:`Backbone`: the eval-mode model, its spec, its class names, its own
preprocessing and a traced extractor (see :mod:`backbone_viz.graph`). Everything that changes the model
happens here, once, before anyone else sees it; afterwards nothing in backbone-viz mutates it.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch import nn

from . import weights as weights_mod
from .errors import WeightsError
from .graph import build_extractor
from .specs import BackboneSpec, Preprocessing, get_spec, imagenet_categories

#: What ``weights=`` accepts besides a checkpoint path.
WEIGHT_CHOICES = ("pretrained", "untrained")

#: Seed of the random initialisation behind ``weights="untrained"``.
UNTRAINED_SEED = 0

ProgressCallback = Callable[[int, "int | None"], None]


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
        extractor: the traced graph returning every listed layer, the pooled vector and the logits.
    """

    spec: BackboneSpec
    model: nn.Module
    weights: str
    categories: tuple[str, ...]
    device: torch.device
    extractor: torch.fx.GraphModule = field(repr=False)

    @property
    def name(self) -> str:
        return self.spec.name

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


def default_device() -> torch.device:
    """The GPU when one is present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


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
        device: where to run; default the GPU when present, else the CPU.
        progress: called as ``progress(done_bytes, total_bytes)`` while pretrained weights download.

    Returns:
        The loaded :class:`Backbone`.

    Raises:
        ValueError: unknown backbone name.
        WeightsError: weights missing and not downloadable, or a checkpoint that does not fit.
    """
    spec = get_spec(name)
    # A fixed, local seed: "untrained" is then the same random network in every process and after
    # every cache reload, so a learner (and a test) sees reproducible maps; the global RNG is untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(UNTRAINED_SEED)
        model = spec.build()
    categories = imagenet_categories()
    if isinstance(weights, os.PathLike) or weights not in WEIGHT_CHOICES:
        path = Path(weights)
        state = read_checkpoint(path)
        categories = _fit_checkpoint(spec, model, state, path)
        weights = str(path)
    elif weights == "pretrained":
        if spec.weights_file is None:
            path = weights_mod.bundled_path(spec.name)
            state = _from_efficientnet_pytorch(read_checkpoint(path))
        else:
            path = weights_mod.ensure(spec.weights_file, progress=progress)
            state = read_checkpoint(path)
        categories = _fit_checkpoint(spec, model, state, path)
    _prepare(model)
    target = torch.device(device) if device is not None else default_device()
    model.to(target)
    layers = [layer.name for layer in spec.layers]
    extractor = build_extractor(model, layers, head=spec.head, pooled=spec.pooled)
    return Backbone(spec, model, str(weights), tuple(categories), target, extractor)


def _prepare(model: nn.Module) -> None:
    """Makes a freshly built model safe to share: eval mode, no in-place activations, no param grads.

    In-place activations (torchvision's ``ReLU(inplace=True)``) would overwrite a layer's output after
    it was captured (pytorch/pytorch#61519). GoogLeNet's BasicConv2d calls ``F.relu(inplace=True)`` on
    its own BatchNorm output, which is never a captured tensor, so it is left as it is.
    """
    model.eval()
    for module in model.modules():
        if hasattr(module, "inplace") and isinstance(module.inplace, bool):
            module.inplace = False
    for param in model.parameters():
        param.requires_grad_(False)


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """Reads a state dict safely: never runs code stored in the file.

    Args:
        path: a ``.safetensors`` file, or a torch file (``.pth``/``.pt``/``.bin``) read with
            ``weights_only=True``. A dict wrapping the state dict under ``"state_dict"`` or ``"model"``
            and a ``"module."`` prefix (from DataParallel) are unwrapped.

    Returns:
        ``{parameter name: tensor}`` on the CPU.

    Raises:
        WeightsError: missing, damaged, unsafe or not a state dict.
    """
    if not path.is_file():
        raise WeightsError(
            f"There is no weights file at {path}.",
            "Check the path, or choose 'pretrained' or 'untrained' weights instead.",
        )
    damaged_hint = f"Delete {path} and fetch or copy it again."
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsError(
            f"{path.name} contains Python objects or code, not only weights, so it was not loaded "
            "(loading it could run that code on this computer).",
            "Save only the model's state_dict() (torch.save(model.state_dict(), path)) or use .safetensors.",
        ) from exc
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
        raise WeightsError(
            f"The weights file {path} is incomplete or damaged and could not be read ({_short(exc)}).",
            damaged_hint,
        ) from exc
    except Exception as exc:  # safetensors raises its own SafetensorError, among others
        raise WeightsError(
            f"The weights file {path} could not be read ({_short(exc)}).", damaged_hint
        ) from exc
    if isinstance(state, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), Mapping):
                state = state[key]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(
            f"{path.name} is not a state dict (a mapping of parameter names to tensors).",
            "Save the model with torch.save(model.state_dict(), path).",
        )
    return {k.removeprefix("module."): v for k, v in state.items()}


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


def _fit_checkpoint(
    spec: BackboneSpec, model: nn.Module, state: dict[str, torch.Tensor], path: Path
) -> tuple[str, ...]:
    """Loads ``state`` into ``model``, resizing the classifier if the checkpoint has another class count.

    Returns:
        The class names of the loaded head.

    Raises:
        WeightsError: keys or shapes that do not fit, listed by name.
    """
    # GoogLeNet's pretrained file still holds the auxiliary training heads, which the model drops.
    state = {k: v for k, v in state.items() if not k.startswith(("aux1.", "aux2."))}
    head = model.get_submodule(spec.head)
    head_weight = state.get(f"{spec.head}.weight")
    if isinstance(head, nn.Linear) and head_weight is not None and head_weight.ndim == 2:
        classes, features = head_weight.shape
        if features == head.in_features and classes != head.out_features:
            parent, _, child = spec.head.rpartition(".")
            setattr(model.get_submodule(parent), child, nn.Linear(features, classes))
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} {tuple(state[k].shape)} (needs {tuple(v.shape)})"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or wrong:
        parts = []
        for label, items in (("missing", missing), ("not in this model", unexpected), ("wrong shape", wrong)):
            if items:
                more = f" and {len(items) - 3} more" if len(items) > 3 else ""
                parts.append(f"{label}: {', '.join(items[:3])}{more}")
        raise WeightsError(
            f"{path.name} does not fit {spec.title}: " + "; ".join(parts) + ".",
            f"Use a checkpoint saved from torchvision/timm's {spec.title}, or pick the backbone it was made for.",
        )
    model.load_state_dict(state, strict=True)
    out_features = model.get_submodule(spec.head).out_features
    if out_features == 1000 and not (path.parent / "labels.txt").is_file():
        return imagenet_categories()
    return _labels_beside(path, out_features)


def _labels_beside(path: Path, count: int) -> tuple[str, ...]:
    """Class names from ``labels.txt`` next to a checkpoint, else ``class 0 .. class count-1``."""
    labels_file = path.parent / "labels.txt"
    if labels_file.is_file():
        labels = [line.strip() for line in labels_file.read_text(encoding="utf-8").splitlines() if line.strip()]
        if len(labels) == count:
            return tuple(labels)
        raise WeightsError(
            f"{labels_file} lists {len(labels)} class names, but the checkpoint's head has {count} classes.",
            "Put exactly one class name per line, in the head's order.",
        )
    return tuple(f"class {i}" for i in range(count))


# The bundled EfficientNet-Lite0 file uses the naming of the efficientnet_pytorch package. Its keys map
# one-to-one onto timm's tf_efficientnet_lite0: blocks numbered flat there are grouped by stage in timm.
_LITE0_DEPTHS = (1, 2, 2, 3, 3, 4, 1)
_TOP_LEVEL = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
# The first block is depthwise-separable (no expansion); the others are inverted residuals.
_DS_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_IR_BLOCK = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_BLOCK_KEY = re.compile(r"_blocks\.(\d+)\.(\w+)\.(\w+)$")


def _from_efficientnet_pytorch(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Renames an efficientnet_pytorch-style Lite0 state dict to timm's names; timm-named keys pass."""
    if not any(k.startswith("_") for k in state):
        return state
    positions = [(s, i) for s, depth in enumerate(_LITE0_DEPTHS) for i in range(depth)]
    renamed = {}
    for key, value in state.items():
        match = _BLOCK_KEY.match(key)
        if match:
            flat, module, param = int(match[1]), match[2], match[3]
            if flat >= len(positions):
                renamed[key] = value  # reported as "not in this model" by _fit_checkpoint
                continue
            stage, index = positions[flat]
            table = _DS_BLOCK if flat == 0 else _IR_BLOCK
            renamed[f"blocks.{stage}.{index}.{table.get(module, module)}.{param}"] = value
        else:
            module, _, param = key.partition(".")
            renamed[f"{_TOP_LEVEL.get(module, module)}.{param}"] = value
    return renamed

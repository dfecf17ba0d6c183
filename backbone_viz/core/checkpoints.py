"""Reading a weights file safely and fitting it into a freshly built model.

``read_checkpoint`` never runs code stored in a file (``weights_only=True`` or safetensors);
``fit_checkpoint`` loads a state dict into a model, accepting a classifier with another class count and
naming every key or shape that does not fit (``check_fit``, which the dense models' loader uses too).
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

from backbone_viz.core.specs import BackboneSpec, imagenet_categories
from backbone_viz.errors import WeightsError


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


def fit_checkpoint(
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
    check_fit(
        model.state_dict(),
        state,
        path=path,
        title=spec.title,
        hint=f"Use a checkpoint saved from torchvision/timm's {spec.title}, or pick the backbone it was made for.",
    )
    model.load_state_dict(state, strict=True)
    out_features = model.get_submodule(spec.head).out_features
    if out_features == 1000 and not (path.parent / "labels.txt").is_file():
        return imagenet_categories()
    return labels_beside(path, out_features)


def check_fit(
    expected: Mapping[str, torch.Tensor],
    state: Mapping[str, torch.Tensor],
    *,
    path: Path,
    title: str,
    hint: str,
    may_miss: Callable[[str], bool] = lambda key: False,
) -> None:
    """Raises, naming every key and shape of ``state`` that does not fit ``expected``.

    Args:
        expected: the model's own ``state_dict()``, ``{parameter name: tensor}``.
        state: the checkpoint's ``{parameter name: tensor}``.
        path: the checkpoint file, named in the message.
        title: the model the checkpoint should fit (``"ResNet-50"``), named in the message.
        hint: what the student can do instead.
        may_miss: keys of ``expected`` that ``state`` may lack (a training counter, say).

    Raises:
        WeightsError: keys missing, keys not in the model, or shapes that differ; the first three of
            each are named, then how many more.
    """
    missing = [k for k in expected if k not in state and not may_miss(k)]
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
        raise WeightsError(f"{path.name} does not fit {title}: " + "; ".join(parts) + ".", hint)


def labels_beside(path: Path, count: int) -> tuple[str, ...]:
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

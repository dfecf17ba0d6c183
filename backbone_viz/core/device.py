"""Where the model runs (the CPU or a GPU) and in what precision.

The device is the teacher's choice: ``--device`` on the command line and on ``serve``, or the
environment variable ``BACKBONE_VIZ_DEVICE`` (``cpu``, ``cuda``, ``cuda:1``... or ``auto``); unset or
``auto`` means the GPU when torch sees one, else the CPU.

On a GPU the explanations must be the CPU's: since Ampere, cuDNN's convolutions compute float32 in
TF32 by default (10 bits of mantissa), which moved untrained EfficientNet-Lite0's Grad-CAM by up to
36 % of its maximum on an H200, where full float32 agrees with the CPU to a few parts in a million.
So a backbone loaded on CUDA turns TF32 off for the process (:func:`use_full_float32`), unless
``BACKBONE_VIZ_TF32=1`` asks for the faster, less exact maps. The flags are torch's process-wide ones
(there is no per-call switch that is safe while other threads run models), set through the legacy
``allow_tf32`` attributes because every torch since 1.12 reads them and mixing them with the newer
``fp32_precision`` API makes torch raise when either is read.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from backbone_viz.errors import BackboneVizError

if TYPE_CHECKING:
    import torch

#: Environment variable that chooses the device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
DEVICE_ENV = "BACKBONE_VIZ_DEVICE"
#: Environment variable that keeps TF32 on for a CUDA backbone (``1``); off by default.
TF32_ENV = "BACKBONE_VIZ_TF32"
#: What ``--device`` and :data:`DEVICE_ENV` accept, as a help text.
DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"

#: The help of every ``--device`` option.
DEVICE_HELP = (
    f"where the models run: {DEVICE_CHOICES} (default: {DEVICE_ENV}, else the GPU when there is one)"
)

_VALID = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def resolve_device(choice: str | torch.device | None = None) -> torch.device:
    """The device a backbone runs on.

    Args:
        choice: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"auto"``, a ``torch.device``, or None for
            :data:`DEVICE_ENV` (``auto`` when unset): the GPU when torch sees one, else the CPU.

    Raises:
        BackboneVizError: a name that is no device, or a GPU asked for where torch sees none.
    """
    import torch  # here, not at the top: the command line's help and serve's supervisor need no torch

    if isinstance(choice, torch.device):
        choice = str(choice)
    source = "--device"
    if choice is None:
        choice, source = os.environ.get(DEVICE_ENV, "").strip() or "auto", DEVICE_ENV
    wanted = choice.strip().lower()
    if not _VALID.match(wanted):
        raise BackboneVizError(
            f"{source} is {choice!r}, which is not a device backbone-viz can run on.",
            f"Use one of {DEVICE_CHOICES} (auto: the GPU when there is one, else the CPU).",
        )
    if wanted == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(wanted)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise BackboneVizError(
                f"{source} asks for a GPU ({choice}), but torch sees no GPU on this computer.",
                "Run on the CPU (cpu), or leave the choice to backbone-viz (auto).",
            )
        if device.index is not None and device.index >= count:
            raise BackboneVizError(
                f"{source} asks for GPU number {device.index}, but this computer has {count} "
                f"(cuda:0 to cuda:{count - 1}).",
                "Pick one of those, or just cuda for the first.",
            )
    return device


def default_device() -> torch.device:
    """The device :data:`DEVICE_ENV` names; unset, the GPU when present, else the CPU."""
    return resolve_device(None)


def tf32_allowed() -> bool:
    """Whether :data:`TF32_ENV` keeps TF32 on for CUDA backbones (off unless it is ``1``)."""
    return os.environ.get(TF32_ENV, "").strip() == "1"


def use_full_float32(*, tf32: bool | None = None) -> None:
    """Sets cuDNN's convolutions and CUDA's matrix products to full float32 (or TF32), process-wide.

    Args:
        tf32: True keeps TF32 (faster on Ampere and later, maps differ from the CPU's); default
            :func:`tf32_allowed`.
    """
    import torch

    allow = tf32_allowed() if tf32 is None else tf32
    torch.backends.cudnn.allow_tf32 = allow
    torch.backends.cuda.matmul.allow_tf32 = allow


def describe_device(device: torch.device) -> str:
    """Where a backbone runs, for a person: ``"the CPU"`` or ``"GPU 0 (NVIDIA H200)"``."""
    if device.type != "cuda":
        return "the CPU"
    import torch

    index = device.index if device.index is not None else torch.cuda.current_device()
    precision = ", TF32" if tf32_allowed() else ""
    return f"GPU {index} ({torch.cuda.get_device_name(index)}{precision})"

"""Feature visualization: the picture a channel likes most, made by optimizing the picture itself.

The standard recipe of Olah, Mordvintsev and Schubert ("Feature Visualization", Distill 2017), as Lucid
wrote it, written here in ~150 lines rather than taken from a library:

* the picture is parameterized in a **Fourier space** whose frequencies are scaled by ``1 / f``, so that
  a gradient step changes every frequency about equally instead of mostly the finest ones (which makes
  high-frequency noise). The constant (DC) term is KEPT: a channel that fires on large even areas of a
  colour needs it. (``horama`` standardizes its image, which removes the mean: a stage-1 colour channel
  of Lite0 reached 3.4 to 3.8 against 6.35 on a real photo.)
* the colours are **decorrelated**: the three parameter channels are mixed by the square root of
  ImageNet's colour covariance, then squashed into [0, 1] by a sigmoid;
* **transformation robustness**: at each step every copy is padded, jittered, scaled (0.9 to 1.1) and
  rotated (up to 10 degrees) at random, so that the picture must work wherever the pattern lands;
* the objective is the channel's mean value over the map, read through a hook-free extractor that
  stops at the layer (:meth:`backbone_viz.Backbone.extract`). Where a layer ends in a ReLU or ReLU6 the
  objective is the value BEFORE the activation: after it, a channel that starts below zero has zero
  gradient and the picture never moves (Lite0's ``last_conv`` ends in ReLU6, inside timm's
  ``BatchNormAct2d``; its batch norm is then applied here as a function of the module's own buffers).

Why not a library: ``torch-lucent``'s ``render_vis`` registers forward hooks on every module of the model
it is given (the model here is shared by every session and thread); ``horama``'s Fourier recipe
standardizes the image, which drops the DC term, its MACO recipe fetches an ImageNet spectrum from the
network, and it imports ``einops`` without declaring it. The recipe itself is short.

Randomness comes only from a local ``torch.Generator`` per channel, seeded by ``seed``: the same seed gives
the same picture, whether the channel is optimized alone or with others, in any thread. The shared model
is only run: no hooks, no ``.backward()`` (gradients with ``torch.autograd.grad`` with respect to the
picture's own parameters), no change of mode or ``requires_grad``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from timm.layers import BatchNormAct2d
from torch import nn

from backbone_viz.core.backbones import Backbone
from backbone_viz.core.runs import runs_model
from backbone_viz.core.specs import LayerSpec
from backbone_viz.errors import BackboneVizError

#: ``progress(done, total)``: optimization steps done, over all channels; may raise to cancel.
FeatureVisProgress = Callable[[int, int], None]

#: Optimization steps when ``steps`` is None.
DEFAULT_STEPS = 128
#: Transformed copies of each picture per step (their objectives are averaged); each costs a full
#: forward and backward pass on a CPU, and one random transformation per step is enough (bench/featurevis.py).
COPIES = 1
#: Adam's learning rate on the Fourier parameters (Lucid's).
LEARNING_RATE = 0.05
#: Channels optimized in one batch. On this 2-core CPU, with one torch thread, a batch of 8 cost 0.64x
#: the time of 8 single runs (bench/featurevis.py); each channel keeps its own generator, so its picture
#: does not depend on its batch-mates beyond rounding.
CPU_BATCH, GPU_BATCH = 8, 32

# The square root of ImageNet's colour covariance (Lucid's color_correlation_svd_sqrt), columns scaled so
# that the largest has norm 1.
_COLOR_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
_COLOR = _COLOR_SQRT / _COLOR_SQRT.norm(dim=0).max()


@dataclass(frozen=True, eq=False)
class FeatureVis:
    """The feature visualization of one channel.

    Attributes:
        image: the optimized picture, RGB, ``size`` × ``size``.
        layer: the layer's dotted name.
        channel: the channel's index in the layer's output.
        activation: the channel's mean value over the layer's output map for ``image`` as saved (8 bits),
            seen without any transformation; comparable with the same mean on a real picture.
        trace: (steps,) float32, the objective at each step (mean over the transformed copies; the value
            before the activation where the layer ends in one).
    """

    image: Image.Image = field(repr=False)
    layer: str
    channel: int
    activation: float
    trace: np.ndarray = field(repr=False)


@runs_model
def visualize_channel(
    backbone: Backbone,
    layer: str | LayerSpec,
    channel: int,
    *,
    size: int = 128,
    steps: int | None = None,
    seed: int = 0,
    progress: FeatureVisProgress | None = None,
) -> FeatureVis:
    """The feature visualization of one channel; see :func:`visualize_channels`."""
    (result,) = visualize_channels(
        backbone, layer, [channel], size=size, steps=steps, seed=seed, progress=progress
    )
    return result


@runs_model
def visualize_channels(
    backbone: Backbone,
    layer: str | LayerSpec,
    channels: Sequence[int],
    *,
    size: int = 128,
    steps: int | None = None,
    seed: int = 0,
    progress: FeatureVisProgress | None = None,
) -> tuple[FeatureVis, ...]:
    """Optimizes one picture per channel so that the channel fires as strongly as it can.

    Args:
        backbone: a loaded backbone; it is only run.
        layer: a layer of ``backbone.spec`` (dotted name, label or spec).
        channels: channel indices of that layer's output.
        size: side of each picture in pixels (at least 32).
        steps: optimization steps (default :data:`DEFAULT_STEPS`).
        seed: seeds each channel's own random generator; the same seed gives the same picture.
        progress: called as ``progress(done, total)`` after each step; an exception it raises stops the
            work (the model is left as it was).

    Returns:
        One :class:`FeatureVis` per channel, in the order given.

    Raises:
        BackboneVizError: a channel the layer does not have, or a size below 32 pixels.
        ValueError: an unknown layer; steps below 1.
    """
    spec = layer if isinstance(layer, LayerSpec) else backbone.spec.layer(layer)
    channels = [int(c) for c in channels]
    bad = [c for c in channels if not 0 <= c < spec.channels]
    if bad:
        raise BackboneVizError(
            f"{spec.label} has channels 0 to {spec.channels - 1}; there is no channel {bad[0]}.",
            "Pick a channel number in that range.",
        )
    if size < 32:
        raise BackboneVizError(f"A {size} px picture is too small to show a feature.", "Use 32 px or more.")
    steps = DEFAULT_STEPS if steps is None else int(steps)
    if steps < 1:
        raise ValueError(f"steps must be at least 1, not {steps}")
    node, before_activation = objective_node(backbone, spec)
    batch = GPU_BATCH if backbone.device.type == "cuda" else CPU_BATCH
    total = steps * len(channels)
    results: list[FeatureVis] = []
    for start in range(0, len(channels), batch):
        chunk = channels[start : start + batch]

        def chunk_progress(
            step: int, _steps: int, offset: int = start * steps, width: int = len(chunk)
        ) -> None:
            if progress is not None:
                progress(offset + step * width, total)

        images, traces = _optimize(
            backbone, node, before_activation, chunk, size, steps, seed, chunk_progress
        )
        activations = channel_means(backbone, spec.name, images, chunk)
        results += [
            FeatureVis(image, spec.name, c, a, t)
            for image, c, a, t in zip(images, chunk, activations, traces, strict=True)
        ]
    return tuple(results)


@runs_model
def channel_means(
    backbone: Backbone, layer: str, images: Sequence[Image.Image], channels: Sequence[int]
) -> list[float]:
    """Channel ``channels[i]``'s mean value over ``layer``'s output map for ``images[i]`` (no resize, no crop)."""
    x = torch.cat([backbone.to_tensor(image) for image in images])
    with torch.no_grad():
        out = backbone.extract(x, [layer])[layer]
    return [float(out[i, c].mean()) for i, c in enumerate(channels)]


def objective_node(
    backbone: Backbone, layer: LayerSpec
) -> tuple[str, Callable[[torch.Tensor], torch.Tensor]]:
    """The node to maximize for ``layer`` and the function that turns its output into the objective map.

    A layer whose last node is an activation (ReLU, ReLU6, or timm's ``BatchNormAct2d`` with one) is
    maximized before that activation: the node that feeds it, through the batch norm where there is one.
    Any other layer is maximized as it is.

    Returns:
        ``(node name, f)`` where ``f`` maps the node's output (N, C, h, w) to the values to maximize.
    """
    node = backbone.graph.resolve(layer.name)
    module = _module_of(backbone.model, node)
    if isinstance(module, BatchNormAct2d) and not isinstance(module.act, nn.Identity):
        bn = module

        def batch_norm(x: torch.Tensor) -> torch.Tensor:
            # Eval-mode batch norm as a function of the module's buffers: nothing in the module changes.
            return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)

        return _input_node(backbone, node), batch_norm
    if isinstance(module, (nn.ReLU, nn.ReLU6)):
        return _input_node(backbone, node), _identity
    return node, _identity


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _module_of(model: nn.Module, node: str) -> nn.Module | None:
    """The module a call node runs: ``"features.3"``, or ``"layer1.0.relu_2"`` (a module's third call)."""
    for name in (node, node.rsplit("_", 1)[0]):
        try:
            return model.get_submodule(name)
        except AttributeError:
            continue
    return None


def _input_node(backbone: Backbone, node: str) -> str:
    """The node that feeds ``node``: the one before it in forward order (an activation's input)."""
    names = backbone.node_names
    return names[names.index(node) - 1]


def _optimize(
    backbone: Backbone,
    node: str,
    before_activation: Callable[[torch.Tensor], torch.Tensor],
    channels: Sequence[int],
    size: int,
    steps: int,
    seed: int,
    progress: FeatureVisProgress,
) -> tuple[list[Image.Image], list[np.ndarray]]:
    """Optimizes one picture per channel in one batch; returns the 8-bit pictures and the traces."""
    device = backbone.device
    generators = [torch.Generator().manual_seed(seed) for _ in channels]
    spectrum = torch.stack([0.01 * torch.randn(3, size, size // 2 + 1, 2, generator=g) for g in generators])
    spectrum = spectrum.to(device).requires_grad_(True)
    scale = _frequency_scale(size).to(device)
    optimizer = torch.optim.Adam([spectrum], lr=LEARNING_RATE)
    p = backbone.preprocessing
    mean = torch.tensor(p.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(p.std, device=device).view(1, 3, 1, 1)
    index = torch.tensor(channels, device=device).repeat_interleave(COPIES)
    rows = torch.arange(len(index), device=device)
    traces = np.zeros((len(channels), steps), dtype=np.float32)
    with torch.enable_grad():
        for step in range(steps):
            rgb = _to_rgb(spectrum, scale, size)
            theta = torch.cat([_random_affine(g, COPIES) for g in generators]).to(device)
            seen = _transform(rgb.repeat_interleave(COPIES, dim=0), theta)
            out = before_activation(backbone.extract((seen - mean) / std, [node])[node])
            per_copy = out[rows, index].mean(dim=(1, 2))
            objective = per_copy.view(len(channels), COPIES).mean(dim=1)
            (grad,) = torch.autograd.grad(-objective.sum(), [spectrum])
            spectrum.grad = grad
            optimizer.step()
            traces[:, step] = objective.detach().cpu().numpy()
            progress(step + 1, steps)
    with torch.no_grad():
        rgb = _to_rgb(spectrum, scale, size)
    pixels = (rgb.permute(0, 2, 3, 1).cpu().numpy() * 255.0).round().clip(0, 255).astype(np.uint8)
    return [Image.fromarray(p, "RGB") for p in pixels], list(traces)


def _frequency_scale(size: int) -> torch.Tensor:
    """(size, size // 2 + 1, 1) weights ``1 / f`` of the real FFT's frequencies; the DC term gets ``size``."""
    fy = torch.fft.fftfreq(size).view(-1, 1)
    fx = torch.fft.rfftfreq(size).view(1, -1)
    freqs = torch.sqrt(fx * fx + fy * fy)
    return (1.0 / torch.clamp(freqs, min=1.0 / size)).unsqueeze(-1)


def _to_rgb(spectrum: torch.Tensor, scale: torch.Tensor, size: int) -> torch.Tensor:
    """The parameters (N, 3, size, size//2+1, 2) as pictures (N, 3, size, size) in [0, 1]."""
    image = torch.fft.irfft2(torch.view_as_complex(spectrum * scale), s=(size, size), norm="ortho") / 4.0
    colours = torch.einsum("ij,njhw->nihw", _COLOR.to(image.device), image)
    return torch.sigmoid(colours)


def _random_affine(generator: torch.Generator, n: int) -> torch.Tensor:
    """(n, 2, 3) random affine maps for ``affine_grid``: scale 0.9 to 1.1, rotation ±10°, shift ±8 %."""
    u = torch.rand(n, 4, generator=generator)
    s = 0.9 + 0.2 * u[:, 0]
    angle = math.radians(10.0) * (2.0 * u[:, 1] - 1.0)
    shift = 0.08 * (2.0 * u[:, 2:] - 1.0)
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    return torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], dim=1), torch.stack([sin, cos, shift[:, 1]], dim=1)], dim=1
    )


def _transform(rgb: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Pads each picture with grey by a tenth of its side, moves it by its affine map, keeps its size."""
    n, c, size, _ = rgb.shape
    pad = max(1, size // 10)
    padded = F.pad(rgb, (pad, pad, pad, pad), value=0.5)
    # The output window is the picture's size: the linear part shrinks to that share of the padded side.
    theta = torch.cat([theta[:, :, :2] * (size / (size + 2 * pad)), theta[:, :, 2:]], dim=2)
    grid = F.affine_grid(theta, [n, c, size, size], align_corners=False)
    return F.grid_sample(padded, grid, mode="bilinear", padding_mode="border", align_corners=False)

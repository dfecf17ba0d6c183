"""Turning an analysis into pictures: colour maps, overlays, channel grids and the one-page report.

Rendering never computes features; it only reads a frozen :class:`~backbone_viz.AnalysisResult`.
Maps are coloured with a matplotlib colormap used as a lookup table on numpy arrays (much faster than a
subplot per map), and figures are ``matplotlib.figure.Figure`` objects, never pyplot, whose global state
is not thread-safe (the web app renders for many sessions at once).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import cache
from typing import Literal

import matplotlib
import matplotlib.font_manager
import numpy as np
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont

from backbone_viz.core.specs import LayerSpec
from backbone_viz.explain.analysis import Activations, AnalysisResult, upsample
from backbone_viz.zoo import get_spec

#: The file formats :func:`encode` writes.
ImageFormat = Literal["png", "jpeg"]

#: Colormap for activations (dark = silent, bright = strongly active) and for Grad-CAM.
ACTIVATION_CMAP = "viridis"
GRADCAM_CMAP = "inferno"


@cache
def _lut(cmap: str) -> np.ndarray:
    """A (256, 3) uint8 lookup table for a matplotlib colormap."""
    colors = matplotlib.colormaps[cmap](np.linspace(0.0, 1.0, 256))[:, :3]
    return (colors * 255.0 + 0.5).astype(np.uint8)


def normalize(map2d: np.ndarray, vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """Scales a map to [0, 1] between ``vmin`` and ``vmax`` (default: its own min and max).

    A constant map (a silent channel) becomes all zeros rather than dividing by zero.
    """
    lo = float(np.min(map2d)) if vmin is None else vmin
    hi = float(np.max(map2d)) if vmax is None else vmax
    if hi - lo <= 1e-12:
        return np.zeros(np.shape(map2d), dtype=np.float32)
    return np.clip((np.asarray(map2d, dtype=np.float32) - lo) / (hi - lo), 0.0, 1.0)


def colorize(
    map2d: np.ndarray, *, cmap: str = ACTIVATION_CMAP, vmin: float | None = None, vmax: float | None = None
) -> np.ndarray:
    """Colours a (h, w) map with a colormap: returns (h, w, 3) uint8 RGB."""
    return _lut(cmap)[(normalize(map2d, vmin, vmax) * 255.0).astype(np.uint8)]


def map_image(
    map2d: np.ndarray,
    *,
    size: int | None = None,
    cmap: str = ACTIVATION_CMAP,
    vmin: float | None = None,
    vmax: float | None = None,
) -> Image.Image:
    """A coloured map as a PIL image, enlarged to ``size`` x ``size`` with visible pixels (nearest)."""
    image = Image.fromarray(colorize(map2d, cmap=cmap, vmin=vmin, vmax=vmax))
    return image.resize((size, size), Image.Resampling.NEAREST) if size else image


def overlay(
    crop: Image.Image,
    map2d: np.ndarray,
    *,
    alpha: float = 0.5,
    cmap: str = GRADCAM_CMAP,
    vmin: float | None = None,
    vmax: float | None = None,
) -> Image.Image:
    """Blends a map, upsampled bilinearly to the crop, over the crop.

    Args:
        crop: the image the model saw (RGB, W x H).
        map2d: (h, w) map of any layer.
        alpha: opacity of the map, 0 (crop only) to 1 (map only).

    Returns:
        RGB PIL image of the crop's size.
    """
    big = upsample(np.asarray(map2d, dtype=np.float32), (crop.height, crop.width))
    if vmin is None and vmax is None:
        vmin, vmax = float(np.min(map2d)), float(np.max(map2d))
    coloured = colorize(big, cmap=cmap, vmin=vmin, vmax=vmax).astype(np.float32)
    base = np.asarray(crop.convert("RGB"), dtype=np.float32)
    mixed = (1.0 - alpha) * base + alpha * coloured
    return Image.fromarray(np.clip(mixed + 0.5, 0, 255).astype(np.uint8))


def top_channels(activation: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` channels with the largest mean activation, most active first.

    Args:
        activation: (C, h, w) array.
        k: how many (clipped to C).
    """
    means = activation.reshape(activation.shape[0], -1).mean(axis=1)
    order = np.argsort(-means, kind="stable")
    return order[: max(1, min(k, activation.shape[0]))]


def representative_channel(activation: np.ndarray, *, candidates: int = 8) -> int:
    """The channel that stands for a layer in strips and reports.

    Among the ``candidates`` most active channels (largest mean), the one whose map varies most over
    the image (largest spatial standard deviation): the single most active channel is often saturated
    everywhere (a ReLU6 at its cap), which shows nothing.

    Args:
        activation: (C, h, w) array.
    """
    top = top_channels(activation, candidates)
    spread = activation[top].reshape(len(top), -1).std(axis=1)
    return int(top[int(np.argmax(spread))])


def representative(result: Activations, layer: LayerSpec) -> np.ndarray:
    """The map that stands for a layer, (h, w): see :func:`representative_channel`."""
    activation = result.activations[layer.name]
    return activation[representative_channel(activation)]


def channel_grid(
    activation: np.ndarray,
    channels: Sequence[int],
    *,
    shared_scale: bool = False,
    cols: int = 8,
    tile: int = 96,
    pad: int = 4,
    cmap: str = ACTIVATION_CMAP,
) -> Image.Image:
    """A grid of channel maps of one layer.

    Args:
        activation: (C, h, w) array.
        channels: which channels to draw, in order.
        shared_scale: one colour scale for all tiles (the layer's raw min/max over these channels), so
            magnitudes compare; else each tile uses its own min/max, so patterns show.
        cols: tiles per row.
        tile: side of each tile in pixels.
        pad: white gap between tiles in pixels.

    Returns:
        RGB PIL image.
    """
    channels = list(channels)
    rows = -(-len(channels) // cols)
    cols = min(cols, len(channels))
    grid = Image.new("RGB", (cols * (tile + pad) - pad, rows * (tile + pad) - pad), "white")
    maps = activation[channels]
    vmin, vmax = (float(maps.min()), float(maps.max())) if shared_scale else (None, None)
    for i, m in enumerate(maps):
        image = map_image(m, size=tile, cmap=cmap, vmin=vmin, vmax=vmax)
        grid.paste(image, ((i % cols) * (tile + pad), (i // cols) * (tile + pad)))
    return grid


def receptive_field_box(
    crop: Image.Image, layer: LayerSpec, *, center: tuple[int, int] | None = None, color: str = "#ff3b30"
) -> Image.Image:
    """Draws the layer's theoretical receptive field as a square on the crop.

    Args:
        crop: the image the model saw.
        layer: whose field to draw.
        center: (x, y) in crop pixels; default the crop's centre.

    Returns:
        A copy of the crop with the square (clipped to the image where the field is larger).
    """
    image = crop.convert("RGB").copy()
    cx, cy = center if center is not None else (crop.width // 2, crop.height // 2)
    half = layer.receptive_field / 2
    draw = ImageDraw.Draw(image)
    box = [cx - half, cy - half, cx + half, cy + half]
    draw.rectangle(box, outline=color, width=max(2, crop.width // 112))
    return image


def encode(
    image: Image.Image | Figure, format: ImageFormat = "png", *, quality: int = 90, fast: bool = False
) -> bytes:
    """The file bytes of a PIL image or a matplotlib figure: the one encoder of backbone-viz.

    Args:
        image: the picture (a figure is drawn at its own dpi, cropped to what it shows).
        format: ``"png"``, lossless, for maps (flat colour cells stay crisp) and downloads; ``"jpeg"`` for
            photos and overlays, where the web app's PNG costs ~20 ms per 224 px picture on every rerun
            (measured by bench/app.py) and JPEG well under 1 ms.
        quality: JPEG quality, 1 to 95.
        fast: PNG with the lightest compression, for pictures sent again on every rerun of a page.
    """
    buffer = io.BytesIO()
    if isinstance(image, Figure):
        options = {} if format == "png" else {"pil_kwargs": {"quality": quality}}
        image.savefig(buffer, format=format, dpi=image.dpi, bbox_inches="tight", **options)
    elif format == "png":
        image.save(buffer, format="PNG", **({"compress_level": 1} if fast else {}))
    elif format == "jpeg":
        image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    else:
        raise ValueError(f"Unknown image format {format!r}; choose one of: png, jpeg")
    return buffer.getvalue()


def report_figure(result: AnalysisResult, *, title: str | None = None) -> Figure:
    """The one-page report: the crop, the top-5, and per stage an activation map beside its Grad-CAM.

    One column per stage, low level on the left to high level on the right: row 1 the most active
    channel of the stage's last layer, row 2 that layer's Grad-CAM over the crop.

    Args:
        result: an analysis.
        title: figure title; default names the backbone, weights and target.

    Returns:
        A matplotlib ``Figure`` (not pyplot), about 14 x 7.5 inches.
    """
    stages = get_spec(result.backbone).stages
    n = len(stages)
    fig = Figure(figsize=(max(12.0, 2.6 * (n + 2)), 7.5), dpi=100, layout="constrained")
    grid = fig.add_gridspec(2, n + 2)
    crop_ax = fig.add_subplot(grid[0, 0:2])
    crop_ax.imshow(result.input_image)
    crop_ax.set_title("What the model saw", fontsize=11)
    crop_ax.axis("off")
    bars = fig.add_subplot(grid[1, 0:2])
    labels = [p.label for p in result.predictions][::-1]
    values = [p.probability for p in result.predictions][::-1]
    colors = ["#d62728" if p.index == result.target.index else "#4c72b0" for p in result.predictions][::-1]
    bars.barh(range(len(values)), values, color=colors)
    bars.set_yticks(range(len(values)), labels, fontsize=9)
    bars.set_xlim(0, 1)
    bars.set_title("Top-5 of the head", fontsize=11)
    for i, v in enumerate(values):
        bars.text(min(v + 0.02, 0.8), i, f"{v:.1%}", va="center", fontsize=8)
    for col, stage in enumerate(stages, start=2):
        layer = stage.last
        top = fig.add_subplot(grid[0, col])
        top.imshow(colorize(representative(result, layer)))
        top.set_title(
            f"stage {stage.index} · {layer.level}\n{layer.label} {result.activations[layer.name].shape[1]}x"
            f"{result.activations[layer.name].shape[2]}",
            fontsize=9,
        )
        top.axis("off")
        bottom = fig.add_subplot(grid[1, col])
        bottom.imshow(overlay(result.input_image, result.gradcam[layer.name], alpha=0.55))
        bottom.set_title(f"Grad-CAM · {layer.label}", fontsize=9)
        bottom.axis("off")
    fig.suptitle(
        title
        or f"{result.backbone} ({result.weights}) — Grad-CAM target: {result.target.label} "
        f"({result.target.probability:.1%})",
        fontsize=13,
    )
    return fig


def image_row(
    images: Sequence[Image.Image | None],
    *,
    labels: Sequence[str] | None = None,
    height: int = 160,
    pad: int = 8,
    font_size: int = 14,
) -> Image.Image:
    """Pictures side by side on white, each scaled to ``height``, with an optional label under each.

    Used for the downloadable strips of the web app (one map per stage, a stage's activation beside its
    Grad-CAM, backbones aligned by stride). A ``None`` entry leaves a blank square, so that rows of
    different backbones can line up column by column.

    Args:
        images: RGB PIL images (maps from :func:`map_image`, overlays, the crop) or ``None``.
        labels: one text per picture (may hold newlines), drawn centred below it; ``None`` for none.
        height: height of every picture in pixels; widths keep each picture's aspect ratio. Smaller
            pictures are enlarged with nearest-neighbour so that a map's cells stay visible.
        pad: gap between pictures and around the row, in pixels.
        font_size: label size in pixels.

    Returns:
        RGB PIL image.
    """
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"got {len(images)} images but {len(labels)} labels")
    tiles = []
    for image in images:
        if image is None:
            tiles.append(None)
            continue
        width = max(1, round(image.width * height / image.height))
        method = Image.Resampling.NEAREST if image.height < height else Image.Resampling.BILINEAR
        tiles.append(image.convert("RGB").resize((width, height), method))
    widths = [height if tile is None else tile.width for tile in tiles]
    label_font = font(font_size)
    lines = max((len(text.splitlines()) for text in labels or ()), default=0)
    text_height = lines * round(font_size * 1.25) + (pad if lines else 0)
    canvas = Image.new("RGB", (sum(widths) + pad * (len(tiles) + 1), height + text_height + 2 * pad), "white")
    draw = ImageDraw.Draw(canvas)
    x = pad
    for i, (tile, width) in enumerate(zip(tiles, widths, strict=True)):
        if tile is not None:
            canvas.paste(tile, (x, pad))
        if labels is not None and labels[i]:
            draw.multiline_text(
                (x + width / 2, height + 2 * pad), labels[i], fill="#111111", font=label_font, anchor="ma", align="center"
            )
        x += width + pad
    return canvas


@cache
def font(size: int, bold: bool = False) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """DejaVu Sans (shipped with matplotlib: it has "×", "·" and "→") at ``size`` pixels, bold or regular.

    Falls back to Pillow's built-in font, which lacks some of those characters.
    """
    try:
        props = matplotlib.font_manager.FontProperties(family="DejaVu Sans", weight="bold" if bold else "normal")
        return ImageFont.truetype(matplotlib.font_manager.findfont(props, fallback_to_default=True), size)
    except (OSError, ValueError):
        return ImageFont.load_default(size=size)

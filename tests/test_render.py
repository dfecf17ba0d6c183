"""Rendering: the one image encoder, and the report's columns (one per stage of the spec)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

import backbone_viz as bv
from backbone_viz import render

PNG, JPEG = b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"


def _noise(side: int = 64) -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8))


def test_png_is_lossless_whether_fast_or_not() -> None:
    image = _noise()
    for fast in (False, True):
        data = render.encode(image, "png", fast=fast)
        assert data.startswith(PNG)
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), np.asarray(image))


def test_jpeg_keeps_the_size_and_drops_transparency() -> None:
    data = render.encode(_noise().convert("RGBA"), "jpeg", quality=80)
    assert data.startswith(JPEG)
    decoded = Image.open(io.BytesIO(data))
    assert decoded.mode == "RGB" and decoded.size == (64, 64)


def test_a_figure_encodes_in_both_formats() -> None:
    figure = Figure(figsize=(2, 1), dpi=50)
    figure.add_subplot().plot([0, 1], [1, 0])
    assert render.encode(figure).startswith(PNG)
    assert render.encode(figure, "jpeg").startswith(JPEG)


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="png, jpeg"):
        render.encode(_noise(), "gif")  # type: ignore[arg-type]


def test_the_report_has_one_column_per_stage_of_the_spec(cat: bv.AnalysisResult) -> None:
    stages = bv.get_spec(cat.backbone).stages
    figure = render.report_figure(cat)
    titles = [axes.get_title() for axes in figure.axes]
    for stage in stages:
        assert f"stage {stage.index} · {stage.last.level}\n{stage.last.label} " in "\n".join(titles)
        assert f"Grad-CAM · {stage.last.label}" in titles
    assert len(figure.axes) == 2 + 2 * len(stages)  # the crop, the top-5, two per stage
    assert render.encode(figure).startswith(PNG)
